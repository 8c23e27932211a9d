"""Trusted keys: public keys the auditor obtained independently of the records (``--trusted-keys FILE``).

A store's (or a bundle's) own key registrations say which keys it accepted;
whoever can write the store, or rewrite a bundle, can add one. An auditor who
collected each clinician's public key in person (``cdss keys list --json``
on their machine, or the key id ``cdss keys init`` printed) names every
signer outside that set: completion signatures, endorsements, and the signer
of a checkpoint.

The file is JSON: a list of ``{"clinician": ID, "public_key": BASE64}``
objects (other members are ignored, so ``keys.json`` from a bundle one trusts
and ``cdss keys list --json`` both serve).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path

from cdss.audit.stored import too_deep
from cdss.errors import InvalidInput
from cdss.store import key_id

MAX_BYTES = 16 << 20


@dataclass(frozen=True)
class TrustedKeys:
    """Key id -> the clinician it was obtained from; ``source`` names the file in findings."""

    keys: dict[str, str]
    source: str

    def problem(self, key: str, clinician: str, what: str) -> str | None:
        """Why ``what`` (e.g. "signed") by ``clinician`` with ``key`` is outside the trusted keys, or None."""
        trusted = self.keys.get(key)
        if trusted is None:
            return f"{what} with key {key[:12]}…, which is not among the trusted keys ({self.source})"
        if trusted != clinician:
            return f"{what} as {clinician} with key {key[:12]}…, which the trusted keys give to {trusted}"
        return None


def read(path: Path) -> TrustedKeys:
    """The trusted keys in ``path``; ``InvalidInput`` naming the file for anything else."""
    where = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as error:
        raise InvalidInput(f"cannot be read: {error.strerror or error}", file=where) from None
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"is over {MAX_BYTES:,} bytes: not a list of keys", file=where)
    try:
        text = data.decode("utf-8")
        if too_deep(text):
            raise ValueError("nested too deeply")
        listed = json.loads(text)
        if isinstance(listed, dict) and isinstance(listed.get("keys"), list):
            listed = listed["keys"]
        if not isinstance(listed, list):
            raise ValueError("not a list")
        keys: dict[str, str] = {}
        for entry in listed:
            raw = base64.b64decode(entry["public_key"], validate=True)
            if len(raw) != 32 or not isinstance(entry["clinician"], str):
                raise ValueError("not an Ed25519 key")
            keys[key_id(raw)] = entry["clinician"]
    except (ValueError, TypeError, KeyError, binascii.Error) as error:
        raise InvalidInput(
            f'is not a list of trusted keys ([{{"clinician": ID, "public_key": BASE64}}, …]): {error}',
            file=where,
        ) from None
    return TrustedKeys(keys, f"trusted keys {path}")
