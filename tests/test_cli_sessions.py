"""The session commands through ``cdss.cli.main.run``, the one place errors become exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cdss.cli.main import run

EXAMPLES = Path(__file__).parent / "examples" / "valid"
WALK = ["run", "example-walk", "--checklists", str(EXAMPLES), "--route", "intravenous"]
WHO = ["--subject", "S-7F3K2M9Q1", "--clinician", "dr-lee"]


class Result:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def cdss(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    def invoke(*args: str) -> Result:
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal
        try:
            run(list(args))
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        else:
            code = 0
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def answers(tmp_path: Path, value: object, name: str = "answers.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(value) if not isinstance(value, str) else value)
    return str(path)


ALL = {
    "setting-confirmed": "done",
    "infusion-monitoring-planned": {"status": "not-done", "reason": "other", "reason_text": "no pump"},
}


def session_ids(cdss, *filters: str) -> list[str]:  # type: ignore[no-untyped-def]
    result = cdss("sessions", "--json", *filters)
    assert result.code == 0, result.err
    return [row["id"] for row in json.loads(result.out)]


def test_run_with_a_complete_answers_file(cdss, tmp_path: Path, store_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cdss(*WALK, *WHO, "--answers", answers(tmp_path, ALL))
    assert result.code == 0, result.err
    assert "completed: 2 item(s) recorded" in result.out
    [session] = session_ids(cdss, "--status", "completed")
    record = cdss("record", session[:8], "--checklists", str(EXAMPLES), "--json")
    body = json.loads(record.out)
    assert body["status"] == "completed"
    assert [(i["id"], i["status"]) for i in body["items"]] == [
        ("setting-confirmed", "done"),
        ("infusion-monitoring-planned", "not-done"),
    ]
    assert body["items"][1]["reason_text"] == "no pump"
    assert store_path.exists()


def test_a_partial_answers_file_exits_4_and_lists_what_is_left(cdss, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cdss(*WALK, *WHO, "--population", "older-adults", "--answers", answers(tmp_path, ALL))
    assert result.code == 4
    assert "1 unanswered" in result.out
    assert "older-adult-side-effects-reviewed" in result.out
    assert len(session_ids(cdss, "--status", "open")) == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"nope": "done"}, "/nope: no item 'nope'"),
        ({"older-adult-side-effects-reviewed": "done"}, "does not apply"),
        ({"setting-confirmed": "maybe"}, "'maybe' is not one of"),
        ({"setting-confirmed": {"status": "not-done"}}, "needs a reason"),
        ({"setting-confirmed": {"status": "not-done", "reason": "other"}}, "needs a short text"),
        ({"setting-confirmed": {"status": "done", "note": "x"}}, "unexpected key(s) note"),
        ({"setting-confirmed": 3}, "expected a status or an object"),
        ({"setting-confirmed": {"reason": "deferred"}}, "needs a status"),
        ('{"setting-confirmed": "done", "setting-confirmed": "done"}', "duplicate key"),
        ("{not json", "not valid JSON"),
        ("[]", "expected a JSON object"),
    ],
)
def test_a_bad_answers_file_records_nothing(
    cdss: Callable[..., Result], tmp_path: Path, store_path: Path, value: object, message: str
) -> None:
    path = answers(tmp_path, value)
    result = cdss(*WALK, *WHO, "--answers", path)
    assert result.code == 1
    assert path in result.err
    assert message in result.err
    assert "Traceback" not in result.err
    assert not store_path.exists()


def test_a_missing_answers_file(cdss, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cdss(*WALK, *WHO, "--answers", str(tmp_path / "missing.json"))
    assert (result.code, "no such file" in result.err) == (1, True)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["run", "no-such", "--checklists", str(EXAMPLES), *WHO, "--answers", "x"],
            1,
            "no checklist 'no-such'",
        ),
        (
            ["run", "example-walk@9.9.9", "--checklists", str(EXAMPLES), *WHO, "--answers", "x"],
            1,
            "no version 9.9.9",
        ),
        ([*WALK[:-2], "--route", "oral", *WHO, "--answers", "x"], 2, "unknown route 'oral'"),
        ([*WALK, "--population", "kids", *WHO, "--answers", "x"], 2, "unknown population"),
        ([*WALK[:-2], *WHO, "--answers", "x"], 2, "differs by route"),
        ([*WALK, "--subject", "Jane Doe", "--clinician", "dr-lee", "--answers", "x"], 1, "personal data"),
        ([*WALK, "--subject", "1980-02-01", "--clinician", "dr-lee", "--answers", "x"], 1, "date"),
        ([*WALK, "--subject", "S-111111117", "--answers", "x"], 2, "--clinician"),
        ([*WALK, "--subject", "S-111111117", "--clinician", "Dr Lee", "--answers", "x"], 1, "clinician id"),
        ([*WALK, *WHO], 2, "not one"),
    ],
)
def test_bad_run_input_is_one_line_and_writes_nothing(
    cdss: Callable[..., Result], store_path: Path, args: list[str], code: int, message: str
) -> None:
    result = cdss(*args)
    assert result.code == code, result.err
    assert message in result.err
    assert "Traceback" not in result.err
    assert not store_path.exists()


def test_store_problems(cdss, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = cdss("sessions", "--store", str(tmp_path / "nowhere" / "r.sqlite3"))
    assert (missing.code, "does not exist" in missing.err) == (1, True)
    not_yet = tmp_path / "r.sqlite3"
    for command in (
        ["sessions"],
        ["record", "0a1b2c3d"],
        ["resume", "0a1b2c3d"],
        ["abandon", "0a1b2c3d", "--reason", "x"],
    ):
        result = cdss(*command, "--store", str(not_yet))
        assert (result.code, "no sessions have been recorded there" in result.err) == (1, True), result.err
    assert not not_yet.exists()  # looking at records never creates a store
    not_a_store = tmp_path / "notes.txt"
    not_a_store.write_text("hello")
    result = cdss(*WALK, *WHO, "--answers", answers(tmp_path, ALL), "--store", str(not_a_store))
    assert (result.code, "not a cdss store" in result.err) == (1, True)
    assert not_a_store.read_text() == "hello"


def test_amend_abandon_and_resume_refusals(cdss, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cdss(*WALK, *WHO, "--population", "older-adults", "--answers", answers(tmp_path, ALL)).code == 4
    [session] = session_ids(cdss)
    folders = ["--checklists", str(EXAMPLES)]
    amended = cdss(
        "amend", session[:6], "setting-confirmed", "not-done", "--not-done-reason", "deferred",
        "--reason", "wrong key", "--clinician", "dr-kim", *folders,
    )  # fmt: skip
    assert amended.code == 0, amended.err
    bad = cdss("amend", session[:6], "setting-confirmed", "not-done", "--reason", "x", *folders)
    assert (bad.code, "needs a reason" in bad.err) == (1, True)
    unanswered = cdss(
        "amend", session[:6], "older-adult-side-effects-reviewed", "done", "--reason", "x", *folders
    )
    assert (unanswered.code, "no answer to amend" in unanswered.err) == (1, True)
    assert cdss("abandon", session[:6], "--reason", "patient left", *folders).code == 0
    again = cdss("abandon", session[:6], "--reason", "again", *folders)
    assert (again.code, "is abandoned" in again.err) == (1, True)
    resumed = cdss("resume", session[:6], *folders)
    assert (resumed.code, "cannot be resumed" in resumed.err) == (1, True)
    text = cdss("record", session, *folders)
    assert "abandoned: patient left" in text.out
    assert "corrected from done" in text.out
    assert "by dr-kim: wrong key" in text.out
    body = json.loads(cdss("record", session, *folders, "--json").out)
    history = body["items"][0]["history"]
    assert [(h["status"], h["actor"]) for h in history] == [("done", "dr-lee"), ("not-done", "dr-kim")]
    assert history[1]["corrects"] == history[0]["event"]


def test_amend_after_completion(cdss, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cdss(*WALK, *WHO, "--answers", answers(tmp_path, ALL)).code == 0
    [session] = session_ids(cdss)
    folders = ["--checklists", str(EXAMPLES)]
    result = cdss(
        "amend", session[:8], "infusion-monitoring-planned", "done", "--reason", "pump found", *folders
    )
    assert result.code == 0, result.err
    body = json.loads(cdss("record", session[:8], *folders, "--json").out)
    assert body["status"] == "completed"
    assert body["items"][1]["status"] == "done"
    assert body["items"][1]["history"][0]["status"] == "not-done"


def test_sessions_filters(cdss, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cdss(*WALK, *WHO, "--answers", answers(tmp_path, ALL)).code == 0
    assert (
        cdss(
            *WALK, "--subject", "S-22222222V", "--clinician", "dr-kim", "--answers", answers(tmp_path, {})
        ).code
        == 4
    )
    assert len(session_ids(cdss)) == 2
    assert len(session_ids(cdss, "--clinician", "dr-kim")) == 1
    assert len(session_ids(cdss, "--status", "completed", "--checklist", "example-walk")) == 1
    assert session_ids(cdss, "--checklist", "other") == []
    text = cdss("sessions")
    assert text.out.count("example-walk@1.0.0") == 2
    bad = cdss("sessions", "--status", "done")
    assert (bad.code, "expected open, completed or abandoned" in bad.err) == (2, True)


@pytest.mark.parametrize("command", ["record", "resume", "abandon"])
def test_unknown_session_ids(cdss, command: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cdss(*WALK, *WHO, "--answers", answers(tmp_path, ALL)).code == 0
    extra = ["--reason", "x"] if command == "abandon" else []
    unknown = cdss(command, "abcdef0123", *extra)
    assert (unknown.code, "no session abcdef0123" in unknown.err) == (1, True)
    short = cdss(command, "abc", *extra)
    assert (short.code, "at least 6" in short.err) == (2, True)


def test_the_installed_command(tmp_path: Path) -> None:
    command = Path(sys.executable).with_name("cdss")
    env = {**os.environ, "CDSS_STORE": str(tmp_path / "records.sqlite3")}
    done = subprocess.run(
        [str(command), *WALK, *WHO, "--answers", answers(tmp_path, ALL)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    bad = subprocess.run(
        [str(command), *WALK, "--subject", "jane@example.org", "--clinician", "dr-lee", "--answers", "x"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert bad.returncode == 1
    assert bad.stderr.startswith("cdss: ") and "e-mail" in bad.stderr
    assert bad.stderr.count("\n") == 1
