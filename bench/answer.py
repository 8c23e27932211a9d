"""Recording one answer durably, against a bare SQLite INSERT + COMMIT with the same pragmas.

Both sides write to the same disk in the same run, alternating in blocks, so
the ratio says what cdss itself adds (validation, sealing, the hash chain) on
top of the unavoidable fsync. Goal: at most 2x.
Run: ``.venv/bin/python bench/answer.py [ANSWERS] [BLOCKS]``.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cdss.catalog import Catalog
from cdss.session import Session
from cdss.store.sqlite import open_store

EXAMPLE = Path(__file__).parent.parent / "tests" / "examples" / "valid" / "example-walk" / "1.0.0.json"
ROW = "x" * 330
"""About the size of a stored item-answered event."""


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
    (folder / "bench-walk").mkdir(parents=True, exist_ok=True)
    (folder / "bench-walk" / "1.0.0.json").write_text(json.dumps({**document, "id": "bench-walk"}))
    return Catalog([folder])


def alternating(
    blocks: int, size: int, bare: Callable[[int], object], cdss: Callable[[int], object]
) -> tuple[float, float, float]:
    """Seconds per bare write and per cdss answer, and the median of the blocks' ratios.

    The two alternate in ``blocks`` blocks of ``size``, so a slow spell of the
    disk (fsync dominates both) falls on both sides rather than on one. Each
    callable does its ``n``-th write, counting from 0.
    """
    bare_spans, cdss_spans = [], []
    for block in range(blocks):
        numbers = range(block * size, (block + 1) * size)
        began = time.perf_counter()
        for n in numbers:
            bare(n)
        bare_spans.append((time.perf_counter() - began) / size)
        began = time.perf_counter()
        for n in numbers:
            cdss(n)
        cdss_spans.append((time.perf_counter() - began) / size)
    ratios = [c / b for c, b in zip(cdss_spans, bare_spans, strict=True)]
    return statistics.median(bare_spans), statistics.median(cdss_spans), statistics.median(ratios)


def main() -> None:
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    blocks = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as temporary:
        folder = Path(temporary)
        catalog = long_checklist(folder / "checklists", items)
        db = sqlite3.connect(folder / "raw.sqlite3", isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute(
            "CREATE TABLE events "
            "(seq INTEGER PRIMARY KEY, session TEXT, type TEXT, hash TEXT UNIQUE, event TEXT)"
        )

        def bare(n: int) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?)", (n, "s" * 32, "item-answered", f"{n:064x}", ROW)
            )
            db.execute("COMMIT")

        with open_store(folder / "cdss.sqlite3") as store:
            session = Session.start(
                store, "bench-walk", subject="S-111111117", clinician="dr-lee", catalog=catalog
            )
            planned = session.planned
            raw, cdss, ratio = alternating(
                blocks, items // blocks, bare, lambda n: session.answer(planned[n].item.id, "done")
            )
        db.close()
    print(f"bare sqlite INSERT + COMMIT: {raw * 1e6:8.0f} µs per row (median of {blocks} blocks)")
    print(f"cdss Session.answer:         {cdss * 1e6:8.0f} µs per answer")
    print(f"ratio: {ratio:.2f}x (median of the blocks' ratios; goal: at most 2x)")


if __name__ == "__main__":
    main()
