"""Verification: a clean store holds; every single change to a stored or exported event is found and named."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdss.audit.bundle import BundleSource, Selection
from cdss.audit.checkpoint import take
from cdss.audit.export import export
from cdss.audit.findings import Anchor, Verification
from cdss.audit.sources import StoreSource
from cdss.audit.stored import owner as _owner
from cdss.audit.verify import verify
from cdss.cli.main import run
from cdss.events import hash_body
from tests.audit_records import CATALOG_FOLDER, Plan, catalog, event_at, record, rows, tamper
from tests.conftest import cdss_command

MUTATIONS = ("edit", "edit-and-rehash", "delete", "insert", "reorder", "duplicate", "remove-session")


def check_store(path: Path, anchors: list[Anchor] | None = None) -> Verification:
    loaded = catalog()
    source = StoreSource(path, loaded)
    try:
        return verify(source, anchors or [])
    finally:
        source.close()


def check_bundle(path: Path) -> Verification:
    source = BundleSource(path)
    try:
        return verify(source)
    finally:
        source.close()


def forged(original: dict[str, object], seq: int, prev: str) -> dict[str, object]:
    """A well-formed event with a valid own hash, as a tamperer who knows the format would write."""
    event = {k: v for k, v in original.items() if k != "hash"}
    event.update(seq=seq, prev=prev, at="2031-01-01T00:00:00.000000Z")
    return {**event, "hash": hash_body(event)}


def canonical(event: dict[str, Any]) -> str:
    """The RFC 8785 text cdss itself would store: the strongest forgery."""
    return bytes(rfc8785.dumps(event)).decode()


def mutate_store(db: sqlite3.Connection, kind: str, pick: int) -> int:
    """Apply one mutation; return the seq where verification must report it."""
    stored = rows(db)
    last = len(stored)
    k = 1 + pick % (last - 1)  # never the last event: a cut-off tail needs an anchor
    if kind == "edit":
        text = stored[k - 1][4].replace('"at":"', '"at":"1', 1).replace('"at":"12', '"at":"20', 1)
        text = text.replace('"actor":"dr-', '"actor":"xx-', 1)
        db.execute("UPDATE events SET event = ? WHERE seq = ?", (text, k))
        return k
    if kind == "edit-and-rehash":
        event = forged(event_at(db, k), k, str(event_at(db, k)["prev"]))
        db.execute(
            "UPDATE events SET event = ?, hash = ? WHERE seq = ?", (canonical(event), event["hash"], k)
        )
        return k + 1
    if kind == "delete":
        db.execute("DELETE FROM events WHERE seq = ?", (k,))
        return k
    if kind == "insert":
        event = forged(event_at(db, k), k + 1, stored[k - 1][3])
        db.execute("UPDATE events SET seq = -seq WHERE seq > ?", (k,))
        db.execute("UPDATE events SET seq = 1 - seq WHERE seq < 0")
        db.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
            (k + 1, event["session"], event["type"], event["hash"], canonical(event)),
        )
        return k + 2
    if kind == "reorder":
        a, b = stored[k - 1], stored[k]
        db.execute("DELETE FROM events WHERE seq IN (?, ?)", (k, k + 1))
        db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?)", (k, *b[1:]))
        db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?)", (k + 1, *a[1:]))
        return k
    if kind == "duplicate":
        _, session, type_, hash_, text = stored[k - 1]
        db.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?)", (last + 1, session, type_, "copy-" + hash_, text)
        )
        return last + 1
    assert kind == "remove-session"
    tail_session = stored[-1][1]
    candidates = sorted({r[1] for r in stored} - {tail_session})
    victim = candidates[pick % len(candidates)]
    first = min(r[0] for r in stored if r[1] == victim)
    db.execute("DELETE FROM events WHERE session = ?", (victim,))
    return first


plans = st.lists(
    st.builds(
        Plan,
        ending=st.sampled_from(["completed", "abandoned", "open"]),
        amend=st.booleans(),
        older_adult=st.booleans(),
    ),
    min_size=2,
    max_size=4,
)


def test_a_clean_store_verifies_and_says_what_it_checked(store_path: Path) -> None:
    record(store_path, [Plan(), Plan(amend=True), Plan("abandoned"), Plan("open", older_adult=True)])
    result = check_store(store_path)
    assert result.ok, result.findings
    assert result.events == 16
    assert result.sessions == {"completed": 2, "abandoned": 1, "open": 1}
    assert result.amendments == 1 and result.checklists == 1
    assert result.schema_cross_checked == 5  # one of each event type present
    assert any("16 (seq 1..16)" in line for line in result.summary())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans, kind=st.sampled_from(MUTATIONS), pick=st.integers(0, 1000))
def test_any_single_change_to_a_store_is_found_and_named(plan: list[Plan], kind: str, pick: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "records.sqlite3"
        record(path, plan)
        db = tamper(path)
        place = mutate_store(db, kind, pick)
        db.close()
        result = check_store(path)
    assert not result.ok
    assert place in {f.seq for f in result.findings}, (kind, place, [str(f) for f in result.findings])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans, kind=st.sampled_from(["edit", "edit-and-rehash", "delete", "insert", "reorder", "duplicate"]),
       pick=st.integers(0, 1000))  # fmt: skip
def test_any_single_change_to_a_bundle_is_found_and_named(plan: list[Plan], kind: str, pick: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "records.sqlite3"
        record(store, plan)
        bundle = Path(folder) / "bundle"
        export(store, bundle, Selection(), catalog())
        events = bundle / "events.jsonl"
        lines = events.read_text().splitlines()
        k = 1 + pick % (len(lines) - 1)
        original = json.loads(lines[k - 1])
        if kind == "edit":
            lines[k - 1] = (
                lines[k - 1].replace('"status":"', '"status":"x', 1).replace('"at":"2', '"at":"1', 1)
            )
            place = k
        elif kind == "edit-and-rehash":
            lines[k - 1] = canonical(forged(original, k, str(original["prev"])))
            place = k + 1
        elif kind == "delete":
            del lines[k - 1]
            place = k
        elif kind == "insert":
            lines.insert(k, canonical(forged(original, k + 1, str(original["hash"]))))
            place = k + 2
        elif kind == "reorder":
            lines[k - 1], lines[k] = lines[k], lines[k - 1]
            place = k
        else:
            lines.insert(k, lines[k - 1])
            place = k + 1
        events.write_text("\n".join(lines) + "\n")
        result = check_bundle(bundle)
    assert not result.ok
    assert place in {f.seq for f in result.findings}, (kind, place, [str(f) for f in result.findings])
    assert any("events.jsonl does not match its sha256" in f.problem for f in result.findings)


@pytest.mark.parametrize("cut", ["truncate", "rehash-last"])
def test_a_cut_off_tail_is_found_only_against_a_checkpoint(
    store_path: Path, tmp_path: Path, cut: str
) -> None:
    record(store_path, [Plan(), Plan(), Plan()])
    point = take(store_path, tmp_path / "checkpoint.json")
    db = tamper(store_path)
    if cut == "truncate":
        db.execute("DELETE FROM events WHERE seq > ?", (point.seq - 3,))
    else:
        event = forged(event_at(db, point.seq), point.seq, str(event_at(db, point.seq)["prev"]))
        db.execute(
            "UPDATE events SET event = ?, hash = ? WHERE seq = ?",
            (canonical(event), event["hash"], point.seq),
        )
    db.close()
    assert check_store(store_path).ok  # a chain alone cannot see it
    result = check_store(store_path, [Anchor(point.seq, point.hash, "checkpoint")])
    assert not result.ok
    assert [f.seq for f in result.findings] == [point.seq]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda text: text[: len(text) // 2], "is not a readable checkpoint"),
        (lambda text: text.replace('"seq": ', '"seq": 1', 1), "digest does not match its content"),
        (lambda text: json.dumps({**json.loads(text), "store": 2**60}), "has no canonical form"),
        (lambda text: json.dumps({**json.loads(text), "store": 1e400}), "is not a readable checkpoint"),
        (lambda text: text.replace('"digest"', '"extra": 1, "digest"', 1), "is not a cdss checkpoint"),
        (lambda text: "[]", "is not a readable checkpoint: expected a JSON object"),
        (lambda text: "[" * 50_000, "is not a readable checkpoint: JSON is nested too deeply"),
        (lambda text: " " * 100_000, "is not a readable checkpoint: the JSON is 65,537 bytes"),
        (lambda text: text.replace("}", ', "signature": 5}'), "checkpoint signature does not verify"),
    ],
)
def test_a_bad_checkpoint_is_one_clear_line(
    store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any, message: str
) -> None:
    record(store_path, [Plan()])
    point = tmp_path / "checkpoint.json"
    take(store_path, point)
    point.write_text(change(point.read_text()))
    with pytest.raises(SystemExit) as exit_:
        run(["audit", "verify", "--store", str(store_path), "--against", str(point)])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert message in err and str(point) in err and "Traceback" not in err


def test_illegal_sequences_are_named(store_path: Path) -> None:
    ids = record(store_path, [Plan("open"), Plan()])
    db = tamper(store_path)
    (last_seq, last_hash) = db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    template = event_at(db, 5)  # the completed session's first answer
    assert template["session"] == ids[1]
    event = forged(template, last_seq + 1, last_hash)
    db.execute(
        "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
        (last_seq + 1, ids[1], "item-answered", event["hash"], canonical(event)),
    )
    db.close()
    result = check_store(store_path)
    problems = [f.problem for f in result.findings if f.seq == last_seq + 1]
    assert "item 'setting-confirmed' answered after the session was completed" in problems
    assert "item 'setting-confirmed' answered twice (a change must be an amendment)" in problems


def test_a_changed_released_checklist_is_found(store_path: Path, tmp_path: Path) -> None:
    record(store_path, [Plan()])
    folder = tmp_path / "changed" / "example-walk"
    folder.mkdir(parents=True)
    document = json.loads((CATALOG_FOLDER / "example-walk" / "1.0.0.json").read_text())
    document["title"] = "Example treatment session, quietly edited"
    (folder / "1.0.0.json").write_text(json.dumps(document))
    from cdss.catalog import Catalog

    changed = Catalog([tmp_path / "changed"])
    source = StoreSource(store_path, changed)
    result = verify(source)
    source.close()
    assert any("not the pinned" in f.problem for f in result.findings)


def test_an_unreadable_row_is_reported_not_fatal(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record(store_path, [Plan(), Plan()])
    db = tamper(store_path)
    db.execute("UPDATE events SET event = '{not json' WHERE seq = 3")
    db.close()
    with pytest.raises(SystemExit) as exit_:
        run(["audit", "verify", "--store", str(store_path), "--checklists", str(CATALOG_FOLDER)])
    assert exit_.value.code == 1
    out = capsys.readouterr()
    assert "seq 3 · session" in out.out and "not a JSON event" in out.out
    assert "verification FAILED" in out.out
    assert "Traceback" not in out.out + out.err


def test_the_installed_command_exits_0_then_1(store_path: Path, tmp_path: Path) -> None:
    record(store_path, [Plan(), Plan("abandoned")])
    command = [
        cdss_command(),
        "audit",
        "verify",
        "--store",
        str(store_path),
        "--checklists",
        str(CATALOG_FOLDER),
    ]
    clean = subprocess.run(command, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "verified: every check holds" in clean.stdout
    db = tamper(store_path)
    db.execute("DELETE FROM events WHERE seq = 4")
    db.close()
    broken = subprocess.run([*command, "--json"], capture_output=True, text=True)
    assert broken.returncode == 1
    report = json.loads(broken.stdout)
    assert report["ok"] is False
    assert {
        "seq": 4,
        "session": report["findings"][0]["session"],
        "problem": report["findings"][0]["problem"],
    } in report["findings"]
    assert "Traceback" not in broken.stderr


@pytest.mark.parametrize("kind", MUTATIONS)
def test_the_findings_do_not_depend_on_how_many_processes_share_the_pass(store_path: Path, kind: str) -> None:
    """Split by session, each process checks its own sessions; the merged answer must be the same."""
    sessions = record(store_path, [Plan(), Plan(amend=True), Plan("abandoned"), Plan(amend=True)])
    while len({_owner(session, 2) for session in sessions}) < 2:  # session ids are random
        sessions += record(store_path, [Plan()])
    db = tamper(store_path)
    mutate_store(db, kind, 7)
    db.close()
    loaded = catalog()
    answers = []
    for workers in (1, 2, 3):
        source = StoreSource(store_path, loaded)
        try:
            answers.append(verify(source, workers=workers))
        finally:
            source.close()
    one = answers[0]
    assert not one.ok
    for split in answers[1:]:
        assert split.findings == one.findings
        assert split.to_json() == one.to_json()
