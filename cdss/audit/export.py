"""Exporting bundles: a self-contained copy of records an auditor takes away and verifies offline.

A bundle is a folder, or the same files in a .zip (``--out`` ending in .zip):

    manifest.json                 what is inside, and the sha256 of every other file
    events.jsonl                  one RFC 8785 event per line, a contiguous range of the chain
    checklists/<id>/<version>.json  every checklist version the sessions in range were pinned to
    schemas/event.schema.json     the contract the events follow
    schemas/checklist.schema.json
    keys.json                     the registered public keys

The chain is store-wide, so a bundle holds every event between the first and
the last event of the selected sessions — whole sessions, plus the events of
other sessions interleaved with them (they carry no clinical data). An
unfiltered export holds the whole chain, from seq 1 to the store's head.
The store is read through the store contract only. The format is documented
in ``docs/bundle-format.md``; reading a bundle is ``cdss.audit.bundle``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from cdss import files
from cdss.audit.bundle import EVENTS, FORMAT, KEYS, MANIFEST, SCHEMAS, Selection
from cdss.audit.sources import StoreSource
from cdss.audit.stored import parse
from cdss.catalog import Catalog, schema_path
from cdss.errors import IntegrityError, NotFound, UsageError
from cdss.events import now


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export(
    store: str | Path, out: Path, selection: Selection, catalog: Catalog, *, fhir: bool = False
) -> dict[str, Any]:
    """Write the bundle for ``selection`` to ``out`` (a new folder, or a .zip); return its manifest.

    Everything is written under a temporary name beside ``out`` and renamed
    into place last, so a failure leaves nothing behind.
    """
    if out.exists():
        raise UsageError(f"{out} already exists; choose a new path for the bundle")
    if not out.parent.is_dir():
        raise UsageError(f"folder {out.parent} does not exist")
    files.check_file_target(out, replace=False)
    source = StoreSource(store)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        head_seq, head_hash, _ = source.head()
        selected, low, high = _select(source, selection)
        if selection == Selection():
            low, high = 1, head_seq
        events, pinned = _write_events(source, low, high, work / EVENTS)
        for checklist_id, version in sorted(pinned):
            target = work / "checklists" / checklist_id / f"{version}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(catalog.resolve(f"{checklist_id}@{version}").path, target)
        if fhir:  # FHIR's own module writes its one file; see cdss/fhir/bundle.py
            from cdss.fhir.bundle import write_audit_bundle

            write_audit_bundle(source.store, sorted(selected), catalog, work)
        (work / "schemas").mkdir()
        for name in SCHEMAS:
            shutil.copyfile(schema_path(name), work / "schemas" / name)
        keys = [key.to_json() for key in source.public_keys()]
        (work / KEYS).write_text(json.dumps(keys, indent=2) + "\n", encoding="utf-8")
        manifest = {
            "format": FORMAT,
            "created_at": now(),
            "source": {"store": str(store), "head_seq": head_seq, "head_hash": head_hash},
            "selection": selection.to_json(),
            "sessions": sorted(selected),
            "events": events,
            "files": {
                path.relative_to(work).as_posix(): sha256_file(path)
                for path in sorted(work.rglob("*"))
                if path.is_file()
            },
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _place(work, out)
        return manifest
    except OSError as error:  # a full disk while building: one line naming the bundle
        raise files.write_failed(out, error) from None
    finally:
        source.close()
        shutil.rmtree(work, ignore_errors=True)


def _select(source: StoreSource, selection: Selection) -> tuple[set[str], int, int]:
    """The selected sessions, and the first and last seq of their events (one pass, nothing parsed twice)."""
    selected: set[str] = set()
    low = high = 0
    for seq, session, kind, _, text in source.store.stored():
        if kind == "session-started":
            try:
                started = parse(text)
                taken = selection.takes(started)
            except (TypeError, ValueError, KeyError, AttributeError):
                raise _damaged(seq) from None
            if taken:
                selected.add(session)
                low = low or seq
        if session in selected:
            high = seq
    if not selected:
        raise NotFound("no sessions match the selection; nothing was written")
    return selected, low, high


def _damaged(seq: int) -> IntegrityError:
    return IntegrityError(f"store event {seq} is not a valid cdss event; run `cdss audit verify` first")


def _write_events(
    source: StoreSource, low: int, high: int, path: Path
) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    """Every event from ``low`` to ``high``, re-serialised canonically."""
    from pydantic import ValidationError

    from cdss.events import StartedEvent, parse_event

    pinned: set[tuple[str, str]] = set()
    count, head, tail = 0, None, None
    with path.open("wb") as handle:
        for seq, _, _, _, text in source.store.stored(after=low - 1):
            if seq > high:
                break
            try:
                event = parse_event(parse(text))
            except (TypeError, ValueError, ValidationError):
                raise _damaged(seq) from None
            handle.write(event.canonical() + b"\n")
            count, head, tail = count + 1, head or event, event
            if isinstance(event, StartedEvent):
                pinned.add((event.data.checklist.id, event.data.checklist.version))
    assert head is not None and tail is not None
    events = {
        "count": count,
        "first_seq": head.seq,
        "first_prev": head.prev,
        "first_hash": head.hash,
        "last_seq": tail.seq,
        "last_hash": tail.hash,
    }
    return events, pinned


def _place(work: Path, out: Path) -> None:
    # Through cdss.files: fsynced, never through a planted link, nothing half-written on failure.
    if out.suffix != ".zip":
        files.place_folder(work, out)
        return
    with (
        files.writing(out, replace=False) as handle,
        zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        for path in sorted(work.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(work).as_posix())
