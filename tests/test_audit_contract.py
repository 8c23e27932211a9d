"""The event contract (jsonschema-rs) agrees with the models, and the fast body hash with RFC 8785."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from cdss.audit.stored import body_digest, reference_digest
from cdss.catalog import schema_path
from cdss.events import hash_body, parse_event, schema_problems
from tests.test_checklist_model import generator_schema

SCHEMA = generator_schema(json.loads(schema_path("event.schema.json").read_text()))
CHECK = schema_problems


def model_accepts(event: Any) -> bool:
    from pydantic import ValidationError

    try:
        parse_event(event)
    except (ValidationError, ValueError):
        return False
    return True


values = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 2**54), st.floats(allow_nan=False), st.text(max_size=70)
)


def mutated(event: dict[str, Any], draw: st.DrawFn) -> Any:
    """One small change somewhere in the event, to land on both sides of the contract."""
    target = event
    if draw(st.booleans()) and isinstance(event.get("data"), dict) and event["data"]:
        target = event["data"]
    action = draw(st.sampled_from(["drop", "set", "add"]))
    key = draw(st.sampled_from(sorted(target))) if target else "x"
    if action == "drop":
        target.pop(key, None)
    elif action == "set":
        target[key] = draw(values)
    else:
        target[draw(st.text(min_size=1, max_size=8))] = draw(values)
    return event


@st.composite
def events(draw: st.DrawFn) -> Any:
    event: dict[str, Any] = draw(from_schema(SCHEMA))  # type: ignore[arg-type]  # the schema's top level is an object
    return mutated(event, draw) if draw(st.booleans()) else event


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(event=events())
def test_the_schema_and_the_models_agree(event: Any) -> None:
    assert (CHECK(event) is None) == model_accepts(event), CHECK(event)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=from_schema(SCHEMA))
def test_the_body_cut_from_canonical_text_hashes_like_rfc8785(event: dict[str, Any]) -> None:
    import rfc8785

    text = bytes(rfc8785.dumps(event)).decode()
    body = {k: v for k, v in event.items() if k != "hash"}
    assert body_digest(text) == hash_body(body) == reference_digest(event)


TRICKY = [
    ("seq", True),  # a boolean is not an integer
    ("seq", 2.0),  # but 2.0 is, to JSON Schema
    ("seq", 0),
    ("seq", 2**53),
    ("session", "0" * 32 + "\n"),  # Python's $ allows one final newline; ECMA-262's does not
    ("session", "0" * 31),
    ("hash", "A" * 64),
    ("type", "item-answered "),
    ("extra", 1),
]


@pytest.mark.parametrize(("key", "value"), TRICKY)
def test_edge_values_are_judged_alike(key: str, value: Any) -> None:
    data: dict[str, Any] = {"item": "consent-signed", "status": "not-done", "reason": "deferred"}
    event: dict[str, Any] = {
        "seq": 2,
        "session": "0" * 32,
        "type": "item-answered",
        "at": "2026-01-02T03:04:05.000006Z",
        "actor": "dr-lee",
        "prev": "a" * 64,
        "hash": "b" * 64,
        "data": data,
    }
    assert CHECK(event) is None and model_accepts(event)
    event[key] = value
    assert (CHECK(event) is None) == model_accepts(event), CHECK(event)
    del data["reason"]
    assert (CHECK(event) is None) == model_accepts(event), CHECK(event)


@settings(max_examples=200, deadline=None)
@given(name=st.text(min_size=1, max_size=40), meaning=st.text(min_size=1, max_size=80))
def test_the_fast_signed_payload_is_the_rfc8785_one(name: str, meaning: str) -> None:
    from cdss.audit.stored import payload as _payload
    from cdss.session import signed_payload

    signs, at = "ab" * 32, "2026-01-02T03:04:05.000006Z"
    try:
        expected = signed_payload(signs, name, meaning, at)
    except Exception:  # lone surrogates: RFC 8785 refuses them, and so must the fast path
        with pytest.raises(Exception):  # noqa: B017
            _payload(signs, name, meaning, at)
        return
    assert _payload(signs, name, meaning, at) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        json_values.map(json.dumps),
        json_values.map(lambda v: f" {json.dumps(v)}\n"),
        json_values.map(lambda v: json.dumps(v) + "x"),
        st.text(max_size=20),
    )
)
def test_the_fast_parse_is_json_loads(text: str) -> None:
    from cdss.audit.stored import parse as _parse

    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            _parse(text)
        return
    assert _parse(text) == expected or (expected != expected)  # noqa: PLR0124  # NaN is never equal
