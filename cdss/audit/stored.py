"""An event's stored text, read fast: its body digest, its parse, and where it belongs.

Verification reads every event of a chain that may hold millions, so these
take the stored RFC 8785 text as it is instead of re-serialising it. Each
fast path is exact, and falls back to the literal definition where it
cannot be (tested equal in tests/test_audit_contract.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from cdss.catalog import content_hash
from cdss.session import signed_payload

MAX_LINE = 1 << 20
"""The longest event text read, in characters: the largest real event is well under 10 KiB."""

MAX_DEPTH = 32
"""The deepest nesting read: an event is four levels deep."""


def body_digest(text: str) -> str | None:
    """sha256 of an event's body, cut out of its stored canonical text.

    In RFC 8785 order the top-level ``hash`` member comes straight after
    ``data`` (the only member that can nest another ``hash``), so it is the
    last ``,"hash":"`` in the text. None when the text has no such member.
    """
    cut = text.rfind(',"hash":"')
    if cut < 0 or text[cut + 73 : cut + 75] != '",':
        return None
    return hashlib.sha256((text[:cut] + text[cut + 74 :]).encode()).hexdigest()


def reference_digest(event: dict[str, Any]) -> str | None:
    """The slow, literal definition: sha256 of RFC 8785 of the event without ``hash``."""
    try:
        return content_hash({k: v for k, v in event.items() if k != "hash"})
    except Exception:  # rfc8785 refuses what JSON allows (lone surrogates, huge floats)
        return None


def payload(signs: str, name: str, meaning: str, at: str) -> bytes:
    """``signed_payload``, fast for the usual printable-ASCII text.

    For such strings (and these fixed keys) sorted compact JSON is exactly
    RFC 8785; anything else goes through the RFC 8785 library.
    """
    text = name + meaning
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'{{"at":"{at}","meaning":"{meaning}","name":"{name}","signs":"{signs}"}}'.encode()
    return signed_payload(signs, name, meaning, at)


_scan: Callable[[Any, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def parse(text: Any) -> Any:
    """``json.loads`` of one stored event, refusing what is too long or too deeply nested.

    The scanner runs directly when the text is one JSON value and nothing else
    (``json.loads`` runs this same scanner after stripping whitespace); anything
    it does not take whole goes to ``json.loads`` itself, so the answer, or the
    error, is the same. Raises ``ValueError`` for anything that is not JSON.
    """
    if type(text) is not str:
        raise TypeError("not text")
    if len(text) > MAX_LINE:
        raise ValueError(f"longer than {MAX_LINE:,} characters")
    if text.count("{") + text.count("[") > MAX_DEPTH and too_deep(text):  # the count spares a call per event
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    try:
        value, end = _scan(text, 0)
        if end == len(text):
            return value
    except (StopIteration, ValueError):
        pass
    return json.loads(text)


def too_deep(text: str) -> bool:
    """Whether brackets open deeper than ``MAX_DEPTH``, counted cheaply, before the parser recurses.

    Only texts with many brackets are counted exactly; brackets inside strings
    may over-count, which only refuses a text no real event is.
    """
    if text.count("{") + text.count("[") <= MAX_DEPTH:
        return False
    depth = 0
    for char in text:
        if char in "{[":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "}]":
            depth -= 1
    return False


def owner(session: Any, parts: int) -> int:
    """Which of ``parts`` processes checks the events of ``session``: all of a session's go to one."""
    return ord(session[-1]) % parts if type(session) is str and session else 0


def hints(text: Any) -> tuple[str | None, str | None]:
    """A bundle line's session and hash, found without parsing it.

    In a canonical event ``session`` is the last member holding an object key
    of that name, and ``hash`` the last of its name (see ``body_digest``); a
    quote inside a string is escaped, so neither can be faked from inside a
    value. A line where they are not found belongs to process 0 and breaks the
    chain after it — the line itself is reported as not canonical.
    """
    if type(text) is not str:
        return None, None
    cut = text.rfind(',"hash":"')
    hash_ = text[cut + 9 : cut + 73] if cut >= 0 else None
    start = text.rfind('"session":"') + 11
    end = text.find('"', start) if start >= 11 else -1
    return (text[start:end] if end >= 0 else None), hash_
