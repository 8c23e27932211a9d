"""The PostgreSQL store against a real, private server: the same contract, held by the database.

Every test gets a fresh database on one throw-away server (tests/postgres_server.py);
tests that stop or break the server get one of their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cdss.errors import NotFound, SessionStateError, StoreError
from cdss.events import GENESIS, Answered, DeclaredContext, Draft, PinnedChecklist, Started, check_chain
from cdss.store import Reads
from cdss.store.postgres import MIGRATIONS, SCHEMA_VERSION, PostgresStore, redacted, roles_sql
from tests.postgres_server import (
    PostgresServer,
    database_of,
    postgres_cluster,
    postgres_server,
    postgres_url,
    private_postgres,
)

__all__ = [
    "postgres_cluster",
    "postgres_server",
    "postgres_url",
    "private_postgres",
]  # fixtures, used by name


def started(session: str, clinician: str = "dr-lee") -> Draft:
    data = Started(
        checklist=PinnedChecklist(id="example-walk", version="1.0.0", hash="ab" * 32),
        subject="S-7F3K2M9Q1",
        context=DeclaredContext(route=None, populations=[]),
        clinician=clinician,
    )
    return Draft(session, "session-started", clinician, data)


def answered(session: str, item: str = "setting-confirmed") -> Draft:
    return Draft(session, "item-answered", "dr-lee", Answered(item=item, status="done"))


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    with PostgresStore(postgres_url, create=True) as opened:
        yield opened


def test_append_chains_events_and_reads_them_back(store: PostgresStore) -> None:
    session = uuid.uuid4().hex
    assert store.head() == (0, GENESIS)
    first = store.append(started(session))
    rest = store.append(answered(session, "a"), answered(session, "b"))
    assert [e.seq for e in first + rest] == [1, 2, 3]
    assert store.head() == (3, rest[-1].hash)
    stored = list(store.events())
    assert stored == first + rest
    check_chain(stored)
    assert [e.seq for e in store.events(session, after=1)] == [2, 3]
    assert [row.id for row in store.sessions()] == [session]
    assert store.sessions()[0].status == "open"
    assert store.integrity() == []


def test_a_refusing_check_writes_nothing(store: PostgresStore) -> None:
    session = uuid.uuid4().hex
    store.append(started(session))

    def refuse(view: object) -> None:
        raise SessionStateError("answered in another terminal")

    with pytest.raises(SessionStateError):
        store.append(answered(session), check=refuse)
    assert store.head()[0] == 1


def test_a_database_without_a_store_is_not_created_unless_asked(postgres_url: str) -> None:
    with pytest.raises(NotFound, match="cdss store init"):
        PostgresStore(postgres_url)
    with PostgresStore(postgres_url, create=True) as created:
        assert created.schema_version() == SCHEMA_VERSION
    with PostgresStore(postgres_url) as opened:
        assert opened.head() == (0, GENESIS)


def test_a_newer_schema_and_a_foreign_schema_are_refused(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    PostgresStore(postgres_url, create=True).close()
    with postgres_server.admin(database_of(postgres_url)) as db:
        db.execute("INSERT INTO cdss.migrations (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer cdss"):
        PostgresStore(postgres_url)
    other = postgres_server.new_database()
    with postgres_server.admin(database_of(other)) as db:
        db.execute("CREATE SCHEMA cdss")
    with pytest.raises(StoreError, match="not a cdss store"):
        PostgresStore(other, create=True)


def test_a_store_made_by_the_first_release_is_brought_up_to_date_by_its_owner_only(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """Schema version 1 (no ``cdss.locked_head``): the owner's next connection migrates it, a writer's is refused."""
    database = database_of(postgres_url)
    session = uuid.uuid4().hex
    with postgres_server.admin(database) as db:
        db.execute("CREATE SCHEMA cdss")
        for statement in MIGRATIONS[0]:
            db.execute(statement)
        db.execute("INSERT INTO cdss.migrations (version) VALUES (1)")
        writer, auditor = f"w_{uuid.uuid4().hex[:12]}", f"a_{uuid.uuid4().hex[:12]}"
        for statement in roles_sql(database, writer, auditor).split(";"):
            if statement.strip() and "locked_head" not in statement and "-- Then" not in statement:
                db.execute(statement)
    with pytest.raises(StoreError, match=r"version 2.*`cdss store init URL` once as the role that owns"):
        PostgresStore(postgres_server.url(database, user=writer))
    with postgres_server.admin(database) as db:
        assert db.execute("SELECT max(version) FROM cdss.migrations").fetchone() == (1,)
    with PostgresStore(postgres_url) as owner:
        assert owner.schema_version() == SCHEMA_VERSION == 2
        owner.append(started(session))
    with PostgresStore(postgres_server.url(database, user=writer)) as store:
        store.append(answered(session, "a"), check=lambda view: None)
        assert [e.type for e in store.events(session)] == ["session-started", "item-answered"]


@pytest.mark.parametrize(
    "statement",
    ["UPDATE cdss.events SET type = 'x'", "DELETE FROM cdss.events", "TRUNCATE cdss.events"],
)
def test_triggers_refuse_rewriting_history_even_to_the_owner(
    postgres_server: PostgresServer, store: PostgresStore, statement: str
) -> None:
    import psycopg

    store.append(started(uuid.uuid4().hex))
    with psycopg.connect(store.url, autocommit=True) as db, pytest.raises(psycopg.Error, match="append-only"):
        db.execute(statement)
    assert store.head()[0] == 1


def test_a_row_that_does_not_follow_the_head_is_refused(store: PostgresStore) -> None:
    import psycopg

    store.append(started(uuid.uuid4().hex))
    with (
        psycopg.connect(store.url, autocommit=True) as db,
        pytest.raises(psycopg.Error, match="does not follow"),
    ):
        db.execute(
            "INSERT INTO cdss.events (seq, session, type, prev, hash, event) VALUES (2, 's', 't', %s, %s, '{}')",
            (GENESIS, "f" * 64),
        )


def test_the_writer_role_may_append_but_never_rewrite(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    import psycopg

    with PostgresStore(postgres_url, create=True) as created:
        database = created.database()
        created.append(started(uuid.uuid4().hex))
    writer, auditor = f"w_{uuid.uuid4().hex[:12]}", f"a_{uuid.uuid4().hex[:12]}"
    with postgres_server.admin(database) as db:
        for statement in roles_sql(database, writer, auditor).split(";"):
            if statement.strip() and not statement.strip().startswith("-- Then"):
                db.execute(statement)
    as_writer = postgres_server.url(database, user=writer)
    with PostgresStore(as_writer) as store:
        store.append(answered(store.sessions()[0].id))
        assert store.head()[0] == 2
    with psycopg.connect(as_writer, autocommit=True) as db:
        for statement in (
            "UPDATE cdss.events SET type = 'x'",
            "DELETE FROM cdss.events",
            "TRUNCATE cdss.events",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                db.execute(statement)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("DROP TRIGGER events_no_change ON cdss.events")
    with PostgresStore(postgres_server.url(database, user=auditor)) as store:
        assert store.head()[0] == 2
        with pytest.raises(StoreError, match="refused"):
            store.append(answered(store.sessions()[0].id, "b"))


def locked_head_calls(server: PostgresServer, database: str) -> int:
    """How often ``cdss.locked_head`` ran, once the closed connections have reported their statistics."""
    deadline = time.monotonic() + 10
    with server.admin(database) as db:
        while True:
            db.execute("SELECT pg_stat_clear_snapshot()")
            row = db.execute(
                "SELECT calls FROM pg_stat_user_functions WHERE schemaname = 'cdss' AND funcname = 'locked_head'"
            ).fetchone()
            busy = db.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchone()
            if (row is not None and busy == (0,)) or time.monotonic() > deadline:
                return 0 if row is None else int(row[0])
            time.sleep(0.05)


def test_answers_in_a_row_take_one_round_trip_and_a_moved_chain_is_decided_under_the_lock(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """The expecting path: right while nobody else writes, never wrong when somebody does."""
    session = uuid.uuid4().hex
    counted = postgres_url + "&options=-c%20track_functions%3Dpl"
    seen: list[list[str]] = []

    def not_answered(item: str, after: int) -> Any:
        def check(view: Any) -> None:
            items = [e.data.item for e in view.events(session, after=after) if e.type == "item-answered"]
            seen.append(items)
            if item in items:
                raise SessionStateError(f"{item} was answered in another terminal")

        return check

    with PostgresStore(counted, create=True) as here, PostgresStore(postgres_url) as there:
        last = here.append(started(session))[0].seq
        for n in range(10):
            last = here.append(
                answered(session, f"i{n}"), check=not_answered(f"i{n}", last), reads=Reads(session, last)
            )[0].seq
        assert len(seen) == 10
        there.append(answered(session, "x"))
        seen.clear()
        moved = here.append(
            answered(session, "y"), check=not_answered("y", last), reads=Reads(session, last)
        )[0]
        assert seen == [[], ["x"]]  # on the state it had left, then under the lock
        assert moved.seq == last + 2
        there.append(answered(session, "z"))
        with pytest.raises(SessionStateError, match="another terminal"):
            here.append(
                answered(session, "z"), check=not_answered("z", moved.seq), reads=Reads(session, moved.seq)
            )
        assert [e.data.item for e in there.events(session) if e.type == "item-answered"][-3:] == [
            "x",
            "y",
            "z",
        ]
        assert list(check_chain(there.events())) == []
    assert 3 <= locked_head_calls(postgres_server, database_of(postgres_url)) <= 5  # two to start, two moves


def test_messages_never_show_the_password() -> None:
    url = "postgresql://clinic:s3cret@db.example/records?sslmode=require&password=s3cret"
    assert "s3cret" not in redacted(url)
    assert redacted(url) == "postgresql://clinic@db.example/records?sslmode=require"


def test_an_unreachable_server_is_one_line_without_the_password(tmp_path: object) -> None:
    from cdss.errors import StoreUnreachable

    url = f"postgresql://clinic:s3cret@/records?host={tmp_path}&connect_timeout=2"
    with pytest.raises(StoreUnreachable) as caught:
        PostgresStore(url)
    assert "s3cret" not in str(caught.value)
    assert "\n" not in str(caught.value)


def test_without_psycopg_a_url_names_the_extra() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["psycopg"] = None
        from cdss.errors import StoreError
        from cdss.store.postgres import PostgresStore
        try:
            PostgresStore("postgresql:///records")
        except StoreError as error:
            print(error)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    assert done.stdout.strip() == "a PostgreSQL store needs psycopg: pip install 'cdss[postgres]'"


# --- many writers, killed clients, a server stopped abruptly ---------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, uuid
    from cdss.store.postgres import PostgresStore
    from tests.test_store_postgres import answered, started

    url, count = sys.argv[1], int(sys.argv[2])
    session = uuid.uuid4().hex
    with PostgresStore(url) as store:
        store.append(started(session))
        for n in range(count):
            event = store.append(answered(session, f"item-{n}"))[0]
            print(event.seq, event.hash, flush=True)
    """
)


def python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )


def test_ten_processes_answering_at_once_keep_one_valid_chain(store: PostgresStore) -> None:
    writers = [python(WRITER, store.url, "100") for _ in range(10)]
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        assert len(out.splitlines()) == 100
    events = list(store.events())
    assert len(events) == 10 * 101
    assert list(check_chain(events)) == []
    assert len(store.sessions()) == 10
    assert all(sum(1 for _ in store.events(row.id)) == 101 for row in store.sessions())


HANGING = textwrap.dedent(
    """
    import sys, time, uuid
    from cdss.store.postgres import PostgresStore
    from tests.test_store_postgres import answered, started

    def hang(previous):
        print("inside", flush=True)
        time.sleep(600)

    session = uuid.uuid4().hex
    with PostgresStore(sys.argv[1]) as store:
        store.append(started(session), started(uuid.uuid4().hex), hang)
    """
)


def test_a_client_killed_mid_transaction_leaves_no_half_event(store: PostgresStore) -> None:
    import signal

    store.append(started(uuid.uuid4().hex))
    before = store.head()
    client = python(HANGING, store.url)
    assert client.stdout is not None
    assert client.stdout.readline().strip() == "inside"  # two events inserted, not committed
    os.kill(client.pid, signal.SIGKILL)
    client.wait(timeout=30)
    # The server notices the closed connection, rolls back and frees the lock: the next append goes on.
    after = store.append(answered(store.sessions()[0].id))
    assert after[0].seq == before[0] + 1
    assert list(check_chain(store.events())) == []


def test_an_immediate_server_stop_loses_nothing_acknowledged(private_postgres: PostgresServer) -> None:
    from cdss.errors import StoreUnreachable

    url = private_postgres.new_database()
    PostgresStore(url, create=True).close()
    writer = python(WRITER, url, "100000")
    assert writer.stdout is not None
    acknowledged = [writer.stdout.readline() for _ in range(50)]
    private_postgres.stop("immediate")
    out, err = writer.communicate(timeout=60)
    assert writer.returncode != 0
    assert "unreachable" in err
    acknowledged += out.splitlines()
    with pytest.raises(StoreUnreachable):
        PostgresStore(url)
    private_postgres.start()
    with PostgresStore(url) as reopened:
        stored = {event.seq: event.hash for event in reopened.events()}
        assert list(check_chain(reopened.events())) == []
    for line in acknowledged:
        seq, hash_ = line.split()
        assert stored[int(seq)] == hash_


# --- cdss store init / copy through the installed command --------------------------------------------


def cdss(*args: str) -> subprocess.CompletedProcess[str]:
    from tests.conftest import cdss_command

    return subprocess.run([cdss_command(), *args], capture_output=True, text=True, timeout=120)


def test_store_init_creates_the_schema_and_prints_the_roles(postgres_url: str) -> None:
    done = cdss("store", "init", postgres_url, "--writer", "room_writer")
    assert done.returncode == 0, done.stderr
    assert 'GRANT SELECT, INSERT ON cdss.events TO "room_writer";' in done.stdout
    assert 'GRANT SELECT ON cdss.events, cdss.meta, cdss.migrations TO "cdss_auditor";' in done.stdout
    assert "UPDATE" not in done.stdout and "DELETE" not in done.stdout
    with PostgresStore(postgres_url) as store:
        assert store.schema_version() == SCHEMA_VERSION
    again = cdss("store", "init", postgres_url)
    assert again.returncode == 0, again.stderr


def test_store_copy_appends_the_rest_and_refuses_another_chain(
    postgres_server: PostgresServer, store: PostgresStore
) -> None:
    session = uuid.uuid4().hex
    store.append(started(session), answered(session))
    target = postgres_server.new_database()
    done = cdss("store", "copy", store.url, target)
    assert done.returncode == 0, done.stderr
    assert "copied 2 events" in done.stdout
    store.append(answered(session, "b"))
    done = cdss("store", "copy", store.url, target)
    assert done.returncode == 0, done.stderr
    assert "copied 1 event (2 were already there)" in done.stdout
    with PostgresStore(target) as copy:
        assert list(copy.stored()) == list(store.stored())
    other = postgres_server.new_database()
    with PostgresStore(other, create=True) as elsewhere:
        elsewhere.append(started(uuid.uuid4().hex))
    refused = cdss("store", "copy", store.url, other)
    assert refused.returncode == 1
    assert "holds a different chain" in refused.stderr
    with PostgresStore(other) as elsewhere:
        assert elsewhere.head()[0] == 1


# --- the audit on a PostgreSQL store ------------------------------------------------------------------


def test_sqlite_to_postgresql_and_back_keeps_the_chain_and_the_report(
    postgres_url: str, store_path: object, tmp_path: object
) -> None:
    from pathlib import Path

    from cdss.audit.report import report
    from cdss.store.copying import copy_store
    from cdss.store.sqlite import SqliteStore
    from tests.audit_records import Plan, record

    assert isinstance(store_path, Path) and isinstance(tmp_path, Path)
    record(store_path, [Plan(), Plan(amend=True), Plan("abandoned"), Plan("open"), Plan(older_adult=True)])
    with SqliteStore(store_path, read_only=True) as sqlite, PostgresStore(postgres_url, create=True) as pg:
        copied = copy_store(sqlite, pg, source_name="sqlite", target_name="pg")
        assert copied.events == sqlite.head()[0] == pg.head()[0]
        back = tmp_path / "back.sqlite3"
        with SqliteStore(back) as returned:
            copy_store(pg, returned, source_name="pg", target_name="back")
            assert list(returned.stored()) == list(sqlite.stored())
    on_sqlite, on_postgres = report(store=store_path), report(store=postgres_url)
    assert on_postgres.source.startswith("store postgresql://")
    for name, table in on_sqlite.tables.items():
        assert on_postgres.tables[name].rows == table.rows, name


def auditor_url(server: PostgresServer, url: str) -> str:
    """Create the roles `cdss store init` prints, and return the auditor's URL for the same database."""
    database = database_of(url)
    writer, auditor = f"w_{uuid.uuid4().hex[:12]}", f"a_{uuid.uuid4().hex[:12]}"
    with server.admin(database) as db:
        for statement in roles_sql(database, writer, auditor).split(";"):
            if statement.strip() and not statement.strip().startswith("-- Then"):
                db.execute(statement)
    return server.url(database, user=auditor)


def test_verify_export_report_and_checkpoint_need_only_the_auditor_role(
    postgres_server: PostgresServer, postgres_url: str, store_path: object, tmp_path: object
) -> None:
    from pathlib import Path

    from cdss.audit.bundle import BundleSource, Selection
    from cdss.audit.checkpoint import take
    from cdss.audit.export import export
    from cdss.audit.report import report
    from cdss.audit.sources import StoreSource
    from cdss.audit.verify import verify
    from cdss.store.copying import copy_store
    from cdss.store.sqlite import SqliteStore
    from tests.audit_records import Plan, catalog, record

    assert isinstance(store_path, Path) and isinstance(tmp_path, Path)
    record(store_path, [Plan(), Plan(amend=True), Plan("abandoned"), Plan("open")])
    with SqliteStore(store_path, read_only=True) as sqlite, PostgresStore(postgres_url, create=True) as pg:
        copy_store(sqlite, pg, source_name="sqlite", target_name="pg")
    url = auditor_url(postgres_server, postgres_url)
    result = verify(StoreSource(url, catalog()), workers=2)
    assert result.findings == [], result.findings
    assert result.events == SqliteStore(store_path, read_only=True).head()[0]
    assert report(store=url).tables["status"].rows == report(store=store_path).tables["status"].rows
    bundle = tmp_path / "bundle.zip"
    export(url, bundle, Selection(), catalog())
    assert verify(BundleSource(bundle)).findings == []
    point = take(url, tmp_path / "checkpoint.json")
    assert point.seq == result.events
    with PostgresStore(url) as audited, pytest.raises(StoreError):
        audited.append(answered(uuid.uuid4().hex))
    # The same through the installed command, the URL given by --store and by CDSS_STORE.
    from tests.audit_records import CATALOG_FOLDER

    verified = cdss("audit", "verify", "--store", url, "--checklists", str(CATALOG_FOLDER))
    assert verified.returncode == 0, verified.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "cdss", "sessions", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "CDSS_STORE": url},
    )
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 4
    reported = cdss("audit", "report", "--store", url)
    assert reported.returncode == 0, reported.stderr
    assert "Sessions by status" in reported.stdout


# --- the walk and scripted runs on a PostgreSQL store, through the installed command -----------------

EXAMPLES_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "examples", "valid")
FOLDERS = ["--checklists", EXAMPLES_FOLDER]
START = ["run", "example-walk", *FOLDERS, "--route", "intravenous", "--population", "older-adults"]
WHO = ["--subject", "S-7F3K2M9Q1", "--clinician", "dr-lee"]


def walk_env(url: str) -> dict[str, str]:
    return {**os.environ, "CDSS_STORE": url, "NO_COLOR": "1", "TERM": "xterm"}


def test_a_walk_survives_an_immediate_server_stop(private_postgres: PostgresServer) -> None:
    import pexpect

    from tests.conftest import cdss_command

    url = private_postgres.new_database()
    PostgresStore(url, create=True).close()
    child = pexpect.spawn(
        cdss_command(), [*START, *WHO], env=walk_env(url), encoding="utf-8", timeout=30, dimensions=(24, 80)
    )
    child.expect("item 1 of 3")
    child.send("d")
    child.expect("item 2 of 3")  # drawn only after the answer was committed
    private_postgres.stop("immediate")
    child.send("n")
    child.expect("unreachable")
    child.expect("r retry")
    private_postgres.start()
    child.send("r")
    child.expect("item 2 of 3")  # the answer that failed was not recorded; nothing else was lost
    child.send("n")
    child.expect("item 3 of 3")
    child.send("d")
    child.expect("summary")
    child.send("c")
    child.expect("completed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    with PostgresStore(url) as store:
        [row] = store.sessions()
        assert row.status == "completed"
        answers = [e.data.item for e in store.events(row.id) if e.type == "item-answered"]
        assert answers == [
            "setting-confirmed",
            "infusion-monitoring-planned",
            "older-adult-side-effects-reviewed",
        ]
        assert list(check_chain(store.events())) == []


def test_a_second_terminal_on_a_shared_store_gets_one_line_and_the_record_stays_valid(
    postgres_url: str,
) -> None:
    """The walk's next answer would take one round trip; another workstation has answered that item first."""
    import pexpect

    from tests.conftest import cdss_command

    PostgresStore(postgres_url, create=True).close()
    env = walk_env(postgres_url)
    child = pexpect.spawn(
        cdss_command(), [*START, *WHO], env=env, encoding="utf-8", timeout=30, dimensions=(24, 80)
    )
    child.expect("item 1 of 3")
    child.send("d")
    child.expect("item 2 of 3")
    child.send("n")
    child.expect("item 3 of 3")
    with PostgresStore(postgres_url) as store:
        [row] = store.sessions()
    other = pexpect.spawn(
        cdss_command(),
        ["resume", row.id[:12], *FOLDERS],
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(24, 80),
    )
    other.expect("item 3 of 3")
    other.send("d")
    other.expect("summary")
    other.send("q")
    other.expect(pexpect.EOF)
    other.close()
    child.send("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert "was answered in another terminal" in (child.before or "")
    assert "Traceback" not in (child.before or "")
    with PostgresStore(postgres_url) as store:
        answered_items = [e.data.item for e in store.events(row.id) if e.type == "item-answered"]
        assert answered_items.count("older-adult-side-effects-reviewed") == 1
        assert list(check_chain(store.events())) == []


def test_quitting_at_an_unreachable_server_says_how_to_resume(private_postgres: PostgresServer) -> None:
    import pexpect

    from tests.conftest import cdss_command

    url = private_postgres.new_database()
    PostgresStore(url, create=True).close()
    env = walk_env(url)
    child = pexpect.spawn(cdss_command(), [*START, *WHO], env=env, encoding="utf-8", timeout=30)
    child.expect("item 1 of 3")
    child.send("d")
    child.expect("item 2 of 3")
    private_postgres.stop("immediate")
    child.send("d")
    child.expect("unreachable")
    child.send("q")
    child.expect(r"cdss resume ([0-9a-f]{12})")
    prefix = child.match.group(1)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert "postgresql://" not in prefix
    private_postgres.start()
    child = pexpect.spawn(cdss_command(), ["resume", prefix, *FOLDERS], env=env, encoding="utf-8", timeout=30)
    child.expect("item 2 of 3")
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()


def test_a_dropped_connection_in_a_scripted_run_exits_1_with_nothing_half_written(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: object
) -> None:
    """The server drops every cdss connection while a scripted run records: one line, exit 1, a whole chain."""
    import json
    import threading
    from pathlib import Path

    from tests.conftest import cdss_command

    assert isinstance(tmp_path, Path)
    PostgresStore(postgres_url, create=True).close()
    answers = tmp_path / "answers.json"
    answers.write_text(
        json.dumps(
            {
                "setting-confirmed": "done",
                "infusion-monitoring-planned": "done",
                "older-adult-side-effects-reviewed": "done",
            }
        )
    )
    command = [cdss_command(), *START, *WHO, "--answers", str(answers)]
    outcomes: list[int] = []
    while 1 not in outcomes and len(outcomes) < 5:
        stop = threading.Event()

        def drop(stop: threading.Event) -> None:
            with postgres_server.admin() as db:
                while not stop.is_set():
                    db.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'cdss' AND datname = %s",
                        (database_of(postgres_url),),
                    )

        dropper = threading.Thread(target=drop, args=(stop,))
        dropper.start()
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, env=walk_env(postgres_url), timeout=120
            )
        finally:
            stop.set()
            dropper.join()
        outcomes.append(done.returncode)
        if done.returncode != 0:
            assert done.returncode == 1, done.stderr
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr
            assert "unreachable" in done.stderr
            assert "Traceback" not in done.stderr
    assert 1 in outcomes
    with PostgresStore(postgres_url) as store:
        assert list(check_chain(store.events())) == []
