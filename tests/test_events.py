"""Record events: the schema and the models agree, canonical forms round-trip,
and the chain sees every single change."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from pydantic import ValidationError

from cdss.catalog import content_hash, schema_path
from cdss.events import (
    GENESIS,
    SCHEMA_ID,
    Answered,
    Draft,
    Event,
    Started,
    check_chain,
    parse_event,
    seal,
    sealed,
)
from tests.test_checklist_model import generator_schema

SCHEMA = json.loads(schema_path("event.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SESSION = "5" * 32


def model_accepts(value: Any) -> bool:
    try:
        parse_event(value)
    except ValidationError:
        return False
    return True


def test_schema_is_the_published_contract() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"] == SCHEMA_ID


@FAST
@given(from_schema(generator_schema(SCHEMA)))
def test_schema_valid_events_parse_and_dump_back_equal(value: dict[str, Any]) -> None:
    event = parse_event(value)
    assert event.to_json() == value
    assert json.loads(event.canonical()) == value


@FAST
@given(from_schema(generator_schema(SCHEMA)))
def test_the_text_a_store_holds_is_the_canonical_form_of_the_event_it_hashes(value: dict[str, Any]) -> None:
    """``sealed`` assembles the hashed body and the stored text from one serialisation; both must be RFC 8785."""
    event = parse_event(value)
    draft = Draft(event.session, event.type, event.actor, event.data, at=event.at)
    resealed, text = sealed(draft, event.seq, event.prev)
    assert text == resealed.canonical()
    assert resealed.hash == content_hash(resealed.body())
    assert parse_event(json.loads(text)) == resealed


WRONG_VALUES: list[Any] = [None, 0, 2.0, 1.5, True, "", [], {}, "X" * 65, "2026-01-01", {"unexpected": 1}]


@FAST
@given(from_schema(generator_schema(SCHEMA)), st.data())
def test_mutated_events_are_judged_alike(value: dict[str, Any], data: st.DataObject) -> None:
    mutated = copy.deepcopy(value)
    target = mutated if data.draw(st.booleans()) else mutated["data"]
    keys = sorted(target)
    action = data.draw(st.sampled_from(["delete", "replace", "add"] if keys else ["add"]))
    if action == "add":
        target[data.draw(st.sampled_from(["requried", "note", "Type"]))] = "x"
    elif action == "delete":
        del target[data.draw(st.sampled_from(keys))]
    else:
        target[data.draw(st.sampled_from(keys))] = data.draw(st.sampled_from(WRONG_VALUES))
    assert VALIDATOR.is_valid(mutated) == model_accepts(mutated)


@pytest.mark.parametrize("seq", [1, 2.0, 0, -1, 1.5, True, "1", None])
def test_sequence_numbers_are_judged_alike(seq: Any) -> None:
    value = _chain(1)[0].to_json()
    value["seq"] = seq
    assert VALIDATOR.is_valid(value) == model_accepts(value)


def _chain(length: int) -> list[Event]:
    started = Started.model_validate(
        {
            "checklist": {"id": "example-walk", "version": "1.0.0", "hash": "a" * 64},
            "subject": "S-0001",
            "context": {"route": "intravenous", "populations": []},
            "clinician": "dr-a",
        }
    )
    events = [seal(Draft(SESSION, "session-started", "dr-a", started), 1, GENESIS)]
    for n in range(2, length + 1):
        answer = Answered(item=f"item-{n}", status="done")
        events.append(seal(Draft(SESSION, "item-answered", "dr-a", answer), n, events[-1].hash))
    return events


def test_sealed_events_satisfy_the_schema() -> None:
    for event in _chain(3):
        VALIDATOR.validate(event.to_json())
    assert list(check_chain(_chain(5))) == []


MUTATIONS = ["edit", "delete", "insert", "swap", "duplicate"]


@FAST
@given(st.integers(min_value=2, max_value=8), st.data())
def test_any_single_change_breaks_the_chain(length: int, data: st.DataObject) -> None:
    events = _chain(length)
    kind = data.draw(st.sampled_from(MUTATIONS))
    at = data.draw(st.integers(min_value=0, max_value=length - 2))
    if kind == "edit":
        body = events[at].to_json()
        body["at"] = "1999-01-01T00:00:00.000000Z"
        events[at] = parse_event(body)
    elif kind == "delete":
        del events[at]
    elif kind == "insert":
        events.insert(
            at + 1,
            seal(
                Draft(SESSION, "item-answered", "dr-a", Answered(item="x", status="done")),
                at + 2,
                events[at].hash,
            ),
        )
    elif kind == "swap":
        events[at], events[at + 1] = events[at + 1], events[at]
    else:
        events.insert(at + 1, events[at])
    breaks = list(check_chain(events))
    assert breaks, kind
    assert all(b.session == SESSION for b in breaks)
