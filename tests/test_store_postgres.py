"""The PostgreSQL store against a real, private server: the same contract, held by the database.

Every test gets a fresh database on one throw-away server (tests/postgres_server.py);
tests that stop or break the server get one of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator

import pytest

from cdss.errors import NotFound, SessionStateError, StoreError
from cdss.events import GENESIS, Answered, DeclaredContext, Draft, PinnedChecklist, Started, check_chain
from cdss.store.postgres import SCHEMA_VERSION, PostgresStore, redacted, roles_sql
from tests.postgres_server import PostgresServer, database_of, postgres_server, postgres_url, private_postgres

__all__ = ["postgres_server", "postgres_url", "private_postgres"]  # fixtures, used by name


def started(session: str, clinician: str = "dr-lee") -> Draft:
    data = Started(
        checklist=PinnedChecklist(id="example-walk", version="1.0.0", hash="ab" * 32),
        subject="S-7F3K2",
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
    writer, auditor = f"w_{database}", f"a_{database}"
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
