"""Report aggregates, computed by the store's own database engine (``Store.figures``).

A store of a million events is summarised by its database's JSON functions,
without building a Python object per event: SQLite's ``json_extract`` in the
embedded file, PostgreSQL's ``jsonb`` operators on the server. The two
dialects below answer the same named questions with the same rows (text sorts
byte-wise in both, ``COLLATE "C"``), so a report reads alike on either store.
``cdss.audit.report`` gives the tables their titles and columns.

A bundle is loaded into a temporary SQLite file with the same table and
reported like a store, counting only the sessions it was exported for.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

TOP_NOT_DONE = 20
Rows = dict[str, list[tuple[Any, ...]]]
"""Each named table's rows, in the order ``NAMES`` lists them."""

NAMES = (
    "status",
    "checklists",
    "items",
    "not_done",
    "open",
    "clinicians",
    "amendments",
    "signing",
    "signatures",
)

# --- SQLite ---------------------------------------------------------------------------

_SQLITE_SESSIONS = """
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
FROM events e NOT INDEXED -- the sessions come from the table itself, never from an index alone
WHERE e.type = 'session-started' {selected}
"""
_SQLITE_ANSWERS = """
CREATE TEMP TABLE a AS
SELECT s.checklist AS checklist, c.session AS session, c.item AS item, c.status AS status, c.reason AS reason
FROM (SELECT session, json_extract(event, '$.data.item') AS item,
             json_extract(event, '$.data.status') AS status,
             json_extract(event, '$.data.reason') AS reason, max(seq) AS seq
      FROM events WHERE type IN ('item-answered', 'item-amended') GROUP BY session, item) c
JOIN s ON s.session = c.session
"""
SQLITE: dict[str, str] = {
    "status": "SELECT status, count(*) FROM s GROUP BY status ORDER BY count(*) DESC, status",
    "checklists": """
        SELECT checklist, count(*), sum(status = 'completed'), sum(status = 'abandoned'),
               sum(status = 'open'), round(1.0 * sum(status = 'completed') / count(*), 3)
        FROM s GROUP BY checklist ORDER BY checklist""",
    "items": """
        SELECT checklist, item, count(*), sum(status = 'done'), sum(status = 'not-applicable'),
               sum(status = 'not-done'),
               round(1.0 * sum(status = 'done') / nullif(sum(status IN ('done', 'not-done')), 0), 3)
        FROM a GROUP BY checklist, item ORDER BY checklist, item""",
    "not_done": f"""
        SELECT checklist, item, reason, count(*) FROM a WHERE status = 'not-done'
        GROUP BY checklist, item, reason ORDER BY count(*) DESC, checklist, item, reason
        LIMIT {TOP_NOT_DONE}""",
    "open": """
        SELECT session, checklist, clinician, started_at FROM s
        WHERE status = 'open' AND started_at < :cutoff ORDER BY started_at""",
    "clinicians": """
        SELECT clinician, count(*), sum(status = 'completed'), sum(status = 'abandoned'),
               sum(status = 'open') FROM s GROUP BY clinician ORDER BY count(*) DESC, clinician""",
    "amendments": """
        SELECT s.checklist, json_extract(e.event, '$.data.item') AS item, count(*)
        FROM events e JOIN s ON s.session = e.session WHERE e.type = 'item-amended'
        GROUP BY s.checklist, item ORDER BY count(*) DESC, s.checklist, item""",
    # EXISTS probes the (type, session) index; a join on a DISTINCT subquery has none.
    "signing": """
        SELECT checklist, count(*), sum(signed), count(*) - sum(signed)
        FROM (SELECT s.checklist AS checklist,
                     EXISTS (SELECT 1 FROM events x
                             WHERE x.type = 'session-signed' AND x.session = s.session) AS signed
              FROM s WHERE s.status = 'completed')
        GROUP BY checklist ORDER BY checklist""",
    "signatures": """
        SELECT e.session, json_extract(e.event, '$.data.name'), json_extract(e.event, '$.at'),
               json_extract(e.event, '$.data.meaning')
        FROM events e JOIN s ON s.session = e.session WHERE e.type = 'session-signed' ORDER BY e.seq""",
}


def sqlite_figures(db: sqlite3.Connection, cutoff: str, *, selected: bool = False) -> Rows:
    """Every table from a connection holding an ``events`` table (and ``selected``, for a bundle).

    Works on a read-only connection: the working tables are TEMP, kept apart
    from the store file.
    """
    db.execute("DROP TABLE IF EXISTS temp.s")
    db.execute("DROP TABLE IF EXISTS temp.a")
    db.execute(
        _SQLITE_SESSIONS.format(
            selected="AND e.session IN (SELECT session FROM selected)" if selected else ""
        )
    )
    db.execute(_SQLITE_ANSWERS)
    return {
        name: [tuple(row) for row in db.execute(query, {"cutoff": cutoff} if ":cutoff" in query else {})]
        for name, query in SQLITE.items()
    }


def bundle_figures(
    rows: Iterable[tuple[int, str | None, str, str]], selected: Iterable[str], cutoff: str
) -> Rows:
    """A bundle's ``(seq, session, type, text)`` rows, reported on its selected sessions only."""
    with tempfile.TemporaryDirectory(prefix="cdss-report-") as folder:
        db = sqlite3.connect(Path(folder) / "bundle.sqlite3", isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, session TEXT, type TEXT, event TEXT)")
            db.execute("CREATE TABLE selected (session TEXT PRIMARY KEY)")
            db.execute("BEGIN")
            db.executemany("INSERT INTO selected VALUES (?)", ((s,) for s in sorted(selected)))
            db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows)
            db.execute("CREATE INDEX events_by_type ON events (type, session)")
            db.execute("CREATE INDEX events_by_session ON events (session, seq)")
            db.execute("COMMIT")
            return sqlite_figures(db, cutoff, selected=True)
        finally:
            db.close()


# --- PostgreSQL -----------------------------------------------------------------------

# CTEs, not temporary tables: an auditor's read-only transaction may create nothing.
_POSTGRES_WITH = """
WITH s AS MATERIALIZED (
    SELECT e.session AS session,
           (j #>> '{data,checklist,id}') || '@' || (j #>> '{data,checklist,version}') AS checklist,
           j #>> '{data,clinician}' AS clinician,
           j ->> 'at' AS started_at,
           coalesce((SELECT CASE x.type WHEN 'session-completed' THEN 'completed' ELSE 'abandoned' END
                     FROM cdss.events x
                     WHERE x.type IN ('session-completed', 'session-abandoned') AND x.session = e.session
                     ORDER BY x.seq LIMIT 1), 'open') AS status
    FROM cdss.events e CROSS JOIN LATERAL (SELECT e.event::jsonb AS j) parsed
    WHERE e.type = 'session-started'
){answers}
"""
_POSTGRES_ANSWERS = """,
a AS MATERIALIZED (
    SELECT s.checklist, c.session, c.item, c.status, c.reason
    FROM (SELECT DISTINCT ON (session, j #>> '{data,item}')
                 session, j #>> '{data,item}' AS item, j #>> '{data,status}' AS status,
                 j #>> '{data,reason}' AS reason
          FROM cdss.events CROSS JOIN LATERAL (SELECT event::jsonb AS j) parsed
          WHERE type IN ('item-answered', 'item-amended')
          ORDER BY session, j #>> '{data,item}', seq DESC) c
    JOIN s ON s.session = c.session
)"""
_C = 'COLLATE "C"'


def _count(condition: str) -> str:
    return f"count(*) FILTER (WHERE {condition})"


POSTGRES: dict[str, str] = {
    "status": f"SELECT status, count(*) FROM s GROUP BY status ORDER BY count(*) DESC, status {_C}",
    "checklists": f"""
        SELECT checklist, count(*), {_count("status = 'completed'")}, {_count("status = 'abandoned'")},
               {_count("status = 'open'")}, round({_count("status = 'completed'")}::numeric / count(*), 3)
        FROM s GROUP BY checklist ORDER BY checklist {_C}""",
    "items": f"""
        SELECT checklist, item, count(*), {_count("status = 'done'")}, {_count("status = 'not-applicable'")},
               {_count("status = 'not-done'")},
               round({_count("status = 'done'")}::numeric
                     / nullif({_count("status IN ('done', 'not-done')")}, 0), 3)
        FROM a GROUP BY checklist, item ORDER BY checklist {_C}, item {_C}""",
    "not_done": f"""
        SELECT checklist, item, reason, count(*) FROM a WHERE status = 'not-done'
        GROUP BY checklist, item, reason
        ORDER BY count(*) DESC, checklist {_C}, item {_C}, reason {_C} NULLS FIRST
        LIMIT {TOP_NOT_DONE}""",
    "open": f"""
        SELECT session, checklist, clinician, started_at FROM s
        WHERE status = 'open' AND started_at < %(cutoff)s ORDER BY started_at {_C}""",
    "clinicians": f"""
        SELECT clinician, count(*), {_count("status = 'completed'")}, {_count("status = 'abandoned'")},
               {_count("status = 'open'")}
        FROM s GROUP BY clinician ORDER BY count(*) DESC, clinician {_C}""",
    "amendments": f"""
        SELECT checklist, item, amendments FROM (
            SELECT s.checklist AS checklist, e.event::jsonb #>> '{{data,item}}' AS item,
                   count(*) AS amendments
            FROM cdss.events e JOIN s ON s.session = e.session WHERE e.type = 'item-amended'
            GROUP BY 1, 2) t
        ORDER BY amendments DESC, checklist {_C}, item {_C}""",
    "signing": f"""
        SELECT checklist, count(*), sum(signed), count(*) - sum(signed)
        FROM (SELECT s.checklist AS checklist,
                     EXISTS (SELECT 1 FROM cdss.events x
                             WHERE x.type = 'session-signed' AND x.session = s.session)::int AS signed
              FROM s WHERE s.status = 'completed') t
        GROUP BY checklist ORDER BY checklist {_C}""",
    "signatures": """
        SELECT e.session, j #>> '{data,name}', j ->> 'at', j #>> '{data,meaning}'
        FROM cdss.events e JOIN s ON s.session = e.session
             CROSS JOIN LATERAL (SELECT e.event::jsonb AS j) parsed
        WHERE e.type = 'session-signed' ORDER BY e.seq""",
}
_USES_ANSWERS = frozenset({"items", "not_done"})


def postgres_queries() -> dict[str, str]:
    """Each table's whole statement: the sessions CTE (and the answers CTE where needed) and its query."""
    return {
        name: _POSTGRES_WITH.replace("{answers}", _POSTGRES_ANSWERS if name in _USES_ANSWERS else "") + query
        for name, query in POSTGRES.items()
    }


def plain(row: Iterable[Any]) -> tuple[Any, ...]:
    """A row as SQLite gives it: PostgreSQL's exact numerics become floats, as SQLite's ``round`` gives."""
    return tuple(float(value) if isinstance(value, Decimal) else value for value in row)
