"""Where events live: the contract every store keeps, and what it returns.

cdss ships two implementations: the embedded SQLite file (``cdss.store.sqlite``)
and a PostgreSQL server for clinics (``cdss.store.postgres``). Sessions, keys,
settings, the walk and every audit command use only this contract; nothing
outside ``cdss/store/`` names a table or speaks SQL.

What a store guarantees, beyond the method signatures:

- One chain per store. ``append`` takes the store's write lock, reads the head,
  runs ``check`` on what is stored, seals and inserts, and commits — all in one
  transaction. Two writers can never give two events one ``seq``, and what
  ``check`` saw is still what is stored when the events are written: a write
  counts as allowed only on the events it is written after, and the write
  transaction itself confirms that those are the stored ones. A copy in some
  process's memory decides nothing the store has not confirmed is current.
- All or nothing: ``check`` raising, a draft failing, or a crash writes nothing.
- Acknowledged means durable: when ``append`` returns, the events survive a
  power cut (SQLite: WAL with ``synchronous=FULL``; PostgreSQL: after COMMIT).
- Append-only: no event is ever updated or deleted, by cdss or through the store.
- Keys and settings are events (``key-registered``, ``key-retired``,
  ``setting-changed``); ``keys()`` and ``setting()`` are derived from them.
  ``append`` refuses a store event that breaks the rules of
  ``cdss.store.ledger.refusal`` (who may register, retire and change what).
- ``sessions()`` is derived from the events themselves, never from an index
  alone, so a damaged index cannot make a listing disagree with an audit.
- ``integrity()`` names physical damage (pages, indexes) the chain cannot see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from cdss.events import Draft, Event
from cdss.signing import key_id, signature_holds

__all__ = [
    "DEFAULTS",
    "REQUIRE_SIGNATURES",
    "SUBJECT_PATTERN",
    "Check",
    "DraftSource",
    "Reads",
    "RegisteredKey",
    "SessionRow",
    "Store",
    "StoreView",
    "StoredRow",
    "is_on",
    "key_id",
    "signature_holds",
]

DraftSource = Draft | Callable[[Event | None], Draft]
"""A draft, or a function that builds one from the event sealed just before it.

The function form lets a caller sign inside the transaction: a signature over
a completion event's hash, or an endorsement over the event's own ``seq`` and
``prev``. It receives ``None`` only when it is the first thing ever written to
an empty store.
"""

REQUIRE_SIGNATURES = "require-signatures"
"""Setting: when on, a session completes only together with a signature."""
SUBJECT_PATTERN = "subject-pattern"
"""Setting: the pattern (ECMA-262, whole string) a subject reference must match."""
MIGRATION_ACTOR = "cdss-migration"
"""The actor of the key events a migration wrote for keys kept outside the chain before format 2."""


def _defaults() -> dict[str, str]:
    from cdss.subject import DEFAULT_PATTERN

    return {REQUIRE_SIGNATURES: "off", SUBJECT_PATTERN: DEFAULT_PATTERN}


DEFAULTS = _defaults()
"""What ``setting`` returns for a setting that was never changed."""

_TRUE = frozenset({"1", "on", "true", "yes"})


def is_on(value: str | None) -> bool:
    """How a yes/no setting reads: ``on``, ``true``, ``yes`` or ``1``."""
    return value is not None and value.strip().lower() in _TRUE


StoredRow = tuple[Any, Any, Any, Any, Any]
"""One event as the store holds it, unparsed: (seq, session, type, hash, canonical text).

Audits read these rather than parsed events: a damaged row must be reported
and the reading go on, and the stored text is what the hash covers. A store
event's session is None.
"""


@dataclass(frozen=True)
class SessionRow:
    """One line of ``cdss sessions``: enough to find a session, nothing clinical."""

    id: str
    checklist: str
    version: str
    subject: str
    clinician: str
    status: str
    """``open``, ``completed`` or ``abandoned``."""
    started_at: str
    last_at: str

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "status": self.status,
            "checklist": self.checklist,
            "version": self.version,
            "subject": self.subject,
            "clinician": self.clinician,
            "started_at": self.started_at,
            "last_at": self.last_at,
        }


@dataclass(frozen=True)
class RegisteredKey:
    """A clinician's Ed25519 public key as the store's key events describe it, with its history."""

    key_id: str
    clinician: str
    public_key: bytes
    registered_at: str
    name: str = ""
    administrator: bool = False
    seq: int = 0
    """The ``seq`` of its ``key-registered`` event."""
    endorsed_by: str | None = None
    retired_at: str | None = None
    retired_seq: int | None = None
    retired_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.retired_seq is None

    def to_json(self) -> dict[str, Any]:
        from cdss.signing import public_key_text

        return {
            "key_id": self.key_id,
            "clinician": self.clinician,
            "name": self.name,
            "public_key": public_key_text(self.public_key),
            "administrator": self.administrator,
            "registered_at": self.registered_at,
            "seq": self.seq,
            "endorsed_by": self.endorsed_by,
            "active": self.active,
            "retired_at": self.retired_at,
            "retired_seq": self.retired_seq,
            "retired_reason": self.retired_reason,
        }


class StoreView(Protocol):
    """The read side of a store; ``append`` hands one to ``check`` inside its transaction."""

    def events(self, session: str | None = None, *, after: int = 0) -> Iterator[Event]:
        """Events after ``seq`` ``after``, in ``seq`` order, one at a time (a store may hold millions)."""
        ...

    def head(self) -> tuple[int, str]:
        """The last ``seq`` and hash; ``(0, GENESIS)`` for an empty store."""
        ...

    def keys(self) -> list[RegisteredKey]:
        """Every key ever registered, in registration order, with retirements (from the key events)."""
        ...

    def setting(self, name: str) -> str:
        """The value of the last ``setting-changed`` for ``name``; ``DEFAULTS[name]`` when never set."""
        ...


Check = Callable[[StoreView], None]
"""Runs on what is stored when ``append`` writes; raises a ``CdssError`` to refuse.

A store may run it more than once in one ``append`` (PostgreSQL first runs it
on the state its last append left and, if the chain has moved since, again
under the lock); only a run on the state the events are written after counts,
so a check must give the same answer whenever it runs on the same state.
"""


@dataclass(frozen=True)
class Reads:
    """What a ``check`` will read of one session: its events after ``seq`` ``after``.

    Declaring it lets a store on a server fetch those events together with the
    lock and the head, in one round trip instead of three, or skip the fetch
    when its own last append ended at or before ``after``. It changes nothing
    that ``check`` sees, and a read the declaration does not cover goes to the
    store as usual.
    """

    session: str
    after: int = 0


class Store(StoreView, Protocol):
    """What sessions, keys, the walk and the audit need from a store of events."""

    def append(
        self, *drafts: DraftSource, check: Check | None = None, reads: Reads | None = None
    ) -> list[Event]:
        """One transaction: take the write lock, read the head, run ``check`` on what is stored
        (it raises a ``CdssError`` to refuse; nothing is written), seal, insert, commit.

        ``reads`` declares which of one session's events ``check`` will read
        (an optimisation for stores on a server; see ``Reads``).

        Acknowledged (durable) when it returns. Store events are also held to
        ``cdss.store.ledger.refusal``.
        """
        ...

    def stored(self, session: str | None = None, *, after: int = 0) -> Iterator[StoredRow]:
        """Events after ``seq`` ``after`` as stored, unparsed, in ``seq`` order (for audits)."""
        ...

    def sessions(self) -> list[SessionRow]:
        """Every session, oldest first, derived from the events (never from an index alone)."""
        ...

    def integrity(self, *, thorough: bool = True) -> list[str]:
        """Physical damage found (pages, indexes that disagree with the table); empty when none.

        Not ``thorough``: only what is quick enough to check before every write.
        """
        ...

    def close(self) -> None: ...
