"""Subject references by design: opaque codes with a check character, not a blocklist.

A store never holds who a patient is. By default it accepts only codes that
``new_code`` issues (``S-`` and nine Crockford base32 characters, the last a
check character), so a name, a birth date or a record number cannot be typed
in by mistake: none of them has that shape. A clinic that already has its own
pseudonyms sets the ``subject-pattern`` setting (an event in the chain, so an
auditor sees when and by whom); such a pattern is ECMA-262, matched against the
whole reference, exactly as a verifier written from the published format would.

The link between a code and the patient stays outside cdss.
"""

from __future__ import annotations

import re
import secrets
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jsonschema_rs

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base32: no I, L, O or U, so a code read aloud or retyped is not misread."""
BODY_LENGTH = 8
PREFIX = "S-"
DEFAULT_PATTERN = "^S-[0-9A-HJKMNP-TV-Z]{9}$"
EXAMPLE = "S-7F3K2M9Q1"
"""A code of the default format (its check character is right), for help texts and docs."""

MAX_LENGTH = 64
SCHEMA_SUBJECT = "^[A-Za-z0-9][A-Za-z0-9._:-]*$"
"""What the event schema allows any subject reference to be; a clinic's pattern narrows it."""

PERSONAL_LOOKING = (
    "JohnSmith",
    "john.smith",
    "Jane.Doe.1975",
    "31-Jan-1980",
    "1980-01-31",
    "1980_01_31",
    "SSN:123456789",
    "MRN1234567",
    "NHS9434765919",
    "tel:5551234567",
    "john@example.org",
)
"""References a clinic's pattern must refuse: a pattern accepting any of these is refused itself."""

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_DATE = re.compile(
    r"(?<!\d)(?:(?:19|20)\d\d[-/._]?(?:0?[1-9]|1[0-2])[-/._]?(?:0?[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])[-/._](?:0?[1-9]|[12]\d|3[01]|[A-Za-z]{3})[-/._](?:\d\d){1,2})(?!\d)"
)
_DIGITS = re.compile(r"\d{7,}")
_PHONE = re.compile(r"\+?[\d().\- ]+")
_NO_PERSONAL_DATA = (
    "cdss never holds personal data: use an opaque code from `cdss subject new` (for example "
    f"{EXAMPLE}) and keep what links it to the patient outside cdss"
)


CHECK_OFFSET = 19
"""Added to the Luhn check value: a constant changes no error it catches, and this one makes
the shared plan's example code (``EXAMPLE``) a valid code."""


def check_character(body: str) -> str:
    """Luhn mod 32 over the Crockford alphabet (plus ``CHECK_OFFSET``): catches every single
    wrong character and every swap of two neighbours."""
    total, factor = 0, 2
    for char in reversed(body):
        addend = factor * ALPHABET.index(char)
        total += addend // 32 + addend % 32
        factor = 1 if factor == 2 else 2
    return ALPHABET[(CHECK_OFFSET - total) % 32]


def new_code() -> str:
    """A fresh opaque subject code, e.g. ``S-7F3K2M9Q1``: random, so it says nothing about anyone."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return f"{PREFIX}{body}{check_character(body)}"


def is_code(reference: str) -> bool:
    """Whether ``reference`` is a code of the default format with the right check character."""
    if re.fullmatch(DEFAULT_PATTERN[1:-1], reference) is None:
        return False
    body = reference[len(PREFIX) :]
    return check_character(body[:-1]) == body[-1]


@cache
def _ecma(pattern: str) -> jsonschema_rs.Validator:
    import jsonschema_rs

    return jsonschema_rs.validator_for({"type": "string", "pattern": f"^(?:{pattern})$"})


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a store's subject pattern, or None."""
    if not pattern or len(pattern) > 500:
        return "a subject pattern must be 1 to 500 characters"
    if pattern == DEFAULT_PATTERN:
        return None
    try:
        validator = _ecma(pattern)
    except Exception as error:  # jsonschema-rs says why an ECMA-262 pattern does not compile
        return f"{pattern!r} is not an ECMA-262 regular expression ({str(error).splitlines()[0]})"
    accepted = [sample for sample in PERSONAL_LOOKING if validator.is_valid(sample)]
    if accepted:
        return f"the pattern accepts {accepted[0]!r}, which looks like personal data"
    return None


def problem(reference: str, pattern: str = DEFAULT_PATTERN) -> str | None:
    """What is wrong with a subject reference under a store's ``pattern``, or None."""
    if not reference:
        return "the subject reference is empty"
    if len(reference) > MAX_LENGTH:
        return f"the subject reference is {len(reference)} characters; the limit is {MAX_LENGTH}"
    if any(c.isspace() for c in reference):
        return f"the subject reference contains spaces, like a name; {_NO_PERSONAL_DATA}"
    if _EMAIL.search(reference):
        return f"the subject reference looks like an e-mail address; {_NO_PERSONAL_DATA}"
    if _DATE.search(reference):
        return f"the subject reference contains what looks like a date; {_NO_PERSONAL_DATA}"
    digits = sum(c.isdigit() for c in reference)
    if (_PHONE.fullmatch(reference) and digits >= 7) or (
        _DIGITS.search(reference) and not is_code(reference)
    ):
        return f"the subject reference looks like a phone or record number; {_NO_PERSONAL_DATA}"
    if pattern == DEFAULT_PATTERN:
        if re.fullmatch(DEFAULT_PATTERN[1:-1], reference.upper()) and not is_code(reference):
            return f"{reference} is not a code from `cdss subject new`: its check character is wrong"
        if not is_code(reference):
            return f"this store accepts only codes from `cdss subject new`; {_NO_PERSONAL_DATA}"
        return None
    if re.fullmatch(SCHEMA_SUBJECT[1:-1], reference) is None:
        return "the subject reference may use only letters, digits and . _ : - (a letter or digit first)"
    try:
        accepted = _ecma(pattern).is_valid(reference)
    except Exception:
        return f"this store's subject pattern {pattern!r} is not usable; set a new one"
    if not accepted:
        return f"the subject reference does not match this clinic's subject pattern {pattern}"
    return None
