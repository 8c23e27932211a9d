"""Issue 11, the record's side: keys and settings in the chain, one writer deciding,
stray -wal files, damage outside the chain, one regex dialect, subject codes.

Everything a user meets is driven through the installed ``cdss`` command."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdss.events import IDENTIFIER, SCHEMA_ID, TEXT, matches, schema_problems
from cdss.session import Session
from cdss.store.sqlite import SqliteStore, open_store
from cdss.subject import check_character, is_code, new_code
from tests.conftest import EXAMPLES, new_store

CDSS = str(Path(sys.executable).with_name("cdss"))
FOLDERS = ["--checklists", str(EXAMPLES / "valid")]
WALK = ["run", "example-walk", *FOLDERS, "--route", "intravenous"]
ALL = {"setting-confirmed": "done", "infusion-monitoring-planned": "done"}
PASSPHRASE = "correct horse battery"


def cdss(env: dict[str, str], *args: str | bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CDSS, *args], capture_output=True, text=True, env=env, check=False)


@pytest.fixture
def env(store_path: Path) -> dict[str, str]:
    return {**os.environ, "CDSS_STORE": str(store_path), "NO_COLOR": "1", "CDSS_PASSPHRASE": PASSPHRASE}


def answers_file(tmp_path: Path, answers: dict[str, Any]) -> str:
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answers))
    return str(path)


def events(store_path: Path) -> list[dict[str, Any]]:
    with SqliteStore(store_path, read_only=True) as store:
        return [event.to_json() for event in store.events()]


def verified(env: dict[str, str]) -> bool:
    done = cdss(env, "audit", "verify", *FOLDERS)
    return done.returncode == 0


# --- one regex dialect ------------------------------------------------------------------

EDGES = ["dr-x", "dr-x\n", "dr-x\r", "\ndr-x", "dr--x", "dr-x-", "DR-X", "dr x", "dr-\u0131", "", "a" * 64]


@pytest.mark.parametrize("actor", EDGES)
def test_python_checks_agree_with_the_schema_on_identifiers(actor: str) -> None:
    from cdss.errors import InvalidInput
    from cdss.session import check_clinician

    event = _event(actor=actor)
    by_schema = schema_problems(event) is None
    try:
        check_clinician(actor)
        by_python = True
    except InvalidInput:
        by_python = False
    assert by_python == by_schema == (matches(IDENTIFIER, actor) and len(actor) <= 64)


@pytest.mark.parametrize("text", ["ok", " x ", "\x1c", "\ufeff", "\u3000", "\n", "\t\x1f", "a\n"])
def test_free_text_means_the_same_in_both_dialects(text: str) -> None:
    from pydantic import ValidationError

    from cdss.events import Abandoned

    event = _event(kind="session-abandoned", data={"reason": text})
    try:
        Abandoned(reason=text)
        by_model = True
    except ValidationError:
        by_model = False
    assert by_model == (schema_problems(event) is None) == (re.search(TEXT, text) is not None)


def test_a_trailing_newline_is_refused_through_the_command(env: dict[str, str], tmp_path: Path) -> None:
    done = cdss(
        env, *WALK, "--subject", new_code(), "--clinician", "dr-x\n", "--answers", answers_file(tmp_path, ALL)
    )
    assert done.returncode == 1 and "clinician id" in done.stderr


def test_the_schema_defines_the_envelope_once() -> None:
    from cdss.catalog import schema_path

    schema = json.loads(schema_path("event.schema.json").read_text(encoding="utf-8"))
    assert schema["$id"] == SCHEMA_ID
    assert schema_path("event.schema.json").read_text().count('"seq": {') == 1
    assert "key-registered" in schema["$defs"] and "setting-changed" in schema["$defs"]
    store_event = _event(kind="setting-changed", data={
        "name": "require-signatures", "value": "on", "endorsed_by": None, "endorsement": None})  # fmt: skip
    assert schema_problems(store_event) == '/session: False schema does not allow "' + "a" * 32 + '"'
    del store_event["session"]
    assert schema_problems(store_event) is None


def _event(
    actor: str = "dr-x", kind: str = "item-answered", data: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "seq": 1, "session": "a" * 32, "type": kind, "at": "2026-01-01T00:00:00.000000Z", "actor": actor,
        "prev": "0" * 64, "hash": "0" * 64, "data": data if data is not None else {"item": "a", "status": "done"},
    }  # fmt: skip


# --- keys are part of the record ----------------------------------------------------------


def _home(tmp_path: Path, env: dict[str, str], name: str) -> dict[str, str]:
    home = tmp_path / name
    home.mkdir()
    return {
        **env,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / "d"),
    }


def test_a_second_key_for_a_clinician_is_refused(
    env: dict[str, str], tmp_path: Path, store_path: Path
) -> None:
    new_store(store_path)
    alice = _home(tmp_path, env, "alice")
    mallory = _home(tmp_path, env, "mallory")
    assert cdss(alice, "keys", "init", "--clinician", "dr-alice", "--name", "Alice A.").returncode == 0
    forged = cdss(mallory, "keys", "init", "--clinician", "dr-alice", "--name", "Alice A.")
    assert forged.returncode == 1
    assert "already has an active key" in forged.stderr
    assert not list((tmp_path / "mallory").rglob("dr-alice.*"))  # nothing left to sign with
    listed = json.loads(cdss(env, "keys", "list", "--json").stdout)
    assert [(k["clinician"], k["active"]) for k in listed] == [("dr-alice", True)]
    assert [e["type"] for e in events(store_path)] == ["key-registered"]


def test_rotation_retires_the_old_key_in_the_same_transaction(
    env: dict[str, str], tmp_path: Path, store_path: Path
) -> None:
    new_store(store_path)
    alice = _home(tmp_path, env, "alice")
    assert cdss(alice, "keys", "init", "--clinician", "dr-alice", "--name", "Alice A.").returncode == 0
    done = cdss(alice, "keys", "init", "--clinician", "dr-alice", "--name", "Alice A.", "--rotate")
    assert done.returncode == 0, done.stderr
    listed = json.loads(cdss(env, "keys", "list", "--json").stdout)
    assert [k["active"] for k in listed] == [False, True]
    assert listed[1]["endorsed_by"] == listed[0]["key_id"]
    assert [e["type"] for e in events(store_path)] == ["key-registered", "key-registered", "key-retired"]
    text = cdss(env, "keys", "list").stdout
    assert "retired" in text and "rotated" in text


def test_administrators_endorse_keys_and_settings(
    env: dict[str, str], tmp_path: Path, store_path: Path
) -> None:
    new_store(store_path)
    admin = _home(tmp_path, env, "admin")
    other = _home(tmp_path, env, "other")
    assert (
        cdss(admin, "keys", "init", "--clinician", "qa-kim", "--name", "Kim", "--administrator").returncode
        == 0
    )
    second = cdss(other, "keys", "init", "--clinician", "qa-lee", "--name", "Lee", "--administrator")
    assert second.returncode == 1 and "administrator's" in second.stderr
    unendorsed = cdss(other, "audit", "require-signatures", "off", "--clinician", "dr-lee")
    assert unendorsed.returncode != 0
    assert cdss(admin, "audit", "require-signatures", "on", "--clinician", "qa-kim").returncode == 0
    changed = [e for e in events(store_path) if e["type"] == "setting-changed"]
    assert [(e["data"]["value"], e["actor"]) for e in changed] == [("on", "qa-kim")]
    assert changed[0]["data"]["endorsed_by"] is not None


@pytest.mark.parametrize(
    "command",
    [
        ["keys", "init", "--clinician", "dr-lee", "--name", "Lee L."],
        ["audit", "require-signatures", "on", "--clinician", "dr-lee"],
        ["audit", "subject-pattern", "default", "--clinician", "dr-lee"],
    ],
)
def test_keys_and_settings_never_create_a_store(
    env: dict[str, str], tmp_path: Path, store_path: Path, command: list[str]
) -> None:
    """Only `cdss run` (with its first session) and `cdss store init` create a store."""
    home = _home(tmp_path, env, "lee")
    done = cdss(home, *command)
    assert done.returncode == 1
    assert "does not exist" in done.stderr and "cdss store init" in done.stderr
    assert not store_path.exists()
    assert not list((tmp_path / "lee").rglob("*.pem"))
    assert cdss(home, "store", "init", str(store_path)).returncode == 0
    assert cdss(home, *command).returncode == 0


def test_switching_signatures_off_and_on_is_in_the_chain(env: dict[str, str], store_path: Path) -> None:
    new_store(store_path)
    for state in ("off", "on", "off"):
        assert cdss(env, "audit", "require-signatures", state, "--clinician", "dr-lee").returncode == 0
    changed = [(e["seq"], e["data"]["value"]) for e in events(store_path) if e["type"] == "setting-changed"]
    assert changed == [(1, "off"), (2, "on"), (3, "off")]


@pytest.mark.parametrize("name", ["Alice\x1b[2J", "Alice\x07", b"Alice\xff"])
def test_a_name_that_could_never_sign_is_refused(
    env: dict[str, str], name: str | bytes, tmp_path: Path
) -> None:
    done = subprocess.run(
        [CDSS.encode(), b"keys", b"init", b"--clinician", b"dr-lee", b"--name",
         name if isinstance(name, bytes) else name.encode()],
        capture_output=True, env=env, check=False,
    )  # fmt: skip
    if isinstance(name, bytes):  # refused as an argument, before any command runs (cdss.cli.main)
        assert done.returncode == 2 and b"not valid UTF-8" in done.stderr, done.stderr
    else:
        assert done.returncode == 1 and b"printed name" in done.stderr, done.stderr
    assert b"Traceback" not in done.stderr
    assert not list(tmp_path.rglob("dr-lee.pem"))


# --- one writer decides --------------------------------------------------------------------

RACER = """
import sys
from cdss.catalog import Catalog
from cdss.errors import CdssError
from cdss.session import Session
from cdss.store.sqlite import SqliteStore
from pathlib import Path
store = SqliteStore(sys.argv[1])
session = Session.load(store, sys.argv[2], catalog=Catalog.default([Path(sys.argv[3])]))
Path(sys.argv[4]).touch()
while not Path(sys.argv[5]).exists():
    pass
try:
    if sys.argv[6] == "abandon":
        session.abandon("racing")
    else:
        session.answer("infusion-monitoring-planned", "done")
        session.complete()
except CdssError as error:
    print(error)
    sys.exit(1)
"""


def test_two_processes_racing_on_one_session_keep_the_record_valid(
    env: dict[str, str], tmp_path: Path
) -> None:
    catalog_folder = str(EXAMPLES / "valid")
    outcomes = set()
    for round_ in range(6):
        store = tmp_path / f"race-{round_}.sqlite3"
        with open_store(store) as opened:
            session = Session.start(opened, EXAMPLES / "valid" / "example-walk" / "1.0.0.json",
                                    subject=new_code(), clinician="dr-lee", route="intravenous")  # fmt: skip
            session.answer("setting-confirmed", "done")
        go = tmp_path / f"go-{round_}"
        racers = []
        for n, action in enumerate(("abandon", "complete")):
            ready = tmp_path / f"ready-{round_}-{n}"
            racers.append((ready, subprocess.Popen(
                [sys.executable, "-c", RACER, str(store), session.id, catalog_folder, str(ready), str(go), action],
                stdout=subprocess.PIPE, text=True,
            )))  # fmt: skip
        while not all(ready.exists() for ready, _ in racers):
            pass
        go.touch()
        results = [(process.wait(timeout=60), process.stdout.read()) for _, process in racers]  # type: ignore[union-attr]
        assert sorted(code for code, _ in results) == [0, 1], results
        loser = next(text for code, text in results if code == 1)
        assert "in another terminal at" in loser, loser
        outcomes.add(
            next(
                action
                for (code, _), action in zip(results, ("abandon", "complete"), strict=True)
                if code == 0
            )
        )
        assert verified({**env, "CDSS_STORE": str(store)})


def test_the_second_terminal_gets_one_line_and_stops(env: dict[str, str], store_path: Path) -> None:
    child = pexpect.spawn(
        CDSS, [*WALK, "--subject", new_code(), "--clinician", "dr-lee"],
        env={**env, "TERM": "xterm"}, encoding="utf-8", timeout=20, dimensions=(24, 100),
    )  # fmt: skip
    child.expect("item 1 of 2")
    child.send("d")
    child.expect("item 2 of 2")
    session = json.loads(cdss(env, "sessions", "--json").stdout)[0]["id"]
    assert cdss(env, "abandon", session[:12], "--reason", "closed at the desk", *FOLDERS).returncode == 0
    child.send("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert f"session {session[:12]} was abandoned in another terminal at" in (child.before or "")
    assert "Traceback" not in (child.before or "")
    assert verified(env)


# --- never rewrite what cannot be vouched for -------------------------------------------------


def _store_with_wal(path: Path, wal_to: Path) -> None:
    """Write events into ``path`` and copy its live -wal (not yet checkpointed) to ``wal_to``."""
    with open_store(path) as store:
        store._db.execute("PRAGMA wal_autocheckpoint = 0")
        Session.start(store, EXAMPLES / "valid" / "example-walk" / "1.0.0.json",
                      subject=new_code(), clinician="dr-kim", route="intravenous")  # fmt: skip
        shutil.copy(path.with_name(path.name + "-wal"), wal_to)


def _snapshot(*paths: Path) -> list[bytes]:
    return [p.read_bytes() for p in paths]


def _seeded(store_path: Path) -> None:
    with open_store(store_path) as store:
        Session.start(store, EXAMPLES / "valid" / "example-walk" / "1.0.0.json",
                      subject=new_code(), clinician="dr-lee", route="intravenous")  # fmt: skip


def test_a_foreign_wal_is_refused_and_left_unchanged(
    env: dict[str, str], store_path: Path, tmp_path: Path
) -> None:
    _seeded(store_path)
    copy = tmp_path / "copy.sqlite3"
    shutil.copy(store_path, copy)
    _seeded(store_path)  # the store moves on; the copy does not
    wal = store_path.with_name(store_path.name + "-wal")
    _store_with_wal(copy, wal)  # a sync tool brings the copy's -wal back beside the store
    before = _snapshot(store_path, wal)
    for command in (["sessions"], ["audit", "verify", *FOLDERS], [*WALK, "--subject", new_code(), "--clinician", "dr-lee",
                                                                  "--answers", answers_file(tmp_path, ALL)]):  # fmt: skip
        done = cdss(env, *command)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert "-wal" in done.stderr and "left the store" in done.stderr and "Traceback" not in done.stderr
        assert _snapshot(store_path, wal) == before
    wal.rename(tmp_path / "kept-wal")
    assert len(json.loads(cdss(env, "sessions", "--json").stdout)) == 2


def test_a_wal_of_the_store_itself_is_used(env: dict[str, str], store_path: Path, tmp_path: Path) -> None:
    _seeded(store_path)
    crashed = tmp_path / "crashed.sqlite3"
    shutil.copy(store_path, crashed)
    _store_with_wal(store_path, crashed.with_name("crashed.sqlite3-wal"))
    shutil.copy(store_path, tmp_path / "ignored")  # (the live store closed and checkpointed meanwhile)
    rows = json.loads(cdss({**env, "CDSS_STORE": str(crashed)}, "sessions", "--json").stdout)
    assert len(rows) == 2


def test_a_newer_store_version_in_the_wal_is_refused(env: dict[str, str], store_path: Path) -> None:
    _seeded(store_path)
    db = sqlite3.connect(store_path, isolation_level=None)
    db.execute("PRAGMA wal_autocheckpoint = 0")
    db.execute("PRAGMA user_version = 99")
    wal = store_path.with_name(store_path.name + "-wal")
    saved = wal.read_bytes()
    main = store_path.read_bytes()
    db.close()  # checkpoints; put the un-checkpointed pair back as a crash would leave it
    store_path.write_bytes(main)
    wal.write_bytes(saved)
    done = cdss(env, "sessions")
    assert done.returncode == 1 and "newer cdss" in done.stderr
    assert _snapshot(store_path, wal) == [main, saved]


# --- damage outside the chain ------------------------------------------------------------------


def _corrupt_index(store_path: Path) -> None:
    """Change the type recorded in the events_by_type index, not in the table."""
    db = sqlite3.connect(store_path)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'events_by_type'").fetchone()[0]
    db.close()
    data = bytearray(store_path.read_bytes())
    start = (root - 1) * page_size
    page = bytes(data[start : start + page_size]).replace(b"session-started", b"session-startex")
    data[start : start + page_size] = page
    store_path.write_bytes(bytes(data))


def test_a_damaged_index_hides_no_session(env: dict[str, str], store_path: Path) -> None:
    _seeded(store_path)
    _seeded(store_path)
    _corrupt_index(store_path)
    assert len(json.loads(cdss(env, "sessions", "--json").stdout)) == 2
    with SqliteStore(store_path, read_only=True) as store:
        assert any("events_by_type" in problem for problem in store.integrity())
        assert sum(count for _, count in store.figures("9999")["status"]) == 2
    verified = cdss(env, "audit", "verify")
    assert verified.returncode == 1
    assert (
        "the store is damaged outside the chain:" in verified.stdout and "events_by_type" in verified.stdout
    )


def test_run_refuses_a_store_that_fails_its_quick_check(
    env: dict[str, str], store_path: Path, tmp_path: Path
) -> None:
    _seeded(store_path)
    db = sqlite3.connect(store_path)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'events_by_session'").fetchone()[0]
    db.close()
    data = bytearray(store_path.read_bytes())
    data[(root - 1) * page_size] = 0x07  # not a b-tree page type
    store_path.write_bytes(bytes(data))
    before = store_path.read_bytes()
    done = cdss(
        env, *WALK, "--subject", new_code(), "--clinician", "dr-lee", "--answers", answers_file(tmp_path, ALL)
    )
    assert done.returncode == 1 and "damaged" in done.stderr, done.stderr
    assert store_path.read_bytes() == before


# --- subject codes ---------------------------------------------------------------------------


def test_subject_new_issues_checked_codes(env: dict[str, str]) -> None:
    done = cdss(env, "subject", "new", "--count", "5")
    codes = done.stdout.split()
    assert len(set(codes)) == 5 and all(is_code(code) for code in codes)
    body = codes[0][2:-1]
    wrong = "S-" + body + ("0" if check_character(body) != "0" else "1")
    assert not is_code(wrong)


@pytest.mark.parametrize("subject", ["JohnSmith", "john.smith", "Jane.Doe.1975", "31-Jan-1980", "1980_01_31",
                                     "SSN:123456789", "MRN1234567", "NHS9434765919", "tel:5551234567"])  # fmt: skip
def test_personal_data_cannot_be_a_subject(
    env: dict[str, str], tmp_path: Path, subject: str, store_path: Path
) -> None:
    done = cdss(
        env, *WALK, "--subject", subject, "--clinician", "dr-lee", "--answers", answers_file(tmp_path, ALL)
    )
    assert done.returncode == 1 and "personal data" in done.stderr
    assert not store_path.exists() or events(store_path) == []


def test_a_clinic_sets_its_own_pattern_in_the_chain(
    env: dict[str, str], tmp_path: Path, store_path: Path
) -> None:
    new_store(store_path)
    assert cdss(env, "audit", "subject-pattern", "[A-Z]{3}-[0-9]{4}", "--clinician", "qa-kim").returncode == 0
    refused = cdss(env, "audit", "subject-pattern", ".*", "--clinician", "qa-kim")
    assert refused.returncode == 1 and "personal data" in refused.stderr
    ok = cdss(
        env, *WALK, "--subject", "KTM-0042", "--clinician", "dr-lee", "--answers", answers_file(tmp_path, ALL)
    )
    assert ok.returncode == 0, ok.stderr
    issued = cdss(
        env, *WALK, "--subject", new_code(), "--clinician", "dr-lee", "--answers", answers_file(tmp_path, ALL)
    )
    assert issued.returncode == 1 and "clinic's subject pattern" in issued.stderr
    assert next(e["type"] for e in events(store_path)) == "setting-changed"
    assert verified(env)


# --- migration ---------------------------------------------------------------------------------


def test_an_older_store_moves_its_keys_and_settings_into_the_chain(
    env: dict[str, str], store_path: Path
) -> None:
    from cdss.store.sqlite import MIGRATIONS
    from cdss.store.wal import APPLICATION_ID

    db = sqlite3.connect(store_path, isolation_level=None)
    db.execute("BEGIN")
    MIGRATIONS[0](db)
    db.execute("PRAGMA user_version = 1")
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    for public in (bytes(range(32)), bytes(range(1, 33))):  # the forgery of issue 11: two keys for dr-alice
        db.execute(
            "INSERT INTO keys VALUES (?, 'dr-alice', ?, '2026-01-01T00:00:00.000000Z')",
            (hashlib.sha256(public).hexdigest(), public),
        )
    db.execute("INSERT INTO settings VALUES ('require-signatures', 'on')")
    db.execute("COMMIT")
    db.close()
    listed = json.loads(cdss(env, "keys", "list", "--json").stdout)  # read-only: the legacy tables
    assert [k["clinician"] for k in listed] == ["dr-alice", "dr-alice"]
    with open_store(store_path) as store:  # opened for writing: migrated
        assert [(e.type, e.actor) for e in store.events()] == [
            ("key-registered", "cdss-migration"), ("key-registered", "cdss-migration"),
            ("setting-changed", "cdss-migration"),
        ]  # fmt: skip
        assert store.setting("require-signatures") == "on"
        assert len(store.keys()) == 2
    raw = sqlite3.connect(store_path, isolation_level=None)
    for statement in ("INSERT INTO settings VALUES ('x', 'y')", "DELETE FROM keys"):
        with pytest.raises(sqlite3.IntegrityError, match="chain"):
            raw.execute(statement)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 2
    raw.close()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab-0Z \n\r\t\x1c\ufeff\u3000.:_"), max_size=12))
def test_every_pattern_means_the_same_to_python_and_the_schema(text: str) -> None:
    from pydantic import ValidationError

    from cdss.events import Abandoned, Answered

    event = _event(actor=text or "x")
    assert (schema_problems(event) is None) == matches(IDENTIFIER, text or "x")
    try:
        Answered(item=text, status="done")
        model_item = True
    except ValidationError:
        model_item = False
    assert model_item == (schema_problems(_event(data={"item": text, "status": "done"})) is None)
    try:
        Abandoned(reason=text)
        model_text = True
    except ValidationError:
        model_text = False
    assert model_text == (schema_problems(_event(kind="session-abandoned", data={"reason": text})) is None)


# --- read-only media -------------------------------------------------------------------------


def test_a_store_on_read_only_media_can_be_audited(
    env: dict[str, str], store_path: Path, tmp_path: Path
) -> None:
    """The store's folder is mounted read-only (in a user and mount namespace of the test's own)."""
    _seeded(store_path)
    media = tmp_path / "media"
    media.mkdir()
    store = media / store_path.name
    commands = (
        f"{CDSS} sessions --json --store {store}",
        f"{CDSS} audit verify --store {store} --checklists {EXAMPLES / 'valid'}",
        f"{CDSS} keys list --store {store}",
        f"{CDSS} record $({CDSS} sessions --json --store {store} | "
        f"{sys.executable} -c 'import json,sys; print(json.load(sys.stdin)[0][\"id\"])') "
        f"--store {store} --checklists {EXAMPLES / 'valid'}",
    )
    script = " && ".join(
        [f"mount --bind {store_path.parent} {media}", f"mount -o remount,ro,bind {media}", *commands]
    )
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified: every check holds" in done.stdout
    assert not store_path.with_name(store_path.name + "-shm").exists()


OLD_EVENTS = r"""
{"actor":"dr-a","at":"2026-01-01T00:00:00.000000Z","data":{"checklist":{"hash":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","id":"example-walk","version":"1.0.0"},"clinician":"dr-a","context":{"populations":[],"route":"intravenous"},"subject":"S-7F3K2"},"hash":"80c1a0b66cccaac1254c863cd5f6e73fc42782f103b3785441e868432569975d","prev":"0000000000000000000000000000000000000000000000000000000000000000","seq":1,"session":"55555555555555555555555555555555","type":"session-started"}
{"actor":"dr-a","at":"2026-01-01T00:00:01.000000Z","data":{"item":"x","reason":"other","reason_text":"pump \u001c down","status":"not-done"},"hash":"ace80ccb65547d3f76631f75fccd80bd5f66617a39eb61432d0094f9f35fdcdb","prev":"80c1a0b66cccaac1254c863cd5f6e73fc42782f103b3785441e868432569975d","seq":2,"session":"55555555555555555555555555555555","type":"item-answered"}
{"actor":"dr-a","at":"2026-01-01T00:00:02.000000Z","data":{"reason":"closed"},"hash":"6473e1c364a5535be49a52d1407496433fb7fd0ab09e62d68a075d8a3aa15c71","prev":"ace80ccb65547d3f76631f75fccd80bd5f66617a39eb61432d0094f9f35fdcdb","seq":3,"session":"55555555555555555555555555555555","type":"session-abandoned"}
"""
"""Written by cdss 0.1 (schema 1, commit 9ae2cae), including a reason with a control character."""


def test_events_written_by_the_first_format_still_validate_with_their_hashes() -> None:
    from cdss.events import check_chain, parse_event

    lines = [line for line in OLD_EVENTS.splitlines() if line]
    parsed = [parse_event(json.loads(line)) for line in lines]
    assert all(schema_problems(json.loads(line)) is None for line in lines)
    assert [event.canonical().decode() for event in parsed] == lines
    assert list(check_chain(parsed)) == []
