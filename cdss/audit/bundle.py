"""Reading bundles: a self-contained copy of records, verified offline from its own files.

A bundle (written by ``cdss.audit.export``) is a folder, or the same files in
a .zip. It comes from outside, so it is read as hostile input: every file is
streamed with limits on its size, an events line on its length and nesting,
the archive on its number of entries and its compression ratio (a zip bomb is
refused before it is inflated), and duplicate or unsafe entry names are
refused. The format and every rule checked here are documented in
``docs/bundle-format.md`` for verifiers that are not cdss.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from cdss import jsonfile
from cdss.audit.findings import Anchor, Finding, Verification
from cdss.audit.sources import Row
from cdss.audit.stored import MAX_LINE, parse, too_deep
from cdss.catalog import schema_path
from cdss.checklist import Checklist
from cdss.errors import InvalidInput, NotFound, UsageError
from cdss.store import RegisteredKey
from cdss.store.ledger import public_key

FORMAT = "urn:cdss:bundle:1"
MANIFEST = "manifest.json"
EVENTS = "events.jsonl"
KEYS = "keys.json"
FHIR = "fhir-bundle.json"
"""Optional (``cdss audit export --fhir``): the records as one FHIR Bundle, written by ``cdss.fhir``."""
SCHEMAS = ("event.schema.json", "checklist.schema.json")
MANIFEST_KEYS = frozenset({"format", "created_at", "source", "selection", "sessions", "events", "files"})
EVENT_KEYS = frozenset({"count", "first_seq", "first_prev", "first_hash", "last_seq", "last_hash"})

MAX_ENTRIES = 10_000
"""Files in a bundle, at most: a bundle holds a few per checklist version."""
MAX_FILE = 16 << 20
"""Bytes in any file but the events, at most (a manifest of 100,000 sessions is 5 MB)."""
MAX_EVENTS_FILE = 64 << 30
"""Bytes in ``events.jsonl``, at most: some 100 million events."""
MAX_RATIO = 100
"""How much a zip entry over 1 MiB may inflate: real bundles compress about 4 to 10 times."""

PUBLISHED_SCHEMAS = {
    "0df6abbba20255aa46e6ec1bef3d684abeb82538635c5b2fcccab4454184abf4": "event.schema.json",
    "feb767178bdbe046d42be37c66c4c5a8955390f384660c4e50efc8c70778b6a5": "checklist.schema.json",
    "0b34d5071c1a3ba77b79420f32ec4e1e7c186e037ef273234ceb292036277828": "event.schema.json",
    "5f87f46f192d054b461572522ec62bc38925dbd7c69f6b0bdfd574ef00f2fff7": "checklist.schema.json",
}
"""sha256 of every schema file a cdss release shipped, the current ones included: a bundle written by
any release verifies, and docs/bundle-format.md lists the same (tests/test_bundle_doc.py)."""


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Selection:
    """Which sessions a bundle holds: started on or after ``since``, on or before ``until`` (UTC dates)."""

    since: str | None = None
    until: str | None = None
    checklist: str | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and not _DATE.fullmatch(value):
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


def published_schemas() -> dict[str, str]:
    """sha256 -> file name of every published schema, this release's included."""
    found = dict(PUBLISHED_SCHEMAS)
    for name in SCHEMAS:
        found[hashlib.sha256(schema_path(name).read_bytes()).hexdigest()] = name
    return found


class BundleFiles:
    """The files of a bundle, whether it is a folder or a zip, each opened with its size checked."""

    def __init__(self, path: Path):
        self.path = path
        self.archive: zipfile.ZipFile | None = None
        self.sizes: dict[str, int] = {}
        with self.reading():
            if path.is_dir():
                self._list_folder()
            elif path.is_file() and zipfile.is_zipfile(path):
                self._list_archive()
            else:
                what = "does not exist" if not path.exists() else "is neither a bundle folder nor a .zip"
                raise InvalidInput(f"is not a bundle: it {what}", file=str(path))
        self.names = set(self.sizes)

    def _refuse(self, why: str) -> InvalidInput:
        return InvalidInput(f"is not a bundle cdss will read: {why}", file=str(self.path))

    def _list_folder(self) -> None:
        for entry in self.path.rglob("*"):
            mode = entry.lstat().st_mode
            name = entry.relative_to(self.path).as_posix()
            if stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise self._refuse(f"{name} is not a plain file or folder")
            if stat.S_ISREG(mode):
                self._add(name, entry.stat().st_size)

    def _list_archive(self) -> None:
        archive = self.archive = zipfile.ZipFile(self.path)
        entries = archive.infolist()
        if len(entries) > MAX_ENTRIES:
            raise self._refuse(f"it has {len(entries):,} entries; the limit is {MAX_ENTRIES:,}")
        for info in entries:
            if info.is_dir():
                continue
            if info.filename in self.sizes:
                raise self._refuse(f"the archive holds {info.filename!r} twice")
            if info.file_size > 1 << 20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise self._refuse(
                    f"{info.filename} would inflate {info.file_size // max(info.compress_size, 1):,} "
                    f"times (to {info.file_size:,} bytes); the limit is {MAX_RATIO} times"
                )
            self._add(info.filename, info.file_size)

    def _add(self, name: str, size: int) -> None:
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts or "\\" in name or not name:
            raise self._refuse(f"unsafe file name {name!r}")
        if len(self.sizes) >= MAX_ENTRIES:
            raise self._refuse(f"it has more than {MAX_ENTRIES:,} files")
        limit = MAX_EVENTS_FILE if name == EVENTS else MAX_FILE
        if size > limit:
            raise self._refuse(f"{name} is {size:,} bytes; the limit is {limit:,}")
        self.sizes[name] = size

    @contextmanager
    def reading(self, name: str | None = None) -> Iterator[None]:
        """A damaged archive or an unreadable file becomes one line naming it."""
        where = f"{self.path}/{name}" if name else str(self.path)
        try:
            yield
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            raise InvalidInput(f"is damaged: {error}", file=where) from None
        except (RuntimeError, NotImplementedError) as error:  # encrypted, unknown compression
            raise InvalidInput(f"cannot be read: {error}", file=where) from None
        except OSError as error:
            raise InvalidInput(f"cannot be read: {error.strerror or error}", file=where) from None

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        with self.reading(name):
            if self.archive is not None:
                handle: IO[bytes] = self.archive.open(name)
            else:
                handle = (self.path / name).open("rb")
            with handle:
                yield handle

    def read(self, name: str) -> bytes:
        limit = MAX_EVENTS_FILE if name == EVENTS else MAX_FILE
        with self.open(name) as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise self._refuse(f"{name} is longer than {limit:,} bytes")
        return data

    def lines(self, name: str) -> Iterator[tuple[int, bytes, bool]]:
        """Each line (without its newline), its number, and whether it ended in a newline.

        A line longer than any event could be stops the reading: the rest of
        it is never inflated.
        """
        with self.open(name) as handle:
            number = 0
            while True:
                with self.reading(name):
                    raw = handle.readline(MAX_LINE + 1)
                if not raw:
                    return
                number += 1
                ended = raw.endswith(b"\n")
                if not ended and len(raw) > MAX_LINE:
                    raise InvalidInput(
                        f"line {number} is longer than {MAX_LINE:,} bytes: not an event",
                        file=f"{self.path}/{name}",
                    )
                yield number, raw[:-1] if ended else raw, ended

    def sha256(self, name: str) -> str:
        digest = hashlib.sha256()
        with self.open(name) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()


def read_manifest(files: BundleFiles) -> dict[str, Any]:
    where = f"{files.path}/{MANIFEST}"
    if MANIFEST not in files.names:
        raise InvalidInput(f"is not a bundle: it has no {MANIFEST}", file=str(files.path))
    manifest = jsonfile.loads_bounded(files.read(MANIFEST), where, max_bytes=MAX_FILE)
    if set(manifest) != MANIFEST_KEYS or manifest["format"] != FORMAT:
        raise InvalidInput(
            f"is not a {FORMAT} manifest (keys: {', '.join(sorted(MANIFEST_KEYS))})", file=where
        )
    source, events, selection = manifest["source"], manifest["events"], manifest["selection"]
    shape = (
        isinstance(manifest["files"], dict)
        and all(isinstance(v, str) for v in manifest["files"].values())
        and isinstance(manifest["sessions"], list)
        and all(isinstance(s, str) for s in manifest["sessions"])
        and isinstance(events, dict)
        and set(events) == EVENT_KEYS
        and all(type(events[k]) is int for k in ("count", "first_seq", "last_seq"))
        and all(isinstance(events[k], str) for k in ("first_prev", "first_hash", "last_hash"))
        and isinstance(source, dict)
        and type(source.get("head_seq")) is int
        and isinstance(source.get("head_hash"), str)
        and isinstance(selection, dict)
        and set(selection) == {"since", "until", "checklist"}
        and all(v is None or isinstance(v, str) for v in selection.values())
        and all(selection[k] is None or _DATE.fullmatch(selection[k]) for k in ("since", "until"))
    )
    if not shape:
        raise InvalidInput("manifest fields have the wrong shape (see docs/bundle-format.md)", file=where)
    return manifest


def anchors(path: Path) -> list[Anchor]:
    """The places a bundle names: its last event, the link before its first, the store head at export."""
    files = BundleFiles(path)
    try:
        manifest = read_manifest(files)
    finally:
        files.close()
    return manifest_anchors(manifest, f"bundle {path}")


def manifest_anchors(manifest: dict[str, Any], name: str) -> list[Anchor]:
    events, source = manifest["events"], manifest["source"]
    found = [Anchor(events["last_seq"], events["last_hash"], f"{name} (its last event)")]
    if events["first_seq"] > 1:
        found.append(Anchor(events["first_seq"] - 1, events["first_prev"], f"{name} (the link before it)"))
    if source["head_seq"] > 0 and source["head_seq"] != events["last_seq"]:
        found.append(Anchor(source["head_seq"], source["head_hash"], f"{name} (store head at export)"))
    return found


def unfiltered(manifest: dict[str, Any]) -> bool:
    return all(value is None for value in manifest["selection"].values())


class BundleSource:
    """A bundle as a verification source: offline, from its own files only."""

    def __init__(self, path: Path):
        self.path = path
        self.name = f"bundle {path}"
        self._files = BundleFiles(path)
        try:
            self.manifest = read_manifest(self._files)
            self._check_listing()
        except BaseException:
            self._files.close()
            raise
        events, source = self.manifest["events"], self.manifest["source"]
        self.first_seq: int = events["first_seq"]
        self.first_prev: str = events["first_prev"]
        self.selected: frozenset[str] | None = frozenset(self.manifest["sessions"])
        self.recorded_head: tuple[int, str] | None = (source["head_seq"], source["head_hash"])
        self.selection: Selection | None = Selection(**self.manifest["selection"])
        self.unterminated: int | None = None
        """The number of a last line without its newline, once ``rows`` has read it."""

    def _check_listing(self) -> None:
        listed = set(self.manifest["files"])
        present = self._files.names - {MANIFEST}
        missing, extra = sorted(listed - present), sorted(present - listed)
        required = sorted({EVENTS, KEYS, *(f"schemas/{s}" for s in SCHEMAS)} - listed)
        problems = [f"missing {n}" for n in missing] + [f"extra file {n}" for n in extra]
        problems += [f"manifest does not list {n}" for n in required]
        problems += [
            f"unexpected file {n}"
            for n in sorted(listed)
            if n not in required and n not in (EVENTS, KEYS, FHIR, *(f"schemas/{s}" for s in SCHEMAS))
            and not (n.startswith("checklists/") and n.endswith(".json") and n.count("/") == 2)
        ]  # fmt: skip
        if problems:
            raise InvalidInput(
                f"is not a complete bundle: {'; '.join(problems)} (compared with its manifest)",
                file=str(self.path),
            )

    def __reduce__(self) -> tuple[type[BundleSource], tuple[Path]]:
        return BundleSource, (self.path,)

    def close(self) -> None:
        self._files.close()

    def rows(self) -> Iterator[Row]:
        for number, raw, ended in self._files.lines(EVENTS):
            try:
                text: Any = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if not ended:
                self.unterminated = number
            yield number, text, None

    def lookup(self, wanted: dict[str, set[str]]) -> Iterator[dict[str, Any]]:
        hashes = set().union(*wanted.values())
        for _, text, _ in self.rows():
            try:
                event = parse(text)
            except (TypeError, ValueError):
                continue
            if isinstance(event, dict) and event.get("hash") in hashes:
                yield event

    def hash_at(self, seq: int) -> str | None:
        line = seq - self.first_seq + 1
        if line < 1:
            return None
        for number, text, _ in self.rows():
            if number == line:
                try:
                    event = parse(text)
                except (TypeError, ValueError):
                    return None
                return event.get("hash") if isinstance(event, dict) else None
        return None

    def public_keys(self) -> list[RegisteredKey]:
        where = f"{self.path}/{KEYS}"
        try:
            text = self._files.read(KEYS).decode("utf-8")
            if too_deep(text):
                raise ValueError
            listed = json.loads(text)
            return [_registered(entry) for entry in listed]
        except (ValueError, TypeError, KeyError, AttributeError):
            raise InvalidInput("is not a list of keys (see docs/bundle-format.md)", file=where) from None

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

    def damage(self) -> list[Finding]:
        return []  # a bundle's files are checked by their sha256 (F2)

    def after(self, result: Verification) -> Iterator[Finding]:
        """The manifest's own claims, compared with the files and with what the pass found."""
        yield from self._files_hold()
        if self.unterminated is not None:
            yield Finding(None, None, f"{EVENTS} does not end with a newline (its last line is cut)")
        events, source = self.manifest["events"], self.manifest["source"]
        actual = {
            "count": result.events,
            "first_hash": result.first_hash,
            "last_seq": result.last_seq,
            "last_hash": result.head,
        }
        for key, value in actual.items():
            if events[key] != value:
                yield Finding(
                    None, None, f"manifest says events {key} {events[key]!r}, the events file has {value!r}"
                )
        if source["head_seq"] < events["last_seq"]:
            yield Finding(None, None, f"manifest says the store head was seq {source['head_seq']}, before "
                          f"its last event {events['last_seq']}")  # fmt: skip
        if unfiltered(self.manifest) and (
            events["first_seq"] != 1 or (source["head_seq"], source["head_hash"]) != (
                events["last_seq"], events["last_hash"])
        ):  # fmt: skip
            yield Finding(None, None, f"an unfiltered export must hold the whole chain, seq 1 to the "
                          f"store head it recorded (seq {source['head_seq']}); this one holds seq "
                          f"{events['first_seq']}..{events['last_seq']}")  # fmt: skip
        yield from _unpinned(self.manifest["files"], result.pinned)
        yield from self._keys_listed(result)

    def _keys_listed(self, result: Verification) -> Iterator[Finding]:
        """keys.json agrees with the key events in range (those before it are taken from keys.json)."""
        first = self.manifest["events"]["first_seq"]
        listed = {k.key_id: (k.clinician, k.seq) for k in self.public_keys() if k.seq >= first}
        chained = {key: found for key, found in result.registered.items() if found[1] >= first}
        for key in sorted(set(listed) | set(chained)):
            if listed.get(key) != chained.get(key):
                yield Finding(None, None, f"{KEYS} and the key events disagree about key {key[:12]}… "
                              f"(listed: {listed.get(key)}, in the chain: {chained.get(key)})")  # fmt: skip

    def _files_hold(self) -> Iterator[Finding]:
        published = published_schemas()
        for name, recorded in sorted(self.manifest["files"].items()):
            actual = self._files.sha256(name)
            if actual != recorded:
                yield Finding(None, None, f"{name} does not match its sha256 in the manifest")
            if name.startswith("schemas/") and published.get(actual) != name.removeprefix("schemas/"):
                yield Finding(None, None, f"{name} is not a schema cdss published (its sha256 is "
                              f"{actual[:12]}…; see docs/bundle-format.md)")  # fmt: skip


def _registered(entry: dict[str, Any]) -> RegisteredKey:
    """One entry of ``keys.json``; without ``seq`` (older bundles) it stands before the chain.

    Types are checked here: a key before the bundle's range is trusted as listed, and a
    ``retired_seq`` that is not a number would otherwise break the signature check silently.
    """
    public = public_key(entry["public_key"])
    if public is None:
        raise ValueError("public_key")
    for name in ("seq", "retired_seq"):
        if entry.get(name) is not None and type(entry[name]) is not int:
            raise TypeError(name)
    for name in ("endorsed_by", "retired_at", "retired_reason"):
        if entry.get(name) is not None and type(entry[name]) is not str:
            raise TypeError(name)
    return RegisteredKey(
        key_id=str(entry["key_id"]),
        clinician=str(entry["clinician"]),
        public_key=public,
        registered_at=str(entry["registered_at"]),
        name=str(entry.get("name", "")),
        administrator=entry.get("administrator", False) is True,
        seq=int(entry.get("seq", 0)),
        endorsed_by=entry.get("endorsed_by"),
        retired_at=entry.get("retired_at"),
        retired_seq=entry.get("retired_seq"),
        retired_reason=entry.get("retired_reason"),
    )


def _unpinned(files: Iterable[str], pinned: set[tuple[str, str]]) -> Iterator[Finding]:
    for name in sorted(files):
        parts = name.split("/")
        if parts[0] == "checklists" and (parts[1], parts[2].removesuffix(".json")) not in pinned:
            yield Finding(None, None, f"{name} is not pinned by any session started in the bundle")
