"""Text that crosses a trust boundary: printed to a terminal, put in a spreadsheet, or recorded for ever.

Three rules, one module:

- ``inert``: what cdss prints from a store, a bundle or a checklist cannot
  drive the terminal. Control characters (an escape sequence that clears the
  screen, an OSC that retitles the window or plants a link, a carriage return
  that overwrites a line) and bidirectional overrides are shown as visible
  ``\\x1b``-style escapes instead.
- ``csv_cell``: a cell a spreadsheet would run as a formula (OWASP's rule:
  it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return)
  is prefixed with ``'`` so that it is read as text.
- ``free_text_problem`` / ``check_free_text``: a reason typed in the
  clinician's words is short, is text, and does not plainly hold personal
  data. A tamper-evident store can never forget what it was given, so it is
  refused up front, with the rule that was broken.

What the personal-data check can catch: e-mail addresses, phone numbers,
dates (1980-01-31, 31/01/1980, 31-Jan-1980, Jan 31 1980, 1980_01_31, 19800131),
identifiers such as SSN, MRN, NHS or NI numbers (by their label, their
shape, or any run of seven or more digits) and the words "DOB" and "date of
birth". What it cannot catch: a name ("John Smith" reads like any two words),
an address, or a description that identifies someone. The README says so too.
"""

from __future__ import annotations

import re
from functools import cache

REASON_LIMIT = 200
"""Characters in a free-text reason: a short phrase, never a clinical note."""

_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f"  # C0 (escape, carriage return, newline, bell ...), DEL and C1 (CSI, OSC ...)
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidirectional marks and overrides
    "\u2028\u2029"  # line and paragraph separators
    "\ud800-\udfff]"  # lone surrogates (no terminal can encode them)
)

_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\x1b"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def inert(text: str) -> str:
    """``text`` with every control character, escape sequence and bidi override made visible and harmless."""
    return _UNPRINTABLE.sub(_visible, text)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A value safe to put in a CSV cell: a string a spreadsheet would run as a formula gets a leading ``'``.

    Numbers stay numbers; only text can carry a formula.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


# --- free text --------------------------------------------------------------------------

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_SURROGATE = re.compile("[\ud800-\udfff]")

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_SEP = r"[-/._ ]"
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_NUM_MONTH = r"(?:0?[1-9]|1[0-2])"
_YEAR = r"(?:1[89]\d\d|20\d\d)"


@cache
def _personal_patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    # Compiled on first use: every command imports this module, few check free text.
    return (
        (re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+"), "an e-mail address"),
        (re.compile(r"\b(?:dob|d\.o\.b\.?|date of birth|birth ?date|born on)\b", re.I), "a birth date"),
        (
            re.compile(
                r"(?<![\d])(?:"
                rf"{_YEAR}{_SEP}{_NUM_MONTH}{_SEP}{_DAY}"  # 1980-01-31, 1980_01_31
                rf"|{_DAY}{_SEP}{_NUM_MONTH}{_SEP}(?:{_YEAR}|\d\d)"  # 31/01/1980, 31.1.80
                rf"|{_NUM_MONTH}{_SEP}{_DAY}{_SEP}(?:{_YEAR}|\d\d)"  # 01/31/1980
                rf"|{_YEAR}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"  # 19800131
                r")(?![\d])"
                rf"|\b{_DAY}(?:st|nd|rd|th)?{_SEP}*{_MONTH}\b\.?{_SEP}*(?:{_YEAR}|'?\d\d)\b"  # 31-Jan-1980
                rf"|\b{_MONTH}\b\.?{_SEP}*{_DAY}(?:st|nd|rd|th)?,?{_SEP}*{_YEAR}\b"  # Jan 31, 1980
                rf"|\b{_YEAR}{_SEP}*{_MONTH}\b\.?{_SEP}*{_DAY}\b",  # 1980-Jan-31
                re.I,
            ),
            "a date",
        ),
        (
            re.compile(
                r"\b(?:ssn|mrn|nhs|nino|ni ?(?:no|number)|medical record|record number|patient ?id|"
                r"chart ?(?:no|number)|passport|insurance ?(?:no|number|id)|social security)",
                re.I,
            ),
            "a record or identity number",
        ),
        (re.compile(r"\btel:", re.I), "a phone number"),
        (re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)"), "a social security number"),
        (
            re.compile(r"(?<![\w])\+?\(?\d[\d ().-]{5,}\d(?!\w)"),
            "a phone or record number",
        ),
        (re.compile(r"\d{7,}"), "a record or identity number"),
    )


def _digits(text: str) -> int:
    return sum(c.isdigit() for c in text)


def personal_data(text: str) -> str | None:
    """What ``text`` plainly holds that identifies a person ("a date", "an e-mail address"), or None."""
    for pattern, what in _personal_patterns():
        for match in pattern.finditer(text):
            if what == "a phone or record number" and _digits(match.group()) < 7:
                continue
            return what
    return None


def free_text_problem(
    text: str, what: str, *, limit: int = REASON_LIMIT, personal: bool = True
) -> str | None:
    """What is wrong with a short free text (``what`` names it in the message), or None.

    ``personal=False`` for a clinician's own printed name, which is personal
    data by design; everything else still applies.
    """
    if _SURROGATE.search(text):
        return f"{what} holds a character that is not text (a lone surrogate, such as from invalid UTF-8)"
    control = _CONTROL.search(text)
    if control:
        code = ord(control.group())
        return f"{what} holds a control character (U+{code:04X}); write plain text on one line"
    if len(text) > limit:
        return f"{what} is {len(text)} characters; the limit is {limit} (keep it short, no clinical findings)"
    found = personal_data(text) if personal else None
    if found:
        return (
            f"{what} looks like it holds {found}; cdss never records personal data: "
            "write the reason without anything that identifies the patient"
        )
    return None


def check_free_text(text: str, what: str, *, limit: int = REASON_LIMIT, personal: bool = True) -> str:
    """``text`` if ``free_text_problem`` finds nothing, else ``InvalidInput`` with the problem."""
    from cdss.errors import InvalidInput

    problem = free_text_problem(text, what, limit=limit, personal=personal)
    if problem:
        raise InvalidInput(problem)
    return text
