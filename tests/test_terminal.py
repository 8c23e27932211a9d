"""The installed ``cdss`` in a real pseudo-terminal, driven by real keystrokes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from tests.conftest import new_store

EXAMPLES = Path(__file__).parent / "examples" / "valid"
CDSS = str(Path(sys.executable).with_name("cdss"))
FOLDERS = ["--checklists", str(EXAMPLES)]
START = ["run", "example-walk", *FOLDERS, "--route", "intravenous", "--population", "older-adults"]
WHO = ["--subject", "S-7F3K2M9Q1", "--clinician", "dr-lee"]


@pytest.fixture
def env(store_path: Path) -> dict[str, str]:
    return {**os.environ, "CDSS_STORE": str(store_path), "NO_COLOR": "1", "TERM": "xterm"}


def spawn(env: dict[str, str], *args: str) -> pexpect.spawn:
    return pexpect.spawn(CDSS, list(args), env=env, encoding="utf-8", timeout=20, dimensions=(24, 80))


def record(env: dict[str, str], session: str) -> dict:  # type: ignore[type-arg]
    done = subprocess.run(
        [CDSS, "record", session, *FOLDERS, "--json"], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def only_session(env: dict[str, str]) -> str:
    done = subprocess.run([CDSS, "sessions", "--json"], capture_output=True, text=True, env=env, check=True)
    [row] = json.loads(done.stdout)
    return row["id"]  # type: ignore[no-any-return]


def test_a_full_walk_with_every_key(env: dict[str, str]) -> None:
    child = spawn(env, *START, *WHO)
    child.expect("Before the session · before  —  item 1 of 3")
    child.send("?")
    child.expect("Source: Ketamine Therapy — Administration")
    child.send("z")
    child.expect("Press one of")
    child.send("d")
    child.expect("Recorded: done")
    child.expect("item 2 of 3")
    child.send("x")
    child.expect("Not done — why?")
    child.send("4")
    child.expect("Short reason")
    child.sendline("pump unavailable")
    child.expect("item 3 of 3")
    child.send("b")
    child.expect("Recorded now: not done")
    child.send("d")
    child.expect("Why the change")
    child.sendline("pump found")
    child.expect("Amended: done")
    child.expect("item 3 of 3")
    child.send("x")
    child.send("2")
    child.expect("summary")
    child.expect("done: 2  not applicable: 0  not done: 1")
    child.expect("Deferred to a later visit")
    child.send("c")
    child.expect("completed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    body = record(env, only_session(env))
    assert body["status"] == "completed"
    assert [(i["id"], i["status"], i["reason"]) for i in body["items"]] == [
        ("setting-confirmed", "done", None),
        ("infusion-monitoring-planned", "done", None),
        ("older-adult-side-effects-reviewed", "not-done", "deferred"),
    ]
    amended = body["items"][1]["history"]
    assert [(h["status"], h["reason_text"]) for h in amended] == [
        ("not-done", "pump unavailable"),
        ("done", None),
    ]
    assert amended[1]["explanation"] == "pump found"


def test_q_saves_and_resume_continues_at_the_first_unanswered_item(env: dict[str, str]) -> None:
    child = spawn(env, *START, *WHO)
    child.expect("item 1 of 3")
    child.send("n")
    child.expect("item 2 of 3")
    child.send("q")
    child.expect(r"cdss resume ([0-9a-f]{12})")
    prefix = child.match.group(1)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    child = spawn(env, "resume", prefix, *FOLDERS)
    child.expect("item 2 of 3")
    child.send("\x03")  # Ctrl-C saves and quits too
    child.expect(f"cdss resume {prefix}")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert record(env, prefix)["status"] == "open"


def test_kill_9_loses_no_acknowledged_answer(env: dict[str, str]) -> None:
    child = spawn(env, *START, *WHO)
    child.expect("item 1 of 3")
    child.send("d")
    child.expect("item 2 of 3")  # drawn only after the answer was committed
    child.send("n")
    child.expect("item 3 of 3")
    os.kill(child.pid, signal.SIGKILL)
    child.expect(pexpect.EOF)
    child.close()
    session = only_session(env)
    body = record(env, session)
    assert body["status"] == "open"
    assert [i["status"] for i in body["items"]] == ["done", "not-applicable", None]
    child = spawn(env, "resume", session[:8], *FOLDERS)
    child.expect("item 3 of 3")
    child.send("d")
    child.expect("summary")
    child.send("c")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert record(env, session)["status"] == "completed"


def test_colour_layout_fits_80_columns(env: dict[str, str]) -> None:
    del env["NO_COLOR"]
    child = spawn(env, *START, *WHO)
    child.expect("item 1 of 3")
    child.expect("q save and quit")
    screen = child.before
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert all(len(text) <= 80 for text in screen.splitlines())


@pytest.mark.parametrize("command", [["keys", "init", "--name", "Dr A. Lee"], [*START, *WHO, "--sign"]])
def test_ctrl_c_at_a_passphrase_prompt_exits_130_and_writes_nothing(
    env: dict[str, str], store_path: Path, tmp_path: Path, command: list[str]
) -> None:
    env = {**env, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env.pop("CDSS_PASSPHRASE", None)
    if command[0] == "run":  # a key to unlock, made without a prompt
        new_store(store_path)
        made = subprocess.run(
            [CDSS, "keys", "init", "--clinician", "dr-lee", "--name", "Dr A. Lee"],
            env={**env, "CDSS_PASSPHRASE": "correct horse battery"},
            capture_output=True,
            text=True,
        )
        assert made.returncode == 0, made.stderr
        store_path.unlink()
    else:
        command = [*command, "--clinician", "dr-lee"]
    child = spawn(env, *command)
    child.expect("assphrase for dr-lee's key")
    child.sendcontrol("c")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert "Aborted" not in child.before and "Traceback" not in child.before
    assert not store_path.exists()
    assert (command[0] == "run") == (tmp_path / "config" / "cdss" / "keys" / "dr-lee.pem").exists()
