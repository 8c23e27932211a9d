"""Shared fixtures: every test runs with its own home, config, data and store,
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


# Debian's chromium, headless, for the HTML report and LHC-Forms tests (no browser download).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is not installed; .ci/test installs it"
    return found


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("CDSS_STORE", str(tmp_path / "records.sqlite3"))
    monkeypatch.delenv("CDSS_CHECKLISTS", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return home


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "records.sqlite3"


def new_store(path: Path) -> Path:
    """An empty store at ``path``, as ``cdss store init PATH`` makes one.

    Only ``cdss run`` and ``cdss store init`` create a store; keys and settings need one.
    """
    from cdss.store.location import open_store

    open_store(str(path), create=True).close()
    return path


def mount_small_disk(folder: Path, size: str) -> bool:
    """A real, small tmpfs at ``folder`` (cdss tests run as root, in CI too); False when mounting is not allowed."""
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    return result.returncode == 0


def fill(folder: Path) -> None:
    """Fill the file system under ``folder`` until it reports ENOSPC."""
    import errno

    with (folder / "filler").open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC, error


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB file system of its own, unmounted afterwards, for full-disk tests."""
    import subprocess

    folder = tmp_path / "small-disk"
    if not mount_small_disk(folder, "2m"):
        pytest.fail("full-disk tests need `mount -t tmpfs` (run the suite as root, as CI does)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def full_disk(small_disk: Path) -> Path:
    """``small_disk`` with no byte left."""
    fill(small_disk)
    return small_disk
