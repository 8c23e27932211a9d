"""Looking at a store file and its ``-wal`` without changing a byte of either.

SQLite applies any valid ``-wal`` it finds beside a database the first time the
database is opened for writing, whichever database wrote it: a ``-wal`` left
by a copy, a restore or a sync tool would be checkpointed into the store, and
events lost. So before a store is opened read-write (and before an audit trusts
it) cdss reads the store twice, read-only: once without the ``-wal``
(``immutable``) and once with it (``mode=ro``). The ``-wal`` is vouched for only
when the store it makes is a cdss store of a version this cdss reads and the
store's own last event is still there, unchanged, at the same place: a ``-wal``
only ever adds to what its database holds.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from cdss.errors import StoreError

APPLICATION_ID = 0x63647373  # "cdss"
SQLITE_MAGIC = b"SQLite format 3\x00"
WAL_MAGIC = (0x377F0682, 0x377F0683)
WAL_HEADER = 32


def read_header(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(100)
    except IsADirectoryError:
        raise StoreError(f"store {path} is a folder, not a file") from None
    except OSError as error:
        raise StoreError(f"store {path} cannot be read: {error.strerror}") from None


def foreign(path: Path, what: str) -> StoreError:
    return StoreError(f"{path} is {what}; cdss left it unchanged")


def too_new(path: Path, version: int, known: int, where: str = "") -> StoreError:
    return StoreError(
        f"{path} was written by a newer cdss (store schema version {version}{where}; this cdss "
        f"reads up to {known}); upgrade cdss to use it. cdss left it unchanged"
    )


def check_header(path: Path, header: bytes, known_version: int) -> None:
    """Refuse what is not ours from the raw bytes, before SQLite may write to it."""
    if not header.startswith(SQLITE_MAGIC) or len(header) < 100:
        raise foreign(path, "not a cdss store (not an SQLite database)")
    if int.from_bytes(header[68:72], "big") != APPLICATION_ID:
        raise foreign(path, "an SQLite database but not a cdss store")
    version = int.from_bytes(header[60:64], "big")
    if version > known_version:
        raise too_new(path, version, known_version)


def _wal_path(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def folder_writable(path: Path) -> bool:
    return os.access(path.parent, os.W_OK | os.X_OK)


def read_only_uri(path: Path) -> str:
    """``mode=ro``; on a read-only folder ``immutable`` (SQLite could not make its ``-shm``).

    An immutable read ignores a ``-wal``, so one with content is refused there:
    its events would be missing from the audit.
    """
    uri = path.resolve().as_uri()
    if folder_writable(path):
        return f"{uri}?mode=ro"
    wal = _wal_path(path)
    if wal.exists() and wal.stat().st_size > WAL_HEADER:
        raise StoreError(
            f"store {path} has recent events in {wal.name}, and its folder is read-only, so SQLite "
            "cannot read them; copy the store and its -wal file to a writable folder and audit the copy"
        )
    return f"{uri}?immutable=1"


def _look(uri: str, head_seq: int | None) -> tuple[int, int, str | None, tuple[int, str] | None]:
    """(application id, schema version, marker, (last seq, its hash) or the event at ``head_seq``)."""
    db = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        application_id = int(db.execute("PRAGMA application_id").fetchone()[0])
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if application_id != APPLICATION_ID:
            return application_id, version, None, None
        marker = db.execute("SELECT value FROM meta WHERE key = 'application'").fetchone()
        if head_seq is None:
            row = db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        else:
            row = db.execute("SELECT seq, hash FROM events WHERE seq = ?", (head_seq,)).fetchone()
        head = (int(row[0]), str(row[1])) if row else None
        return application_id, version, marker[0] if marker else None, head
    finally:
        db.close()


def inspect_wal(path: Path, known_version: int) -> None:
    """Refuse a ``-wal`` that does not belong to the store at ``path``; change nothing."""
    wal = _wal_path(path)
    try:
        size = wal.stat().st_size if wal.exists() else 0
    except OSError:
        size = 0
    if size == 0:
        return
    what_to_do = (
        f"cdss left the store and {wal.name} unchanged. If the store was copied or restored, move "
        f"{wal.name} (and any {path.name}-shm) out of the folder, keeping a copy, and run the command "
        "again; if not, keep both files and run `cdss audit verify` on a copy of the folder"
    )
    with wal.open("rb") as handle:
        header = handle.read(WAL_HEADER)
    if len(header) < WAL_HEADER or int.from_bytes(header[:4], "big") not in WAL_MAGIC:
        raise StoreError(f"{wal} beside store {path} is not an SQLite write-ahead log; {what_to_do}")
    store_page = int.from_bytes(read_header(path)[16:18], "big")
    store_page = 65536 if store_page == 1 else store_page
    if int.from_bytes(header[8:12], "big") != store_page:
        raise StoreError(f"{wal} was written by another database (page size differs); {what_to_do}")
    if size <= WAL_HEADER:
        return
    uri = path.resolve().as_uri()
    try:
        _, _, _, alone = _look(f"{uri}?immutable=1", None)
    except sqlite3.DatabaseError:
        alone = None  # mid-checkpoint the file alone may not read; the -wal must then stand on its own
    if not folder_writable(path):
        return  # read_only_uri refuses it with its own message
    try:
        application_id, version, marker, found = _look(f"{uri}?mode=ro", alone[0] if alone else None)
    except sqlite3.DatabaseError as error:
        raise StoreError(
            f"store {path} cannot be read together with {wal.name} ({error}); {what_to_do}"
        ) from None
    if application_id != APPLICATION_ID or marker != "cdss":
        raise StoreError(f"{wal} would turn store {path} into another database; {what_to_do}")
    if version > known_version:
        raise too_new(path, version, known_version, f", in {wal.name}")
    if alone is not None and found != alone:
        raise StoreError(
            f"{wal} does not continue store {path}: with it, the store's event {alone[0]} would "
            f"change or disappear; {what_to_do}"
        )
