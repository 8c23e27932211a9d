"""Applicability: which items of a checklist apply to this run, in order.

A run declares a context — one route (when the checklist distinguishes
routes) and any special-population modules. Items and sections carry a
declarative condition; this module is the only place that interprets it, so
``cdss plan``, the terminal walk-through and the library all agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cdss.checklist import Checklist, Condition, Item, Section
from cdss.errors import ContextError


@dataclass(frozen=True)
class RunContext:
    """What the clinician declared for this run."""

    route: str | None = None
    populations: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"route": self.route, "populations": list(self.populations)}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> RunContext:
        return cls(route=value.get("route"), populations=tuple(value.get("populations", ())))


@dataclass(frozen=True)
class PlannedItem:
    """An applicable item, with what the terminal shows around it."""

    section: Section
    item: Item
    number: int
    """1-based position among the applicable items: 'item 4 of 17'."""

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "id": self.item.id,
            "text": self.item.text,
            "section": self.section.id,
            "section_title": self.section.title,
            "phase": self.section.phase,
        }


def declare(checklist: Checklist, route: str | None = None, populations: Iterable[str] = ()) -> RunContext:
    """Check a context against what the checklist declares, and normalise it.

    Raises ``ContextError`` listing the valid choices. Populations come back in
    the checklist's own order, without repeats, so the same context always
    records the same way.
    """
    routes = [option.id for option in checklist.context.routes]
    known_populations = [option.id for option in checklist.context.populations]
    if routes and route is None:
        raise ContextError(f"{checklist.ref} differs by route; give --route, one of: {', '.join(routes)}")
    if route is not None and route not in routes:
        valid = f"one of: {', '.join(routes)}" if routes else "this checklist has no routes"
        raise ContextError(f"unknown route {route!r} for {checklist.ref}; {valid}")
    wanted = set(populations)
    unknown = sorted(wanted - set(known_populations))
    if unknown:
        valid = (
            f"valid: {', '.join(known_populations)}"
            if known_populations
            else "this checklist has no population modules"
        )
        raise ContextError(f"unknown population {', '.join(map(repr, unknown))} for {checklist.ref}; {valid}")
    return RunContext(route, tuple(p for p in known_populations if p in wanted))


def applies(condition: Condition | None, context: RunContext) -> bool:
    """Every key the condition has must hold; no condition means always."""
    if condition is None:
        return True
    if condition.routes is not None and context.route not in condition.routes:
        return False
    return condition.populations is None or bool(set(condition.populations) & set(context.populations))


def plan(checklist: Checklist, context: RunContext) -> list[PlannedItem]:
    """The applicable items in checklist order, numbered from 1."""
    chosen = [
        (section, item)
        for section in checklist.sections
        if applies(section.applies_when, context)
        for item in section.items
        if applies(item.applies_when, context)
    ]
    return [PlannedItem(section, item, n) for n, (section, item) in enumerate(chosen, start=1)]
