"""Bundles: a self-contained copy of records an auditor takes away and verifies offline.

A bundle is a folder, or the same files in a .zip (``--out`` ending in .zip):

    manifest.json                 what is inside, and the sha256 of every other file
    events.jsonl                  one RFC 8785 event per line, a contiguous range of the chain
    checklists/<id>/<version>.json  every checklist version the sessions in range were pinned to
    schemas/event.schema.json     the contract the events follow
    schemas/checklist.schema.json
    keys.json                     the registered public keys

The chain is store-wide, so a bundle holds every event between the first and
the last event of the selected sessions — whole sessions, plus the events of
other sessions interleaved with them (they carry no clinical data). The format
is documented in ``docs/bundle-format.md`` for verifiers that are not cdss.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from cdss import files, jsonfile
from cdss.audit.verify import Anchor, Finding, Row, Verification
from cdss.catalog import Catalog, schema_path
from cdss.checklist import Checklist
from cdss.errors import IntegrityError, InvalidInput, NotFound, UsageError
from cdss.events import now
from cdss.store import RegisteredKey

FORMAT = "urn:cdss:bundle:1"
MANIFEST = "manifest.json"
EVENTS = "events.jsonl"
KEYS = "keys.json"
SCHEMAS = ("event.schema.json", "checklist.schema.json")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MANIFEST_KEYS = frozenset({"format", "created_at", "source", "selection", "sessions", "events", "files"})
_EVENT_KEYS = frozenset({"count", "first_seq", "first_prev", "first_hash", "last_seq", "last_hash"})


# --- export ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which sessions to export: started on or after ``since``, on or before ``until`` (UTC dates)."""

    since: str | None = None
    until: str | None = None
    checklist: str | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and not _DATE.match(value):
                raise UsageError(f"--{name} {value}: expected a date as YYYY-MM-DD")

    def takes(self, started: dict[str, Any]) -> bool:
        day = str(started.get("at", ""))[:10]
        return (
            (self.since is None or day >= self.since)
            and (self.until is None or day <= self.until)
            and (self.checklist is None or started["data"]["checklist"]["id"] == self.checklist)
        )

    def to_json(self) -> dict[str, str | None]:
        return {"since": self.since, "until": self.until, "checklist": self.checklist}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export(store: Path, out: Path, selection: Selection, catalog: Catalog) -> dict[str, Any]:
    """Write the bundle for ``selection`` to ``out`` (a new folder, or a .zip); return its manifest.

    Everything is written under a temporary name beside ``out`` and renamed
    into place last, so a failure leaves nothing behind.
    """
    from cdss.audit.verify import StoreSource

    if out.exists():
        raise UsageError(f"{out} already exists; choose a new path for the bundle")
    if not out.parent.is_dir():
        raise UsageError(f"folder {out.parent} does not exist")
    files.check_file_target(out, replace=False)
    source = StoreSource(store)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        selected = _select(source.db, selection)
        events, pinned = _write_events(source.db, set(selected), work / EVENTS)
        for checklist_id, version in sorted(pinned):
            target = work / "checklists" / checklist_id / f"{version}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(catalog.resolve(f"{checklist_id}@{version}").path, target)
        (work / "schemas").mkdir()
        for name in SCHEMAS:
            shutil.copyfile(schema_path(name), work / "schemas" / name)
        keys = [
            {
                "key_id": k.key_id,
                "clinician": k.clinician,
                "public_key": base64.b64encode(k.public_key).decode(),
                "registered_at": k.registered_at,
            }
            for k in source.public_keys()
        ]
        (work / KEYS).write_text(json.dumps(keys, indent=2) + "\n", encoding="utf-8")
        head_seq, head_hash, _ = source.head()
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
    finally:
        source.close()
        shutil.rmtree(work, ignore_errors=True)


def _select(db: sqlite3.Connection, selection: Selection) -> list[str]:
    selected = [
        session
        for session, text in db.execute("SELECT session, event FROM events WHERE type = 'session-started'")
        if selection.takes(json.loads(text))
    ]
    if not selected:
        raise NotFound("no sessions match the selection; nothing was written")
    return selected


def _write_events(
    db: sqlite3.Connection, selected: set[str], path: Path
) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    """Every event from the first to the last of the selected sessions, re-serialised canonically."""
    from cdss.events import StartedEvent, parse_event

    low, high = None, None
    for session, first, last in db.execute("SELECT session, min(seq), max(seq) FROM events GROUP BY session"):
        if session in selected:
            low = first if low is None else min(low, first)
            high = last if high is None else max(high, last)
    pinned: set[tuple[str, str]] = set()
    count, head, tail = 0, None, None
    with path.open("wb") as handle:
        query = "SELECT seq, event FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq"
        for seq, text in db.execute(query, (low, high)):
            try:
                event = parse_event(json.loads(text))
            except ValueError:
                raise IntegrityError(
                    f"store event {seq} is not a valid cdss event; run `cdss audit verify` first"
                ) from None
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


# --- reading ----------------------------------------------------------------------------


class _Files:
    """The files of a bundle, whether it is a folder or a zip."""

    def __init__(self, path: Path):
        self.path = path
        self.archive: zipfile.ZipFile | None = None
        if path.is_dir():
            self.names = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
        elif path.is_file() and zipfile.is_zipfile(path):
            self.archive = zipfile.ZipFile(path)
            self.names = {n for n in self.archive.namelist() if not n.endswith("/")}
        else:
            what = "does not exist" if not path.exists() else "is neither a bundle folder nor a .zip"
            raise InvalidInput(f"is not a bundle: it {what}", file=str(path))
        for name in self.names:
            pure = PurePosixPath(name)
            if pure.is_absolute() or ".." in pure.parts:
                raise InvalidInput(f"is not a bundle: unsafe file name {name!r}", file=str(path))

    def open(self, name: str) -> IO[bytes]:
        if self.archive is not None:
            return self.archive.open(name)
        return (self.path / name).open("rb")

    def read(self, name: str) -> bytes:
        with self.open(name) as handle:
            return handle.read()

    def sha256(self, name: str) -> str:
        digest = hashlib.sha256()
        with self.open(name) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()


def read_manifest(files: _Files) -> dict[str, Any]:
    where = f"{files.path}/{MANIFEST}"
    if MANIFEST not in files.names:
        raise InvalidInput(f"is not a bundle: it has no {MANIFEST}", file=str(files.path))
    try:
        manifest = json.loads(files.read(MANIFEST))
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput(f"is not JSON: {error}", file=where) from None
    if not isinstance(manifest, dict) or set(manifest) != _MANIFEST_KEYS or manifest["format"] != FORMAT:
        raise InvalidInput(
            f"is not a {FORMAT} manifest (keys: {', '.join(sorted(_MANIFEST_KEYS))})", file=where
        )
    shape = (
        isinstance(manifest["files"], dict)
        and all(isinstance(v, str) for v in manifest["files"].values())
        and isinstance(manifest["sessions"], list)
        and all(isinstance(s, str) for s in manifest["sessions"])
        and isinstance(manifest["events"], dict)
        and set(manifest["events"]) == _EVENT_KEYS
        and all(isinstance(manifest["events"][k], int) for k in ("count", "first_seq", "last_seq"))
        and isinstance(manifest["source"], dict)
    )
    if not shape:
        raise InvalidInput("manifest fields have the wrong shape (see docs/bundle-format.md)", file=where)
    return manifest


def anchors(path: Path) -> list[Anchor]:
    """What a bundle proves a store must still hold: its last event, and the store's head at export."""
    files = _Files(path)
    try:
        manifest = read_manifest(files)
    finally:
        files.close()
    events, source = manifest["events"], manifest["source"]
    found = [Anchor(events["last_seq"], events["last_hash"], f"bundle {path} (its last event)")]
    if isinstance(source.get("head_seq"), int) and source["head_seq"] > 0:
        found.append(
            Anchor(source["head_seq"], str(source["head_hash"]), f"bundle {path} (store head at export)")
        )
    return found


class BundleSource:
    """A bundle as a verification source: offline, from its own files only."""

    def __init__(self, path: Path):
        self.path = path
        self.name = f"bundle {path}"
        self._files = _Files(path)
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        try:
            self.manifest = read_manifest(self._files)
            self._check_listing()
        except BaseException:
            self._files.close()
            raise
        events = self.manifest["events"]
        self.first_seq: int = events["first_seq"]
        self.first_prev: str = str(events["first_prev"])
        self.selected: frozenset[str] | None = frozenset(self.manifest["sessions"])

    def _check_listing(self) -> None:
        listed = set(self.manifest["files"])
        present = self._files.names - {MANIFEST}
        missing, extra = sorted(listed - present), sorted(present - listed)
        required = sorted({EVENTS, KEYS, *(f"schemas/{s}" for s in SCHEMAS)} - listed)
        problems = [f"missing {n}" for n in missing] + [f"extra file {n}" for n in extra]
        problems += [f"manifest does not list {n}" for n in required]
        if problems:
            raise InvalidInput(
                f"is not a complete bundle: {'; '.join(problems)} (compared with its manifest)",
                file=str(self.path),
            )

    def __reduce__(self) -> tuple[type[BundleSource], tuple[Path]]:
        return BundleSource, (self.path,)

    def close(self) -> None:
        self._files.close()
        if self._scratch is not None:
            self._scratch.cleanup()

    def rows(self) -> Iterator[Row]:
        with self._files.open(EVENTS) as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    text: Any = raw.decode("utf-8").removesuffix("\n")
                except UnicodeDecodeError:
                    text = None
                yield number, text, None

    def lookup(self, hashes: set[str]) -> Iterator[dict[str, Any]]:
        for _, text, _ in self.rows():
            try:
                event = json.loads(text)
            except (TypeError, ValueError):
                continue
            if isinstance(event, dict) and event.get("hash") in hashes:
                yield event

    def public_keys(self) -> list[RegisteredKey]:
        try:
            listed = json.loads(self._files.read(KEYS))
            return [
                RegisteredKey(
                    k["key_id"], k["clinician"], base64.b64decode(k["public_key"]), k["registered_at"]
                )
                for k in listed
            ]
        except (ValueError, TypeError, KeyError):
            raise InvalidInput(
                "is not a list of keys (see docs/bundle-format.md)", file=f"{self.path}/{KEYS}"
            ) from None

    def checklist(self, checklist_id: str, version: str) -> Checklist:
        from cdss.validation import check_document

        name = f"checklists/{checklist_id}/{version}.json"
        if name not in self._files.names:
            raise NotFound(f"the bundle has no {name}")
        source = f"{self.path}/{name}"
        checklist, issues = check_document(jsonfile.parse(self._files.read(name), source), source)
        if checklist is None:
            raise InvalidInput(f"is not a valid checklist: {issues[0] if issues else ''}", file=source)
        return checklist

    def after(self, result: Verification) -> Iterator[Finding]:
        """The manifest's own claims, compared with what the pass found."""
        for name, recorded in sorted(self.manifest["files"].items()):
            if name in self._files.names and self._files.sha256(name) != recorded:
                yield Finding(None, None, f"{name} does not match its sha256 in the manifest")
        events = self.manifest["events"]
        actual = {
            "count": result.events,
            "last_seq": result.last_seq,
            "last_hash": result.head,
        }
        for key, value in actual.items():
            if events[key] != value:
                yield Finding(
                    None, None, f"manifest says events {key} {events[key]!r}, the events file has {value!r}"
                )
        first = result.first_hash
        if events["first_hash"] != first:
            yield Finding(
                None,
                None,
                f"manifest says first_hash {events['first_hash']!r}, the events file has {first!r}",
            )
