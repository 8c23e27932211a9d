"""Recording one answer durably, against a bare SQLite INSERT + COMMIT with the same pragmas.

Both sides write to the same disk in the same run, so the ratio says what cdss
itself adds (validation, sealing, the hash chain) on top of the unavoidable
fsync. Goal: at most 2x. Run: ``.venv/bin/python bench/answer.py [ANSWERS]``.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from cdss.catalog import Catalog
from cdss.session import Session
from cdss.store.sqlite import open_store

EXAMPLE = Path(__file__).parent.parent / "tests" / "examples" / "valid" / "example-walk" / "1.0.0.json"


def long_checklist(folder: Path, items: int) -> Catalog:
    """The example checklist with ``items`` items, so one session can take every answer."""
    document = json.loads(EXAMPLE.read_text())
    template = document["sections"][0]["items"][0]
    document["context"] = {"routes": [], "populations": []}
    document["sections"] = [
        {
            "id": "bench",
            "title": "Benchmark",
            "items": [{**template, "id": f"item-{n}"} for n in range(items)],
        }
    ]
    (folder / "bench-walk").mkdir()
    (folder / "bench-walk" / "1.0.0.json").write_text(json.dumps({**document, "id": "bench-walk"}))
    return Catalog([folder])


def time_cdss(folder: Path, items: int) -> float:
    catalog = long_checklist(folder, items)
    with open_store(folder / "cdss.sqlite3") as store:
        session = Session.start(
            store, "bench-walk", subject="S-111111117", clinician="dr-lee", catalog=catalog
        )
        began = time.perf_counter()
        for planned in session.planned:
            session.answer(planned.item.id, "done")
        return (time.perf_counter() - began) / items


def time_sqlite(folder: Path, items: int) -> float:
    db = sqlite3.connect(folder / "raw.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, session TEXT, type TEXT, hash TEXT UNIQUE, event TEXT)"
    )
    row = "x" * 330  # about the size of a stored item-answered event
    began = time.perf_counter()
    for n in range(1, items + 1):
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?)", (n, "s" * 32, "item-answered", f"{n:064x}", row)
        )
        db.execute("COMMIT")
    elapsed = (time.perf_counter() - began) / items
    db.close()
    return elapsed


def main() -> None:
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as temporary:
        folder = Path(temporary)
        raw = time_sqlite(folder, items)
        cdss = time_cdss(folder, items)
    print(f"bare sqlite INSERT + COMMIT: {raw * 1e6:8.0f} µs per row")
    print(f"cdss Session.answer:         {cdss * 1e6:8.0f} µs per answer")
    print(f"ratio: {cdss / raw:.2f}x (goal: at most 2x)")


if __name__ == "__main__":
    main()
