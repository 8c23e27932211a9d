"""The README's benchmark commands still run: a benchmark that crashes measures nothing.

Run on a small generated store in a private cache folder; no timing is asserted,
only that each prints its ratio and exits 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "bench"


@pytest.mark.parametrize(
    "script",
    [
        ["verify.py", "--events", "600", "--rounds", "1"],
        ["report.py", "--events", "600"],
        ["answer.py", "40", "2"],
    ],
)
def test_the_store_benchmarks_run_and_print_their_ratio(script: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(BENCH / script[0]), *script[1:]], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ratio:" in done.stdout


def test_the_postgresql_benchmark_runs_and_prints_its_ratios(tmp_path: Path) -> None:
    """On its own private server, as the README runs it, with a few answers and a tiny verify store."""
    from tests.postgres_server import require

    require()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    small = ["--answers", "20", "--blocks", "2", "--events", "600", "--rounds", "1"]
    done = subprocess.run(
        [sys.executable, str(BENCH / "postgres.py"), *small], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("ratio:") == 2, done.stdout
    assert "10 writers:" in done.stdout
