"""Report figures: what was completed, skipped, left open, amended and signed.

Figures are SQL aggregates, so a store of a million events is summarised by
SQLite's own JSON functions without building a Python object per event. A
bundle is first loaded into a temporary SQLite file with the same table, and
its figures count only the sessions it was exported for (the other events in
its range are there for the chain). A report is not a verification: it reads
what is recorded; ``cdss audit verify`` says whether that can be trusted.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

OPEN_AFTER = timedelta(days=1)
TOP_NOT_DONE = 20


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


_SESSIONS = """
CREATE TEMP TABLE s AS
SELECT e.session AS session,
       json_extract(e.event, '$.data.checklist.id') || '@'
           || json_extract(e.event, '$.data.checklist.version') AS checklist,
       json_extract(e.event, '$.data.clinician') AS clinician,
       json_extract(e.event, '$.at') AS started_at,
       coalesce((SELECT CASE x.type WHEN 'session-completed' THEN 'completed' ELSE 'abandoned' END
                 FROM events x
                 WHERE x.type IN ('session-completed', 'session-abandoned') AND x.session = e.session
                 ORDER BY x.seq LIMIT 1), 'open') AS status
FROM events e
WHERE e.type = 'session-started' {selected}
"""
_ANSWERS = """
CREATE TEMP TABLE a AS
SELECT s.checklist AS checklist, c.session AS session, c.item AS item, c.status AS status, c.reason AS reason
FROM (SELECT session, json_extract(event, '$.data.item') AS item,
             json_extract(event, '$.data.status') AS status,
             json_extract(event, '$.data.reason') AS reason, max(seq) AS seq
      FROM events WHERE type IN ('item-answered', 'item-amended') GROUP BY session, item) c
JOIN s ON s.session = c.session
"""
QUERIES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "status": (
        "Sessions by status",
        ("status", "sessions"),
        "SELECT status, count(*) FROM s GROUP BY status ORDER BY count(*) DESC, status",
    ),
    "checklists": (
        "Completion by checklist",
        ("checklist", "sessions", "completed", "abandoned", "open", "completion rate"),
        """SELECT checklist, count(*), sum(status = 'completed'), sum(status = 'abandoned'),
                  sum(status = 'open'), round(1.0 * sum(status = 'completed') / count(*), 3)
           FROM s GROUP BY checklist ORDER BY checklist""",
    ),
    "items": (
        "Items (current answers)",
        ("checklist", "item", "answered", "done", "not applicable", "not done", "done rate"),
        """SELECT checklist, item, count(*), sum(status = 'done'), sum(status = 'not-applicable'),
                  sum(status = 'not-done'),
                  round(1.0 * sum(status = 'done') / nullif(sum(status IN ('done', 'not-done')), 0), 3)
           FROM a GROUP BY checklist, item ORDER BY checklist, item""",
    ),
    "not_done": (
        "Items most often not done, with their reasons",
        ("checklist", "item", "reason", "times"),
        f"""SELECT checklist, item, reason, count(*) FROM a WHERE status = 'not-done'
            GROUP BY checklist, item, reason ORDER BY count(*) DESC, checklist, item, reason
            LIMIT {TOP_NOT_DONE}""",
    ),
    "open": (
        "Open sessions older than a day",
        ("session", "checklist", "clinician", "started at"),
        "SELECT session, checklist, clinician, started_at FROM s "
        "WHERE status = 'open' AND started_at < :cutoff ORDER BY started_at",
    ),
    "clinicians": (
        "Sessions per clinician",
        ("clinician", "sessions", "completed", "abandoned", "open"),
        """SELECT clinician, count(*), sum(status = 'completed'), sum(status = 'abandoned'),
                  sum(status = 'open') FROM s GROUP BY clinician ORDER BY count(*) DESC, clinician""",
    ),
    "amendments": (
        "Amendments",
        ("checklist", "item", "amendments"),
        """SELECT s.checklist, json_extract(e.event, '$.data.item') AS item, count(*)
           FROM events e JOIN s ON s.session = e.session WHERE e.type = 'item-amended'
           GROUP BY s.checklist, item ORDER BY count(*) DESC, s.checklist, item""",
    ),
    "signing": (
        "Signatures on completed sessions",
        ("checklist", "completed", "signed", "unsigned"),
        # EXISTS probes the (type, session) index; a join on a DISTINCT subquery has none.
        """SELECT checklist, count(*), sum(signed), count(*) - sum(signed)
           FROM (SELECT s.checklist AS checklist,
                        EXISTS (SELECT 1 FROM events x
                                WHERE x.type = 'session-signed' AND x.session = s.session) AS signed
                 FROM s WHERE s.status = 'completed')
           GROUP BY checklist ORDER BY checklist""",
    ),
    "signatures": (
        "Signatures (printed name, time, meaning)",
        ("session", "name", "signed at", "meaning"),
        """SELECT e.session, json_extract(e.event, '$.data.name'), json_extract(e.event, '$.at'),
                  json_extract(e.event, '$.data.meaning')
           FROM events e JOIN s ON s.session = e.session WHERE e.type = 'session-signed' ORDER BY e.seq""",
    ),
}


def figures(
    db: sqlite3.Connection, source: str, *, selected: bool = False, at: datetime | None = None
) -> Figures:
    """Every figure from a connection holding an ``events`` table (and ``selected`` when a bundle)."""
    moment = at or datetime.now(UTC)
    cutoff = (moment - OPEN_AFTER).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    db.execute(
        _SESSIONS.format(selected="AND e.session IN (SELECT session FROM selected)" if selected else "")
    )
    db.execute(_ANSWERS)
    result = Figures(source, moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
    for name, (title, columns, query) in QUERIES.items():
        rows = [tuple(row) for row in db.execute(query, {"cutoff": cutoff} if ":cutoff" in query else {})]
        result.add(name, title, columns, rows)
    return result


@contextmanager
def store_connection(path: Path) -> Iterator[sqlite3.Connection]:
    from cdss.store.sqlite import open_read_only

    db = open_read_only(path)
    try:
        yield db
    finally:
        db.close()


@contextmanager
def bundle_connection(path: Path) -> Iterator[sqlite3.Connection]:
    """The bundle's events in a temporary SQLite file, and its selected sessions."""
    from cdss.audit.bundle import BundleSource

    source = BundleSource(path)
    with tempfile.TemporaryDirectory(prefix="cdss-report-") as folder:
        db = sqlite3.connect(Path(folder) / "bundle.sqlite3", isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, session TEXT, type TEXT, event TEXT)")
            db.execute("CREATE TABLE selected (session TEXT PRIMARY KEY)")
            db.execute("BEGIN")
            db.executemany("INSERT INTO selected VALUES (?)", ((s,) for s in sorted(source.selected or ())))
            db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", _bundle_rows(source))
            db.execute("CREATE INDEX events_by_type ON events (type, session)")
            db.execute("CREATE INDEX events_by_session ON events (session, seq)")
            db.execute("COMMIT")
            yield db
        finally:
            db.close()
            source.close()


def _bundle_rows(source: Any) -> Iterator[tuple[Any, ...]]:
    from cdss.errors import IntegrityError

    for number, text, _ in source.rows():
        try:
            event = json.loads(text)
            yield event["seq"], event["session"], event["type"], text
        except (TypeError, ValueError, KeyError):
            raise IntegrityError(
                f"line {number} of the bundle's events is not an event; run `cdss audit verify`"
            ) from None


def report(store: Path | None = None, bundle: Path | None = None) -> Figures:
    """Figures for a store file or a bundle (exactly one)."""
    if bundle is not None:
        with bundle_connection(bundle) as db:
            return figures(db, f"bundle {bundle} (its selected sessions)", selected=True)
    assert store is not None
    with store_connection(store) as db:
        return figures(db, f"store {store}")
