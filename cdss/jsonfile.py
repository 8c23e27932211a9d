"""Reading JSON that people wrote by hand, without ever crashing on it.

Checklists, answers files and bundle manifests all come from outside. Each
failure here becomes one ``InvalidInput`` naming the file and, where it can,
the place — never a ``RecursionError`` or ``UnicodeDecodeError`` traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cdss.errors import InvalidInput

MAX_BYTES = 2 * 1024 * 1024
"""Far above any real checklist (the largest shipped one is a few dozen KiB)."""

MAX_DEPTH = 32
"""A checklist is six levels deep; anything much deeper is a mistake or an attack."""


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # dict() in C first: a duplicate is rare, and only then is the key looked for.
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return value


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_LONE_SURROGATE = "holds a lone surrogate (such as \\ud800), which is not text; remove it"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def loads_bounded(
    data: bytes | str, source: str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> dict[str, Any]:
    """Parse one JSON object from anywhere cdss did not just write it itself.

    Store rows, bundle lines, checkpoints, answers files and checklists all
    pass through here, so that no input can cost more than ``max_bytes`` or
    nest deeper than ``max_depth`` (a ``RecursionError`` later, in hashing or
    validation, would be a crash), and none can carry what UTF-8 cannot hold
    (a lone surrogate such as ``"\\ud800"``), a duplicate key (read
    first-wins by one program and last-wins by another) or NaN. Every
    failure is one ``InvalidInput`` whose ``file`` is ``source``.
    """
    if isinstance(data, bytes):
        size = len(data)
    else:
        try:
            size = len(data.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidInput(_LONE_SURROGATE, file=source) from None
    if size > max_bytes:
        raise InvalidInput(f"the JSON is {size:,} bytes; the limit is {max_bytes:,} bytes", file=source)
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidInput(
                f"not valid UTF-8 (byte {error.start}); save the file as UTF-8", file=source
            ) from None
    else:
        text = data
    if not text.strip():
        raise InvalidInput("file is empty; expected a JSON object", file=source)
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
            f"JSON is nested too deeply (the limit is {max_depth} levels)", file=source
        ) from None
    except ValueError as error:  # NaN, Infinity, or an integer of more than 4300 digits
        raise InvalidInput(f"not valid JSON: {error}", file=source) from None
    if not isinstance(value, dict):
        raise InvalidInput(f"expected a JSON object at the top level, found {json_type(value)}", file=source)
    # Counting brackets is C-fast and an upper bound on the depth: most values skip the walk.
    if text.count("{") + text.count("[") > max_depth:
        _check_depth(value, source, max_depth)
    if _SURROGATE_ESCAPE.search(text):  # only an escape can make one once the text is UTF-8
        _check_encodable(value, source)
    return value


def parse(data: bytes, source: str, *, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """Parse ``data`` as a JSON object; ``source`` names it in every error."""
    return loads_bounded(data, source, max_bytes=max_bytes)


def _check_encodable(value: Any, source: str) -> None:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(_LONE_SURROGATE, file=source) from None


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


def _check_depth(value: Any, source: str, max_depth: int = MAX_DEPTH) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise InvalidInput(f"JSON is nested too deeply (the limit is {max_depth} levels)", file=source)
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
