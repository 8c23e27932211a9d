"""Checklist-design warnings: what makes a checklist hard to use honestly.

Validation says whether a file *is* a checklist; these rules say whether it is a
good one, in the sense of the checklist literature and DESIGN.md: a clinician
stops at a few pause points and ticks a handful of short confirmations there,
each one a single thing done, none a recommendation, a verdict on the patient
or a dose, and every statement beyond the four seed documents traced to a
published source. The rules are heuristics over wording, so they warn and
never fail a file unless the author asks (``cdss validate --strict``).

Each warning is an ``Issue`` with ``severity="warning"`` and the rule's name,
and reads like any other issue: ``FILE:POINTER: rule: message``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from cdss.checklist import Checklist, DocumentSource, Item
from cdss.errors import Issue
from cdss.plan import RunContext, plan

MAX_ITEMS_AT_A_PAUSE = 9
MAX_WORDS = 25

RULES = (
    "pause-size",
    "item-length",
    "not-a-confirmation",
    "recommendation",
    "verdict",
    "dose",
    "compound",
    "uncited-claim",
    "unused-reference",
)

# Past tenses that do not end in -ed, for 'Gave the patient ...'.
_IRREGULAR_PAST = frozenset(
    {
        "gave", "kept", "told", "made", "took", "sent", "set", "saw", "met", "held", "got", "put",
        "read", "left", "found", "wrote", "spoke", "taught", "brought", "sought", "went", "began",
    }
)  # fmt: skip
# Verbs that report what was said: 'Explained that X must ...' is not a recommendation.
_TELLING = frozenset(
    [
        "explained",
        "discussed",
        "told",
        "informed",
        "advised",
        "reminded",
        "asked",
        "gave",
        "agreed",
        "offered",
    ]
)

_RECOMMENDATION = re.compile(
    r"\b(?:should|must|ought to|recommend(?:s|ed)?|is advised|are advised|consider)\b", re.IGNORECASE
)
_VERDICT = re.compile(
    r"\b(?:is|are|was|were|be|been|deemed|judged|found|considered|declared)\s+(?:not\s+)?"
    r"(?:eligible|ineligible|suitable|unsuitable|safe|unsafe|fit|unfit|cleared|"
    r"an? (?:good |suitable |appropriate )?candidate)\b"
    r"|\b(?:confirmed|established|determined|decided)\s+(?:the\s+\w+'s\s+|their\s+)?eligibility\b",
    re.IGNORECASE,
)
_NUMBER = r"(?:\d+(?:[.,]\d+)?|(?:one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|forty|fifty|"
_NUMBER += r"sixty|seventy|eighty|ninety|hundred|half|a quarter)(?:[- ](?:one|two|three|four|five|six|"
_NUMBER += r"seven|eight|nine|hundred))*)"
_UNIT = (
    r"(?:mg|mcg|µg|μg|g|kg|ml|l|iu|units?|milligrams?|micrograms?|grams?|millilit(?:er|re)s?|"
    r"sprays?|devices?|tablets?|vials?)"
)
_DOSE = re.compile(
    rf"\b{_NUMBER}\s*(?:(?:-|\u2013|to|or|and)\s*{_NUMBER}\s*)?{_UNIT}(?![A-Za-z])"
    rf"|\b{_NUMBER}\s*(?:per|/)\s*(?:kg|kilogram)\b"
    rf"|\bdoses?\s+of\s+{_NUMBER}\b",
    re.IGNORECASE,
)
_SECOND_VERB = re.compile(
    r"(?:\band|,|;)\s+(?:also\s+)?(?:confirmed|discussed|explained|reviewed|asked|verified|obtained|"
    r"arranged|gave|told|reminded|documented|recorded|checked|assessed)\b",
    re.IGNORECASE,
)
# 'Confirmed that A and that B' is two checks; 'Explained that A and that B' is one conversation.
_SECOND_CLAUSE = re.compile(r";|\band that\b", re.IGNORECASE)
_AUTHORITY = re.compile(
    r"\b(?:REMS|prescribing information|(?:the|its|product) label|labelling|labeling|FDA|"
    r"off-label|approved|approval|contraindicat\w*|boxed warning|pulse oximet\w*|certified|enrolled)\b",
    re.IGNORECASE,
)


def looks_like_dose(text: str) -> bool:
    """Whether a text states an amount of a drug: '56 mg', '0.5 mg/kg', 'two sprays'.

    Durations, times and counts ('about 40 minutes', 'at least 2 hours',
    'section 5.1') are not doses; a checklist may state them.
    """
    return _DOSE.search(text) is not None


def _first_word(text: str) -> str:
    words = text.split()
    return words[0].strip(",;:.").lower() if words else ""


def is_confirmation(text: str) -> bool:
    """Whether an item starts with something done: 'Confirmed', 'Discussed', 'Gave'."""
    first = _first_word(text)
    return first.endswith("ed") or first in _IRREGULAR_PAST


def item_warnings(item: Item, pointer: str) -> Iterator[tuple[str, str, str]]:
    """(pointer, rule, message) for the wording of one item."""
    text = item.text
    here = f"{pointer}/text"
    words = len(text.split())
    if words > MAX_WORDS:
        yield here, "item-length", f"{words} words; at most {MAX_WORDS}, so it can be read at a glance"
    if not is_confirmation(text):
        yield (
            here,
            "not-a-confirmation",
            f"starts with {text.split()[0]!r}; word it as something done "
            "('Confirmed that ...', 'Discussed with the patient ...')",
        )
    telling = _first_word(text) in _TELLING
    found = _RECOMMENDATION.search(text)
    if found and not telling:
        yield here, "recommendation", f"{found[0]!r} reads as advice; record what was done, not what to do"
    found = _VERDICT.search(text)
    if found:
        yield here, "verdict", f"{found[0]!r} is a verdict on the patient; confirm that the review happened"
    found = _DOSE.search(text)
    if found:
        yield here, "dose", f"{found[0]!r} is a dose; cdss never states or records doses"
    found = _SECOND_VERB.search(text) or (None if telling else _SECOND_CLAUSE.search(text))
    if found:
        yield here, "compound", f"{found[0].strip()!r} joins two checks; make each its own item"
    if not any(not isinstance(s, DocumentSource) for s in item.sources):
        found = _AUTHORITY.search(f"{text} {item.why}")
        if found:
            yield (
                f"{pointer}/sources",
                "uncited-claim",
                f"mentions {found[0]!r} but cites no reference; a statement the seed documents "
                "do not make cites the label, the REMS or a guideline by section",
            )


def pause_warnings(checklist: Checklist) -> Iterator[tuple[str, str, str]]:
    """More than MAX_ITEMS_AT_A_PAUSE base items (no population declared) at one pause, per route."""
    routes: list[str | None] = [r.id for r in checklist.context.routes] or [None]
    counts: dict[str, list[tuple[str | None, int]]] = {}
    for route in routes:
        per_pause: dict[str, int] = {}
        for planned in plan(checklist, RunContext(route)):
            if planned.section.pause is not None:
                per_pause[planned.section.pause] = per_pause.get(planned.section.pause, 0) + 1
        for pause, count in per_pause.items():
            if count > MAX_ITEMS_AT_A_PAUSE:
                counts.setdefault(pause, []).append((route, count))
    for index, declared in enumerate(checklist.pauses or ()):
        if declared.id in counts:
            where = ", ".join(
                f"{count} on route {route}" if route else str(count)
                for route, count in counts.pop(declared.id)
            )
            yield (
                f"/pauses/{index}",
                "pause-size",
                f"pause {declared.id!r} has more than {MAX_ITEMS_AT_A_PAUSE} base items ({where}); "
                "split it or move items to another pause",
            )


def reference_warnings(checklist: Checklist) -> Iterator[tuple[str, str, str]]:
    cited = {
        source.reference
        for _, item in checklist.items()
        for source in item.sources
        if not isinstance(source, DocumentSource)
    }
    for index, reference in enumerate(checklist.references or ()):
        if reference.id not in cited:
            yield (
                f"/references/{index}",
                "unused-reference",
                f"reference {reference.id!r} is cited by no item",
            )


def design_warnings(checklist: Checklist, source: str = "") -> list[Issue]:
    """Every design warning for one checklist, in document order within each rule group."""
    found: list[tuple[str, str, str]] = [*pause_warnings(checklist), *reference_warnings(checklist)]
    for s, section in enumerate(checklist.sections):
        for i, item in enumerate(section.items):
            found.extend(item_warnings(item, f"/sections/{s}/items/{i}"))
    return [
        Issue(source, pointer, f"{rule}: {message}", severity="warning", rule=rule)
        for pointer, rule, message in found
    ]
