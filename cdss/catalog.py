"""Finding checklists, resolving ``ID[@VERSION]``, hashing, and the release lock.

The catalog is read on every command a clinician types, so listing stays on
plain JSON: the pydantic model and the JSON Schema are imported only when a
checklist is actually loaded or validated.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdss import files, jsonfile
from cdss.errors import InvalidInput, NotFound, UsageError

if TYPE_CHECKING:
    from cdss.checklist import Checklist

LOCK_FILE = "lock.json"
ENV_FOLDERS = "CDSS_CHECKLISTS"
_VERSION_FILE = re.compile(r"^(?P<version>[0-9][0-9A-Za-z.+-]*)\.json$")


def _data_root(name: str) -> Path:
    """Where the shipped ``checklists/`` or ``schemas/`` folder is.

    A wheel carries them inside the package (``cdss/_data``); a source checkout,
    including an editable install, has them beside the package.
    """
    packaged = Path(__file__).parent / "_data" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).parent.parent / name


def shipped_folder() -> Path:
    return _data_root("checklists")


def schema_path(name: str) -> Path:
    return _data_root("schemas") / name


def content_hash(document: dict[str, Any]) -> str:
    """sha256 (hex) of the RFC 8785 canonical form: formatting never changes it.

    The one definition of a content hash in cdss: checklist versions, events and
    checkpoints are all hashed this way.
    """
    import hashlib

    import rfc8785

    return hashlib.sha256(rfc8785.dumps(document)).hexdigest()


def version_key(version: str) -> tuple[Any, ...]:
    """Semantic-versioning precedence: 1.10.0 > 1.9.0 > 1.9.0-rc.1; build metadata ignored."""
    core, _, pre = version.split("+", 1)[0].partition("-")
    numbers = tuple(int(part) if part.isdigit() else -1 for part in core.split("."))
    if not pre:
        return (numbers, 1, ())
    fields = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (numbers, 0, fields)


def is_prerelease(version: str) -> bool:
    return "-" in version.split("+", 1)[0]


@dataclass(frozen=True)
class Entry:
    """One checklist version on disk, not yet read."""

    id: str
    version: str
    path: Path
    folder: Path

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"


def split_ref(ref: str) -> tuple[str, str | None]:
    """``'consent@1.0.0'`` -> ``('consent', '1.0.0')``; ``'consent'`` -> ``('consent', None)``."""
    checklist_id, sep, version = ref.partition("@")
    if not checklist_id or (sep and not version):
        raise UsageError(f"{ref!r} is not a checklist reference; expected ID or ID@VERSION")
    return checklist_id, version or None


class Catalog:
    """The checklists cdss can see: the shipped ones plus extra folders.

    Extra folders come from ``--checklists`` or ``CDSS_CHECKLISTS`` (separated
    by the platform's path separator) and use the same layout,
    ``<folder>/<id>/<version>.json``.
    """

    def __init__(self, folders: Sequence[Path]):
        self.folders = list(dict.fromkeys(folders))
        self._entries: dict[str, dict[str, Entry]] | None = None

    @classmethod
    def default(cls, extra: Iterable[Path] = ()) -> Catalog:
        from_env = [Path(p) for p in os.environ.get(ENV_FOLDERS, "").split(os.pathsep) if p]
        return cls([shipped_folder(), *from_env, *extra])

    def _scan(self) -> dict[str, dict[str, Entry]]:
        if self._entries is None:
            found: dict[str, dict[str, Entry]] = {}
            for folder in self.folders:
                if not folder.is_dir():
                    raise UsageError(f"checklists folder {folder} does not exist")
                for entry in scan_folder(folder):
                    found.setdefault(entry.id, {}).setdefault(entry.version, entry)
            self._entries = found
        return self._entries

    def ids(self) -> list[str]:
        return sorted(self._scan())

    def entries(self) -> Iterator[Entry]:
        for checklist_id in self.ids():
            yield from self.versions(checklist_id)

    def versions(self, checklist_id: str) -> list[Entry]:
        """All versions of a checklist, oldest first."""
        by_version = self._scan().get(checklist_id)
        if not by_version:
            known = ", ".join(self.ids()) or "none"
            raise NotFound(f"no checklist {checklist_id!r}; known checklists: {known}")
        return sorted(by_version.values(), key=lambda e: version_key(e.version))

    def resolve(self, ref: str) -> Entry:
        """``ID`` -> the newest released version; ``ID@VERSION`` -> exactly that one."""
        checklist_id, version = split_ref(ref)
        versions = self.versions(checklist_id)
        if version is None:
            released = [e for e in versions if not is_prerelease(e.version)]
            return (released or versions)[-1]
        for entry in versions:
            if entry.version == version:
                return entry
        known = ", ".join(e.version for e in versions)
        raise NotFound(f"checklist {checklist_id!r} has no version {version}; versions: {known}")

    def read(self, ref: str) -> tuple[Entry, dict[str, Any]]:
        """The raw JSON of a version, for fast paths that need no validation."""
        entry = self.resolve(ref)
        return entry, jsonfile.read(entry.path)

    def load(self, ref: str) -> Checklist:
        """Resolve, read and fully validate a checklist; every problem raises together."""
        return load_file(self.resolve(ref).path)


def scan_folder(folder: Path) -> Iterator[Entry]:
    """``<folder>/<id>/<version>.json`` files, in a stable order."""
    for sub in sorted(folder.iterdir()):
        if not sub.is_dir() or sub.name.startswith((".", "_")):
            continue
        for path in sorted(sub.iterdir()):
            match = _VERSION_FILE.match(path.name)
            if match and path.is_file():
                yield Entry(sub.name, match["version"], path, folder)


def load_file(path: Path, *, documents: Path | None = None) -> Checklist:
    """Load one checklist file, checked against schema, model and semantics.

    Raises ``InvalidInput`` carrying every issue found in the file.
    """
    from cdss.validation import check_file

    checklist, issues = check_file(path, documents=documents)
    if issues or checklist is None:
        count = len(issues)
        raise InvalidInput(
            f"is not a valid checklist ({count} problem{'s' if count != 1 else ''})",
            issues=issues,
            file=str(path),
        )
    return checklist


# --- the release lock -------------------------------------------------------------


def read_lock(folder: Path) -> dict[str, dict[str, str]]:
    """``{id: {version: sha256}}`` from ``<folder>/lock.json``; empty when there is none."""
    path = folder / LOCK_FILE
    if not path.exists():
        return {}
    raw = jsonfile.read(path)
    released = raw.get("released")
    shape_ok = set(raw) <= {"$comment", "released"} and isinstance(released, dict)
    if shape_ok:
        assert isinstance(released, dict)
        for versions in released.values():
            if not isinstance(versions, dict) or not all(
                isinstance(h, str) and re.fullmatch("[0-9a-f]{64}", h) for h in versions.values()
            ):
                shape_ok = False
    if not shape_ok:
        raise InvalidInput('expected {"released": {ID: {VERSION: SHA256}}}', file=str(path), pointer="")
    assert isinstance(released, dict)
    return released


def write_lock(folder: Path, released: dict[str, dict[str, str]]) -> None:
    """Rewrite the lock atomically, sorted so that diffs stay small."""
    import json

    ordered = {
        checklist_id: dict(sorted(versions.items(), key=lambda kv: version_key(kv[0])))
        for checklist_id, versions in sorted(released.items())
    }
    body = {
        "$comment": "Released checklist versions and their content hashes. "
        "Written by `cdss release`; never edit a released version, publish a new one.",
        "released": ordered,
    }
    path = folder / LOCK_FILE
    files.write_text(path, json.dumps(body, indent=2) + "\n")


def release(entry: Entry) -> str:
    """Record a valid version's hash in its folder's lock; refuse to change a released one."""
    checklist = load_file(entry.path)
    digest = content_hash(checklist.to_json())
    released = read_lock(entry.folder)
    locked = released.get(entry.id, {}).get(entry.version)
    if locked == digest:
        return digest
    if locked is not None:
        raise InvalidInput(
            f"{entry.ref} is already released with hash {locked[:12]}…; its content now "
            f"hashes to {digest[:12]}…. Released versions never change: publish a new version",
            file=str(entry.path),
        )
    released.setdefault(entry.id, {})[entry.version] = digest
    write_lock(entry.folder, released)
    return digest
