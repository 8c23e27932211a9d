"""Ed25519 signatures and what they cover: the one place cdss signs and checks.

Low in the house on purpose: events, sessions, keys, checkpoints and the
audit all need the same key id and the same bytes under a signature, and none
of them should import another to get it. Every payload is RFC 8785 canonical
JSON, so a verifier written in another language signs and checks the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import rfc8785


def key_id(public_key: bytes) -> str:
    """A signing key's id: sha256 (hex) of its raw Ed25519 public key, as signatures name it."""
    return hashlib.sha256(public_key).hexdigest()


def signature_holds(public_key: bytes, signature: str, payload: bytes) -> bool:
    """Whether ``signature`` (base64) is an Ed25519 signature of ``payload`` by the raw ``public_key``.

    The one check of a signature in cdss: completions, endorsements of keys and
    settings, and signed checkpoints.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = Ed25519PublicKey.from_public_bytes(public_key)
        key.verify(base64.b64decode(signature, validate=True), payload)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def signed_payload(signs: str, name: str, meaning: str, at: str) -> bytes:
    """The bytes a ``session-signed`` event's signature covers: RFC 8785 of ``{signs, name, meaning, at}``."""
    return bytes(rfc8785.dumps({"signs": signs, "name": name, "meaning": meaning, "at": at}))


def endorsement_payload(body: dict[str, Any]) -> bytes:
    """The bytes an endorsement covers: RFC 8785 of the event's body without ``data.endorsement``.

    ``body`` is the whole event as JSON without its ``hash`` (so ``seq``,
    ``prev``, ``at``, ``actor``, ``type`` and ``data`` are all covered); any
    ``data.endorsement`` in it is left out. Covering ``prev`` ties the
    endorsement to one place in one chain, so an endorsed event cannot be
    copied later into the chain (an old "require-signatures off" replayed).
    """
    data = {k: v for k, v in body.get("data", {}).items() if k != "endorsement"}
    covered = {k: v for k, v in body.items() if k not in ("hash", "data")}
    covered["data"] = data
    return bytes(rfc8785.dumps(covered))


def public_key_text(public_key: bytes) -> str:
    """How a raw public key is written in events and files: standard base64."""
    return base64.b64encode(public_key).decode("ascii")
