"""The session rules: is each event legal where it stands in its session?

Checked per event, in chain order, with a little state per session (a
``_Trail``), so memory stays flat however long the chain is:

- a session starts once, pinned to a checklist version that exists with its
  pinned content hash, in a context that checklist declares;
- answers only for applicable items of that version, each once, with a
  reason only where not done and ``reason_text`` only with ``other``;
- amendments point at an earlier answer or amendment of the same item in the
  same session (looked up after the pass, as they are rare);
- completed once, only when every applicable item is answered; after
  completion only amendments and signatures, after abandonment only amendments;
- a signature signs its session's completion, and verifies against a key
  registered to the completing clinician.

These rules are written down for third-party verifiers in docs/bundle-format.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cdss.audit.keyring import KeyUse
from cdss.audit.stored import payload
from cdss.catalog import content_hash
from cdss.errors import CdssError
from cdss.plan import PlannedItem, RunContext, declare, plan
from cdss.session import answer_problem

if TYPE_CHECKING:
    from cdss.audit.keyring import Keyring
    from cdss.audit.sources import Source
    from cdss.audit.trust import TrustedKeys
    from cdss.checklist import Checklist

Note = Callable[[int | None, Any, str], None]
"""Where a rule reports a finding: (seq, session, problem)."""


@dataclass(frozen=True)
class _Plan:
    """A checklist version in one declared context: the applicable items, each with a bit."""

    checklist: Checklist
    applicable: dict[str, PlannedItem]
    bits: dict[str, int]
    full: int


@dataclass(slots=True)
class _Trail:
    """What a session's next event is checked against; small, because there are many."""

    plan: _Plan | None
    status: str
    """open, completed, abandoned, or partial (started before a bundle's range: chain only)."""
    started: tuple[str, str, str] | None = None
    """(checklist id, version, subject): what a signature's meaning must name."""
    answered: int = 0
    completion: tuple[str, str, str] | None = None
    """The completion's (hash, actor, at), once completed."""
    signed: bool = False
    must_sign: int | None = None
    """The completion's seq, while it awaits the signature ``require-signatures`` asked for."""


class SessionRules:
    """The state of every session seen so far, and the rules each next event must keep."""

    def __init__(self, source: Source, keyring: Keyring, note: Note, trusted: TrustedKeys | None = None):
        self.source, self.keyring, self.note, self.trusted = source, keyring, note, trusted
        self.trails: dict[str, _Trail] = {}
        self.plans: dict[tuple[Any, ...], _Plan | str] = {}
        self.checklists: dict[tuple[str, str, str], Checklist | str] = {}
        self.pending: dict[str, dict[str, list[tuple[int, str]]]] = {}
        """Amendments to look up after the pass: session -> corrected hash -> [(seq, item)]."""
        self.signatures = 0
        self.amendments = 0
        self.amended_after_signing: set[str] = set()

    def follow(self, event: dict[str, Any], seq: int) -> None:
        """Check one schema-valid session event against its session's state, and advance it."""
        session, kind, data = event["session"], event["type"], event["data"]
        trail = self.trails.get(session)
        if kind == "session-started":
            if trail is not None:
                self.note(seq, session, "started a second time")
                return
            pinned = (data["checklist"]["id"], data["checklist"]["version"], data["subject"])
            self.trails[session] = _Trail(self._plan(data, seq, session), "open", pinned)
            selection = self.source.selection
            if selection is not None and selection.takes(event) != (session in (self.source.selected or ())):
                listed = "is not" if selection.takes(event) else "is"
                self.note(seq, session, f"{listed} in the manifest's sessions, but its start "
                          f"{'matches' if listed == 'is not' else 'does not match'} the manifest's "
                          "selection")  # fmt: skip
            return
        if trail is None:
            if self.source.first_seq == 1:
                self.note(seq, session, f"{kind} for a session that was never started (removed?)")
            trail = self.trails[session] = _Trail(None, "partial")
        if trail.status == "partial":
            return
        if kind in ("item-answered", "item-amended"):
            self._answer(trail, kind, data, seq, session)
        elif kind == "session-completed":
            if trail.status != "open":
                self.note(seq, session, f"completed after it was {trail.status}")
            elif trail.plan is not None and trail.answered != trail.plan.full:
                missing = [i for i, bit in trail.plan.bits.items() if not trail.answered & bit]
                self.note(seq, session, f"completed with {len(missing)} applicable item(s) unanswered: "
                          f"{', '.join(missing[:5])}")  # fmt: skip
            trail.status, trail.completion = "completed", (event["hash"], event["actor"], event["at"])
            if self.keyring.signatures_required():
                trail.must_sign = seq
        elif kind == "session-abandoned":
            if trail.status != "open":
                self.note(seq, session, f"abandoned after it was {trail.status}")
            trail.status = "abandoned"
        elif kind == "session-signed":
            self._signature(trail, event, seq, session)

    def _answer(self, trail: _Trail, kind: str, data: dict[str, Any], seq: int, session: str) -> None:
        item = data["item"]
        if kind == "item-answered" and trail.status != "open":
            self.note(seq, session, f"item {item!r} answered after the session was {trail.status}")
        plan_ = trail.plan
        if plan_ is not None:
            status = data["status"]
            plain = status != "not-done" and len(data) == (2 if kind == "item-answered" else 4)
            problem = (
                None
                if plain and item in plan_.applicable
                else answer_problem(
                    plan_.checklist,
                    plan_.applicable,
                    item,
                    status,
                    reason=data.get("reason"),
                    reason_text=data.get("reason_text"),
                )
            )
            if problem:
                self.note(seq, session, problem)
            bit = plan_.bits.get(item, 0)
            if kind == "item-answered" and trail.answered & bit:
                self.note(seq, session, f"item {item!r} answered twice (a change must be an amendment)")
            trail.answered |= bit
        if kind == "item-amended":
            self.amendments += 1
            if trail.signed:
                self.amended_after_signing.add(session)
            self.pending.setdefault(session, {}).setdefault(data["corrects"], []).append((seq, item))

    def _signature(self, trail: _Trail, event: dict[str, Any], seq: int, session: str) -> None:
        data, actor = event["data"], event["actor"]
        if trail.status != "completed" or trail.completion is None:
            self.note(seq, session, f"signature on a session that is {trail.status}, not completed")
        else:
            completion, completed_by, completed_at = trail.completion
            if data["signs"] != completion:
                self.note(seq, session, "signature does not sign this session's completion")
            if trail.signed:
                self.note(seq, session, "a second signature of one completion (one signature each)")
            if actor != completed_by:
                self.note(seq, session, f"signed by {actor}, but {completed_by} completed the session")
            if event["at"] != completed_at:
                self.note(seq, session, f"signed at {event['at']}, not at the completion's {completed_at}")
        if trail.started is not None:
            expected = "completed checklist {} version {} for subject {}".format(*trail.started)
            if data["meaning"] != expected:
                self.note(seq, session, f"signature meaning {data['meaning']!r} is not {expected!r}")
        trail.signed, trail.must_sign = True, None
        if self.trusted is not None:
            outside = self.trusted.problem(data["key"], actor, "signed")
            if outside:
                self.note(seq, session, outside)
        signed = payload(data["signs"], data["name"], data["meaning"], event["at"])
        use = KeyUse(seq, session, actor, data["signature"], signed)
        registered = self.keyring.key_for(data["key"], use)
        if registered is None:
            return  # judged when its key is registered, or at the end
        if self.keyring.holds(registered.clinician, registered.public_key, use):
            self.signatures += 1

    def _plan(self, data: dict[str, Any], seq: int, session: str) -> _Plan | None:
        pinned = data["checklist"]
        context = data["context"]
        key = (pinned["id"], pinned["version"], pinned["hash"], context["route"], *context["populations"])
        found = self.plans.get(key)
        if found is None:
            found = self.plans[key] = self._make_plan(pinned, context)
        if isinstance(found, str):
            self.note(seq, session, found)
            return None
        return found

    def _make_plan(self, pinned: dict[str, str], context: dict[str, Any]) -> _Plan | str:
        checklist = self._checklist(pinned["id"], pinned["version"], pinned["hash"])
        if isinstance(checklist, str):
            return checklist
        try:
            declared = declare(checklist, context["route"], context["populations"])
        except CdssError as error:
            return f"declared context is not valid for {checklist.ref}: {error}"
        if declared != RunContext(context["route"], tuple(context["populations"])):
            return f"declared populations are not in {checklist.ref}'s order"
        planned = plan(checklist, declared)
        bits = {p.item.id: 1 << n for n, p in enumerate(planned)}
        return _Plan(checklist, {p.item.id: p for p in planned}, bits, (1 << len(planned)) - 1)

    def _checklist(self, checklist_id: str, version: str, pinned: str) -> Checklist | str:
        key = (checklist_id, version, pinned)
        if key not in self.checklists:
            try:
                loaded = self.source.checklist(checklist_id, version)
            except CdssError as error:
                self.checklists[key] = f"checklist {checklist_id}@{version} cannot be loaded: {error}"
            else:
                actual = content_hash(loaded.to_json())
                if actual != pinned:
                    self.checklists[key] = (
                        f"checklist {checklist_id}@{version} hashes to {actual[:12]}…, "
                        f"not the pinned {pinned[:12]}… (the released version changed)"
                    )
                else:
                    self.checklists[key] = loaded
        return self.checklists[key]

    def found_checklists(self) -> set[tuple[str, str, str]]:
        return {key for key, value in self.checklists.items() if not isinstance(value, str)}

    def pinned(self) -> set[tuple[str, str]]:
        return {(checklist_id, version) for checklist_id, version, _ in self.checklists}

    # --- after the pass ---

    def finish(self, sessions: dict[str, int], mine: Callable[[str], bool]) -> None:
        """The checks that need the whole pass: amendments' targets, the bundle's selected sessions."""
        self._check_amendments()
        for session, trail in self.trails.items():
            sessions[trail.status] = sessions.get(trail.status, 0) + 1
            if trail.must_sign is not None:
                self.note(trail.must_sign, session, "completed without a signature while require-signatures "
                          "was on")  # fmt: skip
        for session in sorted(self.source.selected or ()):
            if not mine(session):
                continue
            selected = self.trails.get(session)
            if selected is None or selected.status == "partial":
                self.note(
                    None, session, "selected in the manifest, but its session-started is not in the bundle"
                )

    def _check_amendments(self) -> None:
        if not self.pending:
            return
        wanted = {session: set(pending) for session, pending in self.pending.items()}
        found = {event.get("hash"): event for event in self.source.lookup(wanted)}
        for session, pending in self.pending.items():
            for corrects, amendments in pending.items():
                target = found.get(corrects)
                for seq, item in amendments:
                    if target is None:
                        self.note(seq, session, f"amendment of item {item!r} corrects {corrects[:12]}…, "
                                  "which is not in the records")  # fmt: skip
                    elif (
                        target.get("session") != session
                        or target.get("type") not in ("item-answered", "item-amended")
                        or target.get("data", {}).get("item") != item
                        or not isinstance(target.get("seq"), int)
                        or target["seq"] >= seq
                    ):
                        self.note(seq, session, f"amendment of item {item!r} does not point at an earlier "
                                  "answer of that item in this session")  # fmt: skip
