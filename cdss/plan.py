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

from cdss.checklist import Checklist, Condition, Item, Option, Section
from cdss.errors import ContextError

POPULATIONS: tuple[Option, ...] = (
    Option(id="older-adults", title="Older adults"),
    Option(id="adolescents", title="Adolescents"),
    Option(id="children", title="Children"),
    Option(id="bipolar-depression", title="Bipolar depression"),
    Option(id="postpartum-depression", title="Postpartum depression"),
    Option(id="ptsd", title="Post-traumatic stress disorder (PTSD)"),
    Option(id="suicidal-ideation", title="Suicidal ideation"),
    Option(id="antidepressant-combination", title="Combined with other antidepressant medication"),
    Option(id="psychotherapy", title="Psychotherapy alongside treatment"),
)
"""The clinic-wide populations: the union of the shipped checklists' modules.

A clinic declares one context for a patient and runs every checklist with it,
so every checklist accepts every one of these, whether or not it has a module
for it (``nothing_extra_note`` says so when it has none)."""


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
    the checklist's own order, then the clinic-wide order of ``POPULATIONS``,
    without repeats, so the same context always records the same way.
    """
    routes = [option.id for option in checklist.context.routes]
    known_populations = accepted_populations(checklist)
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


def accepted_populations(checklist: Checklist) -> list[str]:
    """What a run may declare: the checklist's own modules, then every clinic-wide one."""
    own = [option.id for option in checklist.context.populations]
    return list(dict.fromkeys([*own, *(option.id for option in POPULATIONS)]))


def population_title(checklist: Checklist, population: str) -> str:
    for option in (*checklist.context.populations, *POPULATIONS):
        if option.id == population:
            return option.title
    return population


def has_module(checklist: Checklist, population: str) -> bool:
    """Whether any section or item applies only for (among others) this population."""
    conditions = [s.applies_when for s in checklist.sections] + [
        i.applies_when for s in checklist.sections for i in s.items
    ]
    return any(c is not None and population in (c.populations or ()) for c in conditions)


def nothing_extra_note(checklist: Checklist, population: str) -> str:
    """The one line a run prints for a declared population this checklist adds nothing for."""
    return f"This checklist has nothing extra for {population_title(checklist, population)}."


def nothing_extra_notes(checklist: Checklist, context: RunContext) -> list[str]:
    """One note per declared population without a module here, in the context's order."""
    return [nothing_extra_note(checklist, p) for p in context.populations if not has_module(checklist, p)]


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
