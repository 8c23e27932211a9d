"""The embedded default store: one SQLite file, append-only and hash-chained.

Why it is built the way it is:

- WAL with ``synchronous=FULL``: an answer is on disk when ``append`` returns,
  and a reader (``cdss sessions`` in another terminal) never blocks a writer.
- ``BEGIN IMMEDIATE`` around reading the head and inserting: two terminals on
  one file queue up for the write lock instead of forking the chain.
- Triggers refuse UPDATE and DELETE on events and keys, so even a slip in
  cdss's own code cannot rewrite history through this connection.
- The file says what it is twice: ``PRAGMA application_id`` in the header
  (checked from the raw bytes before SQLite may touch the file) and a ``meta``
  table. A file that is not a cdss store, or comes from a newer cdss, is
  refused before anything is written to it.
- Schema changes are numbered migrations; creating a store is migration 1.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from cdss.errors import CdssError, IntegrityError, InvalidInput, StoreError
from cdss.events import GENESIS, Event, now, parse_event, seal
from cdss.store import DraftSource, RegisteredKey, SessionRow, StoredRow
from cdss.store import key_id as key_id_of

ENV_STORE = "CDSS_STORE"
APPLICATION_ID = 0x63647373  # "cdss"
BUSY_TIMEOUT_SECONDS = 30.0
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA_1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        session TEXT NOT NULL,
        type TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        event TEXT NOT NULL
    )""",
    "CREATE INDEX events_by_session ON events (session, seq)",
    "CREATE INDEX events_by_type ON events (type, session)",
    "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    """CREATE TABLE keys (
        key_id TEXT PRIMARY KEY,
        clinician TEXT NOT NULL,
        public_key BLOB NOT NULL,
        registered_at TEXT NOT NULL
    )""",
    *(
        f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'cdss {table} are append-only: {verb} refused'); END"
        for table in ("events", "keys")
        for verb in ("UPDATE", "DELETE")
    ),
    "INSERT INTO meta (key, value) VALUES ('application', 'cdss')",
)


def _run(*statements: str) -> Callable[[sqlite3.Connection], None]:
    # Not executescript: it would COMMIT the migration's transaction half-way.
    def migrate(db: sqlite3.Connection) -> None:
        for statement in statements:
            db.execute(statement)

    return migrate


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_run(*_SCHEMA_1),)
"""``MIGRATIONS[n - 1]`` takes a store from schema version ``n - 1`` to ``n``.

Each runs inside the same ``BEGIN IMMEDIATE`` transaction that records the new
version, so a store is never left half-migrated. Append, never edit.
"""
SCHEMA_VERSION = len(MIGRATIONS)


def default_path() -> Path:
    """``CDSS_STORE``, else ``records.sqlite3`` in the user's data folder."""
    from_env = os.environ.get(ENV_STORE)
    if from_env:
        return Path(from_env)
    import platformdirs

    return platformdirs.user_data_path("cdss", appauthor=False) / "records.sqlite3"


def _read_header(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(100)
    except IsADirectoryError:
        raise StoreError(f"store {path} is a folder, not a file") from None
    except OSError as error:
        raise StoreError(f"store {path} cannot be read: {error.strerror}") from None


def _foreign(path: Path, what: str) -> StoreError:
    return StoreError(f"{path} is {what}; cdss left it unchanged")


def _check_header(path: Path, header: bytes) -> None:
    """Refuse what is not ours from the raw bytes, before SQLite may write to it."""
    if not header.startswith(_SQLITE_MAGIC) or len(header) < 100:
        raise _foreign(path, "not a cdss store (not an SQLite database)")
    application_id = int.from_bytes(header[68:72], "big")
    version = int.from_bytes(header[60:64], "big")
    if application_id != APPLICATION_ID:
        raise _foreign(path, "an SQLite database but not a cdss store")
    _check_version(path, version)


def _check_version(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer cdss (store schema version {version}; this cdss "
            f"reads up to {SCHEMA_VERSION}); upgrade cdss to use it. cdss left it unchanged"
        )


def _check_location(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise StoreError(f"cannot create store {path}: folder {folder} does not exist")
    # WAL keeps -wal and -shm files beside the store, so the folder must be writable too.
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(f"cannot use store {path}: folder {folder} is not writable")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise StoreError(f"cannot use store {path}: the file is not readable and writable")


@contextmanager
def _translated(path: Path) -> Iterator[None]:
    """SQLite's own errors become one StoreError naming the file."""
    try:
        yield
    except CdssError:
        raise
    except sqlite3.OperationalError as error:
        if "locked" in str(error) or "busy" in str(error):
            raise StoreError(
                f"store {path} stayed locked by another cdss for {BUSY_TIMEOUT_SECONDS:.0f} s; try again"
            ) from None
        raise StoreError(f"store {path} cannot be used: {error}") from None
    except sqlite3.DatabaseError as error:
        raise StoreError(
            f"store {path} cannot be read ({error}); it may be damaged. Keep a copy and run an audit"
        ) from None


class SqliteStore:
    """An open store file. Use ``open_store`` (a context manager), or close it yourself."""

    def __init__(self, path: Path | str | None = None, *, read_only: bool = False):
        self.path = Path(path) if path is not None else default_path()
        if read_only:  # for audits: never creates, migrates or writes
            self._db = open_read_only(self.path)
            return
        if path is None and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        _check_location(self.path)
        if self.path.exists() and self.path.stat().st_size > 0:
            _check_header(self.path, _read_header(self.path))
        with _translated(self.path):
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
            try:
                self._prepare()
            except BaseException:
                self._db.close()
                raise

    def _prepare(self) -> None:
        db = self._db
        db.execute("PRAGMA foreign_keys = ON")
        version = self._verify_identity()
        if version < SCHEMA_VERSION:
            self._migrate()
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")

    def _verify_identity(self) -> int:
        """Read-only checks: an empty file becomes a store; anything else must already be one."""
        db = self._db
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
        if application_id == 0 and version == 0 and tables == 0:
            return 0
        if application_id != APPLICATION_ID:
            raise _foreign(self.path, "an SQLite database but not a cdss store")
        _check_version(self.path, version)
        marker = db.execute("SELECT value FROM meta WHERE key = 'application'").fetchone()
        if marker is None or marker[0] != "cdss":
            raise _foreign(self.path, "not a cdss store (no cdss marker)")
        return int(version)

    def _migrate(self) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            _check_version(self.path, version)
            for number in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[number - 1](db)
                db.execute(f"PRAGMA user_version = {number}")
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # --- report aggregates and copies (cdss.store.figures, cdss.store.copying) -----

    def figures(self, cutoff: str) -> dict[str, list[tuple[Any, ...]]]:
        """Report aggregates by SQLite's JSON functions (``cdss.store.figures``)."""
        from cdss.store.figures import sqlite_figures

        with _translated(self.path):
            return sqlite_figures(self._db, cutoff)

    def receive(self, rows: Sequence[StoredRow]) -> None:
        """Append events sealed in another store of the same chain, verbatim (``cdss store copy``).

        One transaction; the first row must follow the head (``copy_store`` has
        checked that each later row follows the one before it).
        """
        if not rows:
            return
        db = self._db
        with _translated(self.path):
            db.execute("BEGIN IMMEDIATE")
            try:
                seq, prev = self._head()
                if int(rows[0][0]) != seq + 1 or json.loads(rows[0][4]).get("prev") != prev:
                    raise StoreError(
                        f"store {self.path} now ends at {seq}; event {rows[0][0]} does not follow it"
                    )
                db.executemany(
                    "INSERT INTO events (seq, session, type, hash, event) VALUES (?, ?, ?, ?, ?)",
                    # A store event (no session) is filed under the empty session.
                    [
                        (q, "" if session is None else session, kind, h, text)
                        for q, session, kind, h, text in rows
                    ],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # --- context manager -------------------------------------------------------

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    # --- events ----------------------------------------------------------------

    def append(self, *drafts: DraftSource) -> list[Event]:
        db = self._db
        sealed: list[Event] = []
        with _translated(self.path):
            db.execute("BEGIN IMMEDIATE")
            try:
                seq, prev = self._head()
                previous = self._event_at(seq) if drafts and callable(drafts[0]) and seq else None
                for source in drafts:
                    draft = source(sealed[-1] if sealed else previous) if callable(source) else source
                    event = seal(draft, seq + 1, prev)
                    db.execute(
                        "INSERT INTO events (seq, session, type, hash, event) VALUES (?, ?, ?, ?, ?)",
                        (event.seq, event.session, event.type, event.hash, event.canonical().decode()),
                    )
                    sealed.append(event)
                    seq, prev = event.seq, event.hash
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return sealed

    def _head(self) -> tuple[int, str]:
        row = self._db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))

    def _event_at(self, seq: int) -> Event:
        row = self._db.execute("SELECT seq, event FROM events WHERE seq = ?", (seq,)).fetchone()
        return _parse(row[0], row[1])

    def head(self) -> tuple[int, str]:
        with _translated(self.path):
            return self._head()

    def events(self, session: str | None = None) -> Iterator[Event]:
        # A cursor fetches row by row, so memory stays flat however long the chain is.
        with _translated(self.path):
            if session is None:
                cursor = self._db.execute("SELECT seq, event FROM events ORDER BY seq")
            else:
                cursor = self._db.execute(
                    "SELECT seq, event FROM events WHERE session = ? ORDER BY seq", (session,)
                )
            for seq, text in cursor:
                yield _parse(seq, text)

    def stored(self, session: str | None = None, *, after: int = 0) -> Iterator[StoredRow]:
        columns = "SELECT seq, session, type, hash, event FROM events"
        with _translated(self.path):
            if session is None:
                cursor = self._db.execute(f"{columns} WHERE seq > ? ORDER BY seq", (after,))
            else:
                cursor = self._db.execute(
                    f"{columns} WHERE session = ? AND seq > ? ORDER BY seq", (session, after)
                )
            yield from cursor

    def sessions(self) -> list[SessionRow]:
        query = """
            SELECT s.session, s.event,
                (SELECT e.type FROM events e WHERE e.session = s.session
                    AND e.type IN ('session-completed', 'session-abandoned') ORDER BY e.seq LIMIT 1),
                (SELECT json_extract(e.event, '$.at') FROM events e WHERE e.session = s.session
                    ORDER BY e.seq DESC LIMIT 1)
            FROM events s WHERE s.type = 'session-started' ORDER BY s.seq
        """
        statuses = {None: "open", "session-completed": "completed", "session-abandoned": "abandoned"}
        rows = []
        with _translated(self.path):
            for session, text, ended, last_at in self._db.execute(query):
                started = json.loads(text)
                data = started["data"]
                rows.append(
                    SessionRow(
                        id=session,
                        checklist=data["checklist"]["id"],
                        version=data["checklist"]["version"],
                        subject=data["subject"],
                        clinician=data["clinician"],
                        status=statuses[ended],
                        started_at=started["at"],
                        last_at=last_at,
                    )
                )
        return rows

    # --- settings and keys -----------------------------------------------------

    def setting(self, name: str) -> str | None:
        with _translated(self.path):
            row = self._db.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, name: str, value: str) -> None:
        with _translated(self.path):
            self._db.execute("INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)", (name, value))

    def register_key(self, key_id: str, clinician: str, public_key: bytes) -> None:

        if key_id_of(public_key) != key_id:
            raise InvalidInput(f"key id {key_id} is not the sha256 of the public key given")
        with _translated(self.path):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT clinician FROM keys WHERE key_id = ?", (key_id,)).fetchone()
                if row is None:
                    self._db.execute(
                        "INSERT INTO keys (key_id, clinician, public_key, registered_at) VALUES (?, ?, ?, ?)",
                        (key_id, clinician, public_key, now()),
                    )
                elif row[0] != clinician:
                    raise StoreError(f"key {key_id[:12]}… is already registered to {row[0]}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def public_keys(self) -> list[RegisteredKey]:
        with _translated(self.path):
            rows = self._db.execute(
                "SELECT key_id, clinician, public_key, registered_at FROM keys ORDER BY rowid"
            ).fetchall()
        return [RegisteredKey(str(k), str(c), bytes(p), str(at)) for k, c, p, at in rows]


def _parse(seq: int, text: str) -> Event:
    from pydantic import ValidationError

    try:
        return parse_event(json.loads(text))
    except (ValueError, ValidationError) as error:
        raise IntegrityError(f"stored event {seq} is not a valid cdss event: {error}") from None


@contextmanager
def open_store(path: Path | str | None = None) -> Iterator[SqliteStore]:
    """Open (creating if needed) the store at ``path``, or the default one; close it afterwards."""
    store = SqliteStore(path)
    try:
        yield store
    finally:
        store.close()


def open_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection for audits: never creates, migrates or writes a store.

    Refuses a missing file and anything that is not a cdss store, as opening
    for writing does, before SQLite reads more than the header.
    """
    if not path.exists():
        raise StoreError(f"store {path} does not exist")
    _check_header(path, _read_header(path))
    with _translated(path):
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
        try:
            marker = db.execute("SELECT value FROM meta WHERE key = 'application'").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        if marker is None or marker[0] != "cdss":
            db.close()
            raise _foreign(path, "not a cdss store (no cdss marker)")
    return db
