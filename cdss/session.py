"""Sessions: running a checklist as a state machine over events, and its record.

A session is nothing but its events in the store. ``Session`` keeps a folded
view of them so it can refuse illegal steps before writing, and every step is
one ``store.append`` that has committed before the method returns — quitting
(or losing power) at any moment loses nothing that was acknowledged.

The completion record (``Session.record()``) is derived from the events each
time it is asked for; it is never stored, so it can never drift from them.

    >>> with open_store() as store:
    ...     session = Session.start(store, "example-walk", subject="S-7F3K2M9Q1",
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
from cdss.errors import IntegrityError, InvalidInput, NotAllowed, NotFound, SessionStateError, UsageError
from cdss.events import (
    IDENTIFIER,
    STATUSES,
    SUBJECT,
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
    matches,
)
from cdss.plan import PlannedItem, RunContext, declare, plan
from cdss.record import Answer, Record, RecordItem, SessionStatus, Signature
from cdss.signing import signature_holds, signed_payload
from cdss.store import REQUIRE_SIGNATURES, SUBJECT_PATTERN, DraftSource, Reads, Store, StoreView, is_on
from cdss.subject import DEFAULT_PATTERN
from cdss.subject import problem as subject_problem

__all__ = ["Session", "Signer", "answer_problem", "check_clinician", "check_subject", "signed_payload"]
from cdss.text import check_free_text, free_text_problem

Signer = Callable[[CompletedEvent], Signed]
"""Signs a completion: gets the sealed ``session-completed`` event, returns the signature.

The ``session-signed`` event is written in the same transaction and carries
the completion's ``at``, so the signer signs ``{signs, name, meaning, at}``
with ``at = completed.at`` (see ``signed_payload``).
"""

MIN_PREFIX = 6


def check_subject(subject: str, pattern: str | None = DEFAULT_PATTERN) -> str:
    """Refuse a subject reference the store's ``pattern`` does not accept, saying why.

    ``pattern`` None checks only what holds under every pattern (before the
    store, and so its pattern, is known). A clinician can always choose another
    code, but a name written into a tamper-evident store can never be removed.
    """
    problem = subject_problem(subject, pattern) if pattern is not None else None
    if pattern is None and (not subject or len(subject) > 64 or not matches(SUBJECT, subject)):
        problem = subject_problem(subject, DEFAULT_PATTERN)
    if problem:
        raise InvalidInput(problem)
    return subject


def check_clinician(clinician: str) -> str:
    if not matches(IDENTIFIER, clinician) or len(clinician) > 64:
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
        # Present but empty is still present: "" would otherwise pass here and fail when recorded.
        given = reason is not None or reason_text is not None
        return "a reason is given only for not-done" if given else None
    if reason is None:
        return f"not-done needs a reason, one of: {', '.join(codes)}"
    if reason not in codes:
        return f"reason {reason!r} is not one of: {', '.join(codes)}"
    if reason == REASON_NEEDING_TEXT:
        text = (reason_text or "").strip()
        if not text:
            return f"reason {REASON_NEEDING_TEXT!r} needs a short text"
        return free_text_problem(text, "the reason text")
    elif reason_text is not None:
        return f"a reason text is given only with reason {REASON_NEEDING_TEXT!r}"
    return None


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
    seen: int = 0
    """The ``seq`` of the last event folded in."""
    ended_by: str | None = None
    """The actor who completed or abandoned the session."""
    ended_event: str | None = None

    def apply(self, event: Event) -> None:
        self.seen = max(self.seen, event.seq)
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
            self.status, self.ended_at, self.ended_by = "completed", event.at, event.actor
            self.ended_event = event.hash
        elif isinstance(data, Abandoned) and self.status == "open":
            self.status, self.ended_at, self.abandon_reason = "abandoned", event.at, data.reason
            self.ended_by, self.ended_event = event.actor, event.hash
        elif isinstance(data, Signed):
            self.signatures.append(
                Signature(data.name, data.meaning, event.at, event.actor, data.key, data.signs)
            )


def _subject_allowed(subject: str, view: StoreView) -> None:
    check_subject(subject, view.setting(SUBJECT_PATTERN))


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
    found = [row.id for row in store.sessions() if row.id.startswith(wanted)]
    if not found:
        raise NotFound(f"no session {prefix} in this store; `cdss sessions` lists them")
    if len(found) > 1:
        raise UsageError(f"{prefix} matches {len(found)} sessions; give more of the id")
    return found[0]


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
        self._view: StoreView = store
        self._others: set[str] = set()
        """Hashes of events another terminal wrote while this object was open."""

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
        check_subject(subject, None)
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
        draft = Draft(uuid.uuid4().hex, "session-started", clinician, data)
        # The subject is held to the store's pattern as it stands when the session is written.
        events = store.append(draft, check=lambda view: _subject_allowed(subject, view))
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
    #
    # One writer decides: every step is checked twice, first on this object's
    # state (to refuse a wrong answer before the store is even locked), then
    # inside the store's write transaction, after folding in whatever another
    # terminal wrote to this session since it was loaded. Only the second check
    # counts; the first only spares the lock.

    def _catch_up(self, view: StoreView) -> None:
        """Fold in this session's events written since we last looked (by another terminal)."""
        for event in view.events(self.id, after=self._state.seen):
            self._others.add(event.hash)
            self._state.apply(event)

    def _append(self, rule: Callable[[], None], *drafts: DraftSource) -> list[Event]:
        """Write ``drafts`` if ``rule`` still holds on the session's stored events, in one transaction."""

        def check(view: StoreView) -> None:
            self._view = view
            self._catch_up(view)
            rule()

        events = self.store.append(*drafts, check=check, reads=Reads(self.id, self._state.seen))
        for event in events:
            self._state.apply(event)
        return events

    def _require_open(self, action: str) -> None:
        state = self._state
        if state.status == "open":
            return
        if state.ended_event in self._others:
            raise NotAllowed(
                f"session {self.id[:12]} was {state.status} in another terminal at {state.ended_at} "
                f"(by {state.ended_by}); nothing more was recorded here"
            )
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

    def _not_answered(self, item: str) -> None:
        history = self._state.answers.get(item)
        if not history:
            return
        first = history[0]
        if first.event in self._others:
            raise NotAllowed(
                f"item {item!r} of session {self.id[:12]} was answered in another terminal at {first.at} "
                f"(by {first.actor}); nothing was recorded here"
            )
        raise SessionStateError(f"item {item!r} is already answered; amend it to change the answer")

    def answer(
        self, item: str, status: Status, reason: str | None = None, reason_text: str | None = None
    ) -> Event:
        """Record the first answer to an item; use ``amend`` to change it."""
        self._require_open("answer items")
        fields = self._check(item, status, reason, reason_text)
        self._not_answered(item)

        def rule() -> None:
            self._require_open("answer items")
            self._not_answered(item)

        draft = Draft(self.id, "item-answered", self.clinician, Answered(**fields))
        return self._append(rule, draft)[0]

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
        """Correct an item's answer, also after completion; the earlier answer stays in the record.

        The amendment corrects the item's answer as stored when it is written,
        so two terminals amending one item make a chain of corrections, never a fork.
        """
        fields = self._check(item, status, reason, reason_text)
        if self.answer_of(item) is None:
            raise SessionStateError(f"item {item!r} has no answer to amend; answer it first")
        explanation = _short_text(explanation, "an explanation")
        actor = check_clinician(actor) if actor else self.clinician

        def rule() -> None:
            """Amendments stay allowed after completion and abandonment; the draft reads the stored state."""

        def draft(_: Event | None) -> Draft:
            current = self.answer_of(item)
            assert current is not None  # answers are never removed
            data = Amended(**fields, corrects=current.event, explanation=explanation)
            return Draft(self.id, "item-amended", actor, data)

        return self._append(rule, draft)[0]

    def complete(self, signer: Signer | None = None, *, actor: str | None = None) -> CompletedEvent:
        """Close the session as completed once every applicable item has an answer.

        When the store's ``require-signatures`` setting is on, ``signer`` is
        required and the signature is written in the same transaction: either
        both events are recorded or neither.
        """
        actor = check_clinician(actor) if actor else self.clinician

        def rule() -> None:
            self._require_open("complete it")
            remaining = self.unanswered()
            if remaining:
                names = ", ".join(p.item.id for p in remaining[:3]) + (", …" if len(remaining) > 3 else "")
                raise SessionStateError(f"{len(remaining)} applicable item(s) are unanswered: {names}")
            if signer is None and is_on(self._view.setting(REQUIRE_SIGNATURES)):
                raise SessionStateError(
                    "this store requires a signature to complete a session; complete it with --sign "
                    "(`cdss resume SESSION --sign`), using the key from `cdss keys init`"
                )

        self._require_open("complete it")
        drafts: list[DraftSource] = [Draft(self.id, "session-completed", actor, Completed())]
        if signer is not None:
            drafts.append(lambda completed: self._signature(signer, completed, actor))
        completed = self._append(rule, *drafts)[0]
        assert isinstance(completed, CompletedEvent)
        return completed

    def _signature(self, signer: Signer, completed: Event | None, actor: str) -> Draft:
        assert isinstance(completed, CompletedEvent)
        signed = signer(completed)
        if signed.signs != completed.hash:
            raise IntegrityError("the signature does not sign this completion")
        keys = {k.key_id: k for k in self._view.keys()}
        registered = keys.get(signed.key)
        if registered is None:
            raise IntegrityError(f"signing key {signed.key[:12]}… is not registered in this store")
        if not registered.active:
            raise NotAllowed(f"signing key {signed.key[:12]}… was retired at {registered.retired_at}")
        if registered.clinician != actor:
            raise NotAllowed(
                f"signing key {signed.key[:12]}… is {registered.clinician}'s; {actor} completes this session"
            )
        payload = signed_payload(signed.signs, signed.name, signed.meaning, completed.at)
        if not signature_holds(registered.public_key, signed.signature, payload):
            raise IntegrityError("the signature does not verify with the registered key")
        return Draft(self.id, "session-signed", actor, signed, at=completed.at)

    def abandon(self, reason: str, *, actor: str | None = None) -> Event:
        """Close the session without completing it; every answer so far stays recorded."""
        self._require_open("abandon it")
        data = Abandoned(reason=_short_text(reason, "a reason for abandoning"))
        actor = check_clinician(actor) if actor else self.clinician
        draft = Draft(self.id, "session-abandoned", actor, data)
        return self._append(lambda: self._require_open("abandon it"), draft)[0]

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
