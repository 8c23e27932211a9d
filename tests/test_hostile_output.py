"""Output is inert, free text is checked (issue 11, items 9 and 12): escapes, formulas, personal data."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pexpect
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cdss.audit.html import write_csv
from cdss.audit.report import Figures
from cdss.text import csv_cell, free_text_problem, inert, personal_data
from tests.conftest import EXAMPLES, cdss_command

# --- inert ---------------------------------------------------------------------------------

UNSAFE = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]] + [
    "\u061c",
    "\u200e",
    "\u200f",
    *[chr(c) for c in range(0x202A, 0x202F)],
    *[chr(c) for c in range(0x2066, 0x206A)],
    "\u2028",
    "\u2029",
]


@given(st.text(alphabet=st.characters(codec=None) | st.sampled_from(UNSAFE)))
@example("\x1b[2J\x1b]0;title\x07\x9b31m\u202eevil\r")
def test_inert_text_holds_no_control_character_and_says_where_one_was(text: str) -> None:
    shown = inert(text)
    assert not any(c in shown for c in UNSAFE)
    assert not any("\ud800" <= c <= "\udfff" for c in shown)
    shown.encode("utf-8")  # always printable
    if not any(c in text for c in UNSAFE) and not any("\ud800" <= c <= "\udfff" for c in text):
        assert shown == text  # ordinary text is untouched
    else:
        assert "\\" in shown


def test_inert_shows_escape_sequences_visibly() -> None:
    assert inert("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert inert("line\nnext\ttab\rback") == "line\\nnext\\ttab\\rback"
    assert inert("\x9b31m") == "\\x9b31m"
    assert inert("\u202eevil") == "\\u202eevil"
    assert inert("caf\udce9") == "caf\\udce9"


# --- csv_cell ------------------------------------------------------------------------------


@given(st.text())
@example('=HYPERLINK("http://evil","x")')
@example("+1+1")
@example("-2+3")
@example("@SUM(A1)")
@example("\t=1")
@example("\r=1")
def test_no_csv_cell_starts_like_a_formula(text: str) -> None:
    cell = csv_cell(text)
    assert isinstance(cell, str)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    if text.startswith(("=", "+", "-", "@", "\t", "\r")):
        assert cell == "'" + text
    else:
        assert cell == text


@given(st.integers() | st.floats(allow_nan=False) | st.none())
def test_numbers_stay_numbers_in_csv(value: object) -> None:
    assert csv_cell(value) == value


def test_report_csv_neutralises_formulas(tmp_path: Path) -> None:
    figures = Figures("store x", "2026-12-03T00:00:00Z")
    figures.add(
        "signatures",
        "Signatures",
        ("name", "count"),
        [('=HYPERLINK("http://evil","click")', 1), ("@cmd", -3), ("Lee L.", 2)],
    )
    [path] = write_csv(figures, tmp_path / "csv")
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["name", "count"],
        ['\'=HYPERLINK("http://evil","click")', "1"],
        ["'@cmd", "-3"],
        ["Lee L.", "2"],
    ]


# --- free text ----------------------------------------------------------------------------

PERSONAL = [
    "John Smith, DOB 1980-01-31",
    "31-Jan-1980",
    "1980_01_31",
    "1980-01-31",
    "31/01/1980",
    "01/31/80",
    "19800131",
    "Jan 31, 1980",
    "31st January 1980",
    "1980-Jan-31",
    "SSN:123456789",
    "ssn 123-45-6789",
    "123-45-6789",
    "MRN1234567",
    "NHS9434765919",
    "NHS 943 476 5919",
    "tel:5551234567",
    "call 555-123-4567",
    "+44 20 7946 0958",
    "(555) 123-4567",
    "john.smith@example.org",
    "date of birth given",
    "patient id 88",
]

ORDINARY = [
    "patient declined today",
    "deferred 2 weeks",
    "pump broken, rescheduled",
    "pharmacy out of stock until Monday",
    "REMS form 2 pending",
    "awaiting 2nd opinion",
    "will do at visit 3",
    "dose at 10:30",
    "May review next week",
    "room 12 unavailable",
    "monitor for 2 hours",
    "interpreter needed (Spanish)",
    "cell phone not available",
    "BP cuff broken",
]


@pytest.mark.parametrize("text", PERSONAL)
def test_plain_personal_data_is_refused(text: str) -> None:
    problem = free_text_problem(text, "the reason")
    assert problem is not None
    assert "cdss never records personal data" in problem


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_reasons_pass(text: str) -> None:
    assert free_text_problem(text, "the reason") is None


def test_what_cannot_be_caught_is_a_name() -> None:
    # Stated in the README: a name reads like any two words.
    assert personal_data("John Smith") is None


def test_the_length_limit_is_stated_not_cut() -> None:
    assert free_text_problem("x" * 200, "the reason") is None
    assert free_text_problem("x" * 201, "the reason") == (
        "the reason is 201 characters; the limit is 200 (keep it short, no clinical findings)"
    )


def test_a_printed_name_skips_only_the_personal_data_rule() -> None:
    assert free_text_problem("Lee 1980-01-31", "the printed name", limit=120, personal=False) is None
    assert free_text_problem("Lee\x1b[2J", "the printed name", limit=120, personal=False) is not None


@given(
    st.dates(min_value=date(1850, 1, 1), max_value=date(2099, 12, 31)),
    st.sampled_from(["%Y-%m-%d", "%d-%b-%Y", "%Y_%m_%d", "%d/%m/%Y", "%b %d, %Y", "%Y%m%d"]),
)
def test_every_date_in_the_common_forms_is_refused(day: date, form: str) -> None:
    text = f"seen on {day.strftime(form)} at home"
    assert free_text_problem(text, "the reason") is not None


@given(st.from_regex(r"[0-9]{7,12}", fullmatch=True), st.sampled_from(["", "MRN", "NHS", "SSN:", "id "]))
def test_every_long_number_is_refused(number: str, label: str) -> None:
    assert free_text_problem(f"{label}{number}", "the reason") is not None


@given(st.text(alphabet=st.characters(codec=None) | st.sampled_from(UNSAFE), max_size=250))
def test_free_text_that_passes_can_be_recorded_and_printed(text: str) -> None:
    if free_text_problem(text, "the reason") is None:
        assert len(text) <= 200
        text.encode("utf-8")
        assert inert(text) == text
        json.dumps(text, ensure_ascii=False).encode("utf-8")


# --- stored and checklist text never reaches the terminal raw -------------------------------


@pytest.fixture
def hostile_checklists(tmp_path: Path) -> Path:
    folder = tmp_path / "checklists"
    shutil.copytree(EXAMPLES / "valid", folder)
    path = folder / "example-walk" / "1.0.0.json"
    document = json.loads(path.read_text())
    document["title"] = "Walk \x1b]0;pwned\x07\x1b[2J"
    document["sections"][0]["items"][0]["text"] = (
        "Confirmed \x1b[31mred\x1b[0m\x9b2J that the setting is safe."
    )
    document["sections"][0]["items"][0]["why"] = "Because \u202eevil"
    path.write_text(json.dumps(document))
    return folder


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([cdss_command(), *args], capture_output=True, env=env or dict(os.environ))


@pytest.mark.parametrize("colour", [False, True], ids=["plain", "rich"])
def test_list_show_plan_run_and_record_print_no_escape_sequence(
    hostile_checklists: Path, colour: bool
) -> None:
    folders = ["--checklists", str(hostile_checklists)]
    env = dict(os.environ)
    if colour:
        env.update({"TERM": "xterm", "FORCE_COLOR": "1"})
    else:
        env["NO_COLOR"] = "1"
    answers = hostile_checklists.parent / "answers.json"
    answers.write_text('{"setting-confirmed": "done", "infusion-monitoring-planned": "done"}')
    outputs = [
        run("list", *folders, env=env),
        run("list", *folders, "--json", env=env),
        run("show", "example-walk", *folders, env=env),
        run("plan", "example-walk", *folders, "--route", "intravenous", env=env),
        run(
            "run",
            "example-walk",
            *folders,
            "--route",
            "intravenous",
            "--subject",
            "S-7F3K2M9Q1",
            "--clinician",
            "dr-lee",
            "--answers",
            str(answers),
            env=env,
        ),
    ]
    listed = json.loads(run("sessions", "--json", env=env).stdout)
    outputs.append(run("record", listed[0]["id"], *folders, env=env))
    outputs.append(run("record", listed[0]["id"], *folders, "--json", env=env))
    for done in outputs:
        assert done.returncode == 0, done.stderr
        text = done.stdout.decode()
        if colour:  # rich's own styles are escape sequences; the data's are not among them
            for hostile in ("\x1b[2J", "\x1b]0;", "\x07", "\x9b", "\u202e", "\x1b[31mred"):
                assert hostile not in text, (done.args, text)
        else:
            assert "\x1b" not in text and "\x9b" not in text and "\u202e" not in text, (done.args, text)
    assert "\\x1b[2J" in outputs[2].stdout.decode()


# --- a Latin-1 byte typed at the reason prompt ------------------------------------------------


def test_a_latin1_byte_at_the_reason_prompt_does_not_end_the_walk(store_path: Path) -> None:
    env = {**os.environ, "CDSS_STORE": str(store_path), "NO_COLOR": "1", "TERM": "xterm"}
    child = pexpect.spawn(
        str(Path(sys.executable).with_name("cdss")),
        [
            "run",
            "example-walk",
            "--checklists",
            str(EXAMPLES / "valid"),
            "--route",
            "intravenous",
            "--subject",
            "S-7F3K2M9Q1",
            "--clinician",
            "dr-lee",
        ],
        env=env,
        timeout=20,
        dimensions=(24, 80),
    )
    child.expect("item 1 of 2")
    child.send("d")
    child.expect("item 2 of 2")
    child.send("x")
    child.expect("Not done")
    child.send("4")  # other: needs a text
    child.expect("Short reason")
    child.send(b"pump caf\xe9\r")  # Latin-1, not UTF-8
    child.expect("Nothing recorded: the reason holds a character that is not text")
    child.expect("item 2 of 2")
    child.send("x")
    child.expect("Not done")  # one key per read: "x4" in one burst would be no key at all
    child.send("4")
    child.expect("Short reason")
    child.sendline("x" * 201)
    child.expect("the limit is 200")
    child.expect("item 2 of 2")
    child.send("x")
    child.expect("Not done")  # one key per read: "x4" in one burst would be no key at all
    child.send("4")
    child.expect("Short reason")
    child.sendline("pump broken")
    child.expect("summary")
    child.send("c")
    child.expect("completed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    listed = json.loads(run("sessions", "--json", env=env).stdout)
    record = json.loads(
        run("record", listed[0]["id"], "--checklists", str(EXAMPLES / "valid"), "--json", env=env).stdout
    )
    assert record["items"][1]["reason_text"] == "pump broken"
