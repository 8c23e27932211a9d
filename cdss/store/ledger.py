"""Keys and settings, read from the store's own events, and the rules a store event must keep.

Every store implementation folds its ``key-registered``, ``key-retired`` and
``setting-changed`` events through ``Ledger`` and asks ``Ledger.refusal``
before writing a new one, inside the write transaction; ``cdss audit verify``
replays the same rules over the chain. The rules (docs/record-events.md):

- a clinician's first key needs no endorsement; a key for a clinician who
  already has an active one must be endorsed by that key (rotation) or by an
  active administrator's key;
- the first administrator key in a store with none is accepted; later ones
  need an administrator's endorsement;
- a key is retired by itself or by an administrator;
- once the store has an administrator, every setting change needs an
  administrator's endorsement;
- an endorsement is an Ed25519 signature by ``endorsed_by`` over
  ``cdss.signing.endorsement_payload`` of the event (which covers its ``seq``
  and ``prev``, so it cannot be replayed elsewhere in the chain).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from cdss.errors import NotAllowed
from cdss.events import STORE_TYPES, Draft, Event, draft_body
from cdss.signing import endorsement_payload, key_id, signature_holds
from cdss.store import DEFAULTS, REQUIRE_SIGNATURES, SUBJECT_PATTERN, RegisteredKey

_ON_OFF = frozenset({"on", "off"})


class Ledger:
    """The keys and settings in force after some events, in chain order."""

    def __init__(self) -> None:
        self.keys: dict[str, RegisteredKey] = {}
        self.settings: dict[str, str] = {}

    @classmethod
    def of(cls, events: Iterable[dict[str, Any]]) -> Ledger:
        ledger = cls()
        for event in events:
            ledger.apply(event)
        return ledger

    # --- reading ---

    def active(self, clinician: str | None = None) -> list[RegisteredKey]:
        return [k for k in self.keys.values() if k.active and (clinician is None or k.clinician == clinician)]

    def has_administrator(self) -> bool:
        return any(k.administrator for k in self.active())

    def setting(self, name: str) -> str:
        return self.settings.get(name, DEFAULTS.get(name, ""))

    # --- folding ---

    def apply(self, event: dict[str, Any]) -> None:
        """Take one event (JSON) into account; events other than store events are ignored."""
        kind, data = event.get("type"), event.get("data", {})
        if kind == "key-registered":
            public = public_key(data["public_key"]) or b""
            self.keys[data["key_id"]] = RegisteredKey(
                key_id=data["key_id"],
                clinician=data["clinician"],
                public_key=public,
                registered_at=event["at"],
                name=data["name"],
                administrator=bool(data["administrator"]),
                seq=event["seq"],
                endorsed_by=data["endorsed_by"],
            )
        elif kind == "key-retired":
            found = self.keys.get(data["key_id"])
            if found is not None and found.active:
                self.keys[found.key_id] = replace(
                    found, retired_at=event["at"], retired_seq=event["seq"], retired_reason=data["reason"]
                )
        elif kind == "setting-changed":
            self.settings[data["name"]] = data["value"]

    # --- the rules ---

    def refusal(self, body: dict[str, Any]) -> str | None:
        """Why the store event ``body`` (without its hash) may not follow these events, or None."""
        kind, data = body.get("type"), body.get("data", {})
        if kind == "key-registered":
            return self._registration(body, data)
        if kind == "key-retired":
            return self._retirement(body, data)
        if kind == "setting-changed":
            return self._setting(body, data)
        return None

    def _endorsement(
        self, body: dict[str, Any], data: dict[str, Any]
    ) -> tuple[RegisteredKey | None, str | None]:
        """The active key that endorsed the event, or why the endorsement does not hold."""
        endorser, signature = data.get("endorsed_by"), data.get("endorsement")
        if endorser is None and signature is None:
            return None, None
        if endorser is None or signature is None:
            return None, "endorsed_by and endorsement go together"
        found = self.keys.get(endorser)
        if found is None or not found.active:
            return None, f"the endorsing key {endorser[:12]}… is not an active key of this store"
        if not signature_holds(found.public_key, signature, endorsement_payload(body)):
            return None, f"the endorsement by {found.clinician}'s key {endorser[:12]}… does not verify"
        return found, None

    def _registration(self, body: dict[str, Any], data: dict[str, Any]) -> str | None:
        clinician, new = data["clinician"], data["key_id"]
        public = public_key(data["public_key"])
        if public is None or key_id(public) != new:
            return f"key id {new[:12]}… is not the sha256 of an Ed25519 public key given with it"
        if new in self.keys:
            return f"key {new[:12]}… is already registered (to {self.keys[new].clinician})"
        endorser, problem = self._endorsement(body, data)
        if problem:
            return problem
        by_admin = endorser is not None and endorser.administrator
        if data["administrator"] and self.has_administrator() and not by_admin:
            return (
                "this store has an administrator: another administrator key needs an administrator's "
                "endorsement (`cdss keys register --administrator --endorse-with ADMIN`)"
            )
        current = self.active(clinician)
        if current and not by_admin and (endorser is None or endorser.clinician != clinician):
            return (
                f"{clinician} already has an active key ({current[0].key_id[:12]}…); a new key must be "
                f"endorsed by it (`cdss keys init --rotate`) or by an administrator's key"
            )
        return None

    def _retirement(self, body: dict[str, Any], data: dict[str, Any]) -> str | None:
        found = self.keys.get(data["key_id"])
        if found is None or found.clinician != data["clinician"]:
            return f"{data['clinician']} has no registered key {data['key_id'][:12]}…"
        if not found.active:
            return f"key {found.key_id[:12]}… was already retired at {found.retired_at}"
        endorser, problem = self._endorsement(body, data)
        if problem:
            return problem
        if endorser is None or (endorser.key_id != found.key_id and not endorser.administrator):
            return "a key is retired with that key itself or an administrator's key"
        return None

    def _setting(self, body: dict[str, Any], data: dict[str, Any]) -> str | None:
        name, value = data["name"], data["value"]
        if name == REQUIRE_SIGNATURES and value not in _ON_OFF:
            return f"{REQUIRE_SIGNATURES} is on or off, not {value!r}"
        if name == SUBJECT_PATTERN:
            from cdss.subject import pattern_problem

            problem = pattern_problem(value)
            if problem:
                return problem
        endorser, problem = self._endorsement(body, data)
        if problem:
            return problem
        if self.has_administrator() and (endorser is None or not endorser.administrator):
            return (
                "this store has an administrator: changing a setting needs an administrator's "
                "endorsement (--endorse-with ADMIN)"
            )
        return None


def public_key(text: Any) -> bytes | None:
    """A raw Ed25519 public key from its base64 text, or None when it is not one."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        return None
    return raw if len(raw) == 32 else None


class Admission:
    """The rules applied to the drafts of one ``append``, inside its transaction.

    Every store implementation uses it the same way: ``admit`` each draft
    before it is sealed, ``sealed`` each event after, so a rotation (a
    registration and a retirement in one transaction) is judged in order.
    The store's events are read only when a store event is appended.
    """

    def __init__(self, store_events: Callable[[], Iterable[dict[str, Any]]]):
        self._store_events = store_events
        self._ledger: Ledger | None = None

    def admit(self, draft: Draft, seq: int, prev: str) -> None:
        if draft.type not in STORE_TYPES:
            return
        if self._ledger is None:
            self._ledger = Ledger.of(self._store_events())
        refused = self._ledger.refusal(draft_body(draft, seq, prev))
        if refused:
            raise NotAllowed(f"{refused}; nothing was recorded")

    def sealed(self, event: Event) -> None:
        if self._ledger is not None and event.type in STORE_TYPES:
            self._ledger.apply(event.to_json())
