"""The PostgreSQL store against raw psycopg on the same throw-away server, in the same run.

Three figures (no timing assertions anywhere; read the ratios):

1. One durable answer (``Session.answer``: lock, head, check, seal, insert,
   COMMIT) against a bare psycopg INSERT + COMMIT of a row of the same size into
   a plain table, alternating in ``--blocks`` blocks. Goal: at most 2x.
2. Ten concurrent writers, each answering its own session: answers per second,
   printed beside the single writer's figure.
3. ``cdss audit verify`` on ``--events`` events (default 1,000,000) in
   PostgreSQL, against one process reading the same rows from the same server
   (a server-side cursor), parsing each event's JSON and hashing it. Goal: at
   most 3x. The events are those ``bench/verify.py`` generates (cached),
   copied in with ``cdss store copy``.

The server is private (``tests/postgres_server.py``): initdb + pg_ctl on a
Unix socket in a temporary folder, removed at the end.

Run: ``.venv/bin/python bench/postgres.py [--answers N] [--blocks N] [--events N] [--skip-verify]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from answer import ROW, alternating, long_checklist  # type: ignore[import-not-found]  # noqa: E402

from tests.postgres_server import running_server  # noqa: E402

WRITERS = 10
SUBJECT = "S-7F3K2M9Q1"


def answer_all(url: str, folder: Path, clinician: str = "dr-lee") -> tuple[float, float, int]:
    """Start a session and answer every item durably; (start, end, answers) of the answering loop."""
    from cdss.catalog import Catalog
    from cdss.session import Session
    from cdss.store.postgres import PostgresStore

    catalog = Catalog([folder])
    with PostgresStore(url) as store:
        session = Session.start(store, "bench-walk", subject=SUBJECT, clinician=clinician, catalog=catalog)
        began = time.time()
        for planned in session.planned:
            session.answer(planned.item.id, "done")
        return began, time.time(), len(session.planned)


def single_writer(raw_url: str, url: str, folder: Path, blocks: int) -> tuple[float, float, float]:
    """Seconds per bare INSERT + COMMIT and per cdss answer, and the median of the blocks' ratios.

    The bare row is the size of a stored answer, with the same durability.
    """
    import psycopg

    from cdss.catalog import Catalog
    from cdss.session import Session
    from cdss.store.postgres import PostgresStore

    with psycopg.connect(raw_url) as db, PostgresStore(url) as store:
        db.execute("SET synchronous_commit TO on")
        db.execute(
            "CREATE TABLE raw_events "
            "(seq bigint PRIMARY KEY, session text, type text, hash text UNIQUE, event text)"
        )
        db.commit()

        def bare(n: int) -> None:
            db.execute(
                "INSERT INTO raw_events VALUES (%s, %s, %s, %s, %s)",
                (n, "s" * 32, "item-answered", f"{n:064x}", ROW),
            )
            db.commit()

        session = Session.start(
            store, "bench-walk", subject=SUBJECT, clinician="dr-lee", catalog=Catalog([folder])
        )
        planned = session.planned
        figures: tuple[float, float, float] = alternating(
            blocks, len(planned) // blocks, bare, lambda n: session.answer(planned[n].item.id, "done")
        )
        return figures


WRITER = """
import json, sys
sys.path[:0] = [sys.argv[4], sys.argv[4] + "/bench"]
from postgres import answer_all
from pathlib import Path
print(json.dumps(answer_all(sys.argv[1], Path(sys.argv[2]), sys.argv[3])))
"""


def concurrent(url: str, folder: Path) -> float:
    """Answers per second with ``WRITERS`` processes answering at once, each its own session."""
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(folder), f"dr-{n}", str(ROOT)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(WRITERS)
    ]
    spans = []
    for writer in writers:
        out, _ = writer.communicate()
        if writer.returncode != 0:
            raise SystemExit("a concurrent writer failed")
        spans.append(json.loads(out))
    began, ended = min(s[0] for s in spans), max(s[1] for s in spans)
    return float(sum(s[2] for s in spans) / (ended - began))


BASELINE = """
import hashlib, json, sys, psycopg
count = 0
with psycopg.connect(sys.argv[1]) as db, db.cursor(name="all") as cursor:
    cursor.itersize = 5000
    cursor.execute("SELECT event FROM cdss.events ORDER BY seq")
    for (text,) in cursor:
        json.loads(text)
        hashlib.sha256(text.encode()).hexdigest()
        count += 1
print(count)
"""


def verify_ratio(server: object, events: int, rounds: int) -> None:
    from verify import cached_store  # type: ignore[import-not-found]

    store = cached_store(events)
    folder = store.parent
    url = server.new_database()  # type: ignore[attr-defined]
    cdss = str(Path(sys.executable).parent / "cdss")
    began = time.perf_counter()
    copied = subprocess.run([cdss, "store", "copy", str(store), url], capture_output=True, text=True)
    if copied.returncode != 0:
        raise SystemExit(f"copy failed: {copied.stderr}")
    print(f"{copied.stdout.strip()} ({time.perf_counter() - began:.1f} s)")
    command = [cdss, "audit", "verify", "--store", url, "--checklists", str(folder / "checklists")]
    baseline_runs, verify_runs = [], []
    for _ in range(rounds):
        began = time.perf_counter()
        base = subprocess.run([sys.executable, "-c", BASELINE, url], capture_output=True, text=True)
        baseline_runs.append(time.perf_counter() - began)
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        verify_runs.append(time.perf_counter() - began)
        if done.returncode != 0:
            print(done.stdout[-2000:], done.stderr[-2000:])
            raise SystemExit("verify failed on the copied store")
    counted = int(base.stdout.strip())
    baseline, verified = statistics.median(baseline_runs), statistics.median(verify_runs)
    print(f"baseline (read + json.loads + sha256): {baseline:7.2f} s for {counted} events")
    print(f"cdss audit verify --store postgresql:  {verified:7.2f} s")
    print(f"ratio: {verified / baseline:.2f}x (median of {rounds}; goal: at most 3x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--answers", type=int, default=400, help="answers per writer")
    parser.add_argument("--events", type=int, default=1_000_000, help="events for the verify figure")
    parser.add_argument(
        "--blocks", type=int, default=20, help="alternating blocks of answers and bare inserts"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating verify and baseline runs")
    parser.add_argument("--skip-verify", action="store_true", help="only the answer figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary, running_server() as server:
        os.environ.setdefault("XDG_STATE_HOME", temporary)
        folder = Path(temporary) / "checklists"
        long_checklist(folder, args.answers)
        url = server.new_database()
        from cdss.store.postgres import PostgresStore

        PostgresStore(url, create=True).close()
        raw, single, ratio = single_writer(server.new_database(), url, folder, args.blocks)
        print(f"bare psycopg INSERT + COMMIT:  {raw * 1e6:8.0f} µs per row (median of {args.blocks} blocks)")
        print(f"cdss Session.answer:           {single * 1e6:8.0f} µs per answer")
        print(f"ratio: {ratio:.2f}x (median of the blocks' ratios; goal: at most 2x)")
        rate = concurrent(url, folder)
        print(f"one writer:   {1 / single:8.0f} answers/s")
        print(f"{WRITERS} writers:   {rate:8.0f} answers/s (all at once, one chain)")
        if not args.skip_verify:
            verify_ratio(server, args.events, args.rounds)


if __name__ == "__main__":
    main()
