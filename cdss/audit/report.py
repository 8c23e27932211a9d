"""Report figures: what was completed, skipped, left open, amended and signed.

Figures are aggregates the store computes with its own database engine
(``Store.figures``, in ``cdss.store.figures``): a store of a million events is
summarised without building a Python object per event, on the server when the
store is PostgreSQL. A bundle is loaded into a temporary SQLite file and its
figures count only the sessions it was exported for (the other events in its
range are there for the chain). A report is not a verification: it reads
what is recorded; ``cdss audit verify`` says whether that can be trusted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

OPEN_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Table:
    """One table of a report; ``name`` is its CSV file name."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


@dataclass
class Figures:
    source: str
    generated_at: str
    tables: dict[str, Table] = field(default_factory=dict)

    def add(self, name: str, title: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        self.tables[name] = Table(name, title, columns, rows)


TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "status": ("Sessions by status", ("status", "sessions")),
    "checklists": (
        "Completion by checklist",
        ("checklist", "sessions", "completed", "abandoned", "open", "completion rate"),
    ),
    "items": (
        "Items (current answers)",
        ("checklist", "item", "answered", "done", "not applicable", "not done", "done rate"),
    ),
    "not_done": ("Items most often not done, with their reasons", ("checklist", "item", "reason", "times")),
    "open": ("Open sessions older than a day", ("session", "checklist", "clinician", "started at")),
    "clinicians": ("Sessions per clinician", ("clinician", "sessions", "completed", "abandoned", "open")),
    "amendments": ("Amendments", ("checklist", "item", "amendments")),
    "signing": ("Signatures on completed sessions", ("checklist", "completed", "signed", "unsigned")),
    "signatures": ("Signatures (printed name, time, meaning)", ("session", "name", "signed at", "meaning")),
}
"""Each table's title and columns; the store computes the rows (``Store.figures``)."""


def report(
    store: str | Path | None = None, bundle: Path | None = None, *, at: datetime | None = None
) -> Figures:
    """Figures for a store (path or URL) or a bundle (exactly one), as of ``at`` (default: now)."""
    moment = at or datetime.now(UTC)
    cutoff = (moment - OPEN_AFTER).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if bundle is not None:
        source = f"bundle {bundle} (its selected sessions)"
        rows = _bundle_figures(bundle, cutoff)
    else:
        from cdss.store.location import describe, open_store

        source = f"store {describe(store)}"
        with open_store(store, read_only=True) as opened:
            rows = opened.figures(cutoff)
    result = Figures(source, moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
    for name, (title, columns) in TABLES.items():
        result.add(name, title, columns, rows[name])
    return result


def _bundle_figures(path: Path, cutoff: str) -> dict[str, list[tuple[Any, ...]]]:
    from cdss.audit.bundle import BundleSource
    from cdss.store.figures import bundle_figures

    source = BundleSource(path)
    try:
        return bundle_figures(_bundle_rows(source), source.selected or (), cutoff)
    finally:
        source.close()


def _bundle_rows(source: Any) -> Iterator[tuple[Any, ...]]:
    from cdss.errors import IntegrityError, InvalidInput
    from cdss.jsonfile import loads_bounded

    for number, text, _ in source.rows():
        try:
            event = loads_bounded(text, f"line {number} of the bundle's events")
            yield event["seq"], event.get("session"), event["type"], text  # store events have none
        except (TypeError, ValueError, KeyError, InvalidInput):
            raise IntegrityError(
                f"line {number} of the bundle's events is not an event; run `cdss audit verify`"
            ) from None
