"""Importing a QuestionnaireResponse: exported then imported gives the same completion record, and
every bad file is refused whole, each problem at its JSON pointer, before anything is written."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cdss import fhir
from cdss.catalog import Catalog
from cdss.checklist import Checklist
from cdss.fhir import intake
from cdss.fhir.bundle import response_bundle
from cdss.session import Session
from cdss.store.sqlite import SqliteStore
from tests.conftest import EXAMPLES
from tests.fhir_sessions import cdss, completion, record_state, shipped

CHECKLISTS = shipped()
IDS = [c.ref for c in CHECKLISTS]
ROUND_TRIP = ("open", "completed", "amended")


def write(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


@pytest.mark.parametrize("checklist", CHECKLISTS, ids=IDS)
def test_exported_then_imported_gives_the_same_completion_record(
    checklist: Checklist, tmp_path: Path
) -> None:
    catalog = Catalog.default()
    with SqliteStore(tmp_path / "a.sqlite3") as source, SqliteStore(tmp_path / "b.sqlite3") as target:
        for state in ROUND_TRIP:
            original = record_state(source, checklist, state, None)
            bundle = response_bundle(Session.load(source, original.id, catalog=catalog))
            checked = intake.read_response(bundle, "exported.json", catalog)
            imported = intake.record(target, checked)
            expected = completion(original.record())
            assert completion(imported.record()) == expected, state
            assert imported.status == ("open" if state == "open" else "completed")


def test_the_cli_imports_an_exported_signed_and_amended_session(tmp_path: Path) -> None:
    from tests.fhir_sessions import make_key

    key = make_key(tmp_path / "keys")
    checklist = Catalog.default().load("treatment-session")
    with SqliteStore(tmp_path / "a.sqlite3") as source:
        from cdss import keys

        keys.register(source, key.info)
        original = record_state(source, checklist, "signed-amended", key).record()
    exported = tmp_path / "exported.json"
    cdss(
        "export",
        "fhir",
        "response",
        original.session,
        "--store",
        str(tmp_path / "a.sqlite3"),
        "--out",
        str(exported),
    )
    store = tmp_path / "b.sqlite3"
    result = cdss("import", "fhir", "response", str(exported), "--store", str(store))
    assert "completed" in result.stdout
    with SqliteStore(store) as target:
        [row] = target.sessions()
        assert completion(Session.load(target, row.id).record()) == completion(original)
    # Back into the store it came from: that session is already there.
    again = cdss(
        "import", "fhir", "response", str(exported), "--store", str(tmp_path / "a.sqlite3"), check=False
    )
    assert again.returncode == 1 and "already in this store" in again.stderr


@pytest.fixture
def exported(tmp_path: Path) -> dict[str, Any]:
    """A completed treatment-session response, as cdss exports it (a Bundle)."""
    checklist = Catalog.default().load("treatment-session")
    with SqliteStore(tmp_path / "source.sqlite3") as source:
        session = record_state(source, checklist, "completed", None)
        return response_bundle(session)


def response_of(bundle: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = bundle["entry"][0]["resource"]
    return resource


def answered(response: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The answered checklist items of a response, in order."""

    def walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for item in items:
            if item["linkId"].startswith("section/"):
                yield from walk(item["item"])
            elif not item["linkId"].startswith("context/"):
                yield item

    yield from walk(response["item"])


def first_with(response: dict[str, Any], status: str, reason: str | None = None) -> dict[str, Any]:
    for item in answered(response):
        answer = item["answer"][0]
        nested = {n["linkId"]: n for n in answer.get("item", [])}
        code = nested.get(fhir.reason_link(item["linkId"]), {}).get("answer", [{}])[0].get("valueCoding", {})
        if answer["valueCoding"]["code"] == status and (reason is None or code.get("code") == reason):
            return item
    raise AssertionError(f"no item answered {status} {reason}")


def _bad_status(r: dict[str, Any]) -> None:
    next(answered(r))["answer"][0]["valueCoding"]["code"] = "maybe"


def _no_reason(r: dict[str, Any]) -> None:
    del first_with(r, "not-done", "patient-declined")["answer"][0]["item"]


def _no_other_text(r: dict[str, Any]) -> None:
    del first_with(r, "not-done", "other")["answer"][0]["item"][1]


def _unknown_item(r: dict[str, Any]) -> None:
    next(answered(r))["linkId"] = "no-such-item"


def _wrong_route(r: dict[str, Any]) -> None:
    r["item"][0]["answer"][0]["valueCoding"]["code"] = "intranasal-esketamine"


def _missing_answer(r: dict[str, Any]) -> None:
    r["item"][-1]["item"].pop()


def _name_as_subject(r: dict[str, Any]) -> None:
    r["subject"]["identifier"]["value"] = "Jane Doe"


def _other_questionnaire(r: dict[str, Any]) -> None:
    r["questionnaire"] = "http://example.org/Questionnaire/phq9|1.0"


def _unknown_version(r: dict[str, Any]) -> None:
    r["questionnaire"] = "urn:cdss:checklist:treatment-session|9.9.9"


def _stopped(r: dict[str, Any]) -> None:
    r["status"] = "stopped"


def _not_fhir(r: dict[str, Any]) -> None:
    r["authored"] = "yesterday"


BAD: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "bad status": (_bad_status, "status 'maybe' is not one of done, not-applicable, not-done"),
    "not-done without reason": (_no_reason, "not-done needs a reason, one of:"),
    "other without text": (_no_other_text, "reason 'other' needs a short text"),
    "unknown item": (_unknown_item, "no item 'no-such-item' in treatment-session@"),
    "item outside the context": (_wrong_route, "does not apply in this session's context"),
    "completed with an item unanswered": (_missing_answer, "applicable item(s) are unanswered"),
    "a name as subject": (_name_as_subject, "the subject reference contains spaces, like a name"),
    "another questionnaire": (_other_questionnaire, "is not a cdss checklist"),
    "unknown version": (_unknown_version, "has no version 9.9.9"),
    "stopped": (_stopped, "status 'stopped' cannot be recorded"),
    "invalid FHIR": (_not_fhir, "/entry/0/resource/authored"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_response_is_refused_whole_and_nothing_is_written(
    case: str, exported: dict[str, Any], tmp_path: Path
) -> None:
    change, message = BAD[case]
    bundle = copy.deepcopy(exported)
    change(response_of(bundle))
    path = write(tmp_path / "bad.json", bundle)
    store = tmp_path / "records.sqlite3"
    result = cdss("import", "fhir", "response", str(path), "--store", str(store), check=False)
    assert result.returncode == 1, result.stdout
    assert message in result.stderr
    assert str(path) in result.stderr
    assert "Traceback" not in result.stderr
    assert not store.exists()


def test_every_problem_is_reported_at_once_with_its_pointer(exported: dict[str, Any], tmp_path: Path) -> None:
    bundle = copy.deepcopy(exported)
    response = response_of(bundle)
    _bad_status(response)
    _unknown_item(response)
    _name_as_subject(response)
    path = write(tmp_path / "bad.json", bundle)
    result = cdss("import", "fhir", "response", str(path), check=False)
    lines = result.stderr.splitlines()
    assert result.returncode == 1
    assert f"{path}:/entry/0/resource/subject: the subject reference contains spaces, like a name" in lines[0]
    assert any("/entry/0/resource/item/" in line and "no item 'no-such-item'" in line for line in lines)
    assert lines[-1] == f"cdss: {path}: invalid QuestionnaireResponse; nothing was recorded"


def test_a_response_without_subject_or_author_needs_them_on_the_command_line(
    exported: dict[str, Any], tmp_path: Path
) -> None:
    response = copy.deepcopy(response_of(exported))
    del response["subject"], response["author"], response["identifier"]
    path = write(tmp_path / "from-renderer.json", response)
    store = tmp_path / "records.sqlite3"
    refused = cdss("import", "fhir", "response", str(path), "--store", str(store), check=False)
    assert refused.returncode == 1
    assert "/subject: no urn:cdss:subject identifier here; give it with --subject" in refused.stderr
    assert "/author: no urn:cdss:clinician identifier here; give it with --clinician" in refused.stderr
    assert not store.exists()
    args = ("import", "fhir", "response", str(path), "--store", str(store))
    cdss(*args, "--subject", "S-7F3K2M9Q1", "--clinician", "dr-lee")
    with SqliteStore(store) as opened:
        [row] = opened.sessions()
        assert (row.subject, row.clinician, row.status) == ("S-7F3K2M9Q1", "dr-lee", "completed")


def test_a_subject_that_disagrees_with_the_command_line_is_refused(
    exported: dict[str, Any], tmp_path: Path
) -> None:
    path = write(tmp_path / "r.json", exported)
    result = cdss("import", "fhir", "response", str(path), "--subject", "S-0000", check=False)
    assert result.returncode == 1
    assert "/entry/0/resource/subject: says 'S-7F3K2M9Q1', but 'S-0000' was given" in result.stderr


def test_only_released_versions_are_recorded(tmp_path: Path) -> None:
    folder = EXAMPLES / "valid"
    catalog = Catalog.default([folder])
    checklist = catalog.load("example-walk")
    with SqliteStore(tmp_path / "a.sqlite3") as source:
        session = record_state(source, checklist, "completed", None)
        path = write(tmp_path / "r.json", response_bundle(session))
    result = cdss("import", "fhir", "response", str(path), "--checklists", str(folder), check=False)
    assert result.returncode == 1
    assert "example-walk@1.0.0 is not a released version" in result.stderr


def test_a_store_that_requires_signatures_refuses_an_unsigned_import_before_writing(
    exported: dict[str, Any], tmp_path: Path
) -> None:
    store = tmp_path / "records.sqlite3"
    cdss("store", "init", str(store))
    cdss("audit", "require-signatures", "on", "--clinician", "dr-lee", "--store", str(store))
    with SqliteStore(store) as opened:
        before = opened.head()
    path = write(tmp_path / "r.json", exported)
    result = cdss("import", "fhir", "response", str(path), "--store", str(store), check=False)
    assert result.returncode == 1 and "requires a signature" in result.stderr
    with SqliteStore(store) as opened:
        assert opened.head() == before and opened.sessions() == []


def test_files_that_are_not_a_response_are_one_line(tmp_path: Path) -> None:
    cases = {
        "garbage.json": "{not json",
        "patient.json": json.dumps({"resourceType": "Patient"}),
        "two.json": json.dumps({"resourceType": "Bundle", "type": "collection", "entry": []}),
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        result = cdss("import", "fhir", "response", str(path), check=False)
        assert result.returncode == 1, name
        assert str(path) in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr


def test_import_with_sign_signs_the_completion_in_a_store_that_requires_it(
    exported: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDSS_PASSPHRASE", "correct horse battery")
    store = tmp_path / "records.sqlite3"
    cdss("store", "init", str(store))
    cdss("keys", "init", "--clinician", "dr-lee", "--name", "Dr Example Lee", "--store", str(store))
    cdss("audit", "require-signatures", "on", "--clinician", "dr-lee", "--store", str(store))
    path = write(tmp_path / "r.json", exported)
    cdss("import", "fhir", "response", str(path), "--store", str(store), "--sign")
    with SqliteStore(store) as opened:
        [row] = opened.sessions()
        record = Session.load(opened, row.id).record()
    assert record.status == "completed"
    [signature] = record.signatures
    assert (signature.actor, signature.name) == ("dr-lee", "Dr Example Lee")
    cdss("audit", "verify", "--store", str(store))
