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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cdss import files
from cdss.errors import CdssError, InvalidInput, NotAllowed, NotFound, UsageError
from cdss.events import (
    GENESIS,
    CompletedEvent,
    Draft,
    Event,
    KeyRegistered,
    KeyRetired,
    SettingChanged,
    Signed,
    draft_body,
    now,
)
from cdss.session import check_clinician
from cdss.signing import endorsement_payload, key_id, public_key_text, signed_payload
from cdss.store import DraftSource
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

    printed = printed_name(name)
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


def archive(clinician: str, *, folder: Path | None = None) -> list[tuple[Path, Path]]:
    """Move a clinician's key files aside (``<clinician>.<key id>.pem``) so a new key can be made.

    Returns (where each file went, where it was), to put them back if the store refuses.
    """
    pem_path, info_path = _paths(clinician, folder)
    old = info(clinician, folder=folder)
    moved = []
    for path in (pem_path, info_path):
        kept = path.with_name(f"{clinician}.{old.key_id[:12]}{path.suffix}")
        path.rename(kept)
        moved.append((kept, path))
    return moved


def discard(clinician: str, *, folder: Path | None = None) -> None:
    """Remove a key just made that the store refused: it was never registered, so nothing signed with it."""
    for path in _paths(clinician, folder):
        path.unlink(missing_ok=True)


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


def printed_name(name: str) -> str:
    """A printed name as signatures show it: printable text, 1 to 120 characters.

    Refused rather than cleaned: a name with control characters or bytes that
    are not UTF-8 would make a key that can never sign (the events refuse it).
    """
    printed = " ".join(name.split())
    if not printed:
        raise InvalidInput("the printed name must be 1 to 120 characters")
    check_free_text(printed, "the printed name", limit=120, personal=False)
    if not printed.isprintable():
        raise InvalidInput("the printed name may hold only printable characters (no control characters)")
    return printed


def endorsed(
    make: Callable[[str | None, str | None, str], Draft], endorser: SigningKey | None
) -> DraftSource:
    """A draft built inside the write transaction, endorsed by ``endorser`` over its own place.

    ``make(endorsed_by, endorsement, at)`` builds the draft; the endorsement is
    an Ed25519 signature over ``cdss.signing.endorsement_payload`` of the event
    at the ``seq`` and after the ``prev`` it is about to take.
    """

    def build(previous: Event | None) -> Draft:
        seq, prev = (previous.seq + 1, previous.hash) if previous is not None else (1, GENESIS)
        at = now()
        if endorser is None:
            return make(None, None, at)
        body = draft_body(make(endorser.info.key_id, None, at), seq, prev)
        signature = base64.b64encode(endorser.private.sign(endorsement_payload(body))).decode()
        return make(endorser.info.key_id, signature, at)

    return build


def registration(key: KeyInfo, *, actor: str | None = None, administrator: bool = False,
                 endorser: SigningKey | None = None) -> DraftSource:  # fmt: skip
    """The ``key-registered`` event for ``key``."""

    def make(by: str | None, signature: str | None, at: str) -> Draft:
        data = KeyRegistered(
            clinician=key.clinician,
            key_id=key.key_id,
            public_key=public_key_text(key.public_key),
            name=key.name,
            administrator=administrator,
            endorsed_by=by,
            endorsement=signature,
        )
        return Draft(None, "key-registered", actor or key.clinician, data, at=at)

    return endorsed(make, endorser)


def retirement(
    clinician: str, retired: str, reason: str, endorser: SigningKey, *, actor: str | None = None
) -> DraftSource:
    """The ``key-retired`` event for key ``retired``, endorsed by that key or an administrator's."""

    def make(by: str | None, signature: str | None, at: str) -> Draft:
        data = KeyRetired(
            clinician=clinician,
            key_id=retired,
            reason=reason,
            endorsed_by=by or "",
            endorsement=signature or "A" * 86 + "==",
        )
        return Draft(None, "key-retired", actor or endorser.info.clinician, data, at=at)

    return endorsed(make, endorser)


def setting_change(name: str, value: str, actor: str, endorser: SigningKey | None) -> DraftSource:
    """The ``setting-changed`` event; endorsed when an endorser is given."""

    def make(by: str | None, signature: str | None, at: str) -> Draft:
        data = SettingChanged(name=name, value=value, endorsed_by=by, endorsement=signature)  # type: ignore[arg-type]
        return Draft(None, "setting-changed", actor, data, at=at)

    return endorsed(make, endorser)


def register(
    store: Store, key: KeyInfo, *, administrator: bool = False, endorser: SigningKey | None = None
) -> bool:
    """Put the public key in a store, so signatures made with it verify there.

    False when that key is already registered there for that clinician (nothing
    is written). The store refuses a second active key for a clinician unless
    ``endorser`` is that clinician's current key or an administrator's.
    """
    known = {k.key_id: k for k in store.keys()}
    found = known.get(key.key_id)
    if found is not None and found.clinician == key.clinician and found.administrator >= administrator:
        return False
    actor = endorser.info.clinician if endorser is not None else key.clinician
    store.append(registration(key, actor=actor, administrator=administrator, endorser=endorser))
    return True


def retire(store: Store, clinician: str, retired: str, reason: str, endorser: SigningKey) -> None:
    """Record that a key may no longer sign; endorsed by that key itself or an administrator's."""
    store.append(retirement(clinician, retired, reason, endorser))


def change_setting(store: Store, name: str, value: str, actor: str, endorser: SigningKey | None) -> None:
    """Record a new value of a store setting (``require-signatures``, ``subject-pattern``)."""
    check_clinician(actor)
    store.append(setting_change(name, value, actor, endorser))


def rotate(store: Store, old: SigningKey, new: KeyInfo, *, administrator: bool = False) -> None:
    """Register ``new`` endorsed by ``old`` and retire ``old``, in one transaction."""
    if old.info.clinician != new.clinician:
        raise NotAllowed("a key is rotated only to a new key of the same clinician")
    store.append(
        registration(new, administrator=administrator, endorser=old),
        retirement(old.info.clinician, old.info.key_id, "rotated to a new key", old),
    )


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
