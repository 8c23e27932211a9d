"""Verification: is every recorded event intact, in its place, legal and signed as it claims?

One streaming pass over the events, in chain order, with a little state per
session, so memory stays flat however long the chain is. For every event it
checks, in this order:

1. it is JSON and matches the published contract (``schemas/event.schema.json``,
   compiled once by ``cdss.audit.contract``; the first event of each type is
   also checked by jsonschema itself, as a cross-check of the compiler);
2. its hash: sha256 of its RFC 8785 form without ``hash`` (the stored text is
   already that form, so the body is cut out of it rather than re-serialised;
   only when that disagrees is the event re-serialised, to say whether it was
   altered or merely rewritten in another form);
3. its place in the chain: ``seq`` one more than the last, ``prev`` the last hash;
4. its place in its session: started first; answers only for applicable items
   of the pinned checklist version, each once; amendments point at an earlier
   answer of the same item in the same session; completed only when every
   applicable item is answered; after completion only amendments and
   signatures, after abandonment only amendments; a signature signs its
   session's completion and verifies against a registered key.

Every session's checklist version must exist with its pinned content hash.
A chain cannot see a cut-off tail on its own: ``Anchor``s (from a checkpoint or
a bundle the auditor kept) name events the chain must still contain.

With more than one CPU the pass is split by session across processes: each
reads every row, but for rows of other processes' sessions it only carries the
chain on (the row's stored hash, without parsing it); everything above is
checked by the one process whose sessions the row belongs to. Sessions are
independent, so no check needs another process's state, and each event is
parsed once. The chain carries the hash each row presents without parsing —
the store's ``hash`` column, or in a bundle the ``hash`` member of the
canonical line — so the findings are the same however many processes there are.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cdss.audit.contract import event_check
from cdss.catalog import Catalog, content_hash, schema_path
from cdss.checklist import Checklist
from cdss.errors import CdssError, NotFound
from cdss.events import GENESIS
from cdss.plan import PlannedItem, RunContext, declare, plan
from cdss.session import answer_problem, signed_payload
from cdss.store import RegisteredKey, key_id, signature_holds

MAX_FINDINGS = 10_000
"""Findings kept in full; beyond this they are counted, so a wrecked store cannot exhaust memory."""

MAX_WORKERS = 8
"""Processes a verification is split across, at most (by default one per CPU)."""

Row = tuple[Any, Any, tuple[Any, ...] | None]
"""(position, stored text, the store's own columns (seq, session, type, hash) or None)."""


@dataclass(frozen=True)
class Finding:
    """One broken place: where (seq and session when known) and what is wrong."""

    seq: int | None
    session: str | None
    problem: str

    def __str__(self) -> str:
        where = [f"seq {self.seq}"] if self.seq is not None else []
        if self.session:
            where.append(f"session {self.session[:12]}")
        return f"{' · '.join(where) or 'store'}: {self.problem}"

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "session": self.session, "problem": self.problem}


@dataclass(frozen=True)
class Anchor:
    """An event the chain must still contain: ``hash`` at ``seq``, as recorded by ``source``."""

    seq: int
    hash: str
    source: str


class Source(Protocol):
    """Where events come from: a store file or a bundle.

    Sources are pickled to the other processes of a split verification, which
    open them again (``__reduce__``), so they hold nothing that cannot be reopened.
    """

    name: str
    first_seq: int
    first_prev: str
    selected: frozenset[str] | None
    """Sessions a bundle was exported for; None for a whole store."""

    def rows(self) -> Iterator[Row]: ...

    def lookup(self, hashes: set[str]) -> Iterator[dict[str, Any]]:
        """The events (parsed JSON) carrying these hashes, wherever they are."""
        ...

    def public_keys(self) -> list[RegisteredKey]: ...

    def checklist(self, checklist_id: str, version: str) -> Checklist:
        """The checklist version sessions were pinned to; raises ``CdssError`` when missing."""
        ...

    def after(self, result: Verification) -> Iterable[Finding]:
        """Source-specific checks once the pass is over (a bundle's manifest claims)."""
        ...

    def close(self) -> None: ...


@dataclass
class Verification:
    """What was checked, and every finding; ``ok`` when there are none."""

    source: str
    findings: list[Finding] = field(default_factory=list)
    more_findings: int = 0
    events: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head: str | None = None
    first_hash: str | None = None
    sessions: dict[str, int] = field(default_factory=dict)
    checklists: int = 0
    signatures: int = 0
    keys: int = 0
    amendments: int = 0
    schema_cross_checked: int = 0
    anchors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings and not self.more_findings

    def summary(self) -> list[str]:
        """What was checked, in counts, for a person."""
        sessions = ", ".join(f"{n} {status}" for status, n in sorted(self.sessions.items())) or "none"
        span = f"seq {self.first_seq}..{self.last_seq}" if self.events else "no events"
        lines = [
            f"source: {self.source}",
            f"events: {self.events} ({span}); each checked for its hash, its chain link and "
            f"against schemas/event.schema.json (compiled; {self.schema_cross_checked} event "
            "type(s) cross-checked with jsonschema)",
            f"sessions: {sum(self.sessions.values())} ({sessions}); event order, applicable items, "
            f"amendments ({self.amendments}) and completion checked",
            f"checklist versions: {self.checklists} found with their pinned content hashes",
            f"signatures: {self.signatures} verified against {self.keys} registered key(s)",
        ]
        lines += [f"anchor: {anchor}" for anchor in self.anchors]
        if self.head:
            lines.append(f"head: seq {self.last_seq} hash {self.head}")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "source": self.source,
            "events": self.events,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head": self.head,
            "sessions": self.sessions,
            "checklists": self.checklists,
            "signatures": self.signatures,
            "keys": self.keys,
            "amendments": self.amendments,
            "schema_cross_checked": self.schema_cross_checked,
            "anchors": self.anchors,
            "findings": [f.to_json() for f in self.findings],
            "more_findings": self.more_findings,
        }


def body_digest(text: str) -> str | None:
    """sha256 of an event's body, cut out of its stored canonical text.

    In RFC 8785 order the top-level ``hash`` member comes straight after
    ``data`` (the only member that can nest another ``hash``), so it is the
    last ``,"hash":"`` in the text. None when the text has no such member.
    """
    cut = text.rfind(',"hash":"')
    if cut < 0 or text[cut + 73 : cut + 75] != '",':
        return None
    return hashlib.sha256((text[:cut] + text[cut + 74 :]).encode()).hexdigest()


def reference_digest(event: dict[str, Any]) -> str | None:
    """The slow, literal definition: sha256 of RFC 8785 of the event without ``hash``."""
    try:
        return content_hash({k: v for k, v in event.items() if k != "hash"})
    except Exception:  # rfc8785 refuses what JSON allows (lone surrogates, huge floats)
        return None


def _payload(signs: str, name: str, meaning: str, at: str) -> bytes:
    """``signed_payload``, fast for the usual printable-ASCII text.

    For such strings (and these fixed keys) sorted compact JSON is exactly
    RFC 8785; anything else goes through the RFC 8785 library.
    """
    text = name + meaning
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'{{"at":"{at}","meaning":"{meaning}","name":"{name}","signs":"{signs}"}}'.encode()
    return signed_payload(signs, name, meaning, at)


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
    answered: int = 0
    completion: str | None = None


_scan: Callable[[Any, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _parse(text: Any) -> Any:
    """``json.loads``, minus its Python-level wrapping when the text is one JSON value and nothing else.

    ``json.loads`` runs this same scanner after stripping whitespace; anything
    the shortcut does not take whole (whitespace, bytes, an error) goes to
    ``json.loads`` itself, so the answer, or the error, is the same.
    """
    try:
        value, end = _scan(text, 0)
        if end == len(text):
            return value
    except (StopIteration, TypeError, ValueError):
        pass
    return json.loads(text)


def _owner(session: Any, parts: int) -> int:
    """Which of ``parts`` processes checks the events of ``session``: all of a session's go to one."""
    return ord(session[-1]) % parts if type(session) is str and session else 0


def _hints(text: Any) -> tuple[str | None, str | None]:
    """A bundle line's session and hash, found without parsing it.

    In a canonical event ``session`` is the last member holding an object key
    of that name, and ``hash`` the last of its name (see ``body_digest``); a
    quote inside a string is escaped, so neither can be faked from inside a
    value. A line where they are not found belongs to process 0 and breaks the
    chain after it — the line itself is reported as not canonical.
    """
    if type(text) is not str:
        return None, None
    cut = text.rfind(',"hash":"')
    hash_ = text[cut + 9 : cut + 73] if cut >= 0 else None
    start = text.rfind('"session":"') + 11
    end = text.find('"', start) if start >= 11 else -1
    return (text[start:end] if end >= 0 else None), hash_


@dataclass
class _Part:
    """What one process of a split verification found, for ``_merged``."""

    result: Verification
    cross_checked: set[str]
    checklists: set[tuple[str, str, str]]


class _Verifier:
    """One pass over a source, checking the sessions that ``_owner`` gives to ``part``."""

    def __init__(
        self,
        source: Source,
        anchors: Iterable[Anchor],
        keys: dict[str, tuple[str, bytes]],
        part: int = 0,
        parts: int = 1,
    ):
        self.source, self.keys, self.part, self.parts = source, keys, part, parts
        self.result = Verification(source.name)
        self.contract = event_check(schema_path("event.schema.json"))
        self.cross_checked: set[str] = set()
        self.next_seq = source.first_seq
        self.prev: str | None = source.first_prev
        self.trails: dict[str, _Trail] = {}
        self.plans: dict[tuple[Any, ...], _Plan | str] = {}
        self.checklists: dict[tuple[str, str, str], Checklist | str] = {}
        self.pending: dict[str, list[tuple[int, str, str]]] = {}
        self.anchors: dict[int, list[Anchor]] = {}
        for anchor in anchors:
            self.anchors.setdefault(anchor.seq, []).append(anchor)
            self.result.anchors.append(f"seq {anchor.seq} must hash to {anchor.hash[:12]}… ({anchor.source})")

    def note(self, seq: int | None, session: Any, problem: str) -> None:
        if len(self.result.findings) < MAX_FINDINGS:
            name = session if isinstance(session, str) else None
            self.result.findings.append(Finding(seq, name, problem))
        else:
            self.result.more_findings += 1

    # --- the pass ---

    def run(self) -> _Part:
        result, parts, part = self.result, self.parts, self.part
        first = self.source.first_seq
        for _, text, columns in self.source.rows():
            session_hint, link = (columns[1], columns[3]) if columns is not None else _hints(text)
            expected = self.next_seq
            self.next_seq = expected + 1
            if expected == first:
                result.first_seq, result.first_hash = expected, link
            prev, self.prev = self.prev, link
            anchors = self.anchors.pop(expected, ()) if self.anchors else ()
            if parts == 1 or _owner(session_hint, parts) == part:
                self._take(
                    expected, text, columns=columns, session_hint=session_hint, prev=prev, anchors=anchors
                )
        result.events = self.next_seq - first
        self._finish()
        found = {key for key, value in self.checklists.items() if not isinstance(value, str)}
        return _Part(result, self.cross_checked, found)

    def _take(
        self,
        expected: int,
        text: Any,
        *,
        columns: tuple[Any, ...] | None,
        session_hint: Any,
        prev: str | None,
        anchors: Iterable[Anchor],
    ) -> None:
        """Every check of one event of this process's sessions; ``prev`` is the link before it."""
        try:
            event = _parse(text)
        except (TypeError, ValueError):
            event = None
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
            try:  # noqa: SIM105 — contextlib.suppress would cost an object per event
                self._follow(event, expected)
            except (KeyError, TypeError, AttributeError, IndexError):
                pass  # not the schema's shape after all: the schema check has reported it

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

    # --- sessions ---

    def _follow(self, event: dict[str, Any], seq: int) -> None:
        session, kind, data = event["session"], event["type"], event["data"]
        trail = self.trails.get(session)
        if kind == "session-started":
            if trail is not None:
                self.note(seq, session, "started a second time")
                return
            self.trails[session] = _Trail(self._plan(data, seq, session), "open")
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
            trail.status, trail.completion = "completed", event["hash"]
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
                    data["status"],
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
            self.result.amendments += 1
            self.pending.setdefault(data["corrects"], []).append((seq, session, item))

    def _signature(self, trail: _Trail, event: dict[str, Any], seq: int, session: str) -> None:
        data = event["data"]
        if trail.status != "completed" or trail.completion is None:
            self.note(seq, session, f"signature on a session that is {trail.status}, not completed")
        elif data["signs"] != trail.completion:
            self.note(seq, session, "signature does not sign this session's completion")
        registered = self.keys.get(data["key"])
        if registered is None:
            self.note(seq, session, f"signed with key {data['key'][:12]}…, which is not registered")
            return
        clinician, public_key = registered
        if clinician != event["actor"]:
            self.note(seq, session, f"signed by {event['actor']} with a key registered to {clinician}")
        payload = _payload(data["signs"], data["name"], data["meaning"], event["at"])
        if signature_holds(public_key, data["signature"], payload):
            self.result.signatures += 1
        else:
            self.note(seq, session, "signature does not verify with the registered key")

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
                    self.result.checklists += 1
        return self.checklists[key]

    # --- after the pass ---

    def _finish(self) -> None:
        result = self.result
        if result.events:
            result.last_seq, result.head = self.next_seq - 1, self.prev
        if self.part == 0:
            for seq in sorted(self.anchors):
                for anchor in self.anchors[seq]:
                    self.note(seq, None, f"{anchor.source} recorded an event at seq {seq}, but the chain "
                              f"ends at {result.last_seq or 0}: events were cut off the end")  # fmt: skip
        self._check_amendments()
        for trail in self.trails.values():
            result.sessions[trail.status] = result.sessions.get(trail.status, 0) + 1
        for session in sorted(self.source.selected or ()):
            if _owner(session, self.parts) != self.part:
                continue
            selected = self.trails.get(session)
            if selected is None or selected.status == "partial":
                self.note(
                    None, session, "selected in the manifest, but its session-started is not in the bundle"
                )

    def _check_amendments(self) -> None:
        """Amendments point at earlier answers; looked up after the pass, as they are rare."""
        if not self.pending:
            return
        found = {event.get("hash"): event for event in self.source.lookup(set(self.pending))}
        for corrects, amendments in self.pending.items():
            target = found.get(corrects)
            for seq, session, item in amendments:
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


def verify(source: Source, anchors: Iterable[Anchor] = (), workers: int | None = None) -> Verification:
    """Check everything about ``source``; never raises for what it finds, only reports it.

    ``workers`` processes share the pass (default: one per CPU, at most
    ``MAX_WORKERS``); this process takes the first share itself.
    """
    anchors = tuple(anchors)
    keys, key_findings = _registered_keys(source)
    parts = max(1, min(workers or os.cpu_count() or 1, MAX_WORKERS))
    if parts == 1:
        found = [_Verifier(source, anchors, keys).run()]
    else:
        pool = ProcessPoolExecutor(max_workers=parts - 1)
        try:
            others = [pool.submit(_run_part, source, anchors, keys, k, parts) for k in range(1, parts)]
            found = [_Verifier(source, anchors, keys, 0, parts).run(), *(o.result() for o in others)]
        finally:
            pool.shutdown(cancel_futures=True)
    result = _merged(found, key_findings, len(keys))
    after = list(source.after(result))
    _keep(result, after)
    return result


def _run_part(
    source: Source, anchors: tuple[Anchor, ...], keys: dict[str, tuple[str, bytes]], part: int, parts: int
) -> _Part:
    try:
        return _Verifier(source, anchors, keys, part, parts).run()
    finally:
        source.close()


def _registered_keys(source: Source) -> tuple[dict[str, tuple[str, bytes]], list[Finding]]:
    """The usable keys by id, as (clinician, raw public key); and what is wrong with the others."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keys: dict[str, tuple[str, bytes]] = {}
    findings = []
    for key in source.public_keys():
        if key_id(key.public_key) != key.key_id:
            findings.append(
                Finding(None, None, f"registered key {key.key_id[:12]}… is not the sha256 of its public key")
            )
            continue
        try:
            Ed25519PublicKey.from_public_bytes(key.public_key)
        except ValueError:
            findings.append(
                Finding(None, None, f"registered key {key.key_id[:12]}… is not an Ed25519 public key")
            )
            continue
        keys[key.key_id] = (key.clinician, key.public_key)
    return keys, findings


def _merged(parts: list[_Part], key_findings: list[Finding], keys: int) -> Verification:
    """One verification from its parts: every part saw every row, each checked its own sessions."""
    first = parts[0].result
    result = Verification(
        first.source,
        events=first.events,
        first_seq=first.first_seq,
        last_seq=first.last_seq,
        head=first.head,
        first_hash=first.first_hash,
        anchors=first.anchors,
        keys=keys,
        checklists=len(set().union(*(part.checklists for part in parts))),
        schema_cross_checked=len(set().union(*(part.cross_checked for part in parts))),
    )
    findings = key_findings + [finding for part in parts for finding in part.result.findings]
    findings.sort(key=lambda f: (f.seq is None, f.seq or 0))
    _keep(result, findings)
    for part in parts:
        result.more_findings += part.result.more_findings
        result.signatures += part.result.signatures
        result.amendments += part.result.amendments
        for status, count in part.result.sessions.items():
            result.sessions[status] = result.sessions.get(status, 0) + count
    return result


def _keep(result: Verification, findings: list[Finding]) -> None:
    room = max(0, MAX_FINDINGS - len(result.findings))
    result.findings += findings[:room]
    result.more_findings += len(findings) - len(findings[:room])


# --- the store as a source ----------------------------------------------------------


class StoreSource:
    """A store file, read through a read-only connection, row by row in ``seq`` order.

    Rows are read raw rather than through ``Store.events()``: that parses every
    event into models (slower) and stops at the first row it cannot parse,
    where an audit must report the row and go on.
    """

    first_seq = 1
    first_prev = GENESIS
    selected: frozenset[str] | None = None

    def __init__(self, path: Path, catalog: Catalog | None = None):
        from cdss.store.sqlite import open_read_only

        self.path = path
        self.name = f"store {path}"
        self._catalog = catalog
        self.db = open_read_only(path)

    def close(self) -> None:
        self.db.close()

    def __reduce__(self) -> tuple[type[StoreSource], tuple[Path, Catalog | None]]:
        return StoreSource, (self.path, self._catalog)

    def rows(self) -> Iterator[Row]:
        from cdss.store.sqlite import _translated

        with _translated(self.path):
            cursor = self.db.execute("SELECT seq, session, type, hash, event FROM events ORDER BY seq")
            for row in cursor:
                yield row[0], row[4], row

    def lookup(self, hashes: set[str]) -> Iterator[dict[str, Any]]:
        wanted = sorted(hashes)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for (text,) in self.db.execute(f"SELECT event FROM events WHERE hash IN ({marks})", chunk):
                try:
                    event = json.loads(text)
                except (TypeError, ValueError):
                    continue
                if isinstance(event, dict):
                    yield event

    def public_keys(self) -> list[RegisteredKey]:
        rows = self.db.execute("SELECT key_id, clinician, public_key, registered_at FROM keys ORDER BY rowid")
        return [RegisteredKey(str(k), str(c), bytes(p), str(at)) for k, c, p, at in rows]

    def head(self) -> tuple[int, str, str]:
        """The last event's seq, hash and time, straight from the file."""
        row = self.db.execute("SELECT seq, hash, event FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return 0, GENESIS, ""
        try:
            at = str(json.loads(row[2]).get("at", ""))
        except (TypeError, ValueError, AttributeError):
            at = ""
        return int(row[0]), str(row[1]), at

    def after(self, result: Verification) -> Iterable[Finding]:
        return ()

    def checklist(self, checklist_id: str, version: str) -> Checklist:
        if self._catalog is None:
            raise NotFound(f"no catalog to find {checklist_id}@{version} in")
        return self._catalog.load(f"{checklist_id}@{version}")
