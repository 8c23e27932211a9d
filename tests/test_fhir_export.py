"""FHIR export: every shipped checklist version as a Questionnaire, sessions in every state as
QuestionnaireResponses with Provenance, each validated by the R4B models of fhir.resources."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.provenance import Provenance
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from cdss import fhir
from cdss.catalog import content_hash
from cdss.checklist import Checklist
from cdss.fhir.bundle import checklist_questionnaire, response_bundle
from cdss.plan import accepted_populations, declare, plan
from cdss.session import Session, signed_payload
from cdss.store import signature_holds
from cdss.store.sqlite import SqliteStore
from tests.fhir_sessions import STATES, both_conditions_checklist, cdss, make_key, record_state, shipped

CHECKLISTS = shipped()
IDS = [c.ref for c in CHECKLISTS]


def questions(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every item of a Questionnaire tree, depth first."""
    for item in items:
        yield item
        yield from questions(item.get("item", []))


def shown(items: list[dict[str, Any]], answers: dict[str, list[str]], checklist: Checklist) -> list[str]:
    """The checklist items a renderer enables for these context answers, following FHIR's rules."""
    known = {i.id for _, i in checklist.items()}
    found: list[str] = []
    for item in items:
        conditions = [
            w["answerCoding"]["code"] in answers.get(w["question"], []) for w in item.get("enableWhen", [])
        ]
        rule = all if item.get("enableBehavior") == "all" else any
        if conditions and not rule(conditions):
            continue
        if item["type"] == "group":
            found += shown(item["item"], answers, checklist)
        elif item["linkId"] in known:
            found.append(item["linkId"])
    return found


@pytest.mark.parametrize("checklist", CHECKLISTS, ids=IDS)
def test_every_shipped_checklist_version_is_a_valid_questionnaire(checklist: Checklist) -> None:
    resource = checklist_questionnaire(checklist)
    Questionnaire.model_validate(resource)
    assert resource["url"] == f"urn:cdss:checklist:{checklist.id}"
    assert resource["version"] == checklist.version
    assert resource["identifier"] == [
        {"system": fhir.CONTENT_HASH, "value": content_hash(checklist.to_json())}
    ]
    assert resource["status"] == "active"
    groups = [i for i in resource["item"] if i["type"] == "group"]
    assert [g["linkId"] for g in groups] == [f"section/{s.id}" for s in checklist.sections] or any(
        g["linkId"].endswith("/when-route") for g in groups
    )
    by_link = {q["linkId"]: q for q in questions(resource["item"])}
    for section, item in checklist.items():
        question = by_link[item.id]
        assert question["text"] == item.text
        assert question["type"] == "choice"
        assert [o["valueCoding"]["code"] for o in question["answerOption"]] == [
            "done",
            "not-applicable",
            "not-done",
        ]
        help_text = by_link[f"{item.id}/why"]
        assert help_text["type"] == "display" and help_text["text"] == item.why
        assert help_text["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "help"
        reason = by_link[fhir.reason_link(item.id)]
        assert [o["valueCoding"]["code"] for o in reason["answerOption"]] == [
            r.code for r in checklist.reasons
        ]
        assert reason["enableWhen"][0]["answerCoding"]["code"] == "not-done"
        sources = [e for e in question["extension"] if e["url"] == fhir.SOURCE]
        assert len(sources) == len(item.sources)
        for extension, source in zip(sources, item.sources, strict=True):
            assert [e["valueString"] for e in extension["extension"]] == list(
                source.model_dump(exclude_unset=True).values()
            )
        group = by_link[f"section/{section.id}"]
        if section.phase:
            assert {
                "system": fhir.PHASE,
                "code": section.phase,
                "display": section.phase.capitalize(),
            } in group["code"]
    cited = {e["valueRelatedArtifact"]["label"] for e in resource["extension"]}
    assert {d.id for d in checklist.documents} <= cited
    assert {r.id for r in checklist.references or ()} <= cited
    pauses = {p.id: p.title for p in checklist.pauses or ()}
    for section in checklist.sections:
        if section.pause is not None:
            group = by_link[f"section/{section.id}"]
            assert {"system": fhir.PAUSE, "code": section.pause, "display": pauses[section.pause]} in group[
                "code"
            ]


def test_a_condition_on_a_route_and_a_population_nests_a_group(tmp_path: Path) -> None:
    checklist = both_conditions_checklist(tmp_path)
    resource = checklist_questionnaire(checklist)
    by_link = {q["linkId"]: q for q in questions(resource["item"])}
    wrapper = by_link["older-adult-infusion-checked/when-route"]
    assert wrapper["type"] == "group"
    assert [w["answerCoding"]["code"] for w in wrapper["enableWhen"]] == ["intravenous"]
    assert [w["answerCoding"]["code"] for w in wrapper["item"][0]["enableWhen"]] == ["older-adults"]
    test_enable_when_shows_exactly_the_plan_in_every_context(checklist)


@pytest.mark.parametrize("checklist", CHECKLISTS, ids=IDS)
def test_enable_when_shows_exactly_the_plan_in_every_context(checklist: Checklist) -> None:
    resource = checklist_questionnaire(checklist)
    routes: list[str | None] = [o.id for o in checklist.context.routes] or [None]
    populations = accepted_populations(checklist)
    choices: list[list[str]] = [[], *([p] for p in populations), populations]
    for route in routes:
        for chosen in choices:
            context = declare(checklist, route, chosen)
            answers = {fhir.ROUTE_LINK: [route] if route else [], fhir.POPULATIONS_LINK: chosen}
            expected = [p.item.id for p in plan(checklist, context)]
            assert shown(resource["item"], answers, checklist) == expected, (route, chosen)


def test_the_cli_writes_a_questionnaire_to_a_file_or_standard_output(tmp_path: Path) -> None:
    out = tmp_path / "q.json"
    result = cdss("export", "fhir", "questionnaire", "treatment-session", "--out", str(out))
    assert str(out) in result.stdout
    written = json.loads(out.read_text(encoding="utf-8"))
    Questionnaire.model_validate(written)
    printed = json.loads(cdss("export", "fhir", "questionnaire", "treatment-session").stdout)
    assert printed == written


def test_an_unknown_checklist_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = cdss("export", "fhir", "questionnaire", "no-such-checklist", check=False)
    assert result.returncode == 1
    assert "no checklist 'no-such-checklist'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[tuple[str, str, str]]]]:
    """One store with a session in every state for every shipped checklist version."""
    folder = tmp_path_factory.mktemp("fhir-states")
    key = make_key(folder / "keys")
    path = folder / "records.sqlite3"
    made = []
    with SqliteStore(path) as store:
        from cdss import keys

        keys.register(store, key.info)
        for checklist in CHECKLISTS:
            for state in STATES:
                session = record_state(store, checklist, state, key)
                made.append((checklist.ref, state, session.id))
    yield path, made


def _bundles(path: Path) -> Iterator[tuple[str, str, Session, dict[str, Any]]]:
    with SqliteStore(path) as store:
        for row in store.sessions():
            session = Session.load(store, row.id)
            yield row.checklist, row.status, session, response_bundle(session)


def test_sessions_in_every_state_are_valid_responses_with_provenance(
    recorded: tuple[Path, list[tuple[str, str, str]]],
) -> None:
    path, made = recorded
    states = {session: state for _, state, session in made}
    expected_status = {
        "open": "in-progress",
        "abandoned": "stopped",
        "completed": "completed",
        "signed": "completed",
        "amended": "amended",
        "signed-amended": "amended",
    }
    seen = set()
    for _, _, session, bundle in _bundles(path):
        state = states[session.id]
        seen.add((session.checklist.ref, state))
        Bundle.model_validate(bundle)
        assert bundle["type"] == "collection"
        response, *provenances = [e["resource"] for e in bundle["entry"]]
        QuestionnaireResponse.model_validate(response)
        for provenance in provenances:
            Provenance.model_validate(provenance)
        record = session.record()
        assert response["status"] == expected_status[state]
        assert (
            response["questionnaire"]
            == f"urn:cdss:checklist:{record.checklist.id}|{record.checklist.version}"
        )
        assert response["subject"] == {
            "type": "Patient",
            "identifier": {"system": fhir.SUBJECT, "value": record.subject},
        }
        assert response["author"]["identifier"] == {"system": fhir.CLINICIAN, "value": "dr-lee"}
        assert response["authored"] == (record.ended_at or max(a.at for i in record.items for a in i.history))
        answered = {
            q["linkId"]: q["answer"][0]
            for q in questions(response["item"])
            if "answer" in q and q["linkId"] in {i.id for i in record.items}
        }
        for item in record.items:
            if item.current is None:
                assert item.id not in answered
                continue
            answer = answered[item.id]
            assert answer["valueCoding"]["code"] == item.current.status
            nested = {n["linkId"]: n["answer"][0] for n in answer.get("item", [])}
            if item.current.reason:
                assert nested[fhir.reason_link(item.id)]["valueCoding"]["code"] == item.current.reason
            if item.current.reason_text:
                assert nested[fhir.reason_text_link(item.id)]["valueString"] == item.current.reason_text
        signatures = [p for p in provenances if "signature" in p]
        amendments = [p for p in provenances if "signature" not in p]
        assert len(signatures) == len(record.signatures) == (1 if state.startswith("signed") else 0)
        assert len(amendments) == sum(1 for i in record.items for a in i.history if a.corrects)
        for provenance in amendments:
            assert provenance["agent"][0]["who"]["identifier"]["value"] == "dr-kim"
            assert provenance["reason"][0]["text"] in (
                "pressed the wrong key",
                "documented later the same day",
            )
            assert provenance["target"][0]["reference"] == bundle["entry"][0]["fullUrl"]
        for provenance, signature in zip(signatures, record.signatures, strict=True):
            signed = provenance["signature"][0]
            key_id = signed["extension"][0]["valueString"]
            assert key_id == signature.key
            assert provenance["reason"][0]["text"] == signature.meaning
            assert signed["who"]["display"] == signature.name
            public = {k.key_id: k.public_key for k in session.store.keys()}[key_id]
            payload = signed_payload(signature.signs, signature.name, signature.meaning, signed["when"])
            assert signature_holds(public, signed["data"], payload)
    assert seen == {(c.ref, s) for c in CHECKLISTS for s in STATES}


def test_no_resource_names_anyone_but_by_opaque_identifier(
    recorded: tuple[Path, list[tuple[str, str, str]]],
) -> None:
    path, _ = recorded
    for _, _, session, bundle in _bundles(path):
        text = json.dumps(bundle)
        assert '"name"' not in text and "birthDate" not in text
        assert session.subject in text


def test_the_cli_exports_a_response_bundle(
    recorded: tuple[Path, list[tuple[str, str, str]]], tmp_path: Path
) -> None:
    path, made = recorded
    session = next(s for _, state, s in made if state == "signed-amended")
    out = tmp_path / "response.json"
    cdss("export", "fhir", "response", session[:8], "--store", str(path), "--out", str(out))
    bundle = json.loads(out.read_text(encoding="utf-8"))
    Bundle.model_validate(bundle)
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == [
        "QuestionnaireResponse",
        "Provenance",
        "Provenance",
    ]
    missing = cdss("export", "fhir", "response", "abcdef1234", "--store", str(path), check=False)
    assert missing.returncode == 1 and "no session abcdef1234" in missing.stderr


def test_without_the_extra_the_commands_say_which_to_install(tmp_path: Path) -> None:
    # A `fhir` package without `resources` on the path: exactly what Python sees when the extra is absent.
    shadow = tmp_path / "shadow" / "fhir"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    import subprocess

    from tests.conftest import cdss_command

    for args in (
        ["export", "fhir", "questionnaire", "treatment-session"],
        ["import", "fhir", "response", str(tmp_path / "any.json")],
    ):
        result = subprocess.run([cdss_command(), *args], capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            "cdss: FHIR export and import need the optional 'fhir' extra (fhir.resources): "
            "pip install 'cdss[fhir]'"
        ]
        assert result.stdout == ""


def test_audit_export_fhir_adds_one_collection_bundle_that_verifies(
    recorded: tuple[Path, list[tuple[str, str, str]]], tmp_path: Path
) -> None:
    path, made = recorded
    out = tmp_path / "audit"
    cdss("audit", "export", "--store", str(path), "--out", str(out), "--fhir")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert "fhir-bundle.json" in manifest["files"]
    bundle = json.loads((out / "fhir-bundle.json").read_text(encoding="utf-8"))
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    questionnaires = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Questionnaire"
    ]
    assert sorted(f"{q['url'].rsplit(':', 1)[1]}@{q['version']}" for q in questionnaires) == sorted(IDS)
    responses = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse"
    ]
    assert sorted(r["id"] for r in responses) == sorted(s for _, _, s in made)
    provenances = {"open": 1, "completed": 0, "signed": 1, "amended": 1, "signed-amended": 2, "abandoned": 1}
    assert kinds.count("Provenance") == sum(provenances[state] for _, state, _ in made)
    urls = {e["fullUrl"] for e in bundle["entry"]}
    for entry in bundle["entry"]:
        for target in entry["resource"].get("target", []):
            assert target["reference"] in urls
    cdss("audit", "verify", str(out))
    plain = tmp_path / "plain"
    cdss("audit", "export", "--store", str(path), "--out", str(plain))
    assert not (plain / "fhir-bundle.json").exists()
