"""The shared store: PostgreSQL, for clinics whose workstations share records.

SQLite's WAL must not sit on a network file system, so workstations that
share records talk to a database server the clinic already runs (with its
replication and backups). This store keeps the same contract as the embedded
one, with the guarantees held by the server itself:

- One chain: ``append`` takes a transaction-scoped advisory lock, reads the
  head, runs the caller's ``check`` on what is stored, inserts and commits, all
  in one transaction (two round trips: ``cdss.locked_head`` takes the lock and
  reads what ``check`` needs, the inserts travel with the COMMIT; one while the
  chain is where this connection left it, see ``append``). An advisory lock
  needs no privilege beyond connecting, so a writer role with only INSERT and
  SELECT can take it. Underneath, ``seq`` is the primary key
  and a trigger refuses a row whose ``prev`` is not the hash of the row before
  it, so even a writer that skipped the lock cannot fork the chain.
- Durable when acknowledged: ``synchronous_commit`` is set on for our
  connection, so ``append`` returns only after the server has flushed COMMIT.
- Append-only: triggers refuse UPDATE, DELETE and TRUNCATE; the roles that
  ``cdss store init`` prints have no such privilege either.
- Stored text is the event's canonical RFC 8785 form, as in SQLite (``text``,
  not ``jsonb``, which would reorder members and break the hash).
- Everything lives in the schema ``cdss``: ``meta`` says it is a cdss store,
  ``migrations`` lists the schema versions applied (numbered migrations, run
  under the append lock), ``events`` holds the chain.

Connections go through libpq, so ``sslmode``, service files and the ``PG*``
variables work as usual. A password in the URL is never printed: messages
name the store by ``redacted(url)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from cdss.errors import CdssError, IntegrityError, NotFound, StoreError, StoreUnreachable
from cdss.events import GENESIS, STORE_TYPES, Draft, Event, parse_event, sealed
from cdss.store import Check, DraftSource, Reads, RegisteredKey, SessionRow
from cdss.store.ledger import Admission, Ledger

StoredRow = tuple[Any, Any, Any, Any, Any]
"""(seq, session, type, hash, canonical text); ``cdss.store.StoredRow`` once the contract names it."""

if TYPE_CHECKING:
    import psycopg

URL_SCHEMES = ("postgresql://", "postgres://")
EXTRA = "pip install 'cdss[postgres]'"
APPLICATION = "cdss"
LOCK_KEY = 0x63647373
"""The advisory lock every append takes ("cdss"); one store per database."""
PAGE = 5000
"""Events fetched per round trip when streaming: memory stays flat, no long transaction."""

_INSERT = "INSERT INTO cdss.events (seq, session, type, prev, hash, event) VALUES (%s, %s, %s, %s, %s, %s)"
_PREPARE = (
    "PREPARE cdss_locked_head (text, bigint) AS SELECT part, seq, hash, event FROM cdss.locked_head($1, $2); "
    "PREPARE cdss_insert (bigint, text, text, text, text, text) AS "
    "INSERT INTO cdss.events (seq, session, type, prev, hash, event) VALUES ($1, $2, $3, $4, $5, $6)"
)
"""The statements of every append, planned once per connection rather than once per answer.

Named SQL prepared statements live in the server session, so a pooler in
front of the server must pool by session (PgBouncer's ``pool_mode = session``).
"""
_LOCK = f"SELECT pg_advisory_xact_lock({LOCK_KEY})"
"""Taken by every append, copy and migration, until their transaction ends."""

_REFUSE = """
CREATE FUNCTION cdss.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cdss % are append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$
"""
_LINK = """
CREATE FUNCTION cdss.check_link() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq = 1 THEN
        IF NEW.prev <> repeat('0', 64) THEN
            RAISE EXCEPTION 'cdss event 1 must follow the genesis hash' USING ERRCODE = 'check_violation';
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM cdss.events WHERE seq = NEW.seq - 1 AND hash = NEW.prev) THEN
        RAISE EXCEPTION 'cdss event % does not follow event %', NEW.seq, NEW.seq - 1
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$
"""
_TABLES = ("events", "meta", "migrations")
_SCHEMA_1 = (
    "CREATE TABLE cdss.meta (key text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE cdss.migrations (
        version integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE cdss.events (
        seq bigint PRIMARY KEY CHECK (seq >= 1),
        session text,
        type text NOT NULL,
        prev text NOT NULL,
        hash text NOT NULL UNIQUE,
        event text NOT NULL
    )""",
    "CREATE INDEX events_by_session ON cdss.events (session, seq)",
    "CREATE INDEX events_by_type ON cdss.events (type, session)",
    _REFUSE,
    _LINK,
    *(
        f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON cdss.{table} "
        "FOR EACH ROW EXECUTE FUNCTION cdss.refuse_change()"
        for table in _TABLES
    ),
    *(
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON cdss.{table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION cdss.refuse_change()"
        for table in _TABLES
    ),
    "CREATE TRIGGER events_link BEFORE INSERT ON cdss.events FOR EACH ROW EXECUTE FUNCTION cdss.check_link()",
    f"INSERT INTO cdss.meta (key, value) VALUES ('application', '{APPLICATION}')",
)
_LOCKED_HEAD = f"""
CREATE FUNCTION cdss.locked_head(for_session text, after_seq bigint)
RETURNS TABLE (part text, seq bigint, hash text, event text) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- A volatile function takes a fresh snapshot for each statement, so both
    -- reads start after the lock is granted and see every append before ours.
    PERFORM pg_advisory_xact_lock({LOCK_KEY});
    RETURN QUERY SELECT 'head', e.seq, e.hash, e.event FROM cdss.events e ORDER BY e.seq DESC LIMIT 1;
    IF for_session IS NOT NULL THEN
        RETURN QUERY SELECT 'session', e.seq, e.hash, e.event FROM cdss.events e
            WHERE e.session = for_session AND e.seq > after_seq ORDER BY e.seq;
    END IF;
END $$
"""
_SCHEMA_2 = (_LOCKED_HEAD,)
"""The append lock, the head and the session's newer events in one call: one round trip, not three."""
MIGRATIONS: tuple[Sequence[str], ...] = (_SCHEMA_1, _SCHEMA_2)
"""``MIGRATIONS[n - 1]`` takes the schema from version ``n - 1`` to ``n``. Append, never edit.

Each runs in the transaction that records the new version, under the append
lock, so a store is never half-migrated and no append sees a half schema.
"""
SCHEMA_VERSION = len(MIGRATIONS)


def is_url(location: str) -> bool:
    """Whether a ``--store`` value names a PostgreSQL store rather than a file."""
    return location.startswith(URL_SCHEMES)


def redacted(url: str) -> str:
    """The URL without its password (in the user part or the query), for messages."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}@{host}"
    # Kept as written (not re-encoded), less any password parameter.
    query = "&".join(p for p in parts.query.split("&") if p.partition("=")[0].strip().lower() != "password")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise StoreError(f"a PostgreSQL store needs psycopg: {EXTRA}") from None
    return psycopg


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class PostgresStore:
    """An open connection to a cdss store in a PostgreSQL database.

    ``create`` makes the schema when the database has none (the connecting role
    needs CREATE on the database); otherwise a database without a cdss store is
    refused, so a mistyped URL never leaves tables behind.
    """

    def __init__(self, url: str, *, create: bool = False, read_only: bool = False):
        self.url = url
        self.read_only = read_only
        self.name = f"store {redacted(url)}"
        self._psycopg = _psycopg()
        self._db: psycopg.Connection[Any] | None = None
        self._prepared: psycopg.Connection[Any] | None = None
        self._left: tuple[int, str] | None = None
        """The head as this store's last append left it."""
        self._expecting = False
        """Whether the last append found the chain where this store had left it: then try one round trip."""
        self._connect()
        try:
            self._prepare(create)
        except BaseException:
            self.close()
            raise

    # --- connection ------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        db: psycopg.Connection[Any]
        with self._translated():
            options: dict[str, Any] = {"autocommit": True, "application_name": APPLICATION}
            if "connect_timeout" not in self.url:
                options["connect_timeout"] = 10
            db = self._psycopg.connect(self.url, **options)
            # psycopg's own statement cache answers a ROLLBACK with DEALLOCATE ALL,
            # which would drop ours (_PREPARE); every append prepares what it runs.
            db.prepare_threshold = None
            # Acknowledged means flushed on the server, whatever the server's default.
            db.execute("SET synchronous_commit TO on")
            if self.read_only:
                # The server itself refuses any write on this connection, whatever the role may do.
                db.execute("SET default_transaction_read_only TO on")
            self._db = db
        return db

    @property
    def db(self) -> psycopg.Connection[Any]:
        """The connection, made again if the last one was lost (the caller chose to retry)."""
        if self._db is None or self._db.broken or self._db.closed:
            return self._connect()
        return self._db

    def _one(self, query: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        """The one row an aggregate or catalogue query always returns."""
        row = self.db.execute(query, params).fetchone()
        assert row is not None, query
        return tuple(row)

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """psycopg's errors become one line naming the store (never its password)."""
        psycopg = self._psycopg
        try:
            yield
        except CdssError:
            raise
        except psycopg.errors.InsufficientPrivilege as error:
            raise StoreError(f"{self.name} refused: {_first_line(error)}") from None
        except psycopg.OperationalError as error:
            raise StoreUnreachable(f"{self.name} is unreachable: {_first_line(error)}") from None
        except psycopg.Error as error:
            raise StoreError(f"{self.name} cannot be used: {_first_line(error)}") from None

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # --- schema ----------------------------------------------------------------

    def _version(self) -> int | None:
        """The schema version; None when the database holds no cdss store."""
        db = self.db
        if self._one("SELECT to_regclass('cdss.meta')")[0] is None:
            if db.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'cdss'").fetchone():
                raise StoreError(
                    f"{self.name} has a schema named cdss that is not a cdss store; left unchanged"
                )
            return None
        marker = db.execute("SELECT value FROM cdss.meta WHERE key = 'application'").fetchone()
        if marker is None or marker[0] != APPLICATION:
            raise StoreError(f"{self.name} has a schema named cdss that is not a cdss store; left unchanged")
        if self._one("SELECT to_regclass('cdss.migrations')")[0] is None:
            return 0
        return int(self._one("SELECT coalesce(max(version), 0) FROM cdss.migrations")[0])

    def _prepare(self, create: bool) -> None:
        with self._translated():
            version = self._version()
            if version is None and (not create or self.read_only):
                raise NotFound(
                    f"{self.name} holds no cdss store; `cdss store init URL` creates one "
                    "(with the privileges to create a schema)"
                )
            _check_version(self.name, version or 0)
            if (version is None or version < SCHEMA_VERSION) and not self.read_only:
                self._migrate()

    def _migrate(self) -> None:
        try:
            self._apply_migrations()
        except self._psycopg.errors.InsufficientPrivilege:
            raise StoreError(
                f"{self.name} needs its schema brought to version {SCHEMA_VERSION}, which this role may not "
                "do; run `cdss store init URL` once as the role that owns schema cdss (nothing was changed)"
            ) from None

    def _apply_migrations(self) -> None:
        db = self.db
        with db.transaction():
            db.execute(_LOCK)
            # Another workstation may have created or migrated it while we waited.
            version = self._version()
            _check_version(self.name, version or 0)
            if version is None:
                db.execute("CREATE SCHEMA cdss")
                version = 0
            for number in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[number - 1]:
                    db.execute(statement)
                db.execute("INSERT INTO cdss.migrations (version) VALUES (%s)", (number,))

    def database(self) -> str:
        """The database this store lives in, as the server names it (libpq may have chosen it)."""
        with self._translated():
            return str(self._one("SELECT current_database()")[0])

    def schema_version(self) -> int:
        with self._translated():
            return self._version() or 0

    # --- events ----------------------------------------------------------------

    def append(
        self, *drafts: DraftSource, check: Check | None = None, reads: Reads | None = None
    ) -> list[Event]:
        """One transaction: one round trip while nobody else writes, two when others do, four just after.

        The locked path: ``cdss.locked_head`` takes the lock and reads the head
        and ``reads``; ``check`` runs on the store as seen inside the
        transaction; then the inserts travel with the COMMIT.

        The expecting path, when this connection made the last append, found
        the chain where it had left it, and ``reads`` start after that (a
        clinician answering item after item): ``check`` runs on that state, and
        the lock, the inserts and the COMMIT travel together. If the chain has
        moved meanwhile, the first insert finds its ``seq`` taken (or its
        ``prev`` gone, after a restore), nothing is written, and after a
        ROLLBACK the locked path decides, running ``check`` again. A refusal is
        only ever given by the locked path.

        Each round trip is one simple query of several statements with
        client-side binding (psycopg's ``ClientCursor``, which quotes every
        value); the server runs them in order and stops at the first error, so
        an insert that fails never reaches the COMMIT.
        """
        if self.read_only:
            raise StoreError(f"{self.name} was opened read-only")
        with self._translated():
            cursor = self._cursor()
            try:
                if self._may_expect(drafts, reads):
                    written = self._append_expecting(cursor, drafts, check, reads)
                    if written is not None:
                        return written
                return self._append_locked(cursor, drafts, check, reads)
            except BaseException:
                self._expecting = False
                self._roll_back()
                raise

    def _cursor(self) -> psycopg.ClientCursor[Any]:
        """A cursor on a connection that has ``_PREPARE``'s statements (prepared once per connection)."""
        db = self.db
        if self._prepared is not db:
            db.execute(_PREPARE)
            self._prepared = db
        cursor: psycopg.ClientCursor[Any] = self._psycopg.ClientCursor(db)
        return cursor

    def _may_expect(self, drafts: Sequence[DraftSource], reads: Reads | None) -> bool:
        return (
            self._expecting
            and self._left is not None
            and reads is not None
            and reads.after >= self._left[0]
            and bool(drafts)
            and all(isinstance(d, Draft) and d.type not in STORE_TYPES for d in drafts)
        )

    def _append_expecting(
        self,
        cursor: psycopg.ClientCursor[Any],
        drafts: Sequence[DraftSource],
        check: Check | None,
        reads: Reads | None,
    ) -> list[Event] | None:
        """Append after the head this connection left; None when the chain moved or ``check`` refused."""
        assert self._left is not None
        view = _Locked(self, self._left, None, reads, [])
        if check is not None:
            try:
                check(view)
            except CdssError:
                return None
        written, values = self._sealed(view, drafts)
        try:
            cursor.execute(f"BEGIN; {_LOCK}; {_inserted(len(written))}", values)
        except (self._psycopg.errors.UniqueViolation, self._psycopg.errors.CheckViolation):
            self._expecting = False
            self._roll_back()
            return None
        self._left = (written[-1].seq, written[-1].hash)
        return written

    def _append_locked(
        self,
        cursor: psycopg.ClientCursor[Any],
        drafts: Sequence[DraftSource],
        check: Check | None,
        reads: Reads | None,
    ) -> list[Event]:
        view = self._locked(cursor, reads)
        self._expecting = view.head() == self._left
        if check is not None:
            check(view)
        written, values = self._sealed(view, drafts)
        cursor.execute(_inserted(len(written)), values)
        self._left = (written[-1].seq, written[-1].hash) if written else view.head()
        return written

    def _sealed(self, view: _Locked, drafts: Sequence[DraftSource]) -> tuple[list[Event], list[Any]]:
        """The drafts sealed after ``view``'s head, and the values of their inserts."""
        seq, prev = view.head()
        previous = view.head_event() if drafts and callable(drafts[0]) else None
        admission = Admission(self._store_event_json)
        written: list[Event] = []
        values: list[Any] = []
        for source in drafts:
            draft = source(written[-1] if written else previous) if callable(source) else source
            admission.admit(draft, seq + 1, prev)
            event, text = sealed(draft, seq + 1, prev)
            admission.sealed(event)
            written.append(event)
            values.extend((event.seq, event.session, event.type, event.prev, event.hash, text.decode()))
            seq, prev = event.seq, event.hash
        return written, values

    def _locked(self, cursor: psycopg.ClientCursor[Any], reads: Reads | None) -> _Locked:
        """BEGIN, then ``cdss.locked_head``: the lock, the head and ``reads`` in one round trip."""
        session, after = (None, 0) if reads is None else (reads.session, reads.after)
        cursor.execute("BEGIN; EXECUTE cdss_locked_head(%s, %s)", (session, after))
        cursor.nextset()
        rows = cursor.fetchall()
        head = next(((seq, hash_, text) for part, seq, hash_, text in rows if part == "head"), None)
        newer = sorted((seq, text) for part, seq, _, text in rows if part == "session")
        if head is None:
            return _Locked(self, None, None, reads, newer)
        return _Locked(self, (head[0], head[1]), head[2], reads, newer)

    def _roll_back(self) -> None:
        """End a failed append's transaction; a lost connection has none left to end."""
        db = self._db
        if db is None or db.closed or db.broken:
            return
        if db.info.transaction_status != self._psycopg.pq.TransactionStatus.IDLE:
            try:
                db.execute("ROLLBACK")
            except self._psycopg.Error:
                self.close()

    def _head(self) -> tuple[int, str]:
        row = self.db.execute("SELECT seq, hash FROM cdss.events ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))

    def head(self) -> tuple[int, str]:
        with self._translated():
            return self._head()

    def stored(self, session: str | None = None, *, after: int = 0) -> Iterator[StoredRow]:
        """Events after ``after`` as stored, unparsed: ``(seq, session, type, hash, text)`` in ``seq`` order.

        Pages by ``seq`` rather than holding a cursor open: no transaction stays
        open between pages, and an append in between is safe. Appends commit in
        ``seq`` order under the lock, so no page can skip a row.
        """
        where = "" if session is None else "AND session = %(session)s"
        query = (
            f"SELECT seq, session, type, hash, event FROM cdss.events WHERE seq > %(after)s {where} "
            f"ORDER BY seq LIMIT {PAGE}"
        )
        while True:
            with self._translated():
                page = self.db.execute(query, {"after": after, "session": session}).fetchall()
            for row in page:
                yield tuple(row)
            if len(page) < PAGE:
                return
            after = int(page[-1][0])

    def receive(self, rows: Sequence[StoredRow]) -> None:
        """Append events sealed in another store of the same chain, verbatim (``cdss store copy``).

        One transaction under the append lock; the first row must follow the
        head (the link trigger refuses anything else), so a copy interrupted
        between batches leaves a prefix that the next copy continues.
        """
        if not rows:
            return
        with self._translated():
            db = self.db
            with db.transaction():
                db.execute(_LOCK)
                seq, _ = self._head()
                if int(rows[0][0]) != seq + 1:
                    raise StoreError(f"{self.name} now ends at {seq}; event {rows[0][0]} does not follow it")
                with db.cursor() as cursor:
                    cursor.executemany(
                        _INSERT,
                        [(s, session, kind, _prev(text), h, text) for s, session, kind, h, text in rows],
                    )

    def events(self, session: str | None = None, *, after: int = 0) -> Iterator[Event]:
        for seq, _, _, _, text in self.stored(session, after=after):
            yield _parse(seq, text)

    def sessions(self) -> list[SessionRow]:
        query = """
            SELECT s.session, s.event,
                (SELECT e.type FROM cdss.events e WHERE e.session = s.session
                    AND e.type IN ('session-completed', 'session-abandoned') ORDER BY e.seq LIMIT 1),
                (SELECT e.event::jsonb ->> 'at' FROM cdss.events e WHERE e.session = s.session
                    ORDER BY e.seq DESC LIMIT 1)
            FROM cdss.events s WHERE s.type = 'session-started' ORDER BY s.seq
        """
        statuses = {None: "open", "session-completed": "completed", "session-abandoned": "abandoned"}
        rows = []
        with self._translated():
            found = self.db.execute(query).fetchall()
        for session, text, ended, last_at in found:
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

    def figures(self, cutoff: str) -> dict[str, list[tuple[Any, ...]]]:
        """Report aggregates computed on the server (``cdss.store.figures``), from one snapshot."""
        from cdss.store.figures import plain, postgres_queries

        result = {}
        with self._translated():
            db = self.db
            with db.transaction():
                db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                for name, query in postgres_queries().items():
                    params = {"cutoff": cutoff} if "%(cutoff)s" in query else None
                    result[name] = [plain(row) for row in db.execute(query, params).fetchall()]
        return result

    # Keys and settings are the chain's store events, folded by cdss.store.ledger (RECORD's edit).

    def _store_event_json(self) -> Iterator[dict[str, Any]]:
        rows = self.db.execute("SELECT seq, event FROM cdss.events WHERE session IS NULL ORDER BY seq")
        for seq, text in rows.fetchall():
            yield _parse(seq, text).to_json()

    def keys(self) -> list[RegisteredKey]:
        with self._translated():
            return list(Ledger.of(self._store_event_json()).keys.values())

    def setting(self, name: str) -> str:
        with self._translated():
            return Ledger.of(self._store_event_json()).setting(name)

    def integrity(self, *, thorough: bool = True) -> list[str]:
        """Physical damage the server can see: the indexes must agree with the table.

        Uses ``amcheck`` when the database has it installed; otherwise compares
        what the primary-key index and the table each hold. Not ``thorough``
        (before each write) checks nothing: that is a scan of every row, and the
        server guards its own pages (WAL, checksums when enabled).
        """
        found: list[str] = []
        if not thorough:
            return found
        with self._translated():
            db = self.db
            with db.transaction():
                if db.execute("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'").fetchone():
                    indexes = db.execute(
                        "SELECT indexrelid::regclass::text FROM pg_index "
                        "WHERE indrelid = 'cdss.events'::regclass"
                    ).fetchall()
                    for (index,) in indexes:
                        try:
                            with db.transaction():
                                db.execute("SELECT bt_index_check(%s::regclass, true)", (index,))
                        except self._psycopg.Error as error:
                            found.append(f"index {index} disagrees with the table: {_first_line(error)}")
                db.execute("SET LOCAL enable_seqscan = off")
                by_index = self._one("SELECT count(*), coalesce(max(seq), 0) FROM cdss.events")
                db.execute("SET LOCAL enable_seqscan = on")
                db.execute("SET LOCAL enable_indexscan = off")
                db.execute("SET LOCAL enable_indexonlyscan = off")
                db.execute("SET LOCAL enable_bitmapscan = off")
                by_table = self._one("SELECT count(*), coalesce(max(seq), 0) FROM cdss.events")
        if by_index != by_table:
            found.append(
                f"the events index holds {by_index[0]} rows up to {by_index[1]}, "
                f"the table {by_table[0]} up to {by_table[1]}"
            )
        return found


def _inserted(count: int) -> str:
    """``count`` prepared inserts, then COMMIT: one simple query."""
    return "EXECUTE cdss_insert(%s, %s, %s, %s, %s, %s); " * count + "COMMIT"


class _Locked:
    """The store as ``check`` sees it inside ``append``.

    The head and the declared reads come from the round trip that took the
    lock; every other read goes to the server, inside the same transaction.
    """

    def __init__(
        self,
        store: PostgresStore,
        head: tuple[int, str] | None,
        head_text: str | None,
        reads: Reads | None,
        rows: list[tuple[int, str]],
    ):
        self._store = store
        self._head = head
        self._head_text = head_text
        self._reads = reads
        self._rows = rows

    def head(self) -> tuple[int, str]:
        return (0, GENESIS) if self._head is None else self._head

    def head_event(self) -> Event | None:
        """The last event stored, for a draft built from it; None in an empty store."""
        if self._head is None:
            return None
        assert self._head_text is not None, "the expecting path never builds drafts from the head"
        return _parse(self._head[0], self._head_text)

    def events(self, session: str | None = None, *, after: int = 0) -> Iterator[Event]:
        reads = self._reads
        if reads is not None and session == reads.session and after >= reads.after:
            return (_parse(seq, text) for seq, text in self._rows if seq > after)
        return self._store.events(session, after=after)

    def keys(self) -> list[RegisteredKey]:
        return self._store.keys()

    def setting(self, name: str) -> str:
        return self._store.setting(name)


def _check_version(name: str, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{name} was written by a newer cdss (store schema version {version}; this cdss "
            f"reads up to {SCHEMA_VERSION}); upgrade cdss to use it. cdss left it unchanged"
        )


def _prev(text: str) -> str:
    try:
        return str(json.loads(text)["prev"])
    except (ValueError, KeyError, TypeError, RecursionError):
        return ""


def _parse(seq: int, text: str) -> Event:
    from pydantic import ValidationError

    try:
        return parse_event(json.loads(text))
    except (ValueError, ValidationError) as error:
        raise IntegrityError(f"stored event {seq} is not a valid cdss event: {error}") from None


def _identifier(name: str) -> str:
    from cdss.errors import UsageError

    if not name.replace("_", "").isalnum() or not name.isascii() or name[0].isdigit():
        raise UsageError(f"role name {name!r}: use letters, digits and _ only")
    return f'"{name}"'


def roles_sql(database: str, writer: str = "cdss_writer", auditor: str = "cdss_auditor") -> str:
    """The SQL a database administrator runs to make the two least-privilege roles.

    The writer (the workstations) may read and append, nothing else; the auditor
    may only read. Neither owns a table, so neither can drop a trigger, and
    neither has UPDATE, DELETE or TRUNCATE. Passwords are set by the
    administrator (psql's ``\\password``), never by cdss.
    """
    db, w, a = _identifier(database), _identifier(writer), _identifier(auditor)
    return "\n".join(
        (
            "-- Workstations: read and append events, nothing else.",
            f"CREATE ROLE {w} LOGIN;",
            f"GRANT CONNECT ON DATABASE {db} TO {w};",
            f"GRANT USAGE ON SCHEMA cdss TO {w};",
            f"GRANT SELECT, INSERT ON cdss.events TO {w};",
            f"GRANT EXECUTE ON FUNCTION cdss.locked_head(text, bigint) TO {w};",
            f"GRANT SELECT ON cdss.meta, cdss.migrations TO {w};",
            "-- Auditors: read only.",
            f"CREATE ROLE {a} LOGIN;",
            f"GRANT CONNECT ON DATABASE {db} TO {a};",
            f"GRANT USAGE ON SCHEMA cdss TO {a};",
            f"GRANT SELECT ON cdss.events, cdss.meta, cdss.migrations TO {a};",
            f"-- Then give each a password in psql: \\password {writer}   and   \\password {auditor}",
        )
    )
