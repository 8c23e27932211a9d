"""Checkpoints: the head of a store, written down for the auditor to keep.

A hash chain proves that nothing before the head changed, but not that the
head is still the head: cutting events off the end leaves a shorter, valid
chain. An auditor who keeps a checkpoint (outside the clinic's control) can
later require the store to still hold that exact event at that ``seq``
(``cdss audit verify --against CHECKPOINT``). The file carries its own digest,
so a damaged or hand-edited checkpoint is refused rather than trusted.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdss.catalog import content_hash
from cdss.errors import InvalidInput, UsageError
from cdss.events import now

FORMAT = "urn:cdss:checkpoint:1"


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str
    """The head event's own time."""
    taken_at: str
    store: str

    def body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "store": self.store,
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "taken_at": self.taken_at,
        }


def take(store_path: Path, out: Path) -> Checkpoint:
    """Write the store's head to ``out`` (refusing to overwrite); the store is only read."""
    from cdss.audit.verify import StoreSource

    if out.exists():
        raise UsageError(f"{out} already exists; choose another file for the checkpoint")
    if not out.parent.is_dir():
        raise UsageError(f"folder {out.parent} does not exist")
    source = StoreSource(store_path)
    try:
        seq, head, at = source.head()
    finally:
        source.close()
    point = Checkpoint(seq, head, at, now(), str(store_path))
    body = point.body()
    temporary = out.with_name(f".{out.name}.tmp")
    temporary.write_text(
        json.dumps({**body, "digest": content_hash(body)}, indent=2) + "\n", encoding="utf-8"
    )
    os.replace(temporary, out)
    return point


def read(path: Path) -> Checkpoint:
    """A checkpoint file, its digest checked; ``InvalidInput`` for anything else."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InvalidInput(f"is not a readable checkpoint: {error}", file=str(path)) from None
    expected = {"format", "store", "seq", "hash", "at", "taken_at", "digest"}
    if not isinstance(value, dict) or set(value) != expected or value["format"] != FORMAT:
        raise InvalidInput(f"is not a cdss checkpoint (expected the keys {sorted(expected)})", file=str(path))
    body = {k: v for k, v in value.items() if k != "digest"}
    if content_hash(body) != value["digest"]:
        raise InvalidInput(
            "checkpoint digest does not match its content (the file was edited)", file=str(path)
        )
    if not isinstance(value["seq"], int) or not isinstance(value["hash"], str):
        raise InvalidInput("checkpoint seq or hash has the wrong type", file=str(path))
    return Checkpoint(
        value["seq"], value["hash"], str(value["at"]), str(value["taken_at"]), str(value["store"])
    )
