"""The completion record: a session's events, read as what was done, by whom and when.

It is computed from the events every time (``Session.record()``), never
stored, so it cannot drift from them. It holds completion only: statuses,
coded reasons, times and corrections — never a clinical finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cdss.checklist import Checklist
from cdss.events import STATUSES, Status
from cdss.plan import PlannedItem, RunContext

SessionStatus = Literal["open", "completed", "abandoned"]


@dataclass(frozen=True)
class Answer:
    """One recorded answer to an item: the first, or an amendment of an earlier one."""

    status: Status
    reason: str | None
    reason_text: str | None
    at: str
    actor: str
    event: str
    """The hash of the event that recorded it."""
    corrects: str | None = None
    explanation: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "amended" if self.corrects else "answered",
            "status": self.status,
            "reason": self.reason,
            "reason_text": self.reason_text,
            "at": self.at,
            "actor": self.actor,
            "event": self.event,
            "corrects": self.corrects,
            "explanation": self.explanation,
        }


@dataclass(frozen=True)
class RecordItem:
    """An applicable item as it stands now, with every answer it was given."""

    planned: PlannedItem
    history: tuple[Answer, ...]

    @property
    def id(self) -> str:
        return self.planned.item.id

    @property
    def current(self) -> Answer | None:
        return self.history[-1] if self.history else None

    @property
    def status(self) -> Status | None:
        """None while unanswered."""
        return self.current.status if self.current else None

    def to_json(self) -> dict[str, Any]:
        current = self.current
        return {
            **self.planned.to_json(),
            "status": current.status if current else None,
            "reason": current.reason if current else None,
            "reason_text": current.reason_text if current else None,
            "at": current.at if current else None,
            "actor": current.actor if current else None,
            "amended": len(self.history) > 1,
            "history": [a.to_json() for a in self.history],
        }


@dataclass(frozen=True)
class Signature:
    """The manifestation of an electronic signature: who, what it means, when."""

    name: str
    meaning: str
    at: str
    actor: str
    key: str
    signs: str

    def to_json(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ("name", "meaning", "at", "actor", "key", "signs")}


@dataclass(frozen=True)
class Record:
    """The completion record of one session, computed from its events."""

    session: str
    checklist: Checklist
    checklist_hash: str
    subject: str
    clinician: str
    context: RunContext
    status: SessionStatus
    started_at: str
    ended_at: str | None
    abandon_reason: str | None
    items: tuple[RecordItem, ...]
    signatures: tuple[Signature, ...]

    def counts(self) -> dict[str, int]:
        """Items by status; ``unanswered`` counts the applicable items not yet answered."""
        counts = dict.fromkeys((*STATUSES, "unanswered"), 0)
        for item in self.items:
            counts[item.status or "unanswered"] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "status": self.status,
            "checklist": {
                "id": self.checklist.id,
                "version": self.checklist.version,
                "hash": self.checklist_hash,
                "title": self.checklist.title,
            },
            "subject": self.subject,
            "clinician": self.clinician,
            "context": self.context.to_json(),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "abandon_reason": self.abandon_reason,
            "counts": self.counts(),
            "items": [i.to_json() for i in self.items],
            "signatures": [s.to_json() for s in self.signatures],
        }
