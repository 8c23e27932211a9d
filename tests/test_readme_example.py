"""The library example for the README runs as written — a whole esketamine session on the
shipped treatment-session 2.0.0 — and ``import cdss`` stays cheap."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def readme_example() -> str:
    """The README's one Python block, exactly as a reader copies it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1, "the README should have exactly one Python example"
    return str(blocks[0])


# Every applicable item of treatment-session 2.0.0 for the nasal spray, with no population
# declared: 9 before the dose, 6 at the observation check, 9 at sign-out.
EXPECTED = "completed 24 [('esketamine-monitoring-form', 'not-done')]\n"


def test_the_readme_example_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CDSS_CHECKLISTS"}
    done = subprocess.run(
        [sys.executable, "-c", readme_example()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == EXPECTED
    assert (tmp_path / "records.sqlite3").is_file()


def test_import_cdss_loads_nothing_heavy() -> None:
    probe = "import sys, cdss; print(sorted(m for m in ('pydantic', 'sqlite3', 'rich') if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=dict(os.environ)
    )
    assert done.stdout.strip() == "[]"


def test_every_public_name_resolves() -> None:
    import cdss

    for name in cdss.__all__:
        assert getattr(cdss, name) is not None
