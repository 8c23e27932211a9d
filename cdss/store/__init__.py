"""Where events live: the small contract any store keeps, and what it returns.

cdss ships one implementation, the embedded SQLite file (``cdss.store.sqlite``).
A clinic whose workstations share records plugs in a real database server by
implementing ``Store``; sessions, audit and the terminal only use this
protocol, so they never know which store they write to.

The contract a store must keep, beyond the method signatures:

- one chain per store: ``append`` reads the head and inserts in the same
  exclusive transaction, so two writers can never give two events one ``seq``;
- append-only: events and registered keys are never updated or deleted;
- ``append`` is all or nothing, and an event is durable once it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from cdss.events import Draft, Event

DraftSource = Draft | Callable[[Event | None], Draft]
"""A draft, or a function that builds one from the event sealed just before it.

The function form lets a caller write a signature over a completion event's
hash in the same transaction as the completion itself. It receives ``None``
only when it is the first thing ever written to an empty store.
"""

REQUIRE_SIGNATURES = "require-signatures"
"""Setting: when on, a session completes only together with a signature."""

_TRUE = frozenset({"1", "on", "true", "yes"})


def is_on(value: str | None) -> bool:
    """How a yes/no setting reads: ``on``, ``true``, ``yes`` or ``1``."""
    return value is not None and value.strip().lower() in _TRUE


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


def key_id(public_key: bytes) -> str:
    """A signing key's id: sha256 (hex) of its raw Ed25519 public key, as signatures name it."""
    import hashlib

    return hashlib.sha256(public_key).hexdigest()


def signature_holds(public_key: bytes, signature: str, payload: bytes) -> bool:
    """Whether ``signature`` (base64) is an Ed25519 signature of ``payload`` by the raw ``public_key``.

    The one check of a signature in cdss: when a completion is signed, when a
    store or bundle is verified, and when a signed checkpoint is read.
    """
    import base64

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = Ed25519PublicKey.from_public_bytes(public_key)
        key.verify(base64.b64decode(signature, validate=True), payload)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


StoredRow = tuple[Any, Any, Any, Any, Any]
"""One event as the store holds it, unparsed: (seq, session, type, hash, canonical text).

Audits read these rather than parsed events: a damaged row must be reported
and the reading go on, and the stored text is what the hash covers.
"""


@dataclass(frozen=True)
class RegisteredKey:
    """A clinician's Ed25519 public key; ``key_id`` is the sha256 (hex) of its raw bytes."""

    key_id: str
    clinician: str
    public_key: bytes
    registered_at: str


class Store(Protocol):
    """What sessions, audit and the terminal need from a store of events."""

    def append(self, *drafts: DraftSource) -> list[Event]:
        """Seal and commit drafts in order, atomically; return the sealed events."""
        ...

    def events(self, session: str | None = None) -> Iterator[Event]:
        """Events in ``seq`` order, one at a time (a store may hold millions)."""
        ...

    def stored(self, session: str | None = None, *, after: int = 0) -> Iterator[StoredRow]:
        """Events after ``seq`` ``after`` as stored, unparsed, in ``seq`` order (for audits)."""
        ...

    def head(self) -> tuple[int, str]:
        """The last ``seq`` and hash; ``(0, GENESIS)`` for an empty store."""
        ...

    def sessions(self) -> list[SessionRow]:
        """Every session, oldest first."""
        ...

    def setting(self, name: str) -> str | None: ...

    def set_setting(self, name: str, value: str) -> None: ...

    def register_key(self, key_id: str, clinician: str, public_key: bytes) -> None:
        """Add a public key; registering the same key for the same clinician again is a no-op."""
        ...

    def public_keys(self) -> list[RegisteredKey]: ...

    def close(self) -> None: ...
