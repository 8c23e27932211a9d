"""`cdss list` is what a clinician types first and most often.

Prints its median wall time against `python -c "import typer"` measured in the
same run (goal: at most 1.5x). Run: .venv/bin/python bench/list.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL = 1.5


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    cdss = str(Path(sys.executable).parent / "cdss")
    baseline = [sys.executable, "-c", "import typer"]
    median_seconds([cdss, "list"], 2)  # warm the file cache and bytecode
    base = median_seconds(baseline, runs)
    listing = median_seconds([cdss, "list"], runs)
    ratio = listing / base
    print(f"python -c 'import typer': {base * 1000:7.1f} ms (median of {runs})")
    print(f"cdss list               : {listing * 1000:7.1f} ms (median of {runs})")
    print(
        f"ratio                   : {ratio:7.2f}x  (goal <= {GOAL}x: {'met' if ratio <= GOAL else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
