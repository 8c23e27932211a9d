"""Record events, their canonical form and the hash chain.

Every store keeps one chain: each event names the hash of the event before it
(by ``seq``) and carries its own hash over its RFC 8785 form. Editing,
deleting, inserting or reordering any event — or removing a whole session —
breaks the chain. ``schemas/event.schema.json`` is the published contract and
these models accept exactly what it does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from cdss.catalog import content_hash
from cdss.checklist import refuse_null

SCHEMA_ID = "urn:cdss:schema:event:1"
GENESIS = "0" * 64
"""The ``prev`` of the first event in a store."""

Hash = Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern="^[a-z0-9]+(?:-[a-z0-9]+)*$")]
ShortText = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]
Status = Literal["done", "not-applicable", "not-done"]
STATUSES: tuple[Status, ...] = ("done", "not-applicable", "not-done")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, regex_engine="python-re")


class PinnedChecklist(_Strict):
    id: Identifier
    version: Annotated[str, Field(min_length=5, max_length=64)]
    hash: Hash


class DeclaredContext(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, regex_engine="python-re")
    route: Identifier | None
    populations: list[Identifier]


class Started(_Strict):
    checklist: PinnedChecklist
    subject: Annotated[str, Field(min_length=1, max_length=64, pattern="^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
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
    name: Annotated[str, Field(min_length=1, max_length=120, pattern=r"\S")]
    meaning: Annotated[str, Field(min_length=1, max_length=300, pattern=r"\S")]
    key: Hash
    signature: Annotated[str, Field(pattern="^[A-Za-z0-9+/]{86}==$")]


EventData = Started | Answered | Amended | Completed | Abandoned | Signed
EventType = Literal[
    "session-started",
    "item-answered",
    "item-amended",
    "session-completed",
    "session-abandoned",
    "session-signed",
]
DATA_TYPES: dict[str, type[_Strict]] = {
    "session-started": Started,
    "item-answered": Answered,
    "item-amended": Amended,
    "session-completed": Completed,
    "session-abandoned": Abandoned,
    "session-signed": Signed,
}


class _Envelope(_Strict):
    seq: Annotated[int, Field(ge=1, le=2**53 - 1)]
    session: Annotated[str, Field(pattern="^[0-9a-f]{32}$")]
    at: Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$")]
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


class StartedEvent(_Envelope):
    type: Literal["session-started"]
    data: Started


class AnsweredEvent(_Envelope):
    type: Literal["item-answered"]
    data: Answered


class AmendedEvent(_Envelope):
    type: Literal["item-amended"]
    data: Amended


class CompletedEvent(_Envelope):
    type: Literal["session-completed"]
    data: Completed


class AbandonedEvent(_Envelope):
    type: Literal["session-abandoned"]
    data: Abandoned


class SignedEvent(_Envelope):
    type: Literal["session-signed"]
    data: Signed


Event = StartedEvent | AnsweredEvent | AmendedEvent | CompletedEvent | AbandonedEvent | SignedEvent
EVENT_MODELS: dict[str, type[Event]] = {
    "session-started": StartedEvent,
    "item-answered": AnsweredEvent,
    "item-amended": AmendedEvent,
    "session-completed": CompletedEvent,
    "session-abandoned": AbandonedEvent,
    "session-signed": SignedEvent,
}
_adapter: TypeAdapter[Event] = TypeAdapter(Annotated[Event, Field(discriminator="type")])


def parse_event(value: Any) -> Event:
    """Validate a JSON event (as stored or exported).

    Raises pydantic's ``ValidationError``; callers turn it into issues.
    """
    return _adapter.validate_python(value)


@dataclass(frozen=True)
class Draft:
    """An event before the store places it in the chain."""

    session: str
    type: EventType
    actor: str
    data: EventData
    at: str = ""

    def __post_init__(self) -> None:
        if type(self.data) is not DATA_TYPES[self.type]:
            raise TypeError(f"{self.type} needs {DATA_TYPES[self.type].__name__} data")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


hash_body = content_hash
"""An event's hash: the same sha256 of the RFC 8785 form that names a checklist version."""


def seal(draft: Draft, seq: int, prev: str) -> Event:
    """Place a draft after ``prev`` at position ``seq`` and hash it."""
    fields: dict[str, Any] = {
        "seq": seq,
        "session": draft.session,
        "type": draft.type,
        "at": draft.at or now(),
        "actor": draft.actor,
        "prev": prev,
    }
    fields["data"] = draft.data.model_dump(mode="json", exclude_unset=True)
    fields["hash"] = hash_body(fields)
    fields["data"] = draft.data
    return EVENT_MODELS[draft.type](**fields)


@dataclass(frozen=True)
class ChainBreak:
    """One place where the chain does not hold."""

    seq: int
    session: str
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
