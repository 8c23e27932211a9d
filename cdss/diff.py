"""What changed between two versions of a checklist, item by item.

Authors read it before a release; auditors read it to see what a clinician on
an older version was and was not asked. Items are matched by id, which the
format keeps stable across versions; references and pauses by their ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cdss.checklist import (
    Checklist,
    Condition,
    DocumentSource,
    Item,
    Pause,
    Reference,
    ReferenceSource,
    Section,
)

ChangeKind = Literal[
    "added",
    "removed",
    "reworded",
    "why-changed",
    "sources-changed",
    "moved",
    "applicability-changed",
    "pause-changed",
    "checklist-changed",
    "reference-added",
    "reference-removed",
    "reference-revised",
    "pause-added",
    "pause-removed",
    "pause-revised",
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


def citation(source: DocumentSource | ReferenceSource) -> str:
    """A source as the diff names it: ``doc 'Heading'`` or ``ref section 5.1``."""
    if isinstance(source, DocumentSource):
        return f"{source.document} {source.heading!r}"
    return f"{source.reference} section {source.section}"


def _sources_change(old: Item, new: Item) -> str:
    before = [citation(s) for s in old.sources]
    after = [citation(s) for s in new.sources]
    added = [c for c in after if c not in before]
    removed = [c for c in before if c not in after]
    parts = [f"now cites {c}" for c in added] + [f"no longer cites {c}" for c in removed]
    return "; ".join(parts) or "cited sources reordered"


def _reference_text(reference: Reference) -> str:
    where = reference.url or f"doi:{reference.doi}"
    return f"{reference.title} ({reference.kind}, {reference.issuer}, {reference.version}) {where}"


def _reference_revisions(old: Reference, new: Reference) -> list[str]:
    parts = [
        f"{field} {getattr(old, field)!r} -> {getattr(new, field)!r}"
        for field in ("kind", "title", "issuer", "version", "url", "doi")
        if getattr(old, field) != getattr(new, field)
    ]
    before = {s.id: s.title for s in old.sections}
    after = {s.id: s.title for s in new.sections}
    parts += [f"section {s} added" for s in after if s not in before]
    parts += [f"section {s} removed" for s in before if s not in after]
    parts += [
        f"section {s} retitled {before[s]!r} -> {after[s]!r}"
        for s in after
        if s in before and before[s] != after[s]
    ]
    return parts


def _citing(checklist: Checklist, reference_id: str) -> list[str]:
    return [
        item.id
        for _, item in checklist.items()
        if any(isinstance(s, ReferenceSource) and s.reference == reference_id for s in item.sources)
    ]


def _declarations(old: Checklist, new: Checklist) -> list[Change]:
    """Checklist-level changes to the references and pauses, one change per id."""
    changes: list[Change] = []
    before = {r.id: r for r in old.references or ()}
    after = {r.id: r for r in new.references or ()}
    for ref_id, reference in before.items():
        if ref_id not in after:
            changes.append(Change("reference-removed", None, f"{ref_id}: {_reference_text(reference)}"))
    for ref_id, reference in after.items():
        if ref_id not in before:
            changes.append(Change("reference-added", None, f"{ref_id}: {_reference_text(reference)}"))
            continue
        revisions = _reference_revisions(before[ref_id], reference)
        if revisions:
            citing = _citing(new, ref_id)
            cited_by = f"; cited by {len(citing)} item(s): {', '.join(citing)}" if citing else ""
            changes.append(Change("reference-revised", None, f"{ref_id}: {'; '.join(revisions)}{cited_by}"))
    old_pauses: dict[str, Pause] = {p.id: p for p in old.pauses or ()}
    new_pauses: dict[str, Pause] = {p.id: p for p in new.pauses or ()}
    for pause_id, pause in old_pauses.items():
        if pause_id not in new_pauses:
            changes.append(Change("pause-removed", None, f"{pause_id}: {pause.title}"))
    for pause_id, pause in new_pauses.items():
        was = old_pauses.get(pause_id)
        if was is None:
            changes.append(Change("pause-added", None, f"{pause_id}: {pause.title} ({pause.moment})"))
        elif was != pause:
            parts = [
                f"{field} {getattr(was, field)!r} -> {getattr(pause, field)!r}"
                for field in ("title", "moment")
                if getattr(was, field) != getattr(pause, field)
            ]
            changes.append(Change("pause-revised", None, f"{pause_id}: {'; '.join(parts)}"))
    return changes


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
    changes.extend(_declarations(old, new))

    before = {item.id: (n, section, item) for n, (section, item) in enumerate(old.items())}
    after = {item.id: (n, section, item) for n, (section, item) in enumerate(new.items())}
    kept_old = [i for i in before if i in after]
    kept_new = [i for i in after if i in before]
    for item_id, (_, section, item) in before.items():
        if item_id not in after:
            changes.append(Change("removed", item_id, f"from {section.id}: {item.text}"))
    for item_id, (_, section, item) in after.items():
        if item_id not in before:
            pause = f" (pause {section.pause})" if section.pause else ""
            changes.append(Change("added", item_id, f"in {section.id}{pause}: {item.text}"))
            continue
        _, old_section, old_item = before[item_id]
        if old_item.text != item.text:
            changes.append(Change("reworded", item_id, f"{old_item.text!r} -> {item.text!r}"))
        if old_item.why != item.why:
            changes.append(Change("why-changed", item_id, f"{old_item.why!r} -> {item.why!r}"))
        if old_item.sources != item.sources:
            changes.append(Change("sources-changed", item_id, _sources_change(old_item, item)))
        if old_section.id != section.id:
            changes.append(Change("moved", item_id, f"section {old_section.id} -> {section.id}"))
        elif kept_old.index(item_id) != kept_new.index(item_id):
            changes.append(Change("moved", item_id, "order changed within " + section.id))
        if old_section.pause != section.pause:
            changes.append(
                Change(
                    "pause-changed",
                    item_id,
                    f"{old_section.pause or 'no pause'} -> {section.pause or 'no pause'}",
                )
            )
        was, now = _condition_text(old_section, old_item), _condition_text(section, item)
        if was != now:
            changes.append(Change("applicability-changed", item_id, f"{was} -> {now}"))
    return changes
