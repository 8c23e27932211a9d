"""Checkpoints: the head of a store, written down for the auditor to keep.

A hash chain proves that nothing before the head changed, but not that the
head is still the head: cutting events off the end leaves a shorter, valid
chain. An auditor who keeps a checkpoint (outside the clinic's control) can
later require the store to still hold that exact event at that ``seq``
(``cdss audit verify --against CHECKPOINT``). The file carries its own digest,
so a damaged or hand-edited checkpoint is refused rather than trusted.

A digest anyone can recompute; a signature only the key's holder can make. A
checkpoint signed with the auditor's own key (``--sign ID``, a key from
``cdss keys init``) cannot be replaced by one that names an earlier head without
the signer changing: verification names the signer and the key, and says
whether the key is the one this machine holds for that id.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdss import files, jsonfile
from cdss.catalog import content_hash
from cdss.errors import InvalidInput, UsageError
from cdss.events import now

if TYPE_CHECKING:
    from cdss.keys import SigningKey

FORMAT = "urn:cdss:checkpoint:1"
MAX_BYTES = 64 << 10
"""A checkpoint is well under 2 KiB; anything this large is not one."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str
    """The head event's own time."""
    taken_at: str
    store: str
    signed_by: str | None = None
    """Who signed it, for a person: printed name, id and key id; None when it is not signed."""
    signer: tuple[str, str] | None = None
    """The signer's id and key id, for ``--trusted-keys``; None when it is not signed."""

    def body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "store": self.store,
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "taken_at": self.taken_at,
        }


def take(store_path: str | Path, out: Path, key: SigningKey | None = None) -> Checkpoint:
    """Write the store's head to ``out`` (refusing to overwrite), signed with ``key`` if given.

    The store is only read.
    """
    from cdss.audit.sources import StoreSource

    if out.exists():
        raise UsageError(f"{out} already exists; choose another file for the checkpoint")
    if not out.parent.is_dir():
        raise UsageError(f"folder {out.parent} does not exist")
    source = StoreSource(store_path)
    try:
        seq, head, at = source.head()
    finally:
        source.close()
    from cdss.store.location import describe

    point = Checkpoint(seq, head, at, now(), describe(store_path))  # a URL without its password
    body = point.body()
    written: dict[str, Any] = {**body, "digest": content_hash(body)}
    if key is not None:
        claim = {"signer": key.info.clinician, "name": key.info.name, "key_id": key.info.key_id}
        written["signature"] = {
            **claim,
            "public_key": base64.b64encode(key.info.public_key).decode(),
            "signature": base64.b64encode(key.private.sign(_signed_bytes(body, claim))).decode(),
        }
        point = Checkpoint(seq, head, at, point.taken_at, point.store, _signer(claim))
    files.write_text(out, json.dumps(written, indent=2) + "\n", replace=False)
    return point


def looks_like_one(path: Path) -> bool:
    """Whether ``path`` is JSON text (a checkpoint) rather than, say, a store; unreadable counts as one."""
    try:
        with path.open("rb") as handle:
            return handle.read(64).lstrip()[:1] in (b"{", b"[", b"")
    except OSError:
        return True


def read(path: Path) -> Checkpoint:
    """A checkpoint file, its digest and any signature checked; ``InvalidInput`` for anything else."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as error:
        reason = error.strerror or str(error)
        raise InvalidInput(f"is not a readable checkpoint: {reason}", file=str(path)) from None
    try:
        value = jsonfile.loads_bounded(data, str(path), max_bytes=MAX_BYTES)
    except InvalidInput as error:
        raise InvalidInput(f"is not a readable checkpoint: {error.message}", file=str(path)) from None
    expected = {"format", "store", "seq", "hash", "at", "taken_at", "digest"}
    if (
        not isinstance(value, dict)
        or not expected <= set(value) <= expected | {"signature"}
        or value["format"] != FORMAT
    ):
        raise InvalidInput(f"is not a cdss checkpoint (expected the keys {sorted(expected)})", file=str(path))
    body = {k: v for k, v in value.items() if k not in ("digest", "signature")}
    try:
        digest = content_hash(body)
    except Exception:  # rfc8785 refuses what JSON allows: huge numbers, lone surrogates
        raise InvalidInput(
            "is not a cdss checkpoint (a value has no canonical form)", file=str(path)
        ) from None
    if digest != value["digest"]:
        raise InvalidInput(
            "checkpoint digest does not match its content (the file was edited)", file=str(path)
        )
    if not isinstance(value["seq"], int) or not isinstance(value["hash"], str):
        raise InvalidInput("checkpoint seq or hash has the wrong type", file=str(path))
    signed_by, signer = None, None
    if "signature" in value:
        signed_by = _check_signature(value["signature"], body, path)
        signer = (value["signature"]["signer"], value["signature"]["key_id"])
    return Checkpoint(
        value["seq"],
        value["hash"],
        str(value["at"]),
        str(value["taken_at"]),
        str(value["store"]),
        signed_by,
        signer,
    )


def _signed_bytes(body: dict[str, Any], claim: dict[str, str]) -> bytes:
    """What a checkpoint signature covers: the head, and who claims to have signed it (RFC 8785)."""
    import rfc8785

    return bytes(rfc8785.dumps({**body, **claim}))


def _signer(signature: dict[str, str]) -> str:
    return f"{signature['name']} ({signature['signer']}, key {signature['key_id'][:12]}…)"


def _check_signature(signature: Any, body: dict[str, Any], path: Path) -> str:
    """Who signed, once the signature verifies; whether this machine holds that signer's key too."""
    from cdss import keys
    from cdss.errors import CdssError
    from cdss.store import key_id, signature_holds

    fields = {"signer", "name", "key_id", "public_key", "signature"}
    try:
        if not isinstance(signature, dict) or set(signature) != fields:
            raise ValueError
        if not all(isinstance(v, str) for v in signature.values()):
            raise ValueError
        public = base64.b64decode(signature["public_key"], validate=True)
        claim = {k: signature[k] for k in ("signer", "name", "key_id")}
        holds = key_id(public) == signature["key_id"] and signature_holds(
            public, signature["signature"], _signed_bytes(body, claim)
        )
    except ValueError:
        holds = False
    if not holds:
        raise InvalidInput(
            "checkpoint signature does not verify (the file was edited or re-signed badly)", file=str(path)
        )
    try:
        own = keys.info(signature["signer"])
    except CdssError:
        return f"{_signer(signature)}; no key for {signature['signer']} on this machine to compare"
    if own.key_id != signature["key_id"]:
        raise InvalidInput(
            f"checkpoint is signed as {signature['signer']}, but not with {signature['signer']}'s key on "
            f"this machine ({own.key_id[:12]}…)",
            file=str(path),
        )
    return f"{_signer(signature)}, the key this machine holds for {signature['signer']}"
