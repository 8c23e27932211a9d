"""Verification: is every recorded event intact, in its place, legal and signed as it claims?

One streaming pass over a ``Source`` (``cdss.audit.sources``), in chain
order. For every event it checks, in this order:

1. it is JSON (bounded in length and nesting) and matches the published
   contract (``schemas/event.schema.json``);
2. its hash: sha256 of its RFC 8785 form without ``hash`` (the stored text is
   already that form, so the body is cut out of it rather than re-serialised;
   only when that disagrees is the event re-serialised, to say whether it was
   altered or merely rewritten in another form);
3. its place in the chain: ``seq`` one more than the last, ``prev`` the last hash;
4. its place in its session: the rules in ``cdss.audit.rules``.

A chain cannot see a cut-off tail on its own: ``Anchor``s (from a checkpoint,
a bundle or a store the auditor trusts) name events it must still contain;
``cdss.audit.against`` says what an anchor outside the range means.
What each finding looks like is ``cdss.audit.findings``.

With more than one CPU the pass is split by session across processes: each
reads every row, but for rows of other processes' sessions it only carries the
chain on (the row's stored hash, without parsing it); everything else is
checked by the one process whose sessions the row belongs to. Sessions are
independent, so no check needs another process's state, and each event is
parsed once. The chain carries the hash each row presents without parsing —
the store's ``hash`` column, or in a bundle the ``hash`` member of the
canonical line — so the findings are the same however many processes there are.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from cdss.audit.findings import MAX_FINDINGS, Anchor, Finding, Verification
from cdss.audit.keyring import Keyring
from cdss.audit.rules import SessionRules
from cdss.audit.sources import Source
from cdss.audit.stored import body_digest, hints, owner, parse, reference_digest
from cdss.audit.trust import TrustedKeys
from cdss.catalog import schema_path
from cdss.events import STORE_TYPES, schema_problems

MAX_WORKERS = 8
"""Processes a verification is split across, at most (by default one per CPU)."""


@dataclass
class _Part:
    """What one process of a split verification found, for ``_merged``."""

    result: Verification
    cross_checked: set[str]
    checklists: set[tuple[str, str, str]]
    pinned: set[tuple[str, str]]


class _Pass:
    """One pass over a source, checking the sessions that ``owner`` gives to ``part``."""

    def __init__(
        self,
        source: Source,
        anchors: Iterable[Anchor],
        part: int = 0,
        parts: int = 1,
        *,
        trusted: TrustedKeys | None = None,
    ):
        self.source, self.part, self.parts = source, part, parts
        self.result = Verification(source.name)
        self.contract = schema_problems
        self.cross_checked: set[str] = set()
        self.keyring = Keyring(self.note, reports=part == 0, trusted=trusted)
        self.keyring.seed([k for k in source.public_keys() if k.seq < source.first_seq])
        self.rules = SessionRules(source, self.keyring, self.note, trusted)
        self.next_seq = source.first_seq
        self.prev: str | None = source.first_prev
        self.anchors: dict[int, list[Anchor]] = {}
        for anchor in anchors:
            self.anchors.setdefault(anchor.seq, []).append(anchor)

    def note(self, seq: int | None, session: Any, problem: str) -> None:
        if len(self.result.findings) < MAX_FINDINGS:
            name = session if isinstance(session, str) else None
            self.result.findings.append(Finding(seq, name, problem))
        else:
            self.result.more_findings += 1

    def run(self) -> _Part:
        result, parts, part = self.result, self.parts, self.part
        first = self.source.first_seq
        for _, text, columns in self.source.rows():
            session_hint, link = (columns[1], columns[3]) if columns is not None else hints(text)
            expected = self.next_seq
            self.next_seq = expected + 1
            if expected == first:
                result.first_seq, result.first_hash = expected, link
            prev, self.prev = self.prev, link
            anchors = self.anchors.pop(expected, ()) if self.anchors else ()
            if parts == 1 or owner(session_hint, parts) == part:
                self._take(expected, text, columns, session_hint, prev=prev, anchors=anchors)
            elif session_hint is None:
                self._fold(expected, text)
        result.events = self.next_seq - first
        if result.events:
            result.last_seq, result.head = self.next_seq - 1, self.prev
        self.rules.finish(result.sessions, lambda session: owner(session, parts) == part)
        self.keyring.finish()
        result.signatures = self.rules.signatures + self.keyring.late_signatures
        result.amendments = self.rules.amendments
        result.keys, result.notes = len(self.keyring.ledger.keys), self.keyring.setting_notes
        result.registered = {k.key_id: (k.clinician, k.seq) for k in self.keyring.ledger.keys.values()}
        result.amended_after_signing = len(self.rules.amended_after_signing)
        return _Part(result, self.cross_checked, self.rules.found_checklists(), self.rules.pinned())

    def _take(
        self,
        expected: int,
        text: Any,
        columns: tuple[Any, ...] | None,
        session_hint: Any,
        *,
        prev: str | None,
        anchors: Iterable[Anchor],
    ) -> None:
        """Every check of one event of this process's sessions; ``prev`` is the link before it."""
        try:
            event = parse(text)
        except (TypeError, ValueError) as error:
            detail = f": {error}" if isinstance(error, ValueError) and "characters" in str(error) else ""
            self.note(expected, session_hint, f"not a JSON event (unreadable row{detail})")
            return
        if not isinstance(event, dict):
            self.note(expected, session_hint, "not a JSON event (unreadable row)")
            return
        seq, session, stored_hash = event.get("seq"), event.get("session"), event.get("hash")
        well_formed = self._check_content(expected, event, text)
        if seq != expected:
            self.note(expected, session, f"sequence number {seq!r} where {expected} belongs")
        if event.get("prev") != prev:
            self.note(expected, session, "previous-hash link broken (an event before it is missing, "
                      "inserted, reordered or altered)")  # fmt: skip
        if columns is not None and columns[:4] != (seq, session, event.get("type"), stored_hash):
            self.note(expected, session, "the store's seq/session/type/hash columns disagree with the event")
        for anchor in anchors:
            if stored_hash != anchor.hash:
                self.note(expected, session, f"differs from the event {anchor.source} recorded at this seq")
        if well_formed:
            try:
                if event["type"] in STORE_TYPES:
                    self.keyring.take(event, expected)
                else:
                    self.rules.follow(event, expected)
            except (KeyError, TypeError, AttributeError, IndexError, ValueError) as error:
                # The event follows the schema, so this is other input (a bundle's keys, a checklist)
                # that the rules could not use: fail closed rather than skip the event's checks.
                kind = type(error).__name__
                self.note(expected, session, f"could not be checked ({kind}); its checks were not made")

    def _fold(self, seq: int, text: Any) -> None:
        """Another process checks this store event; this one only keeps its keys and settings current."""
        try:
            event = parse(text)
            if isinstance(event, dict) and event.get("type") in STORE_TYPES and not self.contract(event):
                self.keyring.take(event, seq)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError):
            pass  # process 0 reports it

    def _check_content(self, seq: int, event: dict[str, Any], text: str) -> bool:
        """The schema and the event's own hash; True when it follows the schema."""
        session = event.get("session")
        problem = self.contract(event)
        if problem:
            self.note(seq, session, f"does not match the event schema: {problem}")
        elif event["type"] not in self.cross_checked:
            self._cross_check(event, seq)
        stored_hash = event.get("hash")
        if body_digest(text) != stored_hash:
            if reference_digest(event) == stored_hash:
                self.note(seq, session, "not stored in the canonical form cdss writes (rewritten)")
            else:
                self.note(seq, session, "content does not match its hash (event altered)")
        return problem is None

    def _cross_check(self, event: dict[str, Any], seq: int) -> None:
        """The first event of each type also goes through jsonschema, so the compiled contract is checked."""
        import jsonschema

        self.cross_checked.add(event["type"])
        schema = json.loads(schema_path("event.schema.json").read_text(encoding="utf-8"))
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(event))
        if error is not None:
            self.note(seq, event.get("session"), f"does not match the event schema: {error.message}")


def verify(
    source: Source,
    anchors: Iterable[Anchor] = (),
    workers: int | None = None,
    trusted: TrustedKeys | None = None,
) -> Verification:
    """Check everything about ``source``; never raises for what it finds, only reports it.

    ``workers`` processes share the pass (default: one per CPU, at most
    ``MAX_WORKERS``); this process takes the first share itself. With
    ``trusted`` keys, every signer outside them is a finding.
    """
    anchors = tuple(anchors)
    parts = max(1, min(workers or os.cpu_count() or 1, MAX_WORKERS))
    if parts == 1:
        damage = _Beside(source.damage)
        found = [_Pass(source, anchors, trusted=trusted).run()]
    else:
        pool = ProcessPoolExecutor(max_workers=parts - 1)
        try:
            others = [pool.submit(_run_part, source, anchors, (k, parts), trusted) for k in range(1, parts)]
            # Only once the workers exist: never fork while a thread is inside SQLite.
            damage = _Beside(source.damage)
            mine = _Pass(source, anchors, 0, parts, trusted=trusted).run()
            found = [mine, *(o.result() for o in others)]
        finally:
            pool.shutdown(cancel_futures=True)
    result = _merged(found)
    from cdss.audit.against import place

    result.keep(place(result, anchors, source))
    result.keep(list(source.after(result)))
    result.keep(damage.result())
    return result


class _Beside(threading.Thread):
    """A check run in a thread beside the pass: SQLite's own checks release the GIL while they work.

    A daemon, so an interrupted verification exits at once instead of waiting for it.
    """

    def __init__(self, check: Callable[[], list[Finding]]):
        super().__init__(daemon=True, name="cdss-verify-beside")
        self._check = check
        self._found: list[Finding] = []
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._found = self._check()
        except BaseException as error:  # handed to the caller's thread by result()
            self._error = error

    def result(self) -> list[Finding]:
        self.join()
        if self._error is not None:
            raise self._error
        return self._found


def _run_part(
    source: Source,
    anchors: tuple[Anchor, ...],
    share: tuple[int, int],
    trusted: TrustedKeys | None,
) -> _Part:
    try:
        return _Pass(source, anchors, *share, trusted=trusted).run()
    finally:
        source.close()


def _merged(parts: list[_Part]) -> Verification:
    """One verification from its parts: every part saw every row, each checked its own sessions."""
    first = parts[0].result
    result = Verification(
        first.source,
        events=first.events,
        first_seq=first.first_seq,
        last_seq=first.last_seq,
        head=first.head,
        first_hash=first.first_hash,
        keys=first.keys,
        notes=first.notes,
        registered=first.registered,
        checklists=len(set().union(*(part.checklists for part in parts))),
        schema_cross_checked=len(set().union(*(part.cross_checked for part in parts))),
        pinned=set().union(*(part.pinned for part in parts)),
    )
    findings = [finding for part in parts for finding in part.result.findings]
    findings.sort(key=lambda f: (f.seq is None, f.seq or 0))
    result.keep(findings)
    for part in parts:
        result.more_findings += part.result.more_findings
        result.signatures += part.result.signatures
        result.amendments += part.result.amendments
        result.amended_after_signing += part.result.amended_after_signing
        for status, count in part.result.sessions.items():
            result.sessions[status] = result.sessions.get(status, 0) + count
    return result
