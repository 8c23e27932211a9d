"""The embedded default store: one SQLite file, append-only and hash-chained.

Why it is built the way it is:

- WAL with ``synchronous=FULL``: an answer is on disk when ``append`` returns,
  and a reader (``cdss sessions`` in another terminal) never blocks a writer.
- ``BEGIN IMMEDIATE`` around reading the head, running the caller's check and
  inserting: two terminals on one file queue up for the write lock, and the
  second one's check sees what the first one wrote.
- Triggers refuse UPDATE and DELETE on events, so even a slip in cdss's own
  code cannot rewrite history through this connection.
- Nothing is opened read-write before it is vouched for (``cdss.store.wal``):
  the header is read from the raw bytes, and a ``-wal`` file beside the store is
  read without applying it; a foreign or newer file is refused and left as it is.
- Schema changes are numbered migrations under ``BEGIN IMMEDIATE``; creating a
  store is migration 1. Migration 2 moved keys and settings into the chain.
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

from cdss.errors import CdssError, IntegrityError, StoreError
from cdss.events import GENESIS, Event, parse_event, sealed
from cdss.store import (
    DEFAULTS,
    MIGRATION_ACTOR,
    Check,
    DraftSource,
    Reads,
    RegisteredKey,
    SessionRow,
    StoredRow,
)
from cdss.store.ledger import Admission, Ledger
from cdss.store.wal import (
    APPLICATION_ID,
    check_header,
    foreign,
    inspect_wal,
    read_header,
    read_only_uri,
    too_new,
)

ENV_STORE = "CDSS_STORE"
BUSY_TIMEOUT_SECONDS = 30.0
NO_SESSION = ""
"""The ``session`` column of a store event (keys, settings), which has no session."""

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

"""The actor of the events migration 2 writes for keys and settings recorded before they were events."""


def _run(*statements: str) -> Callable[[sqlite3.Connection], None]:
    # Not executescript: it would COMMIT the migration's transaction half-way.
    def migrate(db: sqlite3.Connection) -> None:
        for statement in statements:
            db.execute(statement)

    return migrate


def _keys_into_chain(db: sqlite3.Connection) -> None:
    """Migration 2: every legacy key and setting becomes an event; the old tables become read-only.

    The events record what the tables held, as it was: a clinician with two
    keys gets two registrations, and ``cdss audit verify`` shows the second
    as unendorsed. They carry the migration's time, and the original
    registration time is kept in ``meta``.
    """
    from cdss.events import Draft, KeyRegistered, SettingChanged
    from cdss.signing import public_key_text

    drafts = []
    for key, clinician, public, registered_at in db.execute(
        "SELECT key_id, clinician, public_key, registered_at FROM keys ORDER BY rowid"
    ).fetchall():
        data = KeyRegistered(
            clinician=clinician,
            key_id=key,
            public_key=public_key_text(bytes(public)),
            name=clinician,
            administrator=False,
            endorsed_by=None,
            endorsement=None,
        )
        drafts.append(Draft(None, "key-registered", MIGRATION_ACTOR, data))
        db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (f"key-registered-at:{key}", registered_at))
    for name, value in db.execute("SELECT name, value FROM settings ORDER BY name").fetchall():
        if name in DEFAULTS and value != DEFAULTS[name]:
            drafts.append(
                Draft(
                    None,
                    "setting-changed",
                    MIGRATION_ACTOR,
                    SettingChanged(
                        name=name,
                        value="on" if name == "require-signatures" else value,
                        endorsed_by=None,
                        endorsement=None,
                    ),
                )
            )
    row = db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (0, GENESIS) if row is None else (int(row[0]), str(row[1]))
    for draft in drafts:
        event, text = sealed(draft, seq + 1, prev)
        _insert(db, event, text)
        seq, prev = event.seq, event.hash
    for table in ("keys", "settings"):
        for verb in ("INSERT", "UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER IF NOT EXISTS {table}_read_only_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'cdss {table} now live in the chain: {verb} refused'); END"
            )


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_run(*_SCHEMA_1), _keys_into_chain)
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


def _check_location(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise StoreError(f"cannot create store {path}: folder {folder} does not exist")
    # WAL keeps -wal and -shm files beside the store, so the folder must be writable too.
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(f"cannot write to store {path}: folder {folder} is not writable")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise StoreError(f"cannot write to store {path}: the file is not readable and writable")


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
            f"store {path} cannot be read ({error}); it may be damaged. Keep a copy and run "
            "`cdss audit verify`"
        ) from None


def _insert(db: sqlite3.Connection, event: Event, text: bytes) -> None:
    """Insert a sealed event; ``text`` is its canonical form, from ``sealed``."""
    db.execute(
        "INSERT INTO events (seq, session, type, hash, event) VALUES (?, ?, ?, ?, ?)",
        (event.seq, event.session or NO_SESSION, event.type, event.hash, text.decode()),
    )


class SqliteStore:
    """An open store file. Use ``open_store`` (a context manager), or close it yourself.

    ``read_only`` (for audits and listings) never creates, migrates or writes,
    and works on read-only media.
    """

    def __init__(self, path: Path | str | None = None, *, read_only: bool = False, create: bool = True):
        self.path = Path(path) if path is not None else default_path()
        self.read_only = read_only
        if read_only:
            self._db = open_read_only(self.path)
            self._version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            return
        if not create and not self.path.exists():
            raise StoreError(f"store {self.path} does not exist")
        if path is None and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        _check_location(self.path)
        if self.path.exists() and self.path.stat().st_size > 0:
            check_header(self.path, read_header(self.path), SCHEMA_VERSION)
            inspect_wal(self.path, SCHEMA_VERSION)
        with _translated(self.path):
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
            try:
                self._prepare()
            except BaseException:
                self._db.close()
                raise
        self._version = SCHEMA_VERSION

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
            raise foreign(self.path, "an SQLite database but not a cdss store")
        if version > SCHEMA_VERSION:
            raise too_new(self.path, version, SCHEMA_VERSION)
        marker = db.execute("SELECT value FROM meta WHERE key = 'application'").fetchone()
        if marker is None or marker[0] != "cdss":
            raise foreign(self.path, "not a cdss store (no cdss marker)")
        return int(version)

    def _migrate(self) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise too_new(self.path, version, SCHEMA_VERSION)
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

    # --- writing ----------------------------------------------------------------

    def append(
        self, *drafts: DraftSource, check: Check | None = None, reads: Reads | None = None
    ) -> list[Event]:
        """See ``Store.append``. ``reads`` is not needed here: reading the file costs no round trip."""
        if self.read_only:
            raise StoreError(f"store {self.path} was opened read-only")
        db = self._db
        written: list[Event] = []
        with _translated(self.path):
            db.execute("BEGIN IMMEDIATE")
            try:
                seq, prev = self._head()
                if check is not None:
                    check(self)
                previous = self._event_at(seq) if seq and any(callable(d) for d in drafts) else None
                admission = Admission(self._store_event_json)
                for source in drafts:
                    draft = source(written[-1] if written else previous) if callable(source) else source
                    admission.admit(draft, seq + 1, prev)
                    event, text = sealed(draft, seq + 1, prev)
                    admission.sealed(event)
                    _insert(db, event, text)
                    written.append(event)
                    seq, prev = event.seq, event.hash
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return written

    # --- reading ----------------------------------------------------------------

    def _head(self) -> tuple[int, str]:
        row = self._db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))

    def _event_at(self, seq: int) -> Event:
        row = self._db.execute("SELECT seq, event FROM events WHERE seq = ?", (seq,)).fetchone()
        return _parse(row[0], row[1])

    def head(self) -> tuple[int, str]:
        with _translated(self.path):
            return self._head()

    def events(self, session: str | None = None, *, after: int = 0) -> Iterator[Event]:
        # A cursor fetches row by row, so memory stays flat however long the chain is.
        for seq, _, _, _, text in self.stored(session, after=after):
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
            for seq, session_, kind, hash_, text in cursor:
                yield seq, (session_ if session_ != NO_SESSION else None), kind, hash_, text

    def sessions(self) -> list[SessionRow]:
        # NOT INDEXED: the table is read itself, so a damaged index cannot hide a session.
        query = """
            WITH s AS (
                SELECT session,
                    min(CASE WHEN type = 'session-started' THEN seq END) AS started,
                    min(CASE WHEN type IN ('session-completed', 'session-abandoned') THEN seq END) AS ended,
                    max(seq) AS last
                FROM events NOT INDEXED WHERE session != '' GROUP BY session
            )
            SELECT s.session, st.event, en.type, json_extract(la.event, '$.at')
            FROM s JOIN events AS st NOT INDEXED ON st.seq = s.started
                LEFT JOIN events AS en NOT INDEXED ON en.seq = s.ended
                JOIN events AS la NOT INDEXED ON la.seq = s.last
            ORDER BY s.started
        """
        statuses = {None: "open", "session-completed": "completed", "session-abandoned": "abandoned"}
        rows = []
        with _translated(self.path):
            for session, text, ended, last_at in self._db.execute(query):
                try:
                    started = json.loads(text)
                    data = started["data"]
                    row = SessionRow(
                        id=session,
                        checklist=data["checklist"]["id"],
                        version=data["checklist"]["version"],
                        subject=data["subject"],
                        clinician=data["clinician"],
                        status=statuses[ended],
                        started_at=started["at"],
                        last_at=str(last_at),
                    )
                except (ValueError, KeyError, TypeError, RecursionError):
                    raise IntegrityError(
                        f"store {self.path}: the start of session {session[:12]} cannot be read; "
                        "run `cdss audit verify`"
                    ) from None
                rows.append(row)
        return rows

    # --- keys and settings: derived from the store's events ---------------------

    def _store_event_json(self) -> Iterator[dict[str, Any]]:
        cursor = self._db.execute(
            "SELECT seq, event FROM events WHERE session = ? ORDER BY seq", (NO_SESSION,)
        )
        for seq, text in cursor:
            yield _parse(seq, text).to_json()

    def _ledger(self) -> Ledger:
        with _translated(self.path):
            if self._version < 2:
                return _legacy_ledger(self._db)
            return Ledger.of(self._store_event_json())

    def keys(self) -> list[RegisteredKey]:
        return list(self._ledger().keys.values())

    def setting(self, name: str) -> str:
        return self._ledger().setting(name)

    # --- physical integrity -------------------------------------------------------

    def integrity(self, *, thorough: bool = True) -> list[str]:
        """``PRAGMA integrity_check`` (pages, and every index against the table) or, when not
        ``thorough``, ``quick_check`` (pages only, much faster); each problem as one line."""
        pragma = "integrity_check" if thorough else "quick_check"
        try:
            rows = self._db.execute(f"PRAGMA {pragma}(100)").fetchall()
        except sqlite3.DatabaseError as error:
            return [f"the file cannot be checked: {error}"]
        return [str(row[0]) for row in rows if row[0] != "ok"]


def _legacy_ledger(db: sqlite3.Connection) -> Ledger:
    """Keys and settings of a store not yet migrated (read-only audit of an old store)."""
    ledger = Ledger()
    for n, (key, clinician, public, at) in enumerate(
        db.execute("SELECT key_id, clinician, public_key, registered_at FROM keys ORDER BY rowid"), 1
    ):
        ledger.keys[key] = RegisteredKey(key, clinician, bytes(public), at, name=clinician, seq=-n)
    for name, value in db.execute("SELECT name, value FROM settings"):
        ledger.settings[name] = value
    return ledger


def _parse(seq: int, text: str) -> Event:
    from pydantic import ValidationError

    try:
        return parse_event(json.loads(text))
    except (ValueError, ValidationError, RecursionError) as error:
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
    for writing does, before SQLite reads more than the header; a foreign
    ``-wal`` is refused too. On read-only media the file is opened immutable.
    """
    if not path.exists():
        raise StoreError(f"store {path} does not exist")
    check_header(path, read_header(path), SCHEMA_VERSION)
    inspect_wal(path, SCHEMA_VERSION)
    with _translated(path):
        db = sqlite3.connect(read_only_uri(path), uri=True, isolation_level=None)
        try:
            marker = db.execute("SELECT value FROM meta WHERE key = 'application'").fetchone()
            version = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError:
            db.close()
            raise
        if marker is None or marker[0] != "cdss":
            db.close()
            raise foreign(path, "not a cdss store (no cdss marker)")
        if version > SCHEMA_VERSION:
            db.close()
            raise too_new(path, version, SCHEMA_VERSION)
    return db
