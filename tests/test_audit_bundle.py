"""Hostile and incomplete bundles: every rule of docs/bundle-format.md, met through the installed command."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdss.audit.bundle import MAX_RATIO
from tests.audit_records import CATALOG_FOLDER, Plan, cli, record, tamper
from tests.conftest import cdss_command

MEASURED = """
import resource, subprocess, sys, time
began = time.monotonic()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024,
      round(time.monotonic() - began, 1))
print(done.stdout + done.stderr)
"""


def verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cdss_command(), "audit", "verify", *args], capture_output=True, text=True)


def measured(*args: str) -> tuple[int, int, float, str]:
    """Exit code, peak memory (MB), seconds and output of the installed ``cdss audit verify ARGS``."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, cdss_command(), "audit", "verify", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    first, output = done.stdout.split("\n", 1)
    code, megabytes, seconds = first.split()
    return int(code), int(megabytes), float(seconds), output


def export(store: Path, out: Path, *extra: str) -> Path:
    assert cli("audit", "export", "--store", str(store), "--out", str(out), "--checklists",
               str(CATALOG_FOLDER), *extra) == 0  # fmt: skip
    return out


def manifest_of(bundle: Path) -> dict[str, object]:
    value = json.loads((bundle / "manifest.json").read_text())
    assert isinstance(value, dict)
    return value


def rewrite(bundle: Path, name: str, content: bytes) -> None:
    """Change one file and fix its sha256 in the manifest, as a tamperer who read the format would."""
    (bundle / name).write_bytes(content)
    manifest = manifest_of(bundle)
    files = manifest["files"]
    assert isinstance(files, dict)
    files[name] = hashlib.sha256(content).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2))


def write_manifest(bundle: Path, manifest: dict[str, object]) -> None:
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2))


@pytest.fixture
def bundle(store_path: Path, tmp_path: Path) -> Path:
    record(store_path, [Plan(), Plan(amend=True), Plan("abandoned"), Plan("open")])
    return export(store_path, tmp_path / "bundle")


def zipped(folder: Path, out: Path, extra: list[tuple[str, bytes]] = ()) -> Path:  # type: ignore[assignment]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
        for name, data in extra:
            archive.writestr(name, data)
    return out


# --- bounded work on hostile input ------------------------------------------------------


def test_a_zip_bomb_is_refused_in_bounded_memory_and_time(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("manifest.json", "w", force_zip64=True) as handle:
            handle.write(b'{"format": "')
            block = b" " * (1 << 20)
            for _ in range(1500):  # 1.5 GB of one line, about 1.5 MB zipped
                handle.write(block)
        archive.writestr("events.jsonl", b"")
    assert bomb.stat().st_size < 4 << 20
    code, megabytes, seconds, output = measured(str(bomb))
    assert code == 1, output
    assert f"the limit is {MAX_RATIO} times" in output and "Traceback" not in output
    assert megabytes <= 200 and seconds < 20, (megabytes, seconds)


def test_a_line_longer_than_any_event_stops_the_reading(bundle: Path, tmp_path: Path) -> None:
    """Stored (not deflated), so the ratio cannot catch it: the line length does."""
    huge = b'{"seq":' + b"1" * (64 << 20) + b"}\n"
    rewrite(bundle, "events.jsonl", huge)
    archive = tmp_path / "long.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        for path in sorted(bundle.rglob("*")):
            if path.is_file():
                out.write(path, path.relative_to(bundle).as_posix())
    code, megabytes, _, output = measured(str(archive))
    assert code == 1
    assert "line 1 is longer than 1,048,576 bytes: not an event" in output
    assert megabytes <= 200


def test_deep_nesting_in_an_events_line_is_a_finding_not_a_crash(bundle: Path) -> None:
    lines = (bundle / "events.jsonl").read_bytes().splitlines(keepends=True)
    lines[1] = b"[" * 100_000 + b"]" * 100_000 + b"\n"
    rewrite(bundle, "events.jsonl", b"".join(lines))
    done = verify(str(bundle))
    assert done.returncode == 1
    assert "seq 2: not a JSON event (unreadable row)" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_duplicate_zip_entries_are_refused(bundle: Path, tmp_path: Path) -> None:
    events = (bundle / "events.jsonl").read_bytes()
    archive = zipped(bundle, tmp_path / "twice.zip", [("events.jsonl", events)])
    done = verify(str(archive))
    assert done.returncode == 1
    assert "holds 'events.jsonl' twice" in done.stderr


def test_a_damaged_zip_is_one_line(bundle: Path, tmp_path: Path) -> None:
    archive = zipped(bundle, tmp_path / "b.zip")
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as opened:
        info = opened.getinfo("events.jsonl")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF  # inside the deflated events
    archive.write_bytes(bytes(data))
    done = verify(str(archive))
    assert done.returncode == 1
    assert "is damaged" in done.stderr and str(archive) in done.stderr
    assert "Traceback" not in done.stderr and "unexpected" not in done.stderr


@pytest.mark.parametrize("count", [10_001])
def test_too_many_entries_are_refused(tmp_path: Path, count: int) -> None:
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for n in range(count):
            out.writestr(f"checklists/x/{n}.json", b"")
    done = verify(str(archive))
    assert done.returncode == 1 and "10,000" in done.stderr


# --- every manifest claim is checked ----------------------------------------------------


def test_events_must_end_with_a_newline(bundle: Path) -> None:
    rewrite(bundle, "events.jsonl", (bundle / "events.jsonl").read_bytes().rstrip(b"\n"))
    done = verify(str(bundle))
    assert done.returncode == 1
    assert "events.jsonl does not end with a newline" in done.stdout


def test_a_session_dropped_from_the_manifest_only_is_found(bundle: Path) -> None:
    manifest = manifest_of(bundle)
    sessions = manifest["sessions"]
    assert isinstance(sessions, list)
    dropped = sessions.pop(1)
    write_manifest(bundle, manifest)
    done = verify(str(bundle))
    assert done.returncode == 1
    assert f"session {dropped}: is not in the manifest's sessions, but its start matches" in done.stdout


def test_the_schema_copy_is_pinned_to_the_published_schema(bundle: Path) -> None:
    schema = json.loads((bundle / "schemas" / "event.schema.json").read_text())
    schema["$defs"] = {}  # weakened, its sha256 fixed in the manifest
    rewrite(bundle, "schemas/event.schema.json", json.dumps(schema).encode())
    done = verify(str(bundle))
    assert done.returncode == 1
    assert "schemas/event.schema.json is not a schema cdss published" in done.stdout


@pytest.mark.parametrize("field", ["seq", "retired_seq"])
def test_a_keys_file_entry_of_the_wrong_type_is_refused(bundle: Path, field: str) -> None:
    """A key listed before the bundle's range is trusted as listed: its fields must be what they say."""
    entry = {"key_id": "0" * 64, "clinician": "dr-lee", "public_key": base64.b64encode(bytes(32)).decode(),
             "registered_at": "2026-01-01T00:00:00Z", "seq": 0, field: "7"}  # fmt: skip
    rewrite(bundle, "keys.json", json.dumps([entry]).encode())
    done = verify(str(bundle))
    assert done.returncode == 1
    assert "keys.json: is not a list of keys" in done.stdout + done.stderr


def test_an_unpinned_checklist_file_is_refused(bundle: Path) -> None:
    extra = (bundle / "checklists" / "example-walk" / "1.0.0.json").read_bytes()
    (bundle / "checklists" / "example-walk" / "9.9.9.json").write_bytes(extra)
    rewrite(bundle, "checklists/example-walk/9.9.9.json", extra)
    done = verify(str(bundle))
    assert done.returncode == 1
    assert "checklists/example-walk/9.9.9.json is not pinned by any session" in done.stdout


def test_an_unlisted_or_unknown_file_is_refused(bundle: Path) -> None:
    (bundle / "notes.txt").write_text("hello")
    done = verify(str(bundle))
    assert done.returncode == 1 and "extra file notes.txt" in done.stderr
    rewrite(bundle, "notes.txt", b"hello")
    done = verify(str(bundle))
    assert done.returncode == 1 and "unexpected file notes.txt" in done.stderr


def test_an_unfiltered_export_must_reach_the_recorded_head(bundle: Path) -> None:
    """A cut tail whose manifest was fixed, with the head left in place, is found."""
    lines = (bundle / "events.jsonl").read_bytes().splitlines(keepends=True)
    kept = lines[:-2]
    rewrite(bundle, "events.jsonl", b"".join(kept))
    manifest = manifest_of(bundle)
    events = manifest["events"]
    assert isinstance(events, dict)
    last = json.loads(kept[-1])
    events.update(count=len(kept), last_seq=last["seq"], last_hash=last["hash"])
    write_manifest(bundle, manifest)
    done = verify(str(bundle))
    assert done.returncode == 1
    assert "an unfiltered export must hold the whole chain" in done.stdout


def test_messages_name_the_whole_session(bundle: Path) -> None:
    lines = (bundle / "events.jsonl").read_text().splitlines(keepends=True)
    event = json.loads(lines[2])
    lines[2] = lines[2].replace('"at":"2', '"at":"1', 1)
    rewrite(bundle, "events.jsonl", "".join(lines).encode())
    done = verify(str(bundle))
    assert f"seq 3 · session {event['session']}: " in done.stdout


# --- any change to any record is found ------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])  # fmt: skip
@given(data=st.data())
def test_any_change_to_any_file_of_a_bundle_is_found(bundle: Path, tmp_path_factory: pytest.TempPathFactory,
                                                     data: st.DataObject) -> None:  # fmt: skip
    copy = tmp_path_factory.mktemp("copy") / "bundle"
    import shutil

    shutil.copytree(bundle, copy)
    names = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file())
    name = data.draw(st.sampled_from(names))
    content = bytearray((copy / name).read_bytes())
    at = data.draw(st.integers(0, len(content) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda b: b != content[at]))
    content[at] = value
    fix_sha = name != "manifest.json" and data.draw(st.booleans())
    if fix_sha:
        rewrite(copy, name, bytes(content))
    else:
        (copy / name).write_bytes(bytes(content))
    if fix_sha and (name == "keys.json" or name.startswith("checklists/")):
        try:
            if json.loads(content) == json.loads((bundle / name).read_bytes()):
                return  # the same JSON, spaced otherwise: the keys and checklist content are what count
        except ValueError:
            pass
    if name == "manifest.json":
        try:
            changed = json.loads(content)
        except ValueError:
            changed = None
        original = manifest_of(bundle)
        if isinstance(changed, dict) and {k: v for k, v in changed.items() if k != "created_at"} == {
            k: v for k, v in original.items() if k != "created_at"
        }:
            return  # only the documented-uncovered created_at changed (or the JSON's spacing)
        source = changed.get("source") if isinstance(changed, dict) else None
        if isinstance(source, dict) and source.get("store") != original["source"]["store"]:  # type: ignore[index]
            return  # the store's path is documented as informative
    done = verify(str(copy))
    assert done.returncode == 1, (name, at, value, fix_sha, done.stdout[-400:])


# --- --against ----------------------------------------------------------------------------


def test_against_partial_and_older_bundles_and_checkpoints_without_false_cut_offs(
    store_path: Path, tmp_path: Path
) -> None:
    record(store_path, [Plan(), Plan("abandoned")])
    older = export(store_path, tmp_path / "older")
    assert cli("audit", "checkpoint", "--store", str(store_path), "--out", str(tmp_path / "cp1.json")) == 0
    record(store_path, [Plan(), Plan()])
    newer = export(store_path, tmp_path / "newer")
    assert cli("audit", "checkpoint", "--store", str(store_path), "--out", str(tmp_path / "cp2.json")) == 0
    record(store_path, [Plan()])
    today = json.loads((newer / "events.jsonl").read_text().splitlines()[-1])["at"][:10]
    partial = export(store_path, tmp_path / "partial", "--since", today)
    store = str(store_path)
    for target, reference in [
        (["--store", store], older),
        (["--store", store], newer),
        (["--store", store], tmp_path / "cp1.json"),
        (["--store", store], tmp_path / "cp2.json"),
        ([str(older)], tmp_path / "cp2.json"),  # the checkpoint is newer than the bundle
        ([str(newer)], tmp_path / "cp1.json"),
        ([str(older)], newer),
        ([str(newer)], older),
        ([str(partial)], older),
        ([str(older)], store_path),
        ([str(newer)], store_path),
    ]:
        done = verify(*target, "--checklists", str(CATALOG_FOLDER), "--against", str(reference))
        assert done.returncode == 0, (target, reference, done.stdout + done.stderr)
        assert "cut off" not in done.stdout


def test_against_finds_a_cut_tail_and_a_rewritten_bundle(store_path: Path, tmp_path: Path) -> None:
    record(store_path, [Plan(), Plan(), Plan()])
    kept = export(store_path, tmp_path / "kept")
    assert cli("audit", "checkpoint", "--store", str(store_path), "--out", str(tmp_path / "cp.json")) == 0
    db = tamper(store_path)
    (last,) = db.execute("SELECT max(seq) FROM events").fetchone()
    db.execute("DELETE FROM events WHERE seq > ?", (last - 3,))
    db.close()
    store = ["--store", str(store_path), "--checklists", str(CATALOG_FOLDER)]
    assert verify(*store).returncode == 0  # a chain alone cannot see it
    for reference in (kept, tmp_path / "cp.json"):
        done = verify(*store, "--against", str(reference))
        assert done.returncode == 1
        assert f"seq {last}: " in done.stdout and "events were cut off the end" in done.stdout


def test_a_bundle_rewritten_wholesale_is_found_against_the_store(store_path: Path, tmp_path: Path) -> None:
    """Someone holding the bundle edits an event and re-seals everything after it: only a reference shows it."""
    import rfc8785

    from cdss.events import hash_body

    record(store_path, [Plan(), Plan()])
    copy = export(store_path, tmp_path / "copy")
    lines = [json.loads(line) for line in (copy / "events.jsonl").read_text().splitlines()]
    prev = lines[2]["prev"]
    for event in lines[2:]:
        event["prev"] = prev
        if event["seq"] == 3:
            event["at"] = "2020-01-01T00:00:00.000000Z"
        event.pop("hash")
        event["hash"] = prev = hash_body(event)
    rewrite(copy, "events.jsonl", b"".join(bytes(rfc8785.dumps(e)) + b"\n" for e in lines))
    manifest = manifest_of(copy)
    manifest["events"]["last_hash"] = prev  # type: ignore[index]
    manifest["source"]["head_hash"] = prev  # type: ignore[index]
    write_manifest(copy, manifest)
    assert verify(str(copy)).returncode == 0  # whoever holds a bundle can rewrite it whole
    done = verify(str(copy), "--against", str(store_path))
    assert done.returncode == 1
    assert f"seq {lines[-1]['seq']}: differs from the event store {store_path} holds" in done.stdout


def test_a_checkpoint_of_an_empty_store_does_not_fail_later_verifications(
    store_path: Path, tmp_path: Path
) -> None:
    record(store_path, [])
    assert cli("audit", "checkpoint", "--store", str(store_path), "--out", str(tmp_path / "cp.json")) == 0
    record(store_path, [Plan()])
    done = verify("--store", str(store_path), "--checklists", str(CATALOG_FOLDER), "--against",
                  str(tmp_path / "cp.json"))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_report_on_a_bundle_with_a_deep_line_is_one_line(bundle: Path) -> None:
    lines = (bundle / "events.jsonl").read_bytes().splitlines(keepends=True)
    lines[1] = b"[" * 100_000 + b"]" * 100_000 + b"\n"
    rewrite(bundle, "events.jsonl", b"".join(lines))
    done = subprocess.run([cdss_command(), "audit", "report", str(bundle)], capture_output=True, text=True)
    assert done.returncode == 1
    assert "line 2 of the bundle's events is not an event" in done.stderr and "Traceback" not in done.stderr
