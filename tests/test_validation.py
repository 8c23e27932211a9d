"""Every kind of bad checklist an author can write gets one precise line, exit 1, no traceback."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cdss.catalog import Catalog, content_hash, read_lock, release, scan_folder
from cdss.cli.app import app
from cdss.cli.main import register
from cdss.validation import check_file
from tests.conftest import EXAMPLES, REPO, SEEDS, cdss_command

register()  # every command, for CliRunner

VALID = EXAMPLES / "valid" / "example-walk" / "1.0.0.json"
VALID_2 = EXAMPLES / "valid" / "example-pauses" / "2.0.0.json"
INVALID = EXAMPLES / "invalid"
EXPECTED: dict[str, dict[str, str]] = json.loads((INVALID / "expected.json").read_text(encoding="utf-8"))


def valid_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(VALID.read_text(encoding="utf-8"))
    return document


def write_checklist(
    folder: Path, content: bytes | dict[str, Any], checklist_id: str = "example-walk", version: str = "1.0.0"
) -> Path:
    path = folder / checklist_id / f"{version}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content, indent=2).encode())
    return path


def mutate(change: Callable[[dict[str, Any]], None]) -> bytes:
    document = valid_document()
    change(document)
    return json.dumps(document).encode()


def _set(pointer: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        *parents, last = pointer.strip("/").split("/")
        node: Any = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _delete(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda document: document.pop(key)


def _duplicate_item(document: dict[str, Any]) -> None:
    items = document["sections"][0]["items"]
    items.append(copy.deepcopy(items[0]))


def _rename_key(document: dict[str, Any]) -> None:
    document["sections"][0]["items"][0]["requried"] = True


BAD: list[tuple[str, bytes, str, str]] = [
    # (case, file content, pointer, message fragment)
    ("empty file", b"", "", "file is empty"),
    ("whitespace only", b"  \n\t", "", "file is empty"),
    ("truncated JSON", VALID.read_bytes()[:200], "", "not valid JSON"),
    ("top-level array", b"[1, 2, 3]", "", "expected a JSON object at the top level, found an array"),
    ("invalid UTF-8", b'{"id": "caf\xe9"}', "", "not valid UTF-8"),
    ("100,000 levels of nesting", b"[" * 100_000 + b"]" * 100_000, "", "nested too deeply"),
    ("deep objects", b'{"a":' * 50 + b"1" + b"}" * 50, "", "nested too deeply"),
    ("over the size limit", b'{"x": "' + b"a" * 3_000_000 + b'"}', "", "the limit is"),
    ("duplicate JSON key", b'{"id": "a", "id": "b"}', "", "duplicate key 'id'"),
    ("NaN", b'{"id": NaN}', "", "not valid JSON"),
    ("missing required key", mutate(_delete("title")), "/", "missing required key 'title'"),
    ("unknown key", mutate(_rename_key), "/sections/0/items/0", "unknown key 'requried'"),
    ("wrong type", mutate(_set("/title", 5)), "/title", "expected a string, found a number"),
    ("wrong type in list", mutate(_set("/sections", {})), "/sections", "expected an array, found an object"),
    ("null value", mutate(_set("/sections/0/phase", None)), "/sections/0/phase", "null"),
    ("id differs from folder", mutate(_set("/id", "another-id")), "/id", "differs from its folder"),
    ("non-semver version", mutate(_set("/version", "1.0")), "/version", "not a full semantic version"),
    (
        "version differs from file",
        mutate(_set("/version", "1.0.1")),
        "/version",
        "differs from the file name",
    ),
    (
        "duplicate item ids",
        mutate(_duplicate_item),
        "/sections/0/items/2/id",
        "duplicate item id 'setting-confirmed'",
    ),
    (
        "empty item text",
        mutate(_set("/sections/0/items/0/text", "")),
        "/sections/0/items/0/text",
        "must not be empty",
    ),
    (
        "blank item text",
        mutate(_set("/sections/0/items/0/text", "   ")),
        "/sections/0/items/0/text",
        "must not be empty",
    ),
    (
        "item without sources",
        mutate(_set("/sections/0/items/0/sources", [])),
        "/sections/0/items/0/sources",
        "at least 1 entry",
    ),
    ("bad id", mutate(_set("/sections/0/id", "Before Session")), "/sections/0/id", "kebab-case"),
    ("unknown phase", mutate(_set("/sections/0/phase", "later")), "/sections/0/phase", "is not one of"),
    (
        "empty condition",
        mutate(_set("/sections/0/items/1/applies_when", {})),
        "/sections/0/items/1/applies_when",
        "must not be empty",
    ),
    (
        "undeclared route",
        mutate(_set("/sections/0/items/1/applies_when", {"routes": ["intramuscular"]})),
        "/sections/0/items/1/applies_when/routes/0",
        "unknown route 'intramuscular'",
    ),
    (
        "undeclared population",
        mutate(_set("/sections/1/applies_when", {"populations": ["children"]})),
        "/sections/1/applies_when/populations/0",
        "unknown population 'children'",
    ),
    (
        "undeclared document",
        mutate(_set("/sections/0/items/0/sources/0/document", "elsewhere")),
        "/sections/0/items/0/sources/0/document",
        "which /documents does not declare",
    ),
]


@pytest.mark.parametrize(("case", "content", "pointer", "fragment"), BAD, ids=[c[0] for c in BAD])
def test_bad_checklist_gets_a_precise_issue(
    tmp_path: Path, case: str, content: bytes, pointer: str, fragment: str
) -> None:
    path = write_checklist(tmp_path, content)
    checklist, issues = check_file(path)
    assert checklist is None
    assert issues, case
    assert any(
        i.file == str(path) and (i.pointer or "/") == (pointer or "/") and fragment in i.message
        for i in issues
    ), issues


@pytest.mark.parametrize(("case", "content", "pointer", "fragment"), BAD, ids=[c[0] for c in BAD])
def test_bad_checklist_through_the_installed_command(
    tmp_path: Path, case: str, content: bytes, pointer: str, fragment: str
) -> None:
    path = write_checklist(tmp_path, content)
    result = subprocess.run(
        [cdss_command(), "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"{path}:{pointer or '/'}: ") and fragment in line for line in lines), lines
    assert lines[-1].startswith("1 checklist file checked: ")


def test_every_problem_in_a_file_is_reported(tmp_path: Path) -> None:
    document = valid_document()
    document["title"] = 7
    document["requried"] = True
    document["sections"][0]["items"][0]["text"] = ""
    path = write_checklist(tmp_path, json.dumps(document).encode())
    _, issues = check_file(path)
    assert {(i.pointer, i.message.split(" (")[0].split(";")[0]) for i in issues} == {
        ("", "unknown key 'requried'"),
        ("/title", "expected a string, found a number"),
        ("/sections/0/items/0/text", "must not be empty or blank"),
    }


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    document = valid_document()
    document["sections"][0]["items"][0]["soruces"] = document["sections"][0]["items"][0].pop("sources")
    _, issues = check_file(write_checklist(tmp_path, document))
    assert any("unknown key 'soruces' (did you mean 'sources'?)" in i.message for i in issues)


def test_valid_example_passes_with_its_documents() -> None:
    checklist, issues = check_file(VALID, documents=SEEDS)
    assert issues == []
    assert checklist is not None and checklist.id == "example-walk"


def test_changed_document_is_reported(tmp_path: Path) -> None:
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "002_0cf1018ab4126d0b.txt").write_bytes(
        (SEEDS / "002_0cf1018ab4126d0b.txt").read_bytes() + b"\nedited"
    )
    _, issues = check_file(VALID, documents=documents)
    assert [i.pointer for i in issues] == ["/documents/0/sha256"]


def test_missing_document_is_reported(tmp_path: Path) -> None:
    _, issues = check_file(VALID, documents=tmp_path)
    assert [(i.pointer, "is not in" in i.message) for i in issues] == [("/documents/0/file", True)]


def test_cited_heading_must_be_a_line_of_the_document(tmp_path: Path) -> None:
    document = valid_document()
    document["sections"][0]["items"][0]["sources"][0]["heading"] = "Administration of Ketamine"
    _, issues = check_file(write_checklist(tmp_path, document), documents=SEEDS)
    assert [(i.pointer, i.message) for i in issues] == [
        (
            "/sections/0/items/0/sources/0/heading",
            "heading 'Administration of Ketamine' is not a line of document 'ketamine-therapy'",
        )
    ]


def test_documents_option_on_the_command_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [cdss_command(), "validate", "--documents", str(tmp_path / "nowhere"), str(VALID)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "not a folder" in result.stderr


# --- the release lock ----------------------------------------------------------------


def released_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "checklists"
    write_checklist(folder, valid_document())
    release(next(scan_folder(folder)))
    return folder


def test_release_records_the_content_hash(tmp_path: Path) -> None:
    folder = released_folder(tmp_path)
    lock = json.loads((folder / "lock.json").read_text())
    assert lock["released"] == {"example-walk": {"1.0.0": content_hash(valid_document())}}
    assert subprocess.run([cdss_command(), "validate", str(folder)], capture_output=True).returncode == 0


def test_reformatting_a_released_version_changes_nothing(tmp_path: Path) -> None:
    folder = released_folder(tmp_path)
    path = folder / "example-walk" / "1.0.0.json"
    path.write_text(json.dumps(valid_document(), indent=4, sort_keys=True))
    assert subprocess.run([cdss_command(), "validate", str(folder)], capture_output=True).returncode == 0


def test_editing_a_released_version_fails_validation(tmp_path: Path) -> None:
    folder = released_folder(tmp_path)
    document = valid_document()
    document["sections"][0]["items"][0]["text"] = "Confirmed something else."
    write_checklist(folder, document)
    result = subprocess.run(
        [cdss_command(), "validate", str(folder)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "released example-walk@1.0.0 changed" in result.stdout
    assert "publish a new version" in result.stdout


def test_release_refuses_to_change_a_released_version(tmp_path: Path) -> None:
    folder = released_folder(tmp_path)
    document = valid_document()
    document["summary"] = "Changed after release."
    write_checklist(folder, document)
    result = subprocess.run(
        [cdss_command(), "release", "example-walk@1.0.0", "--checklists", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "already released" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreleased_version_fails_validation(tmp_path: Path) -> None:
    folder = released_folder(tmp_path)
    document = valid_document()
    document["version"] = "1.1.0"
    write_checklist(folder, document, version="1.1.0")
    result = subprocess.run(
        [cdss_command(), "validate", str(folder)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "example-walk@1.1.0 is not released; run `cdss release example-walk@1.1.0`" in result.stdout


def test_deleted_released_version_fails_validation(tmp_path: Path) -> None:
    folder = released_folder(tmp_path)
    (folder / "example-walk" / "1.0.0.json").unlink()
    issues = subprocess.run([cdss_command(), "validate", str(folder)], capture_output=True, text=True).stdout
    assert "released version example-walk@1.0.0 is missing" in issues


def test_shipped_checklists_are_valid_and_released() -> None:
    result = subprocess.run([cdss_command(), "validate"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout
    assert "checked: all valid" in result.stdout.splitlines()[-1]


def test_catalog_validation_counts_every_version(tmp_path: Path) -> None:
    folder = released_folder(tmp_path)
    result = subprocess.run(
        [cdss_command(), "validate", "--json", str(folder)], capture_output=True, text=True, timeout=60
    )
    report = json.loads(result.stdout)
    assert report == {"valid": True, "checked": 1, "issues": [], "warnings": []}
    assert Catalog([folder]).ids() == ["example-walk"]


# --- format 2: references, pauses; the example files in tests/examples/invalid/ ---------


def invalid_example(case: str) -> Path:
    return INVALID / case / "example-pauses" / "2.0.0.json"


def test_every_invalid_example_has_an_expected_message() -> None:
    cases = sorted(p.name for p in INVALID.iterdir() if p.is_dir())
    assert cases == sorted(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_invalid_example_gets_its_message(case: str) -> None:
    checklist, issues = check_file(invalid_example(case))
    assert checklist is None
    expected = EXPECTED[case]
    assert (expected["pointer"], expected["message"]) in [(i.pointer or "/", i.message) for i in issues], (
        issues
    )


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_invalid_example_through_the_installed_command(case: str) -> None:
    path = invalid_example(case)
    result = subprocess.run(
        [cdss_command(), "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result
    expected = EXPECTED[case]
    assert f"{path}:{expected['pointer']}: {expected['message']}" in result.stdout.splitlines()
    assert "Traceback" not in result.stdout + result.stderr


def test_format_2_example_is_valid_with_its_documents() -> None:
    checklist, issues = check_file(VALID_2, documents=SEEDS)
    assert issues == []
    assert checklist is not None and checklist.schema_id == "urn:cdss:schema:checklist:2"
    assert [p.id for p in checklist.pauses or ()] == ["before-dose", "sign-out"]


def test_reference_citations_are_not_checked_against_documents(tmp_path: Path) -> None:
    """A reference section is checked against the declaration; only documents have lines to match."""
    document = json.loads(VALID_2.read_text(encoding="utf-8"))
    path = write_checklist(tmp_path, document, "example-pauses", "2.0.0")
    assert check_file(path, documents=SEEDS)[1] == []


def test_format_1_files_keep_their_content_hash() -> None:
    """The shipped 1.0.0 files validate under format 2 and hash exactly as locked."""
    folder = REPO / "checklists"
    released = read_lock(folder)
    for entry in scan_folder(folder):
        if entry.version != "1.0.0":
            continue
        checklist, issues = check_file(entry.path, documents=SEEDS)
        assert issues == [] and checklist is not None, issues
        assert checklist.schema_id == "urn:cdss:schema:checklist:1"
        assert content_hash(checklist.to_json()) == released[entry.id]["1.0.0"]


# --- design warnings: reported apart from errors, failing only under --strict -----------

WORDY = "Confirmed " + "that " * 30 + "all is in order."


def versions_with_warnings(tmp_path: Path) -> Path:
    """A released 1.0.0 with a design warning and a clean, released 1.1.0."""
    folder = tmp_path / "checklists"
    old = valid_document()
    old["sections"][0]["items"][0]["text"] = WORDY
    write_checklist(folder, old)
    new = valid_document()
    new["version"] = "1.1.0"
    write_checklist(folder, new, version="1.1.0")
    for entry in scan_folder(folder):
        release(entry)
    return folder


def validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cdss_command(), "validate", *args], capture_output=True, text=True, timeout=60)


def test_warnings_only_for_the_newest_version_by_default(tmp_path: Path) -> None:
    folder = versions_with_warnings(tmp_path)
    result = validate(str(folder))
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines() == ["2 checklist files checked: all valid"]
    assert validate(str(folder), "--strict").returncode == 0


def test_all_versions_and_strict(tmp_path: Path) -> None:
    folder = versions_with_warnings(tmp_path)
    path = folder / "example-walk" / "1.0.0.json"
    expected = (
        f"{path}:/sections/0/items/0/text: item-length: 35 words; at most 25, so it can be read at a glance"
    )
    result = validate(str(folder), "--all-versions")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        expected,
        "2 checklist files checked: all valid; 1 design warning(s)",
    ]
    strict = validate(str(folder), "--all-versions", "--strict")
    assert strict.returncode == 1
    assert (
        strict.stdout.splitlines()[-1]
        == "2 checklist files checked: all valid; 1 design warning(s) (--strict)"
    )


def test_a_file_named_on_the_command_line_gets_its_warnings(tmp_path: Path) -> None:
    path = versions_with_warnings(tmp_path) / "example-walk" / "1.0.0.json"
    result = validate(str(path), "--json")
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert report["valid"] is True and report["issues"] == []
    assert report["warnings"] == [
        {
            "file": str(path),
            "pointer": "/sections/0/items/0/text",
            "message": "item-length: 35 words; at most 25, so it can be read at a glance",
            "severity": "warning",
            "rule": "item-length",
        }
    ]
    strict = json.loads(validate(str(path), "--json", "--strict").stdout)
    assert strict["valid"] is False


def test_errors_come_before_warnings(tmp_path: Path) -> None:
    folder = versions_with_warnings(tmp_path)
    broken = valid_document()
    broken["version"] = "1.2.0"
    broken["sections"][0]["items"][0]["text"] = WORDY
    broken["sections"][0]["items"][1]["sources"][0]["document"] = "elsewhere"
    write_checklist(folder, broken, version="1.2.0")
    fixed = valid_document()
    fixed["version"] = "1.3.0"
    fixed["sections"][0]["items"][0]["text"] = "Check the room."
    write_checklist(folder, fixed, version="1.3.0")
    result = validate(str(folder / "example-walk"))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    kinds = ["warning" if ": not-a-confirmation: " in x else "error" for x in lines[:-1]]
    assert kinds == sorted(kinds)  # every error, then every warning
    assert any("which /documents does not declare" in x for x in lines)
    assert lines[-1] == "4 checklist files checked: 3 problem(s); 1 design warning(s)"


def test_validate_with_the_cli_runner(tmp_path: Path) -> None:
    folder = versions_with_warnings(tmp_path)
    runner = CliRunner()
    plain = runner.invoke(app, ["validate", str(folder)])
    assert plain.exit_code == 0 and "design warning" not in plain.stdout
    strict = runner.invoke(app, ["validate", str(folder), "--all-versions", "--strict"])
    assert strict.exit_code == 1
    assert "item-length: 35 words" in strict.stdout


def test_a_shipped_1_0_0_warns_only_when_asked() -> None:
    """Issue 12: the 1.0.0 files have design warnings; they must not fail the default run."""
    default = validate()
    assert default.returncode == 0, default.stdout
    assert "1.0.0.json" not in default.stdout
    everything = validate("--all-versions")
    assert everything.returncode == 0
    assert any("/1.0.0.json:" in x and ": item-length: " in x for x in everything.stdout.splitlines())
    assert validate("--all-versions", "--strict").returncode == 1
