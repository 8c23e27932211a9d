"""list, show, plan, diff and the error handler, as a user meets them."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cdss.catalog import Catalog, content_hash
from cdss.checklist import Checklist
from cdss.cli.app import app
from cdss.cli.main import guarded, log_path
from cdss.diff import diff
from cdss.plan import POPULATIONS, declare, nothing_extra_note, nothing_extra_notes, plan
from tests.conftest import EXAMPLES, REPO, cdss_command

VALID = EXAMPLES / "valid"
FOLDERS = ["--checklists", str(VALID)]
runner = CliRunner()


def cdss(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [cdss_command(), *args], capture_output=True, text=True, timeout=60, env=env, cwd=cwd
    )


def two_versions(tmp_path: Path) -> Path:
    """example-walk 1.0.0 and a 1.1.0 with one of each kind of change."""
    folder = tmp_path / "checklists"
    (folder / "example-walk").mkdir(parents=True)
    old = json.loads((VALID / "example-walk" / "1.0.0.json").read_text())
    (folder / "example-walk" / "1.0.0.json").write_text(json.dumps(old))
    new: dict[str, Any] = copy.deepcopy(old)
    new["version"] = "1.1.0"
    first, second = new["sections"][0]["items"]
    first["text"] = "Confirmed that the session is in a controlled medical setting."
    second["applies_when"] = {"routes": ["intravenous", "intranasal-esketamine"]}
    moved = new["sections"][1]["items"].pop()
    new["sections"][0]["items"].append(moved)
    new["sections"][1]["items"] = [
        {
            "id": "older-adult-cognition-reviewed",
            "text": "Reviewed cognitive effects with the older patient.",
            "why": "Older adults may be more sensitive to cognitive effects.",
            "sources": [{"document": "ketamine-therapy", "heading": "Safety and Side Effects"}],
        }
    ]
    del new["sections"][0]["items"][1]
    (folder / "example-walk" / "1.1.0.json").write_text(json.dumps(new))
    return folder


def test_list_shows_newest_version_title_and_items(tmp_path: Path) -> None:
    folder = two_versions(tmp_path)
    result = runner.invoke(app, ["list", "--checklists", str(folder), "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    walk = next(r for r in rows if r["id"] == "example-walk")
    assert walk == {
        "id": "example-walk",
        "version": "1.1.0",
        "title": "Example treatment session",
        "items": 3,
    }


def test_list_text_through_the_installed_command() -> None:
    result = cdss("list", *FOLDERS)
    assert result.returncode == 0
    assert any(line.split()[:2] == ["example-walk", "1.0.0"] for line in result.stdout.splitlines())


def test_id_resolves_to_newest_and_id_at_version_to_that_one(tmp_path: Path) -> None:
    catalog = Catalog([two_versions(tmp_path)])
    assert catalog.resolve("example-walk").version == "1.1.0"
    assert catalog.resolve("example-walk@1.0.0").version == "1.0.0"


def test_prerelease_is_not_the_default(tmp_path: Path) -> None:
    folder = two_versions(tmp_path)
    draft = json.loads((folder / "example-walk" / "1.1.0.json").read_text())
    draft["version"] = "2.0.0-rc.1"
    (folder / "example-walk" / "2.0.0-rc.1.json").write_text(json.dumps(draft))
    catalog = Catalog([folder])
    assert catalog.resolve("example-walk").version == "1.1.0"
    assert [e.version for e in catalog.versions("example-walk")] == ["1.0.0", "1.1.0", "2.0.0-rc.1"]


def test_show_plain_text_names_items_and_sources() -> None:
    result = cdss("show", "example-walk", *FOLDERS)
    assert result.returncode == 0
    assert "\x1b[" not in result.stdout
    assert "Confirmed that the session takes place in a controlled medical setting." in result.stdout
    assert "source: Ketamine Therapy [ketamine-therapy] — Administration" in result.stdout
    assert content_hash(json.loads((VALID / "example-walk" / "1.0.0.json").read_text())) in result.stdout


def test_show_json_is_the_checklist_as_written() -> None:
    result = runner.invoke(app, ["show", "example-walk@1.0.0", *FOLDERS, "--json"])
    assert json.loads(result.stdout) == json.loads((VALID / "example-walk" / "1.0.0.json").read_text())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "no-such-checklist"], "no checklist 'no-such-checklist'; known checklists:"),
        (["show", "example-walk@9.9.9"], "checklist 'example-walk' has no version 9.9.9; versions: 1.0.0"),
        (["show", "example-walk@"], "is not a checklist reference"),
    ],
)
def test_unknown_checklist_or_version(args: list[str], message: str) -> None:
    result = cdss(*args, *FOLDERS)
    assert result.returncode in (1, 2)
    assert result.stderr.startswith("cdss: ") and message in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_plan_applies_route_and_population_conditions() -> None:
    def planned(*args: str) -> list[str]:
        result = runner.invoke(app, ["plan", "example-walk", *FOLDERS, "--json", *args])
        assert result.exit_code == 0, result.output
        return [row["id"] for row in json.loads(result.stdout)]

    assert planned("--route", "intravenous") == ["setting-confirmed", "infusion-monitoring-planned"]
    assert planned("--route", "intranasal-esketamine") == ["setting-confirmed"]
    assert planned("--route", "intranasal-esketamine", "--population", "older-adults") == [
        "setting-confirmed",
        "older-adult-side-effects-reviewed",
    ]


def test_plan_json_has_id_text_and_section() -> None:
    result = runner.invoke(app, ["plan", "example-walk", *FOLDERS, "--route", "intravenous", "--json"])
    first = json.loads(result.stdout)[0]
    assert first["id"] == "setting-confirmed"
    assert first["section"] == "before-session"
    assert first["text"].startswith("Confirmed")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--route", "oral"],
            "unknown route 'oral' for example-walk@1.0.0; one of: intravenous, intranasal-esketamine",
        ),
        ([], "differs by route; give --route, one of: intravenous, intranasal-esketamine"),
        (
            ["--route", "intravenous", "--population", "pets"],
            "unknown population 'pets' for example-walk@1.0.0; valid: older-adults, adolescents, children,",
        ),
    ],
)
def test_plan_rejects_an_unknown_context(args: list[str], message: str) -> None:
    result = cdss("plan", "example-walk", *FOLDERS, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_diff_names_every_kind_of_change(tmp_path: Path) -> None:
    catalog = Catalog([two_versions(tmp_path)])
    changes = {
        (c.kind, c.item) for c in diff(catalog.load("example-walk@1.0.0"), catalog.load("example-walk@1.1.0"))
    }
    assert changes == {
        ("reworded", "setting-confirmed"),
        ("removed", "infusion-monitoring-planned"),
        ("added", "older-adult-cognition-reviewed"),
        ("moved", "older-adult-side-effects-reviewed"),
        ("applicability-changed", "older-adult-side-effects-reviewed"),
    }


def test_diff_command(tmp_path: Path) -> None:
    folder = two_versions(tmp_path)
    result = cdss("diff", "example-walk", "1.0.0", "1.1.0", "--checklists", str(folder))
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert (
        "+ added older-adult-cognition-reviewed: in older-adults: Reviewed cognitive effects with the older patient."
        in lines
    )
    assert (
        "- removed infusion-monitoring-planned: from before-session: "
        + ("Confirmed that a professional will monitor the infusion throughout.")
        in lines
    )
    assert lines[-1] == "5 change(s) from example-walk@1.0.0 to example-walk@1.1.0"
    as_json = json.loads(
        cdss("diff", "example-walk", "1.0.0", "1.1.0", "--checklists", str(folder), "--json").stdout
    )
    assert {
        "kind": "applicability-changed",
        "item": "older-adult-side-effects-reviewed",
        "detail": "population in older-adults -> always",
    } in as_json


def test_an_invalid_checklist_is_refused_with_its_issues(tmp_path: Path) -> None:
    folder = tmp_path / "checklists"
    (folder / "example-walk").mkdir(parents=True)
    (folder / "example-walk" / "1.0.0.json").write_text('{"id": "example-walk"}')
    result = cdss("show", "example-walk", "--checklists", str(folder))
    assert result.returncode == 1
    assert f"{folder / 'example-walk' / '1.0.0.json'}:/: missing required key 'title'" in result.stderr
    assert result.stderr.splitlines()[-1].endswith("is not a valid checklist (7 problems)")


def test_usage_errors_exit_2() -> None:
    result = cdss("show")
    assert result.returncode == 2
    assert "Missing argument" in result.stderr


def test_missing_checklists_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = cdss("list", "--checklists", str(tmp_path / "absent"))
    assert result.returncode == 2
    assert result.stderr == f"cdss: checklists folder {tmp_path / 'absent'} does not exist\n"


def test_unexpected_error_is_one_line_and_a_logged_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    def broken() -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(SystemExit) as exit_info:
        guarded(broken)
    assert exit_info.value.code == 3
    message = capsys.readouterr().err
    assert (
        message == f"cdss: unexpected error: RuntimeError: disk on fire (the traceback is in {log_path()})\n"
    )
    logged = log_path().read_text()
    assert "Traceback (most recent call last)" in logged and "disk on fire" in logged


def test_checklists_from_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "CDSS_CHECKLISTS": str(two_versions(tmp_path))}
    result = cdss("list", "--json", env=env)
    assert {
        "id": "example-walk",
        "version": "1.1.0",
        "title": "Example treatment session",
        "items": 3,
    } in json.loads(result.stdout)


def test_a_plain_wheel_install_lists_shipped_checklists_from_any_folder(tmp_path: Path) -> None:
    """The checklists and schemas travel inside the wheel, not beside the source tree."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("cdss-*.whl"))
    with zipfile.ZipFile(wheel) as opened:
        tops = {name.split("/")[0] for name in opened.namelist()}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"cdss"}  # no top-level tests or bench
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = "import cdss.catalog as c; print(c.shipped_folder())"
    where = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=elsewhere, env=env
    )
    assert where.stdout.strip() == str(target / "cdss" / "_data" / "checklists")
    listed = subprocess.run(
        [str(target / "bin" / "cdss"), "list", "--json"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
    )
    assert listed.returncode == 0, listed.stderr
    shipped = sorted(p.parent.name for p in (REPO / "checklists").glob("*/*.json"))
    assert sorted({row["id"] for row in json.loads(listed.stdout)}) == sorted(set(shipped))
    validated = subprocess.run(
        [str(target / "bin" / "cdss"), "validate"], capture_output=True, text=True, cwd=elsewhere, env=env
    )
    assert validated.returncode == 0, validated.stdout


# --- one clinic-wide context: every checklist accepts every population ------------------


def test_populations_are_the_union_of_the_shipped_checklists() -> None:
    declared: dict[str, str] = {}
    for path in sorted((REPO / "checklists").glob("*/*.json")):
        if path.name == "lock.json":
            continue
        for option in json.loads(path.read_text(encoding="utf-8"))["context"]["populations"]:
            assert declared.setdefault(option["id"], option["title"]) == option["title"], path
    assert {o.id: o.title for o in POPULATIONS} == declared


def test_every_shipped_checklist_accepts_every_population() -> None:
    catalog = Catalog([REPO / "checklists"])
    everyone = [o.id for o in POPULATIONS]
    for entry in catalog.entries():
        checklist = catalog.load(entry.ref)
        route = checklist.context.routes[0].id if checklist.context.routes else None
        context = declare(checklist, route, everyone)
        assert sorted(context.populations) == sorted(everyone), entry.ref


def test_a_population_without_a_module_adds_nothing_and_is_recorded_in_a_stable_order() -> None:
    checklist = Catalog([VALID]).load("example-walk")
    context = declare(checklist, "intravenous", ["ptsd", "older-adults", "ptsd"])
    assert context.populations == ("older-adults", "ptsd")
    assert [p.item.id for p in plan(checklist, context)] == [
        p.item.id for p in plan(checklist, declare(checklist, "intravenous", ["older-adults"]))
    ]
    assert nothing_extra_notes(checklist, context) == [
        "This checklist has nothing extra for Post-traumatic stress disorder (PTSD)."
    ]
    assert (
        nothing_extra_note(checklist, "older-adults") == "This checklist has nothing extra for Older adults."
    )


def test_plan_prints_the_note_and_carries_on() -> None:
    result = runner.invoke(
        app, ["plan", "example-walk", *FOLDERS, "--route", "intravenous", "--population", "ptsd"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "This checklist has nothing extra for Post-traumatic stress disorder (PTSD)."
    assert lines[1].startswith("example-walk@1.0.0: 2 items apply (route intravenous; populations: ptsd)")


def test_plan_json_keeps_the_note_off_stdout() -> None:
    result = cdss(
        "plan", "example-walk", *FOLDERS, "--route", "intravenous", "--population", "ptsd", "--json"
    )
    assert result.returncode == 0, result.stderr
    assert [row["id"] for row in json.loads(result.stdout)] == [
        "setting-confirmed",
        "infusion-monitoring-planned",
    ]
    assert result.stderr == "This checklist has nothing extra for Post-traumatic stress disorder (PTSD).\n"


def test_shipped_treatment_session_accepts_ptsd_through_the_installed_command() -> None:
    """Issue 12: `cdss plan treatment-session --population ptsd` exited 2."""
    result = cdss(
        "plan", "treatment-session@1.0.0", "--route", "intranasal-esketamine", "--population", "ptsd"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "This checklist has nothing extra for Post-traumatic stress disorder (PTSD)."
    )
    assert "Traceback" not in result.stderr


def test_run_prints_the_note_and_records_the_population(tmp_path: Path) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"setting-confirmed": "done", "infusion-monitoring-planned": "done"}))
    env = {**os.environ, "CDSS_STORE": str(tmp_path / "records.sqlite3")}
    result = cdss(
        "run", "example-walk", *FOLDERS, "--route", "intravenous", "--population", "ptsd",
        "--subject", "S-7F3K2M9Q1", "--clinician", "dr-lee", "--answers", str(answers), env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "This checklist has nothing extra for Post-traumatic stress disorder (PTSD)."
    )
    assert "completed: 2 item(s) recorded" in result.stdout


# --- diff: citations, pauses and references, item by item -------------------------------

PAUSES_FILE = VALID / "example-pauses" / "2.0.0.json"


def revised_pauses(tmp_path: Path) -> Path:
    """example-pauses 2.0.0 and a 2.1.0 that revises a label, cites it anew and moves a pause."""
    folder = tmp_path / "checklists"
    (folder / "example-pauses").mkdir(parents=True)
    old = json.loads(PAUSES_FILE.read_text())
    (folder / "example-pauses" / "2.0.0.json").write_text(json.dumps(old))
    new: dict[str, Any] = copy.deepcopy(old)
    new["version"] = "2.1.0"
    label = new["references"][0]
    label["version"] = "Revised 06/2026"
    label["sections"].append({"id": "2.3", "title": "Monitoring"})
    new["references"].append(
        {
            "id": "example-rems",
            "kind": "rems",
            "title": "Example REMS",
            "issuer": "Example Pharmaceuticals",
            "version": "2025",
            "url": "https://example.org/rems",
            "sections": [{"id": "setting", "title": "Setting requirements"}],
        }
    )
    new["pauses"][1]["moment"] = "before the patient leaves"
    new["pauses"].append(
        {"id": "observation-check", "title": "Observation check", "moment": "about 40 minutes"}
    )
    first = new["sections"][0]["items"][0]
    first["sources"].append({"reference": "example-rems", "section": "setting"})
    second = new["sections"][0]["items"][1]
    second["sources"] = [{"reference": "example-label", "section": "2.3"}]
    new["sections"][2]["pause"] = "sign-out"
    (folder / "example-pauses" / "2.1.0.json").write_text(json.dumps(new))
    return folder


def test_diff_shows_citations_pauses_and_references(tmp_path: Path) -> None:
    catalog = Catalog([revised_pauses(tmp_path)])
    changes = [
        c.to_json() for c in diff(catalog.load("example-pauses@2.0.0"), catalog.load("example-pauses@2.1.0"))
    ]
    assert changes == [
        {
            "kind": "reference-revised",
            "item": None,
            "detail": "example-label: version 'Revised 01/2025' -> 'Revised 06/2026'; section 2.3 added; "
            "cited by 2 item(s): sedation-monitoring-ready, observation-completed",
        },
        {
            "kind": "reference-added",
            "item": None,
            "detail": "example-rems: Example REMS (rems, Example Pharmaceuticals, 2025) https://example.org/rems",
        },
        {"kind": "pause-revised", "item": None, "detail": "sign-out: moment "
         "'after the observation period, before the patient leaves' -> 'before the patient leaves'"},
        {"kind": "pause-added", "item": None, "detail": "observation-check: Observation check (about 40 minutes)"},
        {
            "kind": "sources-changed",
            "item": "setting-confirmed",
            "detail": "now cites example-rems section setting",
        },
        {
            "kind": "sources-changed",
            "item": "sedation-monitoring-ready",
            "detail": "now cites example-label section 2.3; no longer cites example-label section 5.1",
        },
        {"kind": "pause-changed", "item": "older-adult-side-effects-reviewed", "detail": "before-dose -> sign-out"},
    ]  # fmt: skip


def test_diff_command_marks_additions_and_removals(tmp_path: Path) -> None:
    folder = revised_pauses(tmp_path)
    for args in (["diff", "example-pauses", "2.0.0", "2.1.0", "--checklists", str(folder)],):
        via_runner = runner.invoke(app, args)
        installed = cdss(*args)
        assert via_runner.exit_code == installed.returncode == 0
        assert via_runner.stdout == installed.stdout
    lines = installed.stdout.splitlines()
    assert (
        "+ reference-added: example-rems: Example REMS (rems, Example Pharmaceuticals, 2025) https://example.org/rems"
        in lines
    )
    assert "~ pause-changed older-adult-side-effects-reviewed: before-dose -> sign-out" in lines
    assert "+ pause-added: observation-check: Observation check (about 40 minutes)" in lines
    assert lines[-1] == "7 change(s) from example-pauses@2.0.0 to example-pauses@2.1.0"


def test_diff_from_format_1_to_format_2(tmp_path: Path) -> None:
    """A reference cited instead of a heading shows as a change of citation, item by item."""
    catalog = Catalog([VALID])
    old = catalog.load("example-walk@1.0.0")
    document = old.to_json()
    document["$schema"] = "urn:cdss:schema:checklist:2"
    document["version"] = "2.0.0"
    document["references"] = json.loads(PAUSES_FILE.read_text())["references"][:1]
    document["sections"][0]["items"][0]["sources"] = [{"reference": "example-label", "section": "2.1"}]
    new = Checklist.model_validate(document)
    assert [(c.kind, c.item, c.detail) for c in diff(old, new)] == [
        ("reference-added", None, "example-label: Example prescribing information (prescribing-information, "
         "Example Pharmaceuticals, Revised 01/2025) https://example.org/label.pdf"),
        ("sources-changed", "setting-confirmed",
         "now cites example-label section 2.1; no longer cites ketamine-therapy 'Administration'"),
    ]  # fmt: skip
