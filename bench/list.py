"""`cdss list` is what a clinician types first and most often.

Prints its median wall time against `python -c "import typer"` measured in the
same run (goal: at most 1.5x). Run: .venv/bin/python bench/list.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL = 1.5


# A clinician's machine keeps compiled bytecode; without it every run would also
# compile cdss's own modules, which a source checkout has not cached yet.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    runs = parser.parse_args().runs
    listing_command = [str(Path(sys.executable).parent / "cdss"), "list"]
    baseline_command = [sys.executable, "-c", "import typer"]
    for _ in range(2):  # warm the file cache and bytecode
        seconds(listing_command)
    # Alternate the two, so a busy neighbour slows both alike; the ratio of medians is printed.
    pairs = [(seconds(baseline_command), seconds(listing_command)) for _ in range(runs)]
    base = statistics.median(b for b, _ in pairs)
    listing = statistics.median(c for _, c in pairs)
    ratio = listing / base
    print(f"python -c 'import typer': {base * 1000:7.1f} ms (median of {runs})")
    print(f"cdss list               : {listing * 1000:7.1f} ms (median of {runs})")
    print(
        f"ratio                   : {ratio:7.2f}x  (goal <= {GOAL}x: {'met' if ratio <= GOAL else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
