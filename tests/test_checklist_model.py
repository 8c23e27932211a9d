"""The published schema and the pydantic model accept and reject exactly the same documents."""

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
from cdss.checklist import SCHEMA_ID, Checklist, ecma_regex
from cdss.validation import checklist_validator
from tests.conftest import EXAMPLES

SCHEMA = json.loads(schema_path("checklist.schema.json").read_text(encoding="utf-8"))
VALIDATOR = checklist_validator()
WALK = EXAMPLES / "valid" / "example-walk" / "1.0.0.json"
PAUSES = EXAMPLES / "valid" / "example-pauses" / "2.0.0.json"


def generator_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of the schema that generates small documents quickly.

    Only narrower (arrays of at most two entries), so everything it generates is
    still valid under the real schema. hypothesis-jsonschema resolves
    "#/$defs/..." against $id and cannot join onto a urn, so the copy has none.
    It reads patterns as Python regexes, so each is given in its Python
    spelling (``$`` as ``\\Z``): it then generates only what ECMA-262 accepts.
    """
    narrowed = copy.deepcopy(schema)
    narrowed.pop("$id")

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "array":
                node["maxItems"] = 2
            if isinstance(node.get("pattern"), str):
                node["pattern"] = ecma_regex(node["pattern"]).pattern
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(narrowed)
    return narrowed


GENERATOR_SCHEMA = generator_schema(SCHEMA)
FAST = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def model_accepts(document: Any) -> bool:
    try:
        Checklist.model_validate(document)
    except ValidationError:
        return False
    return True


def test_schema_is_the_published_contract() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"] == SCHEMA_ID


def test_every_field_is_described_and_closed() -> None:
    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert node.get("additionalProperties") is False, f"{where} allows unknown keys"
            for name, sub in node.get("properties", {}).items():
                assert "description" in sub, f"{where}/properties/{name} has no description"
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(SCHEMA, "#")


@FAST
@given(from_schema(GENERATOR_SCHEMA))
def test_schema_valid_documents_load_and_dump_back_equal(document: dict[str, Any]) -> None:
    checklist = Checklist.model_validate(document)
    assert checklist.to_json() == document
    assert content_hash(checklist.to_json()) == content_hash(document)


def _mutations(document: dict[str, Any]) -> list[tuple[str, list[str | int]]]:
    """Places in the document a mutation can target: every object and its keys."""
    places: list[tuple[str, list[str | int]]] = []

    def walk(node: Any, path: list[str | int]) -> None:
        if isinstance(node, dict):
            places.append(("object", path))
            for key, value in node.items():
                places.append(("key", [*path, key]))
                walk(value, [*path, key])
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, [*path, index])

    walk(document, [])
    return places


def _at(document: Any, path: list[str | int]) -> Any:
    for part in path:
        document = document[part]
    return document


WRONG_VALUES: list[Any] = [None, 1, 1.5, True, [], {}, "", "Not An Id", {"unexpected": 1}]


@FAST
@given(from_schema(GENERATOR_SCHEMA), st.data())
def test_mutated_documents_are_judged_alike(document: dict[str, Any], data: st.DataObject) -> None:
    mutated = copy.deepcopy(document)
    kind, path = data.draw(st.sampled_from(_mutations(mutated)))
    if kind == "object":
        target = _at(mutated, path)
        target[data.draw(st.sampled_from(["requried", "note", "Id", "$comment"]))] = "x"
    else:
        parent = _at(mutated, path[:-1])
        if data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(st.sampled_from(WRONG_VALUES))
    assert VALIDATOR.is_valid(mutated) == model_accepts(mutated)


@pytest.mark.parametrize(
    "value", [*WRONG_VALUES, "1.0", "01.0.0", "1.0.0\nx", "1.0.0\n", "1.0.0-rc.1+build.5"]
)
def test_versions_are_judged_alike(value: Any) -> None:
    document = json.loads(WALK.read_text(encoding="utf-8"))
    document["version"] = value
    assert VALIDATOR.is_valid(document) == model_accepts(document)


def _put(document: dict[str, Any], pointer: str, value: Any) -> None:
    *parents, last = pointer.strip("/").split("/")
    node: Any = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


FORMAT_2_CASES: list[tuple[str, Any, bool]] = [
    # (pointer, value, valid?) — the trailing newline is where Python's $ and ECMA-262's differ.
    ("/id", "example-pauses\n", False),
    ("/references/0/id", "example-label\n", False),
    ("/references/0/url", "https://example.org/label.pdf\n", False),
    ("/references/0/url", "http://example.org/label.pdf", False),
    ("/references/0/url", "https://localhost/label.pdf", False),
    ("/references/0/url", "https://www.fda.gov/media/123/download?x=1#p5", True),
    ("/references/1/doi", "10.1001/example.2017.0080\n", False),
    ("/references/1/doi", "10.1001/jamapsychiatry.2017.0080", True),
    ("/references/1/doi", "doi:10.1001/x", False),
    ("/references/0/sections/0/id", "5.1\n", False),
    ("/references/0/sections/0/id", "boxed-warning", True),
    ("/references/0/sections/0/id", "5..1", False),
    ("/references/0/kind", "rems", True),
    ("/references/0/kind", "label", False),
    ("/references/0/title", "\ufeff", False),
    ("/references/0/title", "\u00a0 ", False),
    ("/pauses/0/moment", "", False),
    ("/pauses/0/title", "\t", False),
    ("/sections/0/pause", "before-dose\n", False),
    ("/sections/0/items/0/sources/0", {"reference": "example-label", "section": "5.1"}, True),
    ("/sections/0/items/0/sources/0", {"reference": "example-label"}, False),
    ("/sections/0/items/0/sources/0", {"document": "x", "heading": "y", "section": "5.1"}, False),
    ("/sections/0/items/0/sources/0", {"reference": "x", "section": "5.1", "heading": "y"}, False),
    ("/sections/0/items/0/sources/0", "example-label", False),
    ("/sections/0/items/0/sources/0", {}, False),
    ("/$schema", "urn:cdss:schema:checklist:1", True),
    ("/$schema", "urn:cdss:schema:checklist:3", False),
    ("/pauses", [], False),
    ("/references", [], False),
]


@pytest.mark.parametrize(("pointer", "value", "valid"), FORMAT_2_CASES)
def test_format_2_fields_are_judged_alike(pointer: str, value: Any, valid: bool) -> None:
    document = json.loads(PAUSES.read_text(encoding="utf-8"))
    _put(document, pointer, value)
    assert VALIDATOR.is_valid(document) is valid
    assert model_accepts(document) is valid


def test_a_reference_needs_a_url_or_a_doi() -> None:
    document = json.loads(PAUSES.read_text(encoding="utf-8"))
    del document["references"][0]["url"]
    assert not VALIDATOR.is_valid(document) and not model_accepts(document)
    document["references"][0]["doi"] = "10.1000/182"
    assert VALIDATOR.is_valid(document) and model_accepts(document)


def test_ecma_semantics_of_patterns() -> None:
    assert ecma_regex("^[a-z]+$").search("abc\n") is None
    assert ecma_regex(r"\S").search("\ufeff") is None
    assert ecma_regex(r"\S").search("\x1c") is not None
    assert ecma_regex(r"^\d$").search("\u0663") is None
    assert ecma_regex("^[$]$").search("$") is not None
