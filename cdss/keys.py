"""Clinicians' signing keys: Ed25519, kept encrypted in the user's config folder.

Each clinician has ``<config>/keys/<clinician>.pem`` (PKCS8, encrypted with a
passphrase through ``cryptography``'s BestAvailableEncryption) and beside it
``<clinician>.json`` with the printed name and the public key, so the key can
be registered in another store without unlocking it. Only the public key ever
enters a store; a signature is the manifestation (printed name, time, meaning)
and the completion event's hash, signed together (``cdss.session.signed_payload``).

The passphrase comes from the caller, else ``CDSS_PASSPHRASE`` (for scripts and
tests); the CLI prompts for it.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cdss import files
from cdss.errors import CdssError, InvalidInput, NotFound, UsageError
from cdss.events import CompletedEvent, Signed, now
from cdss.session import check_clinician, signed_payload
from cdss.store import key_id
from cdss.text import check_free_text

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from cdss.session import Session, Signer
    from cdss.store import Store

ENV_PASSPHRASE = "CDSS_PASSPHRASE"


def key_folder() -> Path:
    import platformdirs

    return platformdirs.user_config_path("cdss", appauthor=False) / "keys"


@dataclass(frozen=True)
class KeyInfo:
    """What is public about a clinician's key."""

    clinician: str
    name: str
    key_id: str
    public_key: bytes
    created_at: str

    def to_json(self) -> dict[str, str]:
        return {
            "clinician": self.clinician,
            "name": self.name,
            "key_id": self.key_id,
            "public_key": base64.b64encode(self.public_key).decode(),
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class SigningKey:
    """An unlocked private key with its public description."""

    info: KeyInfo
    private: Ed25519PrivateKey


def passphrase_from_env() -> str | None:
    return os.environ.get(ENV_PASSPHRASE) or None


def _paths(clinician: str, folder: Path | None) -> tuple[Path, Path]:
    check_clinician(clinician)
    base = folder or key_folder()
    return base / f"{clinician}.pem", base / f"{clinician}.json"


def _raw_public(private: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def create(clinician: str, name: str, passphrase: str, *, folder: Path | None = None) -> KeyInfo:
    """Make a new key for ``clinician``; refuses to replace one (old signatures name its id)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        BestAvailableEncryption,
        Encoding,
        PrivateFormat,
    )

    printed = " ".join(name.split())
    if not printed:
        raise InvalidInput("the printed name must be 1 to 120 characters")
    check_free_text(printed, "the printed name", limit=120, personal=False)
    if len(passphrase) < 8:
        raise InvalidInput("the passphrase must be at least 8 characters")
    pem_path, info_path = _paths(clinician, folder)
    if pem_path.exists() or info_path.exists():
        raise UsageError(f"{clinician} already has a key in {pem_path.parent}; keys are never replaced here")
    private = Ed25519PrivateKey.generate()
    public = _raw_public(private)
    info = KeyInfo(clinician, printed, key_id(public), public, now())
    pem = private.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(passphrase.encode("utf-8"))
    )
    pem_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # The description first: a key file without one would lock the clinician out (issue 11).
    files.write_text(info_path, json.dumps(info.to_json(), indent=2) + "\n", replace=False)
    try:
        files.write_bytes(pem_path, pem, replace=False, mode=files.PRIVATE)
    except CdssError:
        info_path.unlink(missing_ok=True)
        raise
    return info


def info(clinician: str, *, folder: Path | None = None) -> KeyInfo:
    """The public part of a clinician's key, without the passphrase."""
    _, info_path = _paths(clinician, folder)
    if not info_path.exists():
        raise NotFound(f"no key for clinician {clinician}; create one with `cdss keys init`")
    try:
        raw = json.loads(info_path.read_text(encoding="utf-8"))
        public = base64.b64decode(raw["public_key"])
        found = KeyInfo(raw["clinician"], raw["name"], raw["key_id"], public, raw["created_at"])
    except (OSError, ValueError, KeyError, TypeError):
        raise InvalidInput("is not a cdss key description", file=str(info_path)) from None
    if key_id(public) != found.key_id or found.clinician != clinician:
        raise InvalidInput("key id or clinician does not match the public key", file=str(info_path))
    return found


def unlock(clinician: str, passphrase: str | None = None, *, folder: Path | None = None) -> SigningKey:
    """Decrypt a clinician's key; a wrong passphrase is ``InvalidInput``, never a traceback."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    public = info(clinician, folder=folder)
    pem_path, _ = _paths(clinician, folder)
    secret = passphrase if passphrase is not None else passphrase_from_env()
    if secret is None:
        raise UsageError(f"a passphrase is needed to unlock {clinician}'s key (or set {ENV_PASSPHRASE})")
    try:
        private = load_pem_private_key(pem_path.read_bytes(), secret.encode("utf-8"))
    except FileNotFoundError:
        raise NotFound(f"the private key {pem_path} is missing") from None
    except (ValueError, TypeError):
        raise InvalidInput(f"wrong passphrase for {clinician}'s key (or the key file is damaged)") from None
    if not isinstance(private, Ed25519PrivateKey) or _raw_public(private) != public.public_key:
        raise InvalidInput(f"{pem_path} does not hold the key described beside it")
    return SigningKey(public, private)


def register(store: Store, key: KeyInfo) -> None:
    """Put the public key in a store, so signatures made with it verify there."""
    store.register_key(key.key_id, key.clinician, key.public_key)


def meaning(session: Session) -> str:
    """What a completion signature means, in words a person signs."""
    checklist = session.checklist
    return f"completed checklist {checklist.id} version {checklist.version} for subject {session.subject}"


def signer(session: Session, key: SigningKey | None = None, *, passphrase: str | None = None) -> Signer:
    """A signer for ``Session.complete``: signs the completion and its manifestation.

    ``key`` defaults to the session's clinician's key, unlocked with
    ``passphrase`` (or ``CDSS_PASSPHRASE``).
    """
    unlocked = key or unlock(session.clinician, passphrase)
    what = meaning(session)

    def sign(completed: CompletedEvent) -> Signed:
        payload = signed_payload(completed.hash, unlocked.info.name, what, completed.at)
        signature = base64.b64encode(unlocked.private.sign(payload)).decode()
        return Signed(
            signs=completed.hash,
            name=unlocked.info.name,
            meaning=what,
            key=unlocked.info.key_id,
            signature=signature,
        )

    return sign
