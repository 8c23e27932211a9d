"""Sessions: running a checklist as a state machine over events, and its record.

A session is nothing but its events in the store. ``Session`` keeps a folded
view of them so it can refuse illegal steps before writing, and every step is
one ``store.append`` that has committed before the method returns — quitting
(or losing power) at any moment loses nothing that was acknowledged.

The completion record (``Session.record()``) is derived from the events each
time it is asked for; it is never stored, so it can never drift from them.

    >>> with open_store() as store:
    ...     session = Session.start(store, "example-walk", subject="S-7F3K2",
    ...                             clinician="dr-lee", route="intravenous")
    ...     session.answer("setting-confirmed", "done")
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdss.catalog import Catalog, content_hash
from cdss.checklist import REASON_NEEDING_TEXT, Checklist
from cdss.errors import IntegrityError, InvalidInput, NotFound, SessionStateError, UsageError
from cdss.events import (
    STATUSES,
    Abandoned,
    Amended,
    Answered,
    Completed,
    CompletedEvent,
    DeclaredContext,
    Draft,
    Event,
    PinnedChecklist,
    Signed,
    Started,
    StartedEvent,
    Status,
)
from cdss.plan import PlannedItem, RunContext, declare, plan
from cdss.record import Answer, Record, RecordItem, SessionStatus, Signature
from cdss.store import REQUIRE_SIGNATURES, Store, is_on, signature_holds
from cdss.text import check_free_text, free_text_problem

Signer = Callable[[CompletedEvent], Signed]
"""Signs a completion: gets the sealed ``session-completed`` event, returns the signature.

The ``session-signed`` event is written in the same transaction and carries
the completion's ``at``, so the signer signs ``{signs, name, meaning, at}``
with ``at = completed.at`` (see ``signed_payload``).
"""

MIN_PREFIX = 6
_IDENTIFIER = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_DATE = re.compile(
    r"(?<!\d)(?:(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])[-/.](?:0?[1-9]|[12]\d|3[01])[-/.](?:\d\d){1,2}"
    r"|(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))(?!\d)"
)
_PHONE = re.compile(r"^\+?[\d().\- ]+$")
_NO_PERSONAL_DATA = (
    "cdss never holds personal data: use an opaque reference such as a pseudonym or "
    "study code (for example S-7F3K2) and keep what links it to the patient outside cdss"
)


def check_subject(subject: str) -> str:
    """Refuse a subject reference that looks like personal data, saying why.

    The checks are deliberately cautious: a clinician can always choose another
    code, but a name written into a tamper-evident store can never be removed.
    """
    problem = None
    if not subject:
        problem = "the subject reference is empty"
    elif len(subject) > 64:
        problem = f"the subject reference is {len(subject)} characters; the limit is 64"
    elif any(c.isspace() for c in subject):
        problem = "the subject reference contains spaces, like a name"
    elif _EMAIL.search(subject):
        problem = "the subject reference looks like an e-mail address"
    elif _DATE.search(subject):
        problem = "the subject reference contains what looks like a date"
    elif _PHONE.match(subject) and sum(c.isdigit() for c in subject) >= 7:
        problem = "the subject reference looks like a phone or record number"
    elif not _SUBJECT.match(subject):
        problem = "the subject reference may use only letters, digits and . _ : - (a letter or digit first)"
    if problem:
        raise InvalidInput(f"{problem}; {_NO_PERSONAL_DATA}")
    return subject


def check_clinician(clinician: str) -> str:
    if not _IDENTIFIER.match(clinician) or len(clinician) > 64:
        raise InvalidInput(
            f"clinician id {clinician!r} must be lowercase letters and digits in words joined by "
            "hyphens (for example dr-lee), at most 64 characters"
        )
    return clinician


def _short_text(value: str | None, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput(f"{what} is required")
    return check_free_text(text, what)


def answer_problem(
    checklist: Checklist,
    applicable: Mapping[str, PlannedItem],
    item: str,
    status: str,
    *,
    reason: str | None = None,
    reason_text: str | None = None,
) -> str | None:
    """What is wrong with an answer, or None: shared by sessions and answers files."""
    if item not in applicable:
        if any(i.id == item for _, i in checklist.items()):
            return f"item {item!r} does not apply in this session's context"
        return f"no item {item!r} in {checklist.ref}"
    if status not in STATUSES:
        return f"status {status!r} is not one of {', '.join(STATUSES)}"
    codes = [r.code for r in checklist.reasons]
    if status != "not-done":
        return "a reason is given only for not-done" if reason or reason_text else None
    if reason is None:
        return f"not-done needs a reason, one of: {', '.join(codes)}"
    if reason not in codes:
        return f"reason {reason!r} is not one of: {', '.join(codes)}"
    if reason == REASON_NEEDING_TEXT:
        text = (reason_text or "").strip()
        if not text:
            return f"reason {REASON_NEEDING_TEXT!r} needs a short text"
        return free_text_problem(text, "the reason text")
    elif reason_text:
        return f"a reason text is given only with reason {REASON_NEEDING_TEXT!r}"
    return None


def signed_payload(signs: str, name: str, meaning: str, at: str) -> bytes:
    """The bytes a ``session-signed`` event's Ed25519 signature covers (RFC 8785)."""
    import rfc8785

    return bytes(rfc8785.dumps({"signs": signs, "name": name, "meaning": meaning, "at": at}))


# --- the state machine ----------------------------------------------------------------


@dataclass
class _State:
    """A session's events folded: only what the next step needs to be checked."""

    started: StartedEvent
    answers: dict[str, list[Answer]] = field(default_factory=dict)
    status: SessionStatus = "open"
    ended_at: str | None = None
    abandon_reason: str | None = None
    signatures: list[Signature] = field(default_factory=list)

    def apply(self, event: Event) -> None:
        data = event.data
        if isinstance(data, Answered):  # Amended is an Answered too
            amended = data if isinstance(data, Amended) else None
            self.answers.setdefault(data.item, []).append(
                Answer(
                    status=data.status,
                    reason=data.reason,
                    reason_text=data.reason_text,
                    at=event.at,
                    actor=event.actor,
                    event=event.hash,
                    corrects=amended.corrects if amended else None,
                    explanation=amended.explanation if amended else None,
                )
            )
        elif isinstance(data, Completed) and self.status == "open":
            self.status, self.ended_at = "completed", event.at
        elif isinstance(data, Abandoned) and self.status == "open":
            self.status, self.ended_at, self.abandon_reason = "abandoned", event.at, data.reason
        elif isinstance(data, Signed):
            self.signatures.append(
                Signature(data.name, data.meaning, event.at, event.actor, data.key, data.signs)
            )


def _resolve_checklist(checklist: Checklist | str | Path, catalog: Catalog | None) -> Checklist:
    if isinstance(checklist, Checklist):
        return checklist
    path = Path(checklist)
    if isinstance(checklist, Path) or (str(checklist).endswith(".json") and path.is_file()):
        from cdss.catalog import load_file

        return load_file(path)
    return (catalog or Catalog.default()).load(str(checklist))


def find_session(store: Store, prefix: str) -> str:
    """The full id of the one session whose id starts with ``prefix`` (at least 6 hex characters)."""
    wanted = prefix.strip().lower()
    if not re.fullmatch(f"[0-9a-f]{{{MIN_PREFIX},32}}", wanted):
        raise UsageError(f"{prefix!r} is not a session id; give at least {MIN_PREFIX} of its hex characters")
    matches = [row.id for row in store.sessions() if row.id.startswith(wanted)]
    if not matches:
        raise NotFound(f"no session {prefix} in this store; `cdss sessions` lists them")
    if len(matches) > 1:
        raise UsageError(f"{prefix} matches {len(matches)} sessions; give more of the id")
    return matches[0]


class Session:
    """One run of a checklist for one subject; every step is committed before it returns."""

    def __init__(self, store: Store, checklist: Checklist, events: Iterable[Event]):
        """Use ``Session.start`` or ``Session.load``; this rebuilds state from events."""
        stream = iter(events)
        first = next(stream, None)
        if not isinstance(first, StartedEvent):
            raise IntegrityError("a session's first event must be session-started")
        self.store = store
        self.checklist = checklist
        self._state = _State(first)
        for event in stream:
            self._state.apply(event)
        data = first.data
        self.context = RunContext(data.context.route, tuple(data.context.populations))
        self.planned: list[PlannedItem] = plan(checklist, self.context)
        self._applicable = {p.item.id: p for p in self.planned}

    # --- starting and loading ---

    @classmethod
    def start(
        cls,
        store: Store,
        checklist: Checklist | str | Path,
        *,
        subject: str,
        clinician: str,
        route: str | None = None,
        populations: Sequence[str] = (),
        catalog: Catalog | None = None,
    ) -> Session:
        """Start a session pinned to the exact checklist version and its content hash.

        ``checklist`` is a loaded ``Checklist``, ``ID``, ``ID@VERSION`` (from
        ``catalog``, default ``Catalog.default()``) or a path to a checklist file.
        """
        check_subject(subject)
        check_clinician(clinician)
        loaded = _resolve_checklist(checklist, catalog)
        context = declare(loaded, route, populations)
        pinned = PinnedChecklist(id=loaded.id, version=loaded.version, hash=content_hash(loaded.to_json()))
        data = Started(
            checklist=pinned,
            subject=subject,
            context=DeclaredContext(route=context.route, populations=list(context.populations)),
            clinician=clinician,
        )
        events = store.append(Draft(uuid.uuid4().hex, "session-started", clinician, data))
        return cls(store, loaded, events)

    @classmethod
    def load(
        cls,
        store: Store,
        session_id: str,
        *,
        catalog: Catalog | None = None,
        checklist: Checklist | None = None,
    ) -> Session:
        """Rebuild a session from its events, with the exact checklist version it was started on.

        The version is loaded by ``ID@VERSION`` even when newer ones exist, and
        its content hash must equal the pinned one (``IntegrityError`` if not).
        """
        events = store.events(session_id)
        first = next(events, None)
        if not isinstance(first, StartedEvent):
            raise NotFound(f"no session {session_id} in this store")
        pinned = first.data.checklist
        loaded = checklist or (catalog or Catalog.default()).load(f"{pinned.id}@{pinned.version}")
        actual = content_hash(loaded.to_json())
        if (loaded.id, loaded.version) != (pinned.id, pinned.version) or actual != pinned.hash:
            raise IntegrityError(
                f"session {session_id} was recorded against {pinned.id}@{pinned.version} with content "
                f"hash {pinned.hash[:12]}…, but the checklist found is {loaded.ref} hashing to "
                f"{actual[:12]}…; a released version must never change"
            )
        return cls(store, loaded, [first, *events])

    # --- what the session is ---

    @property
    def id(self) -> str:
        return self._state.started.session

    @property
    def subject(self) -> str:
        return self._state.started.data.subject

    @property
    def clinician(self) -> str:
        return self._state.started.data.clinician

    @property
    def status(self) -> SessionStatus:
        return self._state.status

    def answer_of(self, item: str) -> Answer | None:
        """The item's current answer (after any amendments), or None."""
        history = self._state.answers.get(item)
        return history[-1] if history else None

    def unanswered(self) -> list[PlannedItem]:
        return [p for p in self.planned if p.item.id not in self._state.answers]

    def next_item(self) -> PlannedItem | None:
        """The first applicable item without an answer: where a resumed session continues."""
        remaining = self.unanswered()
        return remaining[0] if remaining else None

    # --- steps ---

    def _append(self, *drafts: Draft | Callable[[Event | None], Draft]) -> list[Event]:
        events = self.store.append(*drafts)
        for event in events:
            self._state.apply(event)
        return events

    def _require_open(self, action: str) -> None:
        if self.status != "open":
            raise SessionStateError(f"session {self.id[:12]} is {self.status}; cannot {action}")

    def _check(self, item: str, status: str, reason: str | None, reason_text: str | None) -> dict[str, Any]:
        problem = answer_problem(
            self.checklist, self._applicable, item, status, reason=reason, reason_text=reason_text
        )
        if problem:
            raise InvalidInput(problem)
        fields: dict[str, Any] = {"item": item, "status": status}
        if reason is not None:
            fields["reason"] = reason
        if reason_text is not None:
            fields["reason_text"] = reason_text.strip()
        return fields

    def answer(
        self, item: str, status: Status, reason: str | None = None, reason_text: str | None = None
    ) -> Event:
        """Record the first answer to an item; use ``amend`` to change it."""
        self._require_open("answer items")
        fields = self._check(item, status, reason, reason_text)
        if item in self._state.answers:
            raise SessionStateError(f"item {item!r} is already answered; amend it to change the answer")
        return self._append(Draft(self.id, "item-answered", self.clinician, Answered(**fields)))[0]

    def amend(
        self,
        item: str,
        status: Status,
        *,
        explanation: str,
        reason: str | None = None,
        reason_text: str | None = None,
        actor: str | None = None,
    ) -> Event:
        """Correct an item's answer, also after completion; the earlier answer stays in the record."""
        fields = self._check(item, status, reason, reason_text)
        current = self.answer_of(item)
        if current is None:
            raise SessionStateError(f"item {item!r} has no answer to amend; answer it first")
        explanation = _short_text(explanation, "an explanation")
        data = Amended(**fields, corrects=current.event, explanation=explanation)
        actor = check_clinician(actor) if actor else self.clinician
        return self._append(Draft(self.id, "item-amended", actor, data))[0]

    def complete(self, signer: Signer | None = None, *, actor: str | None = None) -> CompletedEvent:
        """Close the session as completed once every applicable item has an answer.

        When the store's ``require-signatures`` setting is on, ``signer`` is
        required and the signature is written in the same transaction: either
        both events are recorded or neither.
        """
        self._require_open("complete it")
        remaining = self.unanswered()
        if remaining:
            names = ", ".join(p.item.id for p in remaining[:3]) + (", …" if len(remaining) > 3 else "")
            raise SessionStateError(f"{len(remaining)} applicable item(s) are unanswered: {names}")
        if signer is None and is_on(self.store.setting(REQUIRE_SIGNATURES)):
            raise SessionStateError(
                "this store requires a signature to complete a session; complete it with --sign "
                "(`cdss resume SESSION --sign`), using the key from `cdss keys init`"
            )
        actor = check_clinician(actor) if actor else self.clinician
        drafts: list[Draft | Callable[[Event | None], Draft]] = [
            Draft(self.id, "session-completed", actor, Completed())
        ]
        if signer is not None:
            drafts.append(lambda completed: self._signature(signer, completed, actor))
        completed = self._append(*drafts)[0]
        assert isinstance(completed, CompletedEvent)
        return completed

    def _signature(self, signer: Signer, completed: Event | None, actor: str) -> Draft:
        assert isinstance(completed, CompletedEvent)
        signed = signer(completed)
        if signed.signs != completed.hash:
            raise IntegrityError("the signature does not sign this completion")
        keys = {k.key_id: k for k in self.store.public_keys()}
        registered = keys.get(signed.key)
        if registered is None:
            raise IntegrityError(f"signing key {signed.key[:12]}… is not registered in this store")
        payload = signed_payload(signed.signs, signed.name, signed.meaning, completed.at)
        if not signature_holds(registered.public_key, signed.signature, payload):
            raise IntegrityError("the signature does not verify with the registered key")
        return Draft(self.id, "session-signed", actor, signed, at=completed.at)

    def abandon(self, reason: str, *, actor: str | None = None) -> Event:
        """Close the session without completing it; every answer so far stays recorded."""
        self._require_open("abandon it")
        data = Abandoned(reason=_short_text(reason, "a reason for abandoning"))
        actor = check_clinician(actor) if actor else self.clinician
        return self._append(Draft(self.id, "session-abandoned", actor, data))[0]

    # --- the record ---

    def record(self) -> Record:
        state = self._state
        pinned = state.started.data
        return Record(
            session=self.id,
            checklist=self.checklist,
            checklist_hash=pinned.checklist.hash,
            subject=pinned.subject,
            clinician=pinned.clinician,
            context=self.context,
            status=state.status,
            started_at=state.started.at,
            ended_at=state.ended_at,
            abandon_reason=state.abandon_reason,
            items=tuple(RecordItem(p, tuple(state.answers.get(p.item.id, ()))) for p in self.planned),
            signatures=tuple(state.signatures),
        )
