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

Objects, which hold nearly all the work, are compiled one step further into
the source of one Python function each: a property whose value passes a
test that can only pass for a valid value (a string already found valid, an
enum member, an integer in bounds) costs an expression rather than a call;
any other value goes to its closure, which has the last word and the message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

Check = Callable[[Any], str | None]
"""Takes a value; returns None, or the problem as ``"/POINTER/BELOW: message"`` relative to the value
(``": message"`` when the value itself is wrong). Parents prepend their key only on failure, so
a valid event never builds a pointer string."""

MEMO_LIMIT = 4096
"""Strings already found valid are remembered (ids and actors repeat on every event), up to this many
per check; the memo is emptied when full, so memory stays flat."""

_ANNOTATIONS = frozenset({"description", "title", "$schema", "$id", "$comment"})
_KNOWN = frozenset(
    {"type", "const", "enum", "properties", "required", "additionalProperties", "items"}
    | {"minLength", "maxLength", "pattern", "minimum", "maximum", "oneOf"}
)


class UnsupportedSchema(Exception):
    """The schema uses a keyword this compiler does not implement."""


_compiled: dict[str, Check] = {}

_fast: dict[Check, tuple[str, dict[str, Any]]] = {}
"""For a closure, an expression (over ``x``, with names suffixed by ``{n}``) that is true only for
values the closure accepts, and the objects those names stand for; see ``_object``."""


def _meaning(schema: Any) -> Any:
    """A schema without its annotations: equal meanings compile to one shared closure."""
    if isinstance(schema, dict):
        return {k: _meaning(v) for k, v in schema.items() if k not in _ANNOTATIONS}
    if isinstance(schema, list):
        return [_meaning(v) for v in schema]
    return schema


def compile_schema(schema: dict[str, Any]) -> Check:
    """One closure per distinct (sub)schema, shared wherever it recurs.

    Sharing matters for speed: ``prev`` is the same schema as ``hash``, so
    the previous event's hash is already in the memo when it comes back as
    ``prev``; the envelope fields are checked by the same closures for every
    event type.
    """
    key = json.dumps(_meaning(schema), sort_keys=True)
    found = _compiled.get(key)
    if found is None:
        found = _compiled[key] = _compile(schema)
    return found


def _compile(schema: dict[str, Any]) -> Check:
    unknown = set(schema) - _KNOWN - _ANNOTATIONS
    if unknown:
        raise UnsupportedSchema(", ".join(sorted(unknown)))
    keys = set(schema) - _ANNOTATIONS
    kind = schema.get("type")
    if "oneOf" in schema:
        if keys != {"oneOf"}:
            raise UnsupportedSchema("oneOf beside other keywords")
        return _one_of(schema["oneOf"])
    if kind == "string" and keys <= {"type", "minLength", "maxLength", "pattern"}:
        return _string(schema)
    if kind == "object" and keys <= {"type", "properties", "required", "additionalProperties"}:
        if schema.get("additionalProperties", True) is not False:
            raise UnsupportedSchema("additionalProperties other than false")
        return _object(schema.get("properties", {}), schema.get("required", []))
    if kind == "integer" and keys <= {"type", "minimum", "maximum"}:
        return _integer(schema.get("minimum"), schema.get("maximum"))
    if kind == "array" and keys <= {"type", "items"}:
        return _array(compile_schema(schema["items"]) if "items" in schema else None)
    if kind == "null" and keys == {"type"}:

        def null(value: Any) -> str | None:
            return None if value is None else ": expected null"

        _fast[null] = ("x is None", {})
        return null
    if keys == {"const"}:
        return _enum([schema["const"]])
    if keys == {"enum"}:
        return _enum(schema["enum"])
    raise UnsupportedSchema(f"the combination {sorted(keys)}")


def _enum(options: list[Any]) -> Check:
    if not all(isinstance(option, str) for option in options):
        raise UnsupportedSchema("const or enum of values other than strings")
    allowed = frozenset(options)
    message = f": expected {' or '.join(map(json.dumps, options))}"

    def check(value: Any) -> str | None:
        return None if type(value) is str and value in allowed else message

    _fast[check] = ("type(x) is str and x in allowed{n}", {"allowed": allowed})
    return check


def _string(schema: dict[str, Any]) -> Check:
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    pattern = re.compile(schema["pattern"]) if "pattern" in schema else None
    valid: set[str] = set()

    def check(value: Any) -> str | None:
        if type(value) is not str:
            return ": expected string"
        if value in valid:
            return None
        if len(value) < low or (high is not None and len(value) > high):
            return f": length {len(value)} outside {low}..{high}"
        if pattern is not None and pattern.search(value) is None:
            return f": does not match {pattern.pattern}"
        if len(valid) >= MEMO_LIMIT:
            valid.clear()
        valid.add(value)
        return None

    _fast[check] = ("type(x) is str and x in valid{n}", {"valid": valid})
    return check


def _integer(low: float | None, high: float | None) -> Check:
    def check(value: Any) -> str | None:
        # JSON Schema counts 2.0 as an integer, and never true/false.
        if type(value) is not int and not (type(value) is float and value.is_integer()):
            return ": expected integer"
        if (low is not None and value < low) or (high is not None and value > high):
            return f": {value} outside {low}..{high}"
        return None

    bounds = ("" if low is None else " and low{n} <= x") + ("" if high is None else " and x <= high{n}")
    _fast[check] = ("type(x) is int" + bounds, {"low": low, "high": high})
    return check


def _object(properties: dict[str, dict[str, Any]], required: list[str]) -> Check:
    compiled = {name: compile_schema(sub) for name, sub in properties.items()}
    allowed, needed = frozenset(compiled), frozenset(required)

    def keys_problem(value: dict[str, Any]) -> str:
        present = value.keys()
        if not needed <= present:
            return f": missing {', '.join(map(repr, sorted(needed - present)))}"
        return f": unexpected {', '.join(map(repr, sorted(present - allowed)))}"

    names: dict[str, Any] = {"keys_problem": keys_problem, "ALLOWED": allowed, "NEEDED": needed}
    source = [
        "def check(value):",
        "    if type(value) is not dict:",
        "        return ': expected object'",
        "    keys = value.keys()",
        f"    if {'keys != ALLOWED' if needed == allowed else 'not (keys >= NEEDED and keys <= ALLOWED)'}:",
        "        return keys_problem(value)",
    ]
    for n, (name, check) in enumerate(compiled.items()):
        indent = "    "
        if name not in needed:
            source.append(f"    if {name!r} in value:")
            indent = "        "
        names[f"check{n}"] = check
        source.append(f"{indent}x = value[{name!r}]")
        fast = _fast.get(check)
        if fast is not None:
            test, bound = fast
            names.update({f"{k}{n}": v for k, v in bound.items()})
            source.append(f"{indent}if not ({test.format(n=n)}):")
            indent += "    "
        source += [
            f"{indent}problem = check{n}(x)",
            f"{indent}if problem is not None:",
            f"{indent}    return {'/' + name!r} + problem",
        ]
    source.append("    return None")
    exec("\n".join(source), names)  # the source is built above from the schema; names are repr()-quoted
    generated: Check = names["check"]
    return generated


def _array(each: Check | None) -> Check:
    def check(value: Any) -> str | None:
        if type(value) is not list:
            return ": expected array"
        if each is not None:
            for index, item in enumerate(value):
                problem = each(item)
                if problem is not None:
                    return f"/{index}{problem}"
        return None

    return check


def _one_of(branches: list[dict[str, Any]]) -> Check:
    """Events dispatch on their ``type`` const in one lookup; other oneOfs try every branch."""
    compiled = [compile_schema(branch) for branch in branches]
    consts = [branch.get("properties", {}).get("type", {}).get("const") for branch in branches]
    if all(isinstance(c, str) for c in consts) and len(set(consts)) == len(consts):
        by_type: dict[str, Check] = dict(zip(consts, compiled, strict=True))
        names = ", ".join(sorted(by_type))

        def dispatch(value: Any) -> str | None:
            if type(value) is not dict:
                return ": expected object"
            kind = value.get("type")
            branch = by_type.get(kind) if type(kind) is str else None
            if branch is None:
                return f"/type: expected one of {names}"
            return branch(value)

        return dispatch

    def exactly_one(value: Any) -> str | None:
        problems = [check(value) for check in compiled]
        matched = sum(p is None for p in problems)
        if matched == 1:
            return None
        if matched == 0:
            return next(p for p in problems if p)
        return ": matches more than one alternative"

    return exactly_one


def event_check(path: Path) -> Callable[[Any], str | None]:
    """The whole event schema at ``path``, compiled: returns the first problem or None."""
    check = compile_schema(json.loads(path.read_text(encoding="utf-8")))

    def first_problem(value: Any) -> str | None:
        problem = check(value)
        if problem is None:
            return None
        return f"/{problem}" if problem.startswith(":") else problem

    return first_problem
