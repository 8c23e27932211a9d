"""The library example for the README runs as written, and ``import cdss`` stays cheap."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = """
from pathlib import Path

import cdss

catalog = cdss.Catalog.default([Path("tests/examples/valid")])
with cdss.open_store("records.sqlite3") as store:
    session = cdss.Session.start(
        store, "example-walk", catalog=catalog,
        subject="S-7F3K2", clinician="dr-lee", route="intravenous",
    )
    session.answer("setting-confirmed", "done")
    session.answer("infusion-monitoring-planned", "not-done", reason="deferred")
    session.complete()                     # refused while an applicable item is unanswered

    record = session.record()              # derived from the stored events, never stored
    print(record.status, [(item.id, item.status) for item in record.items])
"""

EXPECTED = "completed [('setting-confirmed', 'done'), ('infusion-monitoring-planned', 'not-done')]\n"
ROOT = Path(__file__).parent.parent


def test_the_readme_example_runs(tmp_path: Path) -> None:
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    done = subprocess.run(
        [sys.executable, "-c", EXAMPLE], cwd=tmp_path, capture_output=True, text=True, check=False
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
