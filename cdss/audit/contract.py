"""The published event contract, compiled once into plain Python checks.

Why not call jsonschema for every event: it walks the schema for each instance,
which costs about a hundred times a ``json.loads`` here, and an audit reads a
million events. This compiles the subset of JSON Schema that
``schemas/event.schema.json`` uses (type, const, enum, properties, required,
additionalProperties false, items, string lengths and patterns, integer
bounds, oneOf) into closures — from the schema file itself, so the published
contract stays the single source of truth. A keyword it does not know makes
compiling fail rather than be skipped silently; the tests check that the
compiled check agrees with jsonschema on generated and mutated events.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

Check = Callable[[Any, str], str | None]
"""Takes a value and its JSON pointer; returns ``"POINTER: problem"`` or None."""

_ANNOTATIONS = frozenset({"description", "title", "$schema", "$id", "$comment"})
_KNOWN = frozenset(
    {
        "type",
        "const",
        "enum",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "oneOf",
    }
)


class UnsupportedSchema(Exception):
    """The schema uses a keyword this compiler does not implement."""


def _is_type(value: Any, name: str) -> bool:
    if name == "string":
        return isinstance(value, str)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        # JSON Schema counts 2.0 as an integer, and never true/false.
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    raise UnsupportedSchema(f"type {name!r}")


def compile_schema(schema: dict[str, Any]) -> Check:
    """One closure for a (sub)schema; the checks run in the order cheapest first."""
    unknown = set(schema) - _KNOWN - _ANNOTATIONS
    if unknown:
        raise UnsupportedSchema(", ".join(sorted(unknown)))
    if schema.get("additionalProperties", False) is not False and "properties" in schema:
        raise UnsupportedSchema("additionalProperties other than false")
    checks: list[Check] = []
    if "oneOf" in schema:
        checks.append(_one_of(schema["oneOf"]))
    if "type" in schema:
        checks.append(_type(schema["type"]))
    if "const" in schema:
        checks.append(_const(schema["const"]))
    if "enum" in schema:
        checks.append(_enum(schema["enum"]))
    if {"minLength", "maxLength", "pattern"} & set(schema):
        checks.append(_string(schema))
    if {"minimum", "maximum"} & set(schema):
        checks.append(_bounds(schema.get("minimum"), schema.get("maximum")))
    if "properties" in schema or "required" in schema:
        checks.append(_object(schema.get("properties", {}), schema.get("required", [])))
    if "items" in schema:
        checks.append(_items(compile_schema(schema["items"])))
    if len(checks) == 1:
        return checks[0]

    def all_of(value: Any, pointer: str) -> str | None:
        for check in checks:
            problem = check(value, pointer)
            if problem:
                return problem
        return None

    return all_of


def _type(name: str) -> Check:
    _is_type(None, name)  # refuse an unknown type name at compile time

    def check(value: Any, pointer: str) -> str | None:
        return None if _is_type(value, name) else f"{pointer or '/'}: expected {name}"

    return check


def _const(expected: Any) -> Check:
    if not isinstance(expected, str):
        raise UnsupportedSchema("const other than a string")

    def check(value: Any, pointer: str) -> str | None:
        return (
            None
            if isinstance(value, str) and value == expected
            else f"{pointer or '/'}: expected {json.dumps(expected)}"
        )

    return check


def _enum(options: list[Any]) -> Check:
    if not all(isinstance(option, str) for option in options):
        raise UnsupportedSchema("enum of values other than strings")

    def check(value: Any, pointer: str) -> str | None:
        if isinstance(value, str) and value in options:
            return None
        return f"{pointer or '/'}: expected one of {', '.join(map(json.dumps, options))}"

    return check


def _string(schema: dict[str, Any]) -> Check:
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    pattern = re.compile(schema["pattern"]) if "pattern" in schema else None

    def check(value: Any, pointer: str) -> str | None:
        if not isinstance(value, str):
            return None  # length and pattern constrain strings only
        if len(value) < low or (high is not None and len(value) > high):
            return f"{pointer or '/'}: length {len(value)} outside {low}..{high}"
        if pattern is not None and pattern.search(value) is None:
            return f"{pointer or '/'}: does not match {pattern.pattern}"
        return None

    return check


def _bounds(low: float | None, high: float | None) -> Check:
    def check(value: Any, pointer: str) -> str | None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            return f"{pointer or '/'}: {value} outside {low}..{high}"
        return None

    return check


def _object(properties: dict[str, dict[str, Any]], required: list[str]) -> Check:
    compiled = {name: compile_schema(sub) for name, sub in properties.items()}
    allowed = frozenset(compiled)

    def check(value: Any, pointer: str) -> str | None:
        if not isinstance(value, dict):
            return None
        for name in required:
            if name not in value:
                return f"{pointer or '/'}: missing {name!r}"
        if not allowed.issuperset(value):
            extra = sorted(set(value) - allowed)
            return f"{pointer or '/'}: unexpected {', '.join(map(repr, extra))}"
        for name, item in value.items():
            problem = compiled[name](item, f"{pointer}/{name}")
            if problem:
                return problem
        return None

    return check


def _items(each: Check) -> Check:
    def check(value: Any, pointer: str) -> str | None:
        if not isinstance(value, list):
            return None
        for index, item in enumerate(value):
            problem = each(item, f"{pointer}/{index}")
            if problem:
                return problem
        return None

    return check


def _one_of(branches: list[dict[str, Any]]) -> Check:
    """Events dispatch on their ``type`` const in one lookup; other oneOfs try every branch."""
    compiled = [compile_schema(branch) for branch in branches]
    consts = [branch.get("properties", {}).get("type", {}).get("const") for branch in branches]
    if all(isinstance(c, str) for c in consts) and len(set(consts)) == len(consts):
        by_type: dict[str, Check] = dict(zip(consts, compiled, strict=True))
        names = ", ".join(sorted(by_type))

        def dispatch(value: Any, pointer: str) -> str | None:
            if not isinstance(value, dict):
                return f"{pointer or '/'}: expected object"
            kind = value.get("type")
            branch = by_type.get(kind) if isinstance(kind, str) else None
            if branch is None:
                return f"{pointer}/type: expected one of {names}"
            return branch(value, pointer)

        return dispatch

    def exactly_one(value: Any, pointer: str) -> str | None:
        problems = [check(value, pointer) for check in compiled]
        matched = sum(p is None for p in problems)
        if matched == 1:
            return None
        if matched == 0:
            return next(p for p in problems if p)
        return f"{pointer or '/'}: matches more than one alternative"

    return exactly_one


def event_check(path: Path) -> Callable[[Any], str | None]:
    """The whole event schema at ``path``, compiled: returns the first problem or None."""
    check = compile_schema(json.loads(path.read_text(encoding="utf-8")))
    return lambda value: check(value, "")
