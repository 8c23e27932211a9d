"""The library example for the README runs as written, and ``import cdss`` stays cheap."""

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


EXPECTED = "completed [('setting-confirmed', 'done'), ('infusion-monitoring-planned', 'not-done')]\n"


def test_the_readme_example_runs(tmp_path: Path) -> None:
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    done = subprocess.run(
        [sys.executable, "-c", readme_example()], cwd=tmp_path, capture_output=True, text=True, check=False
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
