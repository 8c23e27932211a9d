"""`cdss audit report` on a large store, against hand-written SQL for the same figures.

The baseline is one Python process that opens the same file and runs plain
aggregate queries for each figure (sessions by status, per checklist, per item,
not-done reasons, old open sessions, per clinician, amendments, signatures),
printing nothing. Both run as child processes in the same run. Goal: at most 3x.

Uses the store ``bench/verify.py`` generates and caches (same ``--events``).
Run: ``.venv/bin/python bench/report.py [--events N]`` (default 1,000,000).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from verify import cached_store, timed  # type: ignore[import-not-found]  # run as a script beside it

BASELINE = """
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
def q(sql):
    return db.execute(sql).fetchall()
ended = '''(SELECT session, min(seq) AS seq, type FROM events
            WHERE type IN ('session-completed', 'session-abandoned') GROUP BY session)'''
starts = f'''SELECT e.session AS session, json_extract(e.event, '$.data.checklist.id') AS checklist,
                    json_extract(e.event, '$.data.clinician') AS clinician,
                    json_extract(e.event, '$.at') AS at,
                    coalesce(x.type, 'open') AS status
             FROM events e LEFT JOIN {ended} x ON x.session = e.session WHERE e.type = 'session-started' '''
q(f"SELECT status, count(*) FROM ({starts}) GROUP BY status")
q(f"SELECT checklist, count(*), sum(status = 'session-completed') FROM ({starts}) GROUP BY checklist")
q(f"SELECT clinician, count(*), sum(status = 'open') FROM ({starts}) GROUP BY clinician")
q(f"SELECT session, at FROM ({starts}) WHERE status = 'open' AND at < '2099-01-01'")
current = '''SELECT session, json_extract(event, '$.data.item') AS item,
                    json_extract(event, '$.data.status') AS status,
                    json_extract(event, '$.data.reason') AS reason, max(seq)
             FROM events WHERE type IN ('item-answered', 'item-amended') GROUP BY session, item'''
q(f"SELECT item, status, count(*) FROM ({current}) GROUP BY item, status")
q(f"SELECT item, reason, count(*) FROM ({current}) WHERE status = 'not-done' GROUP BY item, reason "
  "ORDER BY count(*) DESC LIMIT 20")
q("SELECT json_extract(event, '$.data.item'), count(*) FROM events WHERE type = 'item-amended' GROUP BY 1")
q("SELECT count(DISTINCT session) FROM events WHERE type = 'session-signed'")
q("SELECT session, json_extract(event, '$.data.name'), json_extract(event, '$.at'), "
  "json_extract(event, '$.data.meaning') FROM events WHERE type = 'session-signed'")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    store = cached_store(args.events)
    cdss = str(Path(sys.executable).parent / "cdss")
    baseline_seconds, _, base = timed([sys.executable, "-c", BASELINE, str(store)])
    if base.returncode != 0:
        raise SystemExit(base.stderr)
    report_seconds, _, done = timed([cdss, "audit", "report", "--store", str(store)])
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    print(f"hand-written SQL aggregates: {baseline_seconds:7.2f} s")
    print(f"cdss audit report:           {report_seconds:7.2f} s")
    print(f"ratio: {report_seconds / baseline_seconds:.2f}x (goal: at most 3x)")


if __name__ == "__main__":
    main()
