"""Bundles: what export writes, offline verification, and every kind of bad input refused in one line."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.audit_records import CATALOG_FOLDER, Plan, cli, record
from tests.conftest import cdss_command


def export(store: Path, out: Path, *extra: str) -> int:
    return cli(
        "audit",
        "export",
        "--store",
        str(store),
        "--out",
        str(out),
        "--checklists",
        str(CATALOG_FOLDER),
        *extra,
    )


@pytest.fixture
def bundle(store_path: Path, tmp_path: Path) -> Path:
    record(store_path, [Plan(), Plan(amend=True), Plan("abandoned")])
    out = tmp_path / "bundle"
    assert export(store_path, out) == 0
    return out


def test_a_bundle_holds_everything_needed_to_verify_it(bundle: Path, store_path: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert set(manifest["files"]) == {
        "events.jsonl",
        "keys.json",
        "checklists/example-walk/1.0.0.json",
        "schemas/event.schema.json",
        "schemas/checklist.schema.json",
    }
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((bundle / name).read_bytes()).hexdigest() == digest
    lines = (bundle / "events.jsonl").read_bytes().splitlines()
    events = manifest["events"]
    assert events["count"] == len(lines) == 13
    assert (events["first_seq"], events["last_seq"]) == (1, 13)
    assert json.loads(lines[-1])["hash"] == events["last_hash"]
    assert len(manifest["sessions"]) == 3
    assert cli("audit", "verify", str(bundle)) == 0


def test_a_selection_exports_its_sessions_whole_and_reports_only_them(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = record(store_path, [Plan(), Plan(), Plan()])
    db = sqlite3.connect(store_path)
    started = {
        s: json.loads(e)["at"][:10]
        for s, e in db.execute("SELECT session, event FROM events WHERE type = 'session-started'")
    }
    db.close()
    day = started[ids[0]]
    out = tmp_path / "one.zip"
    assert export(store_path, out, "--since", day, "--until", day, "--checklist", "example-walk") == 0
    assert cli("audit", "verify", str(out)) == 0
    assert export(store_path, tmp_path / "none", "--since", "2999-01-01") == 1
    assert "no sessions match" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
    assert export(store_path, tmp_path / "bad", "--since", "yesterday") == 2


def test_verify_against_a_bundle_finds_a_cut_store(
    bundle: Path, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    against = ["audit", "verify", "--store", str(store_path), "--against", str(bundle)]
    assert cli(*against, "--checklists", str(CATALOG_FOLDER)) == 0
    db = sqlite3.connect(store_path, isolation_level=None)
    db.execute("DROP TRIGGER events_no_delete")
    db.execute("DELETE FROM events WHERE seq > 10")
    db.close()
    capsys.readouterr()
    assert cli(*against, "--checklists", str(CATALOG_FOLDER)) == 1
    assert "seq 13: bundle" in capsys.readouterr().out


def refused(capsys: pytest.CaptureFixture[str], *args: str, code: int = 1) -> str:
    assert cli(*args) == code
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    lines = out.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cdss: "), out.err
    return lines[0]


def test_a_missing_file_is_refused(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (bundle / "keys.json").unlink()
    assert "missing keys.json" in refused(capsys, "audit", "verify", str(bundle))


def test_an_extra_file_is_refused(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (bundle / "checklists" / "note.txt").write_text("hello")
    assert "extra file checklists/note.txt" in refused(capsys, "audit", "verify", str(bundle))


def test_a_manifest_that_lies_fails_verification(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["events"]["count"] = 12
    manifest["files"]["keys.json"] = "0" * 64
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert cli("audit", "verify", str(bundle)) == 1
    out = capsys.readouterr().out
    assert "manifest says events count 12, the events file has 13" in out
    assert "keys.json does not match its sha256 in the manifest" in out


def test_a_bundle_missing_a_selected_session(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["sessions"].append("f" * 32)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert cli("audit", "verify", str(bundle)) == 1
    assert "selected in the manifest, but its session-started is not in the bundle" in capsys.readouterr().out


@pytest.mark.parametrize("what", ["folder", "file", "zip", "nothing"])
def test_a_path_that_is_not_a_bundle(tmp_path: Path, what: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "thing"
    if what == "folder":
        path.mkdir()
    elif what == "file":
        path.write_text("not a bundle")
    elif what == "zip":
        path = tmp_path / "thing.zip"
        shutil.make_archive(str(tmp_path / "thing"), "zip", tmp_path, ".")
    message = refused(capsys, "audit", "verify", str(path))
    assert "is not a bundle" in message
    assert refused(capsys, "audit", "report", str(path))


def test_a_store_that_is_not_a_cdss_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    before = other.read_bytes()
    for command in (
        ["audit", "verify"],
        ["audit", "report"],
        ["audit", "checkpoint", "--out", str(tmp_path / "c.json")],
    ):
        assert "not a cdss store" in refused(capsys, *command, "--store", str(other))
    assert other.read_bytes() == before
    assert not (tmp_path / "c.json").exists()
    assert "does not exist" in refused(capsys, "audit", "verify", "--store", str(tmp_path / "absent.sqlite3"))
    assert not (tmp_path / "absent.sqlite3").exists()


def test_an_existing_output_is_never_overwritten(
    bundle: Path, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (bundle / "manifest.json").read_bytes()
    assert "already exists" in refused(
        capsys,
        "audit",
        "export",
        "--store",
        str(store_path),
        "--out",
        str(bundle),
        "--checklists",
        str(CATALOG_FOLDER),
        code=2,
    )
    assert (bundle / "manifest.json").read_bytes() == before


def test_the_installed_command_refuses_a_lying_bundle(bundle: Path) -> None:
    with (bundle / "events.jsonl").open("a") as handle:
        handle.write("{}\n")
    done = subprocess.run([cdss_command(), "audit", "verify", str(bundle)], capture_output=True, text=True)
    assert done.returncode == 1
    assert "events.jsonl does not match its sha256 in the manifest" in done.stdout
    assert "seq 14" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
