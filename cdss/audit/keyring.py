"""Keys and settings, replayed from the chain: was each signature made with a properly registered key?

Key registrations, retirements and setting changes are events in the chain
(``docs/record-events.md``). Verification folds them, in chain order, through
the same ``Ledger`` the stores use to refuse a bad one when it is written
(``cdss.store.ledger``), so the rules are stated once:

- K1 every store event keeps the ledger's rules at its place in the chain
  (who may register, rotate, retire, change a setting; endorsements verify);
- K2 a signature's key was registered (K1) before the signature, and not
  retired before it. A key that only a migration of an older store put in the
  chain (actor ``cdss-migration``) vouches for the signatures before it: they
  were made when keys lived outside the chain;
- K3 while ``require-signatures`` is on, every completion is signed;
- K4 with ``--trusted-keys``, every endorsement is by a trusted key.

Every process of a split verification folds every store event (they are few),
so each can judge its own sessions' signatures; only process 0 reports K1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cdss.store import MIGRATION_ACTOR, REQUIRE_SIGNATURES, is_on, signature_holds
from cdss.store.ledger import Ledger, public_key

if TYPE_CHECKING:
    from cdss.audit.rules import Note
    from cdss.audit.trust import TrustedKeys
    from cdss.store import RegisteredKey

SETTING_NOTES = 20
"""Setting changes listed in the summary, at most."""


@dataclass(frozen=True)
class KeyUse:
    """A signature waiting for its key to be judged: where, by whom, and what it signed."""

    seq: int
    session: str
    actor: str
    signature: str
    payload: bytes


class Keyring:
    """The ledger at the current place in the chain, and what each key's registration was worth."""

    def __init__(self, note: Note, *, reports: bool, trusted: TrustedKeys | None = None):
        self.ledger = Ledger()
        self.note, self.reports, self.trusted = note, reports, trusted
        self.improper: dict[str, str] = {}
        """Key id -> why its registration broke the rules."""
        self.unknown: dict[str, list[KeyUse]] = {}
        """Signatures whose key was not (yet) registered where they stand."""
        self.setting_notes: list[str] = []
        self.late_signatures = 0
        """Signatures that verified once a migration registered their key."""

    def seed(self, keys: list[RegisteredKey]) -> None:
        """Keys registered before a bundle's range, as its ``keys.json`` lists them (not chain-checked)."""
        for key in keys:
            self.ledger.keys[key.key_id] = key

    def take(self, event: dict[str, Any], seq: int) -> None:
        """One schema-valid store event: K1, then folded into the ledger."""
        body = {k: v for k, v in event.items() if k != "hash"}
        problem = self.ledger.refusal(body)
        data = event["data"]
        if problem:
            if event["type"] == "key-registered":
                self.improper[data["key_id"]] = f"seq {seq}: {problem}"
            if self.reports:
                self.note(seq, None, f"{event['type']} breaks the key and setting rules: {problem}")
        if self.reports and self.trusted is not None and data.get("endorsed_by"):
            endorser = self.ledger.keys.get(data["endorsed_by"])
            clinician = endorser.clinician if endorser is not None else "?"
            outside = self.trusted.problem(data["endorsed_by"], clinician, f"{event['type']} endorsed")
            if outside:
                self.note(seq, None, outside)
        if event["type"] == "key-registered" and event["actor"] == MIGRATION_ACTOR:
            self._vouch(data, self.unknown.pop(data["key_id"], []))
        elif event["type"] == "key-registered" and data["key_id"] in self.unknown:
            for use in self.unknown.pop(data["key_id"]):
                self.note(use.seq, use.session, f"signed with key {data['key_id'][:12]}…, which was "
                          f"registered only at seq {seq}, after it signed")  # fmt: skip
        if event["type"] == "setting-changed" and self.reports and len(self.setting_notes) < SETTING_NOTES:
            self.setting_notes.append(
                f"setting {data['name']} = {data['value']!r} at seq {seq} by {event['actor']}"
            )
        self.ledger.apply(event)

    def _vouch(self, data: dict[str, Any], uses: list[KeyUse]) -> None:
        """K2 for signatures made before keys were in the chain: checked now that the key is known."""
        raw = public_key(data["public_key"])
        for use in uses:
            if self.holds(data["clinician"], raw, use):
                self.late_signatures += 1

    def holds(self, clinician: str, raw: bytes | None, use: KeyUse) -> bool:
        """Whether ``use`` verifies with the key registered to ``clinician``; what does not is noted."""
        if clinician != use.actor:
            self.note(use.seq, use.session, f"signed by {use.actor} with a key registered to {clinician}")
        if raw is not None and signature_holds(raw, use.signature, use.payload):
            return True
        self.note(use.seq, use.session, "signature does not verify with the registered key")
        return False

    def key_for(self, key: str, use: KeyUse) -> RegisteredKey | None:
        """K2 for one signature: the key to check it with, or None (reported, or judged later)."""
        seq, session = use.seq, use.session
        found = self.ledger.keys.get(key)
        if found is None:
            self.unknown.setdefault(key, []).append(use)
            return None
        if found.retired_seq is not None and found.retired_seq < seq:
            self.note(
                seq, session, f"signed with key {key[:12]}… after it was retired at seq {found.retired_seq}"
            )
        if key in self.improper:
            self.note(seq, session, f"signed with key {key[:12]}…, which was not properly registered "
                      f"({self.improper[key]})")  # fmt: skip
        return found

    def signatures_required(self) -> bool:
        """K3 reads the setting as a session does when it completes (``is_on``)."""
        return is_on(self.ledger.setting(REQUIRE_SIGNATURES))

    def finish(self) -> None:
        """Signatures whose key never appeared in the chain."""
        for key, uses in self.unknown.items():
            for use in uses:
                self.note(use.seq, use.session, f"signed with key {key[:12]}…, which is not registered")
