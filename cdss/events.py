"""Record events, their canonical form and the hash chain.

Every store keeps one chain: each event names the hash of the event before it
(by ``seq``) and carries its own hash over its RFC 8785 form. Editing,
deleting, inserting or reordering any event — or removing a whole session —
breaks the chain. Session events carry a ``session``; store events (keys and
settings) never do. ``schemas/event.schema.json`` is the published contract:
``schema_problems`` checks a value against it with jsonschema-rs (ECMA-262
regular expressions), and these models accept exactly what it does.

One regex dialect: every pattern below is the schema's own, anchored with
``^...$``. Python's ``$`` also matches before a final newline, ECMA-262's does
not, so Python code matches them with ``re.fullmatch`` (``matches``) and the
models with the ``$`` turned into ``\\Z``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from cdss.catalog import content_hash
from cdss.checklist import refuse_null

if TYPE_CHECKING:
    import jsonschema_rs

SCHEMA_ID = "urn:cdss:schema:event:2"
GENESIS = "0" * 64
"""The ``prev`` of the first event in a store."""

IDENTIFIER = "^[a-z0-9]+(?:-[a-z0-9]+)*$"
HASH = "^[0-9a-f]{64}$"
SESSION_ID = "^[0-9a-f]{32}$"
TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$"
SUBJECT = "^[A-Za-z0-9][A-Za-z0-9._:-]*$"
SIGNATURE = "^[A-Za-z0-9+/]{86}==$"
PUBLIC_KEY = "^[A-Za-z0-9+/]{43}=$"
WHITE_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT = f"[^{WHITE_SPACE}]"
"""Some character that is not white space: spelled out, because ``\\S`` means different
things in Python (``str.isspace``) and ECMA-262 (which adds U+FEFF, drops U+001C-U+001F)."""


def matches(pattern: str, value: str) -> bool:
    """Whether ``value`` matches a schema pattern as ECMA-262 would (no ``$``-before-newline gap)."""
    if pattern.startswith("^"):
        return _compiled(pattern).fullmatch(value) is not None
    return _compiled(pattern).search(value) is not None


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    body = pattern[1:-1] if pattern.startswith("^") and pattern.endswith("$") else pattern
    return re.compile(body)


def _model(pattern: str) -> str:
    """A schema pattern for pydantic's ``re.match``: ``$`` only at the very end."""
    return pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern


Hash = Annotated[str, Field(pattern=_model(HASH))]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=_model(IDENTIFIER))]
ShortText = Annotated[str, Field(min_length=1, max_length=200, pattern=TEXT)]
SignatureText = Annotated[str, Field(pattern=_model(SIGNATURE))]
Status = Literal["done", "not-applicable", "not-done"]
STATUSES: tuple[Status, ...] = ("done", "not-applicable", "not-done")
SETTINGS = ("require-signatures", "subject-pattern")
SettingName = Literal["require-signatures", "subject-pattern"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, regex_engine="python-re")


class PinnedChecklist(_Strict):
    id: Identifier
    version: Annotated[str, Field(min_length=5, max_length=64)]
    hash: Hash


class DeclaredContext(_Strict):
    route: Identifier | None
    populations: list[Identifier]


class Started(_Strict):
    checklist: PinnedChecklist
    subject: Annotated[str, Field(min_length=1, max_length=64, pattern=_model(SUBJECT))]
    context: DeclaredContext
    clinician: Identifier


class Answered(_Strict):
    item: Identifier
    status: Status
    reason: Identifier | None = None
    reason_text: ShortText | None = None

    _no_null = field_validator("reason", "reason_text", mode="before")(refuse_null)


class Amended(Answered):
    corrects: Hash
    explanation: ShortText


class Completed(_Strict):
    pass


class Abandoned(_Strict):
    reason: ShortText


class Signed(_Strict):
    signs: Hash
    name: Annotated[str, Field(min_length=1, max_length=120, pattern=TEXT)]
    meaning: Annotated[str, Field(min_length=1, max_length=300, pattern=TEXT)]
    key: Hash
    signature: SignatureText


class KeyRegistered(_Strict):
    """A public key enters the store; see docs/record-events.md for who may endorse it."""

    clinician: Identifier
    key_id: Hash
    public_key: Annotated[str, Field(pattern=_model(PUBLIC_KEY))]
    name: Annotated[str, Field(min_length=1, max_length=120, pattern=TEXT)]
    administrator: bool
    endorsed_by: Hash | None
    endorsement: SignatureText | None


class KeyRetired(_Strict):
    clinician: Identifier
    key_id: Hash
    reason: ShortText
    endorsed_by: Hash
    endorsement: SignatureText


class SettingChanged(_Strict):
    name: SettingName
    value: Annotated[str, Field(min_length=1, max_length=500)]
    endorsed_by: Hash | None
    endorsement: SignatureText | None


EventData = (
    Started
    | Answered
    | Amended
    | Completed
    | Abandoned
    | Signed
    | KeyRegistered
    | KeyRetired
    | SettingChanged
)
EventType = Literal[
    "session-started",
    "item-answered",
    "item-amended",
    "session-completed",
    "session-abandoned",
    "session-signed",
    "key-registered",
    "key-retired",
    "setting-changed",
]
DATA_TYPES: dict[str, type[_Strict]] = {
    "session-started": Started,
    "item-answered": Answered,
    "item-amended": Amended,
    "session-completed": Completed,
    "session-abandoned": Abandoned,
    "session-signed": Signed,
    "key-registered": KeyRegistered,
    "key-retired": KeyRetired,
    "setting-changed": SettingChanged,
}
STORE_TYPES = frozenset({"key-registered", "key-retired", "setting-changed"})
"""Events about the store itself: they carry no ``session``."""


class _Envelope(_Strict):
    seq: Annotated[int, Field(ge=1, le=2**53 - 1)]
    at: Annotated[str, Field(pattern=_model(TIME))]
    actor: Identifier
    prev: Hash
    hash: Hash

    @field_validator("seq", mode="before")
    @classmethod
    def _integral(cls, value: Any) -> Any:
        # JSON Schema counts 2.0 as an integer; so must we, to accept what the schema does.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    def body(self) -> dict[str, Any]:
        """The event as JSON, without its hash: what the hash covers."""
        return self.model_dump(mode="json", exclude={"hash"}, exclude_unset=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)

    def canonical(self) -> bytes:
        """The RFC 8785 bytes of the whole event: one line of an exported bundle."""
        return bytes(rfc8785.dumps(self.to_json()))


class _SessionEnvelope(_Envelope):
    session: Annotated[str, Field(pattern=_model(SESSION_ID))]


class _StoreEnvelope(_Envelope):
    session: ClassVar[None] = None


class StartedEvent(_SessionEnvelope):
    type: Literal["session-started"]
    data: Started


class AnsweredEvent(_SessionEnvelope):
    type: Literal["item-answered"]
    data: Answered


class AmendedEvent(_SessionEnvelope):
    type: Literal["item-amended"]
    data: Amended


class CompletedEvent(_SessionEnvelope):
    type: Literal["session-completed"]
    data: Completed


class AbandonedEvent(_SessionEnvelope):
    type: Literal["session-abandoned"]
    data: Abandoned


class SignedEvent(_SessionEnvelope):
    type: Literal["session-signed"]
    data: Signed


class KeyRegisteredEvent(_StoreEnvelope):
    type: Literal["key-registered"]
    data: KeyRegistered


class KeyRetiredEvent(_StoreEnvelope):
    type: Literal["key-retired"]
    data: KeyRetired


class SettingChangedEvent(_StoreEnvelope):
    type: Literal["setting-changed"]
    data: SettingChanged


SessionEvent = StartedEvent | AnsweredEvent | AmendedEvent | CompletedEvent | AbandonedEvent | SignedEvent
StoreEvent = KeyRegisteredEvent | KeyRetiredEvent | SettingChangedEvent
Event = SessionEvent | StoreEvent
EVENT_MODELS: dict[str, type[Event]] = {
    "session-started": StartedEvent,
    "item-answered": AnsweredEvent,
    "item-amended": AmendedEvent,
    "session-completed": CompletedEvent,
    "session-abandoned": AbandonedEvent,
    "session-signed": SignedEvent,
    "key-registered": KeyRegisteredEvent,
    "key-retired": KeyRetiredEvent,
    "setting-changed": SettingChangedEvent,
}
_adapter: TypeAdapter[Event] = TypeAdapter(Annotated[Event, Field(discriminator="type")])


def parse_event(value: Any) -> Event:
    """Validate a JSON event (as stored or exported).

    Raises pydantic's ``ValidationError``; callers turn it into issues.
    """
    return _adapter.validate_python(value)


# --- the published schema, checked by a maintained validator ---------------------------


@cache
def _validators() -> tuple[jsonschema_rs.Validator, dict[str, jsonschema_rs.Validator]]:
    """The whole schema, and one validator per event type for precise messages."""
    import json

    import jsonschema_rs

    from cdss.catalog import schema_path

    schema = json.loads(schema_path("event.schema.json").read_text(encoding="utf-8"))
    whole = jsonschema_rs.validator_for(schema)
    whole_but_choice = {k: v for k, v in schema.items() if k != "oneOf"}
    by_type = {
        name: jsonschema_rs.validator_for({**whole_but_choice, "$ref": f"#/$defs/{name}"})
        for name in DATA_TYPES
    }
    return whole, by_type


def schema_problems(value: Any) -> str | None:
    """The first way ``value`` breaks ``schemas/event.schema.json``, as ``/POINTER: message``; else None.

    The check is jsonschema-rs over the published file itself (ECMA-262
    patterns), so cdss and a verifier written from the published format judge
    alike. A value that JSON cannot hold (a lone surrogate) is a problem too.
    """
    whole, by_type = _validators()
    try:
        if whole.is_valid(value):
            return None
        kind = value.get("type") if isinstance(value, dict) else None
        validator = by_type.get(kind) if isinstance(kind, str) else None
        if validator is None:
            return f"/type: expected one of {', '.join(DATA_TYPES)}"
        for error in validator.iter_errors(value):
            pointer = "".join(f"/{part}" for part in error.instance_path)
            return f"{pointer or '/'}: {error.message}"
    except (ValueError, TypeError, OverflowError, RecursionError) as error:
        return f"/: cannot be checked as JSON ({error})"
    return "/: does not match the event schema"


@dataclass(frozen=True)
class Draft:
    """An event before the store places it in the chain; ``session`` is None for store events."""

    session: str | None
    type: EventType
    actor: str
    data: EventData
    at: str = ""

    def __post_init__(self) -> None:
        if type(self.data) is not DATA_TYPES[self.type]:
            raise TypeError(f"{self.type} needs {DATA_TYPES[self.type].__name__} data")
        if (self.session is None) != (self.type in STORE_TYPES):
            raise TypeError(f"{self.type} {'never carries' if self.session else 'needs'} a session")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


hash_body = content_hash
"""An event's hash: the same sha256 of the RFC 8785 form that names a checklist version."""


def draft_body(draft: Draft, seq: int, prev: str) -> dict[str, Any]:
    """What ``seal`` will hash for ``draft`` at ``seq`` after ``prev`` (an endorsement signs this)."""
    fields: dict[str, Any] = {"seq": seq}
    if draft.session is not None:
        fields["session"] = draft.session
    fields.update(type=draft.type, at=draft.at or now(), actor=draft.actor, prev=prev)
    fields["data"] = draft.data.model_dump(mode="json", exclude_unset=True)
    return fields


def seal(draft: Draft, seq: int, prev: str) -> Event:
    """Place a draft after ``prev`` at position ``seq`` and hash it."""
    return sealed(draft, seq, prev)[0]


def sealed(draft: Draft, seq: int, prev: str) -> tuple[Event, bytes]:
    """``seal``, with the event's canonical bytes: the text a store holds.

    Each member is put in RFC 8785 form once and the object assembled twice,
    without the hash (what the hash covers, as ``hash_body`` would) and with
    it, so an append serialises its event once rather than twice.
    """
    fields = draft_body(draft, seq, prev)
    members = {name: rfc8785.dumps(value) for name, value in fields.items()}
    fields["hash"] = hashlib.sha256(_canonical_object(members)).hexdigest()
    members["hash"] = rfc8785.dumps(fields["hash"])
    fields["data"] = draft.data
    return EVENT_MODELS[draft.type](**fields), _canonical_object(members)


def _canonical_object(members: dict[str, bytes]) -> bytes:
    """The RFC 8785 form of an object whose member values are already canonical (names in UTF-16 order)."""
    ordered = sorted(members.items(), key=lambda member: member[0].encode("utf-16-be"))
    return b"{" + b",".join(_member_name(name) + value for name, value in ordered) + b"}"


@cache
def _member_name(name: str) -> bytes:
    """An envelope member's name in RFC 8785 form, with its colon: a handful of names, put in form once."""
    return bytes(rfc8785.dumps(name)) + b":"


@dataclass(frozen=True)
class ChainBreak:
    """One place where the chain does not hold."""

    seq: int
    session: str | None
    problem: str


def check_chain(
    events: Iterable[Event], *, first_prev: str = GENESIS, first_seq: int = 1
) -> Iterator[ChainBreak]:
    """Streams over events in stored order; yields every break it sees.

    A chain alone cannot see a cut-off tail: compare the last hash with an
    exported bundle's manifest or a signed checkpoint for that.
    """
    expected_seq, expected_prev = first_seq, first_prev
    for event in events:
        if event.seq != expected_seq:
            yield ChainBreak(
                event.seq, event.session, f"sequence number {event.seq}, expected {expected_seq}"
            )
        if event.prev != expected_prev:
            yield ChainBreak(
                event.seq,
                event.session,
                "previous-hash link broken (event missing, inserted or reordered before it)",
            )
        actual = hash_body(event.body())
        if actual != event.hash:
            yield ChainBreak(event.seq, event.session, "content does not match its hash (event altered)")
        expected_seq, expected_prev = event.seq + 1, event.hash
