"""Shared fixtures: every test runs with its own home, config, data and store folders,
so no test can read or change a real user's records."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "tests" / "examples"


def find_seeds() -> Path:
    """The source documents live in the steering repo's shared/ folder, beside the clone."""
    for parent in REPO.parents:
        candidate = parent / "shared" / "seeds"
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"shared/seeds/ not found above {REPO}; clone cdss beside shared/")


SEEDS = find_seeds()


def cdss_command() -> str:
    """The installed console script, as a user runs it."""
    beside_python = Path(sys.executable).parent / "cdss"
    found = str(beside_python) if beside_python.exists() else shutil.which("cdss")
    assert found, "the cdss command is not installed; run the README's test command"
    return found


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for name, sub in (
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CACHE_HOME", ".cache"),
    ):
        monkeypatch.setenv(name, str(home / sub))
    monkeypatch.delenv("CDSS_STORE", raising=False)
    monkeypatch.delenv("CDSS_CHECKLISTS", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    yield home
