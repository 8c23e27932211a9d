"""Key and setting rules (docs/bundle-format.md K1-K4), met through the installed ``cdss audit verify``.

The store refuses every one of these when it is written; a tamperer with
write access to the file smuggles them in as properly chained events, and
verification must still name them.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cdss import keys
from cdss.events import Completed, Draft, Signed, seal
from cdss.session import Session, signed_payload
from cdss.store.sqlite import open_store
from tests.audit_records import CATALOG_FOLDER, Plan, catalog, cli, record, tamper
from tests.conftest import cdss_command, new_store

PASSPHRASE = "correct horse battery"


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDSS_PASSPHRASE", PASSPHRASE)


def findings(store: Path) -> str:
    """What the installed `cdss audit verify` prints about ``store``, which it must fail."""
    command = [cdss_command(), "audit", "verify", "--store", str(store), "--checklists", str(CATALOG_FOLDER)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stdout


def smuggle(store: Path, draft: Any) -> int:
    """Seal ``draft`` (or a draft builder) onto the chain and insert it past the store's rules; its seq."""
    db = tamper(store)
    seq, prev = db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    built = draft(SimpleNamespace(seq=seq, hash=prev)) if callable(draft) else draft
    event = seal(built, seq + 1, prev)
    db.execute(
        "INSERT INTO events (seq, session, type, hash, event) VALUES (?, ?, ?, ?, ?)",
        (event.seq, event.session or "", event.type, event.hash, event.canonical().decode()),
    )
    db.close()
    return event.seq


def completion_and_signature(store: Path, session_id: str, key: keys.SigningKey) -> tuple[int, int]:
    """Complete an open session and sign it with ``key``, past the store's rules."""
    with open_store(store) as opened:
        session = Session.load(opened, session_id, catalog=catalog())
        what = keys.meaning(session)
    done = smuggle(store, Draft(session_id, "session-completed", session.clinician, Completed()))
    with open_store(store) as opened:
        completed = next(e for e in opened.events(session_id) if e.type == "session-completed")
    signature = key.private.sign(signed_payload(completed.hash, key.info.name, what, completed.at))
    data = Signed(signs=completed.hash, name=key.info.name, meaning=what, key=key.info.key_id,
                  signature=base64.b64encode(signature).decode())  # fmt: skip
    signed = smuggle(store, Draft(session_id, "session-signed", session.clinician, data, at=completed.at))
    return done, signed


def test_a_second_key_for_a_clinician_and_its_signatures_are_named(store_path: Path, tmp_path: Path) -> None:
    """Issue 11, 1: someone registers a second key as dr-lee and signs with it."""
    new_store(store_path)
    assert (
        cli("keys", "init", "--clinician", "dr-lee", "--name", "Dr A. Lee", "--store", str(store_path)) == 0
    )
    (session,) = record(store_path, [Plan("open")])
    impostor = tmp_path / "impostor"
    made = keys.create("dr-lee", "Dr A. Lee", PASSPHRASE, folder=impostor)
    registered = smuggle(store_path, keys.registration(made))
    _, signed = completion_and_signature(store_path, session, keys.unlock("dr-lee", folder=impostor))
    found = findings(store_path)
    assert f"seq {registered}: key-registered breaks the key and setting rules: dr-lee already has" in found
    assert (
        f"seq {signed} · session {session}: signed with key {made.key_id[:12]}…, which was not properly "
        in found
    )


def test_a_completion_unsigned_while_signatures_were_required_is_named(store_path: Path) -> None:
    """Issue 11, 2: the setting is in the chain, and a completion that ignores it is found."""
    (session,) = record(store_path, [Plan("open")])
    assert cli("audit", "require-signatures", "on", "--clinician", "qa-lead", "--store", str(store_path)) == 0
    with open_store(store_path) as opened:
        clinician = Session.load(opened, session, catalog=catalog()).clinician
    completed = smuggle(store_path, Draft(session, "session-completed", clinician, Completed()))
    found = findings(store_path)
    assert f"seq {completed} · session {session}: completed without a signature while require-signatures" in (
        found
    )
    assert "setting require-signatures = 'on' at seq" in found


def test_an_unendorsed_setting_change_in_a_store_with_an_administrator_is_named(store_path: Path) -> None:
    record(store_path, [Plan()])
    assert cli("keys", "init", "--clinician", "qa-admin", "--name", "QA Admin", "--administrator",
               "--store", str(store_path)) == 0  # fmt: skip
    changed = smuggle(store_path, keys.setting_change("require-signatures", "off", "dr-kim", None))
    found = findings(store_path)
    assert (
        f"seq {changed}: setting-changed breaks the key and setting rules: this store has an administrator"
        in found
    )


def test_a_key_registered_after_it_signed_is_named(store_path: Path) -> None:
    (session,) = record(store_path, [Plan("open")])
    made = keys.create("dr-lee", "Dr A. Lee", PASSPHRASE)
    _, signed = completion_and_signature(store_path, session, keys.unlock("dr-lee"))
    with open_store(store_path) as opened:
        keys.register(opened, made)
    found = findings(store_path)
    assert (
        f"seq {signed} · session {session}: signed with key {made.key_id[:12]}…, which was registered only"
        in found
    )


def test_a_retired_key_cannot_sign_later(store_path: Path) -> None:
    (session,) = record(store_path, [Plan("open")])
    assert (
        cli("keys", "init", "--clinician", "dr-lee", "--name", "Dr A. Lee", "--store", str(store_path)) == 0
    )
    lee = keys.unlock("dr-lee")
    with open_store(store_path) as opened:
        keys.retire(opened, "dr-lee", lee.info.key_id, "left the clinic", lee)
    _, signed = completion_and_signature(store_path, session, lee)
    found = findings(store_path)
    assert (
        f"seq {signed} · session {session}: signed with key {lee.info.key_id[:12]}… after it was retired"
        in found
    )


def test_keys_and_settings_verify_in_a_bundle_too(store_path: Path, tmp_path: Path) -> None:
    new_store(store_path)
    assert (
        cli("keys", "init", "--clinician", "dr-lee", "--name", "Dr A. Lee", "--store", str(store_path)) == 0
    )
    record(store_path, [Plan(), Plan()], signer_key=keys.unlock("dr-lee"))
    bundle = tmp_path / "bundle"
    assert cli("audit", "export", "--store", str(store_path), "--out", str(bundle), "--checklists",
               str(CATALOG_FOLDER)) == 0  # fmt: skip
    done = subprocess.run([cdss_command(), "audit", "verify", str(bundle)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    assert "signatures: 1 verified" in done.stdout
