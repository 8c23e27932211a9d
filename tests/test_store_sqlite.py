"""The embedded store: chain, atomicity, append-only triggers, refusing files that are not ours."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cdss.errors import InvalidInput, NotAllowed, StoreError
from cdss.events import (
    GENESIS,
    Answered,
    DeclaredContext,
    Draft,
    Event,
    PinnedChecklist,
    Started,
    check_chain,
    parse_event,
)
from cdss.keys import KeyInfo, change_setting, register
from cdss.store import REQUIRE_SIGNATURES, is_on
from cdss.store.sqlite import SCHEMA_VERSION, SqliteStore, default_path, open_store
from cdss.store.wal import APPLICATION_ID


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


def fill(path: Path, sessions: int = 3, answers: int = 2) -> list[str]:
    ids = [uuid.uuid4().hex for _ in range(sessions)]
    with open_store(path) as store:
        for session in ids:
            store.append(started(session))
            for n in range(answers):
                store.append(answered(session, f"item-{n}"))
    return ids


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection with the protecting triggers dropped, as a tamperer would."""
    db = sqlite3.connect(path, isolation_level=None)
    for name in ("events_no_update", "events_no_delete"):
        db.execute(f"DROP TRIGGER {name}")
    return db


def stored(path: Path) -> list[Event]:
    with open_store(path) as store:
        return list(store.events())


def test_appends_in_one_chain_and_reads_back(store_path: Path) -> None:
    ids = fill(store_path)
    events = stored(store_path)
    assert [e.seq for e in events] == list(range(1, 10))
    assert events[0].prev == GENESIS
    assert list(check_chain(events)) == []
    with open_store(store_path) as store:
        assert store.head() == (9, events[-1].hash)
        assert [e.seq for e in store.events(ids[1])] == [4, 5, 6]
        rows = store.sessions()
    assert [r.id for r in rows] == ids
    assert {r.status for r in rows} == {"open"}
    assert rows[0].to_json()["checklist"] == "example-walk"


def test_stored_form_is_the_canonical_event(store_path: Path) -> None:
    fill(store_path, sessions=1, answers=1)
    db = sqlite3.connect(store_path)
    text, digest = db.execute("SELECT event, hash FROM events WHERE seq = 2").fetchone()
    assert parse_event(__import__("json").loads(text)).canonical().decode() == text
    assert len(digest) == 64


def test_empty_store_head_and_sessions(store_path: Path) -> None:
    with open_store(store_path) as store:
        assert store.head() == (0, GENESIS)
        assert list(store.events()) == []
        assert store.sessions() == []


def test_a_callable_draft_sees_the_event_sealed_before_it(store_path: Path) -> None:
    session = uuid.uuid4().hex
    seen: list[Event | None] = []

    def after(previous: Event | None) -> Draft:
        seen.append(previous)
        return answered(session)

    with open_store(store_path) as store:
        first = store.append(started(session), after)
        assert seen == [first[0]]
        store.append(after)
        assert seen[-1] == first[1]


def test_append_is_all_or_nothing(store_path: Path) -> None:
    session = uuid.uuid4().hex

    def refuse(previous: Event | None) -> Draft:
        raise InvalidInput("no signature")

    with open_store(store_path) as store:
        store.append(started(session))
        with pytest.raises(InvalidInput):
            store.append(answered(session), refuse)
        assert store.head()[0] == 1
        store.append(answered(session))
        assert [e.seq for e in store.events()] == [1, 2]


@pytest.mark.parametrize("statement", ["UPDATE events SET type = 'x'", "DELETE FROM events"])
def test_triggers_refuse_changing_events(store_path: Path, statement: str) -> None:
    fill(store_path, sessions=1)
    db = sqlite3.connect(store_path, isolation_level=None)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute(statement)
    assert len(stored(store_path)) == 3


def _key(clinician: str, public: bytes) -> KeyInfo:
    return KeyInfo(clinician, clinician, hashlib.sha256(public).hexdigest(), public, "")


def test_keys_are_registered_once_as_events(store_path: Path) -> None:
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = _key("dr-lee", public)
    with open_store(store_path) as store:
        assert register(store, key) is True
        assert register(store, key) is False
        with pytest.raises(NotAllowed, match="already registered"):
            register(store, _key("dr-kim", public))
        keys = store.keys()
        assert [e.type for e in store.events()] == ["key-registered"]
    assert [(k.key_id, k.clinician, k.public_key) for k in keys] == [(key.key_id, "dr-lee", public)]


def test_settings_are_events_with_defaults(store_path: Path) -> None:
    with open_store(store_path) as store:
        assert store.setting(REQUIRE_SIGNATURES) == "off"
        change_setting(store, REQUIRE_SIGNATURES, "on", "dr-lee", None)
    with open_store(store_path) as store:
        assert is_on(store.setting(REQUIRE_SIGNATURES))
        change_setting(store, REQUIRE_SIGNATURES, "off", "dr-lee", None)
        assert not is_on(store.setting(REQUIRE_SIGNATURES))
        assert [e.type for e in store.events()] == ["setting-changed"] * 2
        assert list(check_chain(store.events())) == []


def test_store_identifies_itself(store_path: Path) -> None:
    fill(store_path, sessions=1)
    db = sqlite3.connect(store_path)
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    assert meta == {"application": "cdss", "schema_version": str(SCHEMA_VERSION)}


def test_default_location_comes_from_the_environment(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert default_path() == store_path
    monkeypatch.delenv("CDSS_STORE")
    path = default_path()
    assert path.name == "records.sqlite3"
    assert str(path).startswith(os.environ["XDG_DATA_HOME"])
    with SqliteStore() as store:  # creates the user's data folder on first use
        assert store.path == path
    assert path.is_file()


# --- files that are not ours --------------------------------------------------------


def _other_sqlite(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (text TEXT)")
    db.execute("INSERT INTO notes VALUES ('hello')")
    db.commit()
    db.close()


def _newer_store(path: Path) -> None:
    fill(path, sessions=1)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = DELETE")  # so the header on disk shows the new version
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()


def _corrupt_store(path: Path) -> None:
    fill(path, sessions=2)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = DELETE")
    db.close()
    data = bytearray(path.read_bytes())
    data[100:] = b"\xff" * (len(data) - 100)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("name,date\n"), "not a cdss store"),
        (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x00" * 10), "not a cdss store"),
        (_other_sqlite, "SQLite database but not a cdss store"),
        (_newer_store, "newer cdss"),
        (_corrupt_store, "may be damaged"),
    ],
    ids=["text", "short", "other-sqlite", "newer", "corrupt"],
)
def test_foreign_files_are_refused_and_left_unchanged(store_path: Path, make: object, message: str) -> None:
    make(store_path)  # type: ignore[operator]
    before = store_path.read_bytes()
    with pytest.raises(StoreError, match=message) as caught, open_store(store_path) as store:
        store.append(started(uuid.uuid4().hex))
    assert str(store_path) in str(caught.value)
    assert store_path.read_bytes() == before


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        SqliteStore(tmp_path / "nowhere" / "records.sqlite3")
    assert not (tmp_path / "nowhere").exists()


def test_an_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):  # root ignores permissions; /proc/1 refuses even root
        folder = Path("/proc/1")
    with pytest.raises(StoreError, match="not writable"):
        SqliteStore(folder / "records.sqlite3")


def test_a_folder_as_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a folder"):
        SqliteStore(tmp_path)


# --- tampering is detected by the chain ----------------------------------------------


def breaks(path: Path) -> list[str]:
    return [b.problem for b in check_chain(stored(path))]


def test_an_untouched_store_has_no_breaks(store_path: Path) -> None:
    fill(store_path)
    assert breaks(store_path) == []


def test_an_edited_event_is_detected(store_path: Path) -> None:
    fill(store_path)
    db = raw(store_path)
    text = db.execute("SELECT event FROM events WHERE seq = 5").fetchone()[0]
    db.execute("UPDATE events SET event = ? WHERE seq = 5", (text.replace('"done"', '"not-applicable"'),))
    db.close()
    assert any("altered" in problem for problem in breaks(store_path))


def test_a_deleted_event_is_detected(store_path: Path) -> None:
    fill(store_path)
    raw(store_path).execute("DELETE FROM events WHERE seq = 4")
    problems = breaks(store_path)
    assert any("sequence number 5, expected 4" in p for p in problems)
    assert any("link broken" in p for p in problems)


def test_an_inserted_event_is_detected(store_path: Path) -> None:
    fill(store_path)
    events = stored(store_path)
    db = raw(store_path)
    # A forger re-seals a copy of event 4 properly but cannot fix every later link.
    from cdss.events import seal

    forged = seal(answered(str(events[3].session), "forged"), 10, events[-1].hash)
    forged_text = forged.canonical().decode().replace('"seq":10', '"seq":5')
    db.execute("UPDATE events SET seq = seq + 100 WHERE seq >= 5")
    db.execute(
        "INSERT INTO events VALUES (5, ?, ?, ?, ?)", (forged.session, forged.type, "f" * 64, forged_text)
    )
    db.close()
    assert breaks(store_path)


def test_reordered_events_are_detected(store_path: Path) -> None:
    fill(store_path)
    db = raw(store_path)
    db.execute("UPDATE events SET seq = 100 WHERE seq = 2")
    db.execute("UPDATE events SET seq = 2 WHERE seq = 3")
    db.execute("UPDATE events SET seq = 3 WHERE seq = 100")
    db.close()
    assert any("link broken" in p for p in breaks(store_path))


def test_a_removed_session_is_detected(store_path: Path) -> None:
    ids = fill(store_path)
    raw(store_path).execute("DELETE FROM events WHERE session = ?", (ids[1],))
    problems = breaks(store_path)
    assert any("link broken" in p for p in problems)


# --- two writers ----------------------------------------------------------------------

_WRITER = """
import sys, uuid
from cdss.events import Answered, DeclaredContext, Draft, PinnedChecklist, Started
from cdss.store.sqlite import open_store
path, sessions = sys.argv[1], int(sys.argv[2])
for _ in range(sessions):
    with open_store(path) as store:
        s = uuid.uuid4().hex
        store.append(Draft(s, "session-started", "dr-lee", Started(
            checklist=PinnedChecklist(id="x", version="1.0.0", hash="ab" * 32), subject="S-1",
            context=DeclaredContext(route=None, populations=[]), clinician="dr-lee")))
        for n in range(5):
            store.append(Draft(s, "item-answered", "dr-lee", Answered(item=f"i-{n}", status="done")))
"""


def test_two_processes_writing_at_once_keep_one_chain(store_path: Path) -> None:
    with open_store(store_path):
        pass  # create it first, so both writers open an existing store
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(store_path), "15"], stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err.decode()
    events = stored(store_path)
    assert len(events) == 2 * 15 * 6
    assert list(check_chain(events)) == []
    with open_store(store_path) as store:
        assert len(store.sessions()) == 30
