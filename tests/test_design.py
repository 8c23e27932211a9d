"""Checklist-design warnings: each rule fires on what it names, and stays quiet on good items."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from cdss.checklist import Checklist
from cdss.design import RULES, design_warnings, is_confirmation, looks_like_dose
from tests.conftest import EXAMPLES

PAUSES = EXAMPLES / "valid" / "example-pauses" / "2.0.0.json"


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(PAUSES.read_text(encoding="utf-8"))
    return loaded


def warnings_for(changed: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(w.pointer, w.rule) for w in design_warnings(Checklist.model_validate(changed), "x.json")]


def with_text(text: str) -> dict[str, Any]:
    changed = document()
    changed["sections"][0]["items"][0]["text"] = text
    return changed


def test_the_example_has_no_warnings() -> None:
    assert design_warnings(Checklist.model_validate(document())) == []


def test_a_warning_reads_like_any_issue() -> None:
    [warning] = design_warnings(Checklist.model_validate(with_text("Ensure the room is quiet.")), "a.json")
    assert warning.severity == "warning" and warning.rule == "not-a-confirmation"
    assert str(warning) == (
        "a.json:/sections/0/items/0/text: not-a-confirmation: starts with 'Ensure'; word it as "
        "something done ('Confirmed that ...', 'Discussed with the patient ...')"
    )
    assert warning.as_dict()["severity"] == "warning"
    assert warning.as_dict()["rule"] == "not-a-confirmation"


TEXT_CASES: list[tuple[str, str, set[str]]] = [
    # (case, item text, rules expected at /sections/0/items/0/text)
    ("good", "Confirmed that the session takes place in a controlled medical setting.", set()),
    ("irregular past", "Gave the patient the opportunity to ask questions.", set()),
    ("26 words", "Confirmed " + "that " * 25, {"item-length"}),
    ("25 words", "Confirmed " + "that " * 24, set()),
    ("imperative", "Check the blood pressure.", {"not-a-confirmation"}),
    ("noun first", "Blood pressure before the dose.", {"not-a-confirmation"}),
    ("advice", "Confirmed that the patient should avoid driving.", {"recommendation"}),
    ("recommended", "Confirmed that treatment is recommended.", {"recommendation"}),
    ("reported advice", "Explained to the patient that all medicines must be disclosed.", set()),
    ("verdict eligible", "Confirmed that the patient is eligible for treatment.", {"verdict"}),
    ("verdict safe", "Confirmed that the patient was deemed safe to leave.", {"verdict"}),
    ("verdict eligibility", "Confirmed eligibility for esketamine.", {"verdict"}),
    ("not a verdict", "Reviewed the contraindications and precautions with the patient.", set()),
    ("dose", "Confirmed that 56 mg was prescribed.", {"dose"}),
    ("weight-based dose", "Confirmed the infusion of 0.5 mg/kg.", {"dose"}),
    ("two and a semicolon", "Checked blood pressure; recorded it.", {"compound"}),
    ("and that", "Confirmed that consent was given and that it is documented.", {"compound"}),
    ("second verb", "Discussed the risks and explained the benefits.", {"compound"}),
    ("explained two facts", "Explained to the patient that effects vary and that they pass.", set()),
    ("explained; two facts", "Explained to the patient that effects vary; most pass within hours.", set()),
    ("explained; then a second act", "Explained the risks; discussed the benefits.", {"compound"}),
    ("confirmed; two checks", "Confirmed the setting; the observer is present.", {"compound"}),
    ("duration is not a dose", "Checked blood pressure about 40 minutes after the dose.", set()),
]


@pytest.mark.parametrize(("case", "text", "rules"), TEXT_CASES, ids=[c[0] for c in TEXT_CASES])
def test_wording_rules(case: str, text: str, rules: set[str]) -> None:
    found = {rule for pointer, rule in warnings_for(with_text(text)) if pointer == "/sections/0/items/0/text"}
    assert found == rules, case


@pytest.mark.parametrize(
    ("text", "dose"),
    [
        ("56 mg", True),
        ("84mg", True),
        ("0.5 mg/kg over 40 minutes", True),
        ("0,5 mg per kg", True),
        ("two sprays", True),
        ("fifty-six milligrams", True),
        ("a dose of 28", True),
        ("0.5 per kilogram", True),
        ("1 device", True),
        ("about 40 minutes", False),
        ("at least 2 hours", False),
        ("section 5.1", False),
        ("Revised 01/2025", False),
        ("each dose", False),
        ("two doses a week", False),
        ("3 times a week", False),
        ("Kg", False),
        ("", False),
    ],
)
def test_looks_like_dose(text: str, dose: bool) -> None:
    assert looks_like_dose(text) is dose


def test_is_confirmation() -> None:
    assert is_confirmation("Confirmed that ...") and is_confirmation("Reviewed, within the team, ...")
    assert not is_confirmation("Monitor the patient") and not is_confirmation("")


def test_uncited_claim_needs_a_reference() -> None:
    changed = with_text("Confirmed that the setting is certified in the REMS.")
    assert ("/sections/0/items/0/sources", "uncited-claim") in warnings_for(changed)
    changed["sections"][0]["items"][0]["sources"].append({"reference": "example-label", "section": "2.1"})
    assert ("/sections/0/items/0/sources", "uncited-claim") not in warnings_for(changed)


def test_uncited_claim_in_the_why() -> None:
    changed = document()
    changed["sections"][0]["items"][0]["why"] = "The label requires it."
    assert ("/sections/0/items/0/sources", "uncited-claim") in warnings_for(changed)


def test_unused_reference() -> None:
    changed = document()
    changed["sections"][1]["items"][0]["sources"] = changed["sections"][1]["items"][0]["sources"][:1]
    changed["sections"][1]["items"][0]["sources"].append({"reference": "example-label", "section": "2.1"})
    assert warnings_for(changed) == [("/references/1", "unused-reference")]


def _filled_pause(document: dict[str, Any], count: int, applies_when: Any = None) -> None:
    template = document["sections"][0]["items"][0]
    items = []
    for n in range(count):
        item = copy.deepcopy(template)
        item["id"] = f"filler-{n}"
        if applies_when is not None:
            item["applies_when"] = applies_when
        items.append(item)
    document["sections"][1]["items"].extend(items)


def test_pause_size_counts_base_items_per_route() -> None:
    changed = document()
    _filled_pause(changed, 8)  # sign-out: 1 + 8 = 9 on every route
    assert warnings_for(changed) == []
    changed = document()
    _filled_pause(changed, 9)
    [warning] = design_warnings(Checklist.model_validate(changed), "x.json")
    assert (warning.pointer, warning.rule) == ("/pauses/1", "pause-size")
    assert warning.message == (
        "pause-size: pause 'sign-out' has more than 9 base items (10 on route intravenous, "
        "10 on route intranasal-esketamine); split it or move items to another pause"
    )


def test_pause_size_for_one_route_only_and_not_for_populations() -> None:
    changed = document()
    _filled_pause(changed, 9, {"routes": ["intranasal-esketamine"]})
    warnings = design_warnings(Checklist.model_validate(changed))
    assert [w.message for w in warnings] == [
        "pause-size: pause 'sign-out' has more than 9 base items (10 on route intranasal-esketamine); "
        "split it or move items to another pause"
    ]
    changed = document()
    _filled_pause(changed, 9, {"populations": ["older-adults"]})
    assert warnings_for(changed) == []


def test_every_rule_is_named() -> None:
    assert set(RULES) == {
        "pause-size",
        "item-length",
        "not-a-confirmation",
        "recommendation",
        "verdict",
        "dose",
        "compound",
        "uncited-claim",
        "unused-reference",
    }
