"""What a verification says: each broken place (a ``Finding``) and what was checked.

Checking never prints; these values are what the CLI renders, as text
(``seq N · session ID: what is wrong``, the form docs/bundle-format.md
documents) or as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_FINDINGS = 10_000
"""Findings kept in full; beyond this they are counted, so a wrecked store cannot exhaust memory."""


@dataclass(frozen=True)
class Finding:
    """One broken place: where (seq and session when known) and what is wrong."""

    seq: int | None
    session: str | None
    problem: str

    def __str__(self) -> str:
        where = [f"seq {self.seq}"] if self.seq is not None else []
        if self.session:
            where.append(f"session {self.session}")
        return f"{' · '.join(where) or 'records'}: {self.problem}"

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "session": self.session, "problem": self.problem}


@dataclass(frozen=True)
class Anchor:
    """An event the chain must still contain: ``hash`` at ``seq``, as recorded by ``source``.

    What an anchor outside the verified range means (a cut-off tail, or an
    older or partial bundle) is decided in ``cdss.audit.against``.
    """

    seq: int
    hash: str
    source: str


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
    amended_after_signing: int = 0
    """Sessions amended after they were signed: allowed, and the signature covers the record as completed."""
    schema_cross_checked: int = 0
    anchors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the source adds to the summary (a bundle's files, a store's physical check)."""
    registered: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Every key the chain registered (and any listed before its range): key id -> (clinician, seq)."""
    pinned: set[tuple[str, str]] = field(default_factory=set)
    """Every checklist (id, version) a session in the range was pinned to, found or not."""

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
            "against schemas/event.schema.json",
            f"sessions: {sum(self.sessions.values())} ({sessions}); event order, applicable items, "
            f"amendments ({self.amendments}) and completion checked",
            f"checklist versions: {self.checklists} found with their pinned content hashes",
            f"signatures: {self.signatures} verified against {self.keys} registered key(s)",
        ]
        if self.amended_after_signing:
            lines.append(f"{self.amended_after_signing} signed session(s) amended afterwards: each signature "
                         "covers its record as completed, not the later amendments")  # fmt: skip
        lines += self.notes
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
            "amended_after_signing": self.amended_after_signing,
            "schema_cross_checked": self.schema_cross_checked,
            "anchors": self.anchors,
            "notes": self.notes,
            "findings": [f.to_json() for f in self.findings],
            "more_findings": self.more_findings,
        }

    def keep(self, findings: list[Finding]) -> None:
        """Add findings, keeping at most ``MAX_FINDINGS`` in full and counting the rest."""
        room = max(0, MAX_FINDINGS - len(self.findings))
        self.findings += findings[:room]
        self.more_findings += len(findings) - len(findings[:room])
