"""Answers files: a whole walk-through given up front, checked entirely before anything is written.

The file is a JSON object from item id to a status, or to an object with
``status``, ``reason`` and ``reason_text``::

    {"setting-confirmed": "done",
     "infusion-monitoring-planned": {"status": "not-done", "reason": "deferred"}}

Every problem is reported at once, each with the file and the JSON pointer of
the item, so a script fails before it records half a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdss import jsonfile
from cdss.checklist import Checklist
from cdss.errors import InvalidInput, Issue
from cdss.events import Status
from cdss.plan import PlannedItem
from cdss.session import answer_problem

_KEYS = ("status", "reason", "reason_text")


@dataclass(frozen=True)
class FileAnswer:
    item: str
    status: Status
    reason: str | None = None
    reason_text: str | None = None


def _fields(value: Any) -> tuple[dict[str, Any], str | None]:
    """The answer's fields, or what is wrong with their shape."""
    if isinstance(value, str):
        return {"status": value}, None
    if not isinstance(value, dict):
        return {}, f"expected a status or an object, found {jsonfile.json_type(value)}"
    unexpected = sorted(set(value) - set(_KEYS))
    if unexpected:
        return {}, f"unexpected key(s) {', '.join(unexpected)}; allowed: {', '.join(_KEYS)}"
    if "status" not in value:
        return {}, "the object needs a status"
    wrong = [key for key in _KEYS if key in value and not isinstance(value[key], str)]
    if wrong:
        return {}, f"{wrong[0]} must be a string, found {jsonfile.json_type(value[wrong[0]])}"
    return value, None


def check_answers(
    raw: dict[str, Any], source: str, checklist: Checklist, planned: list[PlannedItem]
) -> list[FileAnswer]:
    """The answers in checklist order; ``InvalidInput`` carrying every issue if any is wrong."""
    applicable = {p.item.id: p for p in planned}
    issues: list[Issue] = []
    found: dict[str, FileAnswer] = {}
    for item, value in raw.items():
        fields, problem = _fields(value)
        if problem is None:
            problem = answer_problem(
                checklist,
                applicable,
                item,
                fields["status"],
                reason=fields.get("reason"),
                reason_text=fields.get("reason_text"),
            )
        if problem:
            issues.append(Issue(source, jsonfile.pointer([item]), problem))
        else:
            found[item] = FileAnswer(item, fields["status"], fields.get("reason"), fields.get("reason_text"))
    if issues:
        raise InvalidInput("invalid answers; nothing was recorded", issues=issues, file=source)
    return [found[p.item.id] for p in planned if p.item.id in found]


def read_answers(path: Path, checklist: Checklist, planned: list[PlannedItem]) -> list[FileAnswer]:
    return check_answers(jsonfile.read(path), str(path), checklist, planned)
