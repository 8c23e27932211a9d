"""Reading JSON that people wrote by hand, without ever crashing on it.

Checklists, answers files and bundle manifests all come from outside. Each
failure here becomes one ``InvalidInput`` naming the file and, where it can,
the place — never a ``RecursionError`` or ``UnicodeDecodeError`` traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cdss.errors import InvalidInput

MAX_BYTES = 2 * 1024 * 1024
"""Far above any real checklist (the largest shipped one is a few dozen KiB)."""

MAX_DEPTH = 32
"""A checklist is six levels deep; anything much deeper is a mistake or an attack."""


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse(data: bytes, source: str, *, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """Parse ``data`` as a JSON object; ``source`` names it in every error."""
    if len(data) > max_bytes:
        raise InvalidInput(f"file is {len(data):,} bytes; the limit is {max_bytes:,} bytes", file=source)
    if not data.strip():
        raise InvalidInput("file is empty; expected a JSON object", file=source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput(
            f"not valid UTF-8 (byte {error.start}); save the file as UTF-8", file=source
        ) from None
    try:
        value = json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
    except _DuplicateKey as error:
        raise InvalidInput(f"duplicate key {error.key!r} in a JSON object", file=source) from None
    except json.JSONDecodeError as error:
        raise InvalidInput(
            f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}",
            file=source,
        ) from None
    except RecursionError:
        raise InvalidInput(
            f"JSON is nested too deeply (the limit is {MAX_DEPTH} levels)", file=source
        ) from None
    except ValueError as error:
        raise InvalidInput(f"not valid JSON: {error}", file=source) from None
    if not isinstance(value, dict):
        raise InvalidInput(f"expected a JSON object at the top level, found {json_type(value)}", file=source)
    _check_depth(value, source)
    return value


def read(path: Path, *, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """Read and parse a JSON object from ``path``."""
    source = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise InvalidInput("no such file", file=source) from None
    except IsADirectoryError:
        raise InvalidInput("is a folder, not a JSON file", file=source) from None
    except OSError as error:
        raise InvalidInput(f"cannot be read: {error.strerror}", file=source) from None
    return parse(data, source, max_bytes=max_bytes)


def _check_depth(value: Any, source: str) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidInput(f"JSON is nested too deeply (the limit is {MAX_DEPTH} levels)", file=source)
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def pointer(path: tuple[str | int, ...] | list[str | int]) -> str:
    """RFC 6901 JSON pointer for a path, so schema and model errors read alike."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)
