"""The installed ``cdss`` under ordinary faults and hostile input (issue 11, items 6, 7, 9, 10, 12).

Every case is one line on stderr naming the file and the cause, exit 1 (or 2
for how cdss was called), no traceback, and nothing half-written.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLES, cdss_command, fill, new_store

CHECKLISTS = ["--checklists", str(EXAMPLES / "valid")]
SUBJECT = "S-7F3K2M9Q1"
RUN = ["run", "example-walk", *CHECKLISTS, "--route", "intravenous", "--subject", SUBJECT]
WHO = ["--clinician", "dr-lee"]


def cdss(
    *args: str | bytes, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, str, str]:
    done = subprocess.run(
        [cdss_command(), *args], capture_output=True, env=env or dict(os.environ), cwd=cwd, timeout=120
    )
    return (
        done.returncode,
        done.stdout.decode("utf-8", "backslashreplace"),
        done.stderr.decode("utf-8", "backslashreplace"),
    )


def one_line(err: str) -> str:
    """The single ``cdss: ...`` line a fault must produce, never a traceback."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cdss: "), err
    return lines[0]


def sessions(env: dict[str, str] | None = None) -> list[dict[str, object]]:
    code, out, err = cdss("sessions", "--json", env=env)
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def answers_file(folder: Path, reason_text: str | None, *, name: str = "answers.json") -> Path:
    """An answers file whose second item is not-done for 'other' with ``reason_text``, written raw."""
    text = (
        '{"setting-confirmed": "done", "infusion-monitoring-planned": '
        '{"status": "not-done", "reason": "other", "reason_text": ' + json.dumps(reason_text) + "}}"
        if reason_text is not None
        else '{"setting-confirmed": "done", "infusion-monitoring-planned": {"status": "not-done", "reason": "other", "reason_text": "\\ud800"}}'
    )
    path = folder / name
    path.write_text(text, encoding="ascii")
    return path


# --- item 6: the whole-file check of an answers file is whole ---------------------------


def test_a_lone_surrogate_in_reason_text_fails_the_whole_file_check(tmp_path: Path, store_path: Path) -> None:
    path = answers_file(tmp_path, None)
    code, _, err = cdss(*RUN, *WHO, "--answers", str(path))
    assert code == 1
    assert "lone surrogate" in one_line(err)
    assert str(path) in err
    assert not store_path.exists()  # nothing recorded, not even the start


@pytest.mark.parametrize(
    ("reason_text", "message"),
    [
        ("John Smith, DOB 1980-01-31", "a birth date"),
        ("seen 31-Jan-1980", "a date"),
        ("call tel:5551234567", "a phone number"),
        ("write to j.smith@example.org", "an e-mail address"),
        ("MRN1234567 not found", "a record or identity number"),
        ("screen \x1b[2J cleared", "control character (U+001B)"),
        ("x" * 201, "201 characters; the limit is 200"),
    ],
)
def test_a_reason_text_that_would_be_refused_fails_before_the_first_write(
    tmp_path: Path, store_path: Path, reason_text: str, message: str
) -> None:
    path = answers_file(tmp_path, reason_text)
    code, _, err = cdss(*RUN, *WHO, "--answers", str(path))
    assert code == 1, err
    assert "Traceback" not in err
    assert message in err
    assert "nothing was recorded" in err
    assert not store_path.exists()


def test_a_plain_reason_is_recorded_in_full(tmp_path: Path) -> None:
    path = answers_file(tmp_path, "pump broken, rescheduled")
    code, out, err = cdss(*RUN, *WHO, "--answers", str(path))
    assert code == 0, err
    assert "completed" in out


# --- item 7: invalid UTF-8 in arguments and the environment -------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [*RUN[:-1], b"caf\xe9", *WHO],  # a subject
        ["sessions", "--store", b"/tmp/caf\xe9.sqlite3"],  # a store path
        ["abandon", "0123456789ab", "--reason", b"left \xe9arly"],  # a reason
        ["keys", "init", "--clinician", "dr-lee", "--name", b"Alic\xe9 A."],  # a printed name
    ],
    ids=["subject", "store path", "reason", "printed name"],
)
def test_an_argument_that_is_not_utf8_is_one_usage_line(args: list[str | bytes], store_path: Path) -> None:
    code, _, err = cdss(*args)
    assert code == 2
    assert "is not valid UTF-8" in one_line(err)
    assert "\\xe9" in err
    assert not store_path.exists()


def test_an_environment_value_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CDSS_STORE"}
    done = subprocess.run(
        [cdss_command(), "sessions"],
        capture_output=True,
        env={**{k.encode(): v.encode() for k, v in env.items()}, b"CDSS_STORE": b"/tmp/caf\xe9"},
    )
    err = done.stderr.decode()
    assert done.returncode == 2
    assert "environment variable CDSS_STORE is not valid UTF-8" in one_line(err)


def test_a_printed_name_with_control_characters_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "CDSS_PASSPHRASE": "long enough passphrase"}
    code, _, err = cdss("keys", "init", "--clinician", "dr-lee", "--name", "Alice\x1b]0;pwned\x07", env=env)
    assert code == 1
    assert "control character" in one_line(err)
    assert not list(Path(os.environ["HOME"]).rglob("dr-lee*"))


def test_stdout_that_cannot_encode_gets_escapes_not_a_crash() -> None:
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    code, out, err = cdss("show", "example-walk", *CHECKLISTS, env=env)
    assert code == 0, err
    assert "\\u2014" in out or "\\u" in out or out.isascii()


# --- item 7: wrong path kinds, links, full disks, read-only media ------------------------


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """A store holding one completed session, recorded through the command."""
    path = answers_file(tmp_path, "pump broken")
    code, _, err = cdss(*RUN, *WHO, "--answers", str(path))
    assert code == 0, err
    return Path(os.environ["CDSS_STORE"])


def test_report_html_onto_a_folder_is_one_line(tmp_path: Path, recorded: Path) -> None:
    code, out, err = cdss("audit", "report", "--html", str(tmp_path))
    assert code == 2
    assert "is a folder; give the name of a file" in one_line(err)
    assert out == ""  # refused before any work


def test_report_csv_onto_an_existing_file_is_one_line(tmp_path: Path, recorded: Path) -> None:
    existing = tmp_path / "report.csv"
    existing.write_text("mine")
    code, out, err = cdss("audit", "report", "--csv", str(existing))
    assert code == 2
    assert "is a file, not a folder" in one_line(err)
    assert existing.read_text() == "mine"
    assert out == ""


def test_a_planted_csv_link_is_refused_and_its_target_kept(tmp_path: Path, recorded: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "status.csv").symlink_to(victim)
    code, _, err = cdss("audit", "report", "--csv", str(folder))
    assert code == 1
    assert "symbolic link" in one_line(err)
    assert victim.read_text() == "precious"


@pytest.mark.parametrize(
    ("command", "target", "planted"),
    [
        (["audit", "report", "--html"], "r.html", ".r.html.tmp"),
        (["audit", "checkpoint", "--out"], "cp.json", ".cp.json.tmp"),
        (["audit", "export", *CHECKLISTS, "--out"], "b.zip", ".b.zip.tmp"),
    ],
    ids=["report", "checkpoint", "export"],
)
def test_a_planted_temporary_link_is_never_written_through(
    tmp_path: Path, recorded: Path, command: list[str], target: str, planted: str
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / planted).symlink_to(victim)
    code, _, err = cdss(*command, str(tmp_path / target))
    assert code == 0, err
    assert victim.read_text() == "precious"
    assert (tmp_path / target).is_file()
    assert not (tmp_path / target).is_symlink()


@pytest.mark.parametrize(
    ("command", "target"),
    [
        (["audit", "checkpoint", "--out"], "cp.json"),
        (["audit", "export", *CHECKLISTS, "--out"], "b.zip"),
        (["audit", "report", "--html"], "r.html"),
    ],
    ids=["checkpoint", "export", "report"],
)
def test_a_target_that_is_a_link_is_refused(
    tmp_path: Path, recorded: Path, command: list[str], target: str
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / target).symlink_to(victim)
    code, _, err = cdss(*command, str(tmp_path / target))
    assert code in (1, 2), err
    one_line(err)
    assert victim.read_text() == "precious"


def on_disk(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(
    ("command", "target"),
    [
        (["audit", "report", "--html"], "r.html"),
        (["audit", "report", "--csv"], "csv"),
        (["audit", "checkpoint", "--out"], "cp.json"),
        (["audit", "export", *CHECKLISTS, "--out"], "b.zip"),
        (["audit", "export", *CHECKLISTS, "--out"], "bundle"),
    ],
    ids=["html", "csv", "checkpoint", "zip", "folder"],
)
def test_a_full_disk_is_one_line_and_leaves_nothing(
    recorded: Path, full_disk: Path, command: list[str], target: str
) -> None:
    code, _, err = cdss(*command, str(full_disk / target))
    assert code == 1
    line = one_line(err)
    assert "the disk is full" in line
    assert str(full_disk / target) in line
    assert on_disk(full_disk) == ["filler"]


def test_a_full_disk_during_run_records_nothing_and_says_so_in_one_line(
    tmp_path: Path, small_disk: Path
) -> None:
    env = {**os.environ, "CDSS_STORE": str(small_disk / "records.sqlite3")}
    first = answers_file(tmp_path, "pump broken")
    code, _, err = cdss(*RUN, *WHO, "--answers", str(first), env=env)
    assert code == 0, err
    fill(small_disk)
    code, _, err = cdss(*RUN, *WHO, "--answers", str(first), env=env)
    assert code == 1
    line = one_line(err)
    assert "cannot rollback" not in line
    assert str(small_disk / "records.sqlite3") in line
    (small_disk / "filler").unlink()
    assert len(sessions(env)) == 1
    code, out, err = cdss("audit", "verify", *CHECKLISTS, env=env)
    assert code == 0, out + err


def test_a_full_disk_during_keys_init_leaves_no_key_files(
    full_disk: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    store = new_store(tmp_path_factory.mktemp("store") / "records.sqlite3")
    env = {**os.environ, "HOME": str(full_disk), "XDG_CONFIG_HOME": str(full_disk / ".config")}
    env["CDSS_STORE"] = str(store)
    env["CDSS_PASSPHRASE"] = "long enough passphrase"
    code, _, err = cdss("keys", "init", "--clinician", "dr-lee", "--name", "Lee L.", env=env)
    assert code == 1
    assert "the disk is full" in one_line(err)
    assert [p for p in full_disk.rglob("*") if p.is_file()] == [full_disk / "filler"]


def test_a_read_only_medium_is_one_line(tmp_path: Path, recorded: Path, small_disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    code, _, err = cdss("audit", "report", "--html", str(small_disk / "r.html"))
    assert code == 1
    assert "the medium is read-only" in one_line(err)


# --- item 7: damaged and deep input -------------------------------------------------------


def test_deeply_nested_json_in_a_checkpoint_is_one_line(tmp_path: Path, recorded: Path) -> None:
    deep = tmp_path / "cp.json"
    deep.write_text('{"format": ' + "[" * 100_000 + "]" * 100_000 + "}")
    code, _, err = cdss("audit", "verify", "--against", str(deep))
    assert code == 1, err
    one_line(err)


def test_a_zip_with_a_bad_crc_names_the_bundle(tmp_path: Path, recorded: Path) -> None:
    bundle = tmp_path / "b.zip"
    code, _, err = cdss("audit", "export", *CHECKLISTS, "--out", str(bundle))
    assert code == 0, err
    import zipfile

    with zipfile.ZipFile(bundle) as archive:
        info = archive.getinfo("events.jsonl")
    data = bytearray(bundle.read_bytes())
    # Flip a byte inside the stored (compressed) events, past the local header.
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    bundle.write_bytes(bytes(data))
    code, out, err = cdss("audit", "verify", str(bundle))
    assert code == 1, out + err
    assert "Traceback" not in err
    assert str(bundle) in out + err


def test_list_on_a_checklist_of_the_wrong_shape_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "checklists" / "broken"
    folder.mkdir(parents=True)
    (folder / "1.0.0.json").write_text('{"sections": 5}')
    code, out, err = cdss("list", "--checklists", str(tmp_path / "checklists"))
    assert code == 0, err
    assert "broken" in out
    assert "Traceback" not in err


# --- item 6 as a property: what passes the whole-file check records in full ------------------

TEXTS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["\ud800", "ok \udc80", "x\x1b[2J", "John Smith, DOB 1980-01-31", "31-Jan-1980", "x" * 201, " ", ""]
    ),
)
FIELDS = st.fixed_dictionaries(
    {"status": st.sampled_from(["done", "not-applicable", "not-done", "maybe"])},
    optional={
        "reason": st.sampled_from(["deferred", "other", "patient-declined", "bogus"]),
        "reason_text": TEXTS,
    },
)
ANSWERS = st.dictionaries(
    st.sampled_from(
        ["setting-confirmed", "infusion-monitoring-planned", "older-adult-side-effects-reviewed", "nope"]
    ),
    st.sampled_from(["done", "not-applicable", "not-done"]) | FIELDS,
)


@settings(max_examples=40, deadline=None)
@given(ANSWERS)
@example({"setting-confirmed": {"status": "done", "reason_text": ""}})  # once passed the check, then exit 3
@example({"setting-confirmed": {"status": "not-done", "reason": "deferred", "reason_text": ""}})
def test_an_answers_file_either_fails_whole_or_records_whole(answers: dict[str, object]) -> None:
    from tests.audit_records import cli

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        path = folder / "answers.json"
        path.write_text(json.dumps(answers))  # ensure_ascii: a lone surrogate arrives as \ud800
        store = folder / "records.sqlite3"
        code = cli(*RUN, *WHO, "--answers", str(path), "--store", str(store))
        assert code in (0, 1, 4)
        if code == 1:
            assert not store.exists()  # refused before the first write


# --- item 7: deep JSON in a store row ---------------------------------------------------------


def test_deep_json_in_a_store_row_is_one_line_everywhere(tmp_path: Path, recorded: Path) -> None:
    import sqlite3

    session = str(sessions()[0]["id"])
    db = sqlite3.connect(recorded, isolation_level=None)
    columns = [row[1] for row in db.execute("PRAGMA table_info(events)")]
    last = dict(
        zip(columns, db.execute("SELECT * FROM events ORDER BY seq DESC LIMIT 1").fetchone(), strict=True)
    )
    last["seq"] += 1
    last["hash"] = "f" * 64
    last["event"] = str(last["event"])[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    db.execute(
        f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        [last[c] for c in columns],
    )
    db.close()
    for command in (
        ["sessions"],
        ["record", session, *CHECKLISTS],
        ["audit", "report"],
        ["audit", "export", *CHECKLISTS, "--out", str(tmp_path / "b.zip")],
        ["abandon", session, "--reason", "patient left"],
    ):
        code, _, err = cdss(*command)
        assert code in (0, 1), (command, err)  # refused, or the row is outside what it reads
        if code == 1:
            one_line(err)
        assert "Traceback" not in err
    code, out, err = cdss("audit", "verify", *CHECKLISTS)
    assert code == 1
    assert "Traceback" not in err
    assert "unexpected error" not in out + err
