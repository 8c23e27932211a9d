"""cdss.files: every file cdss writes is whole or absent, and never written through a link (issue 11, item 10)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cdss import files
from cdss.errors import CdssError, UsageError


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writes_the_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    files.write_text(target, "first")
    files.write_text(target, "second")
    assert target.read_text() == "second"
    assert leftovers(tmp_path) == []


def test_private_mode_is_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    files.write_bytes(target, b"secret", mode=files.PRIVATE)
    assert target.stat().st_mode & 0o777 == 0o600


def test_a_symlink_target_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "status.csv"
    link.symlink_to(victim)
    with pytest.raises(CdssError) as caught:
        files.write_text(link, "=evil")
    assert "symbolic link" in str(caught.value)
    assert str(link) in str(caught.value)
    assert victim.read_text() == "precious"
    assert link.is_symlink()


def test_a_dangling_symlink_target_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "cp.json"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(CdssError, match="symbolic link"):
        files.write_text(link, "{}", replace=False)
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("old_name", [".r.html.tmp", ".report.html.tmp"])
def test_a_planted_temporary_name_is_never_opened(tmp_path: Path, old_name: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / old_name).symlink_to(victim)
    files.write_text(tmp_path / "report.html", "page")
    assert victim.read_text() == "precious"
    assert (tmp_path / "report.html").read_text() == "page"


def test_a_folder_where_a_file_is_wanted_is_one_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a folder; give the name of a file"):
        files.write_text(tmp_path, "x")


def test_a_missing_parent_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        files.write_text(tmp_path / "no" / "such.html", "x")


def test_no_replace_refuses_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "cp.json"
    target.write_text("old")
    with pytest.raises(UsageError, match="already exists"):
        files.write_text(target, "new", replace=False)
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_a_failure_while_writing_removes_the_temporary_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    with pytest.raises(RuntimeError), files.writing(target) as handle:
        handle.write(b"half")
        raise RuntimeError("stopped half-way")
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_ensure_folder_refuses_a_file(tmp_path: Path) -> None:
    existing = tmp_path / "out.csv"
    existing.write_text("x")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        files.ensure_folder(existing)


def test_ensure_folder_refuses_a_dangling_link(tmp_path: Path) -> None:
    link = tmp_path / "csv"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UsageError, match="leads to no folder"):
        files.ensure_folder(link)


def test_new_folder_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    with files.new_folder(out) as work:
        (work / "a.txt").write_text("a")
    assert (out / "a.txt").read_text() == "a"
    failed = tmp_path / "failed"
    with pytest.raises(RuntimeError), files.new_folder(failed) as work:
        (work / "a.txt").write_text("a")
        raise RuntimeError("stopped")
    assert not failed.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_full_disk_is_one_error_and_nothing_is_left(full_disk: Path) -> None:
    target = full_disk / "report.html"
    with pytest.raises(CdssError) as caught:
        files.write_bytes(target, b"x" * 200_000)
    assert str(caught.value) == f"{target}: cannot write: the disk is full; nothing was written"
    assert sorted(os.listdir(full_disk)) == ["filler"]
