"""What changed between two versions of a checklist, item by item.

Authors read it before a release; auditors read it to see what a clinician on
an older version was and was not asked. Items are matched by id, which the
format keeps stable across versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cdss.checklist import Checklist, Condition, Item, Section

ChangeKind = Literal[
    "added",
    "removed",
    "reworded",
    "why-changed",
    "sources-changed",
    "moved",
    "applicability-changed",
    "checklist-changed",
]


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    item: str | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "item": self.item, "detail": self.detail}


def _condition_text(section: Section, item: Item) -> str:
    def part(condition: Condition | None) -> list[str]:
        if condition is None:
            return []
        bits = []
        if condition.routes:
            bits.append("route in " + ", ".join(condition.routes))
        if condition.populations:
            bits.append("population in " + ", ".join(condition.populations))
        return bits

    bits = part(section.applies_when) + part(item.applies_when)
    return " and ".join(bits) or "always"


def diff(old: Checklist, new: Checklist) -> list[Change]:
    changes: list[Change] = []
    for field in ("title", "summary"):
        if getattr(old, field) != getattr(new, field):
            changes.append(Change("checklist-changed", None, f"{field} changed"))
    for field, label in (("documents", "source documents"), ("context", "routes or populations")):
        if getattr(old, field) != getattr(new, field):
            changes.append(Change("checklist-changed", None, f"{label} changed"))
    if old.reasons != new.reasons:
        changes.append(Change("checklist-changed", None, "not-done reasons changed"))

    before = {item.id: (n, section, item) for n, (section, item) in enumerate(old.items())}
    after = {item.id: (n, section, item) for n, (section, item) in enumerate(new.items())}
    kept_old = [i for i in before if i in after]
    kept_new = [i for i in after if i in before]
    for item_id, (_, section, item) in before.items():
        if item_id not in after:
            changes.append(Change("removed", item_id, f"from {section.id}: {item.text}"))
    for item_id, (_, section, item) in after.items():
        if item_id not in before:
            changes.append(Change("added", item_id, f"in {section.id}: {item.text}"))
            continue
        _, old_section, old_item = before[item_id]
        if old_item.text != item.text:
            changes.append(Change("reworded", item_id, f"{old_item.text!r} -> {item.text!r}"))
        if old_item.why != item.why:
            changes.append(Change("why-changed", item_id, f"{old_item.why!r} -> {item.why!r}"))
        if old_item.sources != item.sources:
            changes.append(Change("sources-changed", item_id, "cited sources changed"))
        if old_section.id != section.id:
            changes.append(Change("moved", item_id, f"section {old_section.id} -> {section.id}"))
        elif kept_old.index(item_id) != kept_new.index(item_id):
            changes.append(Change("moved", item_id, "order changed within " + section.id))
        was, now = _condition_text(old_section, old_item), _condition_text(section, item)
        if was != now:
            changes.append(Change("applicability-changed", item_id, f"{was} -> {now}"))
    return changes
