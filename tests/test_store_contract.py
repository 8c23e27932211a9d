"""The store contract (``cdss.store``), once per implementation: SQLite and PostgreSQL keep the same promises.

Each test takes ``any_store``, parametrised over both; the PostgreSQL one is a
fresh database on the tests' own server (tests/postgres_server.py).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdss.errors import CdssError, SessionStateError, StoreError
from cdss.events import GENESIS, Answered, Draft, check_chain
from cdss.store import Reads
from cdss.store.location import open_store
from tests.postgres_server import postgres_cluster, postgres_server
from tests.test_store_postgres import answered, started

__all__ = ["postgres_cluster", "postgres_server"]  # fixtures, used by name

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a new, empty store of each kind lives: a file path or a URL."""
    if request.param == "sqlite":
        return str(tmp_path / "contract.sqlite3")
    server = request.getfixturevalue("postgres_server")
    return str(server.new_database())


@pytest.fixture
def any_store(location: str) -> Iterator[Any]:
    with open_store(location, create=True) as store:
        yield store


def test_an_empty_store_has_the_genesis_head(any_store: Any) -> None:
    assert any_store.head() == (0, GENESIS)
    assert list(any_store.events()) == []
    assert any_store.sessions() == []


def test_append_seals_in_order_and_reads_back_in_seq_order(any_store: Any) -> None:
    one, two = uuid.uuid4().hex, uuid.uuid4().hex
    sealed = any_store.append(started(one), started(two))
    sealed += any_store.append(answered(one, "a"))
    sealed += any_store.append(answered(two, "a"), answered(one, "b"))
    assert [e.seq for e in sealed] == [1, 2, 3, 4, 5]
    assert list(any_store.events()) == sealed
    assert list(check_chain(any_store.events())) == []
    assert [e.seq for e in any_store.events(one)] == [1, 3, 5]
    assert [e.seq for e in any_store.events(after=3)] == [4, 5]
    assert [e.seq for e in any_store.events(one, after=1)] == [3, 5]
    assert any_store.head() == (5, sealed[-1].hash)
    rows = list(any_store.stored())
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [(e.seq, e.session, e.type, e.hash) for e in sealed]
    assert [r[4] for r in rows] == [e.canonical().decode() for e in sealed]
    assert [row.id for row in any_store.sessions()] == [one, two]


def test_a_draft_built_from_the_event_before_it_sees_that_event(any_store: Any) -> None:
    session = uuid.uuid4().hex
    seen = []

    def after(previous: Any) -> Any:
        seen.append(previous)
        return answered(session, "b")

    _, second, third = any_store.append(started(session), answered(session), after)
    assert seen == [second]
    assert third.prev == second.hash


def test_append_is_all_or_nothing(any_store: Any) -> None:
    session = uuid.uuid4().hex
    any_store.append(started(session))

    def broken(previous: Any) -> Any:
        raise SessionStateError("refused half-way")

    with pytest.raises(SessionStateError):
        any_store.append(answered(session, "a"), answered(session, "b"), broken)
    assert any_store.head()[0] == 1
    assert [e.seq for e in any_store.append(answered(session, "a"))] == [2]


def test_a_refusing_check_writes_nothing_and_sees_what_is_stored(any_store: Any) -> None:
    session = uuid.uuid4().hex
    any_store.append(started(session), answered(session, "a"))
    looked: list[int] = []

    def once(view: Any) -> None:
        answered_items = [e.data.item for e in view.events(session) if e.type == "item-answered"]
        looked.append(len(answered_items))
        if "a" in answered_items:
            raise SessionStateError("item a was answered in another terminal")

    with pytest.raises(SessionStateError):
        any_store.append(answered(session, "a"), check=once)
    assert looked == [1]
    assert any_store.head()[0] == 2


RACER = textwrap.dedent(
    """
    import sys
    import uuid
    from cdss.errors import SessionStateError
    from cdss.store import Reads
    from cdss.store.location import open_store
    from tests.test_store_postgres import answered, started

    location, session, declared = sys.argv[1], sys.argv[2], sys.argv[3] == "declared"

    def not_yet(view):
        if any(e.type == "item-answered" and e.data.item == "a" for e in view.events(session)):
            raise SessionStateError("already answered")

    with open_store(location) as store:
        reads = None
        if declared:  # two appends of its own first, so that a store that can expects the chain where it left it
            own = uuid.uuid4().hex
            store.append(started(own))
            store.append(answered(own, "warm"), reads=Reads(own, store.head()[0]))
            reads = Reads(session, store.head()[0])
        try:
            store.append(answered(session, "a"), check=not_yet, reads=reads)
            print("recorded")
        except SessionStateError:
            print("refused")
    """
)


@pytest.mark.parametrize("reads", ["declared", "undeclared"])
def test_whether_a_write_is_allowed_is_decided_inside_the_write_transaction(
    any_store: Any, location: str, reads: str
) -> None:
    """Four processes race to answer one item, twice: the check runs under the lock, so exactly one wins.

    Also when the check's reads are declared, and so fetched with the lock in one round trip.
    """
    for _ in range(2):
        session = uuid.uuid4().hex
        any_store.append(started(session))
        racers = [
            subprocess.Popen(
                [sys.executable, "-c", RACER, location, session, reads],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
            for _ in range(4)
        ]
        outcomes = sorted(racer.communicate(timeout=120)[0].strip() for racer in racers)
        assert outcomes == ["recorded"] + ["refused"] * 3, outcomes
        assert sum(1 for e in any_store.events(session) if e.type == "item-answered") == 1
    assert list(check_chain(any_store.events())) == []


def test_a_store_that_is_not_there_is_not_created_unless_asked(location: str) -> None:
    with pytest.raises(CdssError):
        open_store(location).close()
    with open_store(location, create=True) as store:
        assert store.head() == (0, GENESIS)


def test_read_only_refuses_to_write(any_store: Any, location: str) -> None:
    any_store.append(started(uuid.uuid4().hex))
    with open_store(location, read_only=True) as reader:
        assert reader.head()[0] == 1
        with pytest.raises(StoreError):
            reader.append(started(uuid.uuid4().hex))
    assert any_store.head()[0] == 1


def test_report_figures_come_from_the_store(any_store: Any) -> None:
    session = uuid.uuid4().hex
    any_store.append(started(session), answered(session, "a"))
    figures = any_store.figures("2000-01-01T00:00:00.000000Z")
    assert figures["status"] == [("open", 1)]
    assert figures["items"] == [("example-walk@1.0.0", "a", 1, 1, 0, 0, 1.0)]


def test_receive_appends_sealed_rows_only_after_the_head(any_store: Any, tmp_path: Path) -> None:
    with open_store(tmp_path / "origin.sqlite3", create=True) as origin:
        session = uuid.uuid4().hex
        origin.append(started(session), answered(session, "a"), answered(session, "b"))
        rows = list(origin.stored())
    any_store.receive(rows[:2])
    with pytest.raises(CdssError):
        any_store.receive(rows[:1])  # does not follow the head
    any_store.receive(rows[2:])
    assert list(any_store.stored()) == rows


def test_declared_reads_change_nothing_that_check_sees(any_store: Any) -> None:
    """Reads served from the lock's round trip agree with the store, and reads not declared still work."""
    one, other = uuid.uuid4().hex, uuid.uuid4().hex
    any_store.append(started(one), started(other), answered(one, "a"), answered(other, "a"))
    any_store.append(answered(one, "b"), answered(one, "c"))

    def seen(view: Any) -> list[Any]:
        return [
            view.head(),
            *(list(view.events(one, after=after)) for after in (0, 1, 3, 5, 6)),
            list(view.events(other, after=2)),
            list(view.events()),
        ]

    expected = seen(any_store)
    looked: list[list[Any]] = []

    def refuse(view: Any) -> None:
        looked.append(seen(view))
        raise SessionStateError("refused, so that nothing is written")

    for reads in (None, Reads(one), Reads(one, 3), Reads(other, 2), Reads(uuid.uuid4().hex)):
        looked.clear()
        with pytest.raises(SessionStateError):
            any_store.append(answered(one, "d"), check=refuse, reads=reads)
        assert looked == [expected], reads
    assert any_store.head()[0] == 6


AWKWARD = [
    'it\'s \\ a "quote" $$ $1 %s %(x)s {}',
    "'); DROP TABLE cdss.events; --",
    "E'\\x00' \\000 \\u0000",
    "café ✓ 𝄞 \u2028 \u00a0 ﬁ",
]


def test_any_text_is_stored_exactly_as_it_was_hashed(any_store: Any) -> None:
    """Values travel quoted into the store's SQL; none may change a byte or escape its quotes."""
    session = uuid.uuid4().hex
    drafts = [started(session)] + [
        Draft(
            session,
            "item-answered",
            "dr-lee",
            Answered(item=f"i{n}", status="not-done", reason="other", reason_text=text),
        )
        for n, text in enumerate(AWKWARD)
    ]
    written = any_store.append(*drafts)
    assert [row[4] for row in any_store.stored()] == [event.canonical().decode() for event in written]
    assert [e.data.reason_text for e in any_store.events(session) if e.type == "item-answered"] == AWKWARD
    assert list(check_chain(any_store.events())) == []
