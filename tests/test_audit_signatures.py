"""Signature rules (docs/bundle-format.md S1-S7): who signs, when, what it names, and how often.

Each forgery is appended through the store itself, so the chain is intact and
only the signature rules can find it; verification runs through the installed
``cdss``, as an auditor would meet it.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from cdss import keys
from cdss.events import Draft, Signed
from cdss.session import Session, signed_payload
from cdss.store.sqlite import open_store
from tests.audit_records import CATALOG_FOLDER, Plan, catalog, cli, record
from tests.conftest import cdss_command

PASSPHRASE = "correct horse battery"


def verify(store: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [cdss_command(), "audit", "verify", "--store", str(store), "--checklists", str(CATALOG_FOLDER)]
    return subprocess.run([*command, *extra], capture_output=True, text=True)


@pytest.fixture
def lee(store_path: Path) -> keys.SigningKey:
    made = keys.create("dr-lee", "Dr A. Lee", PASSPHRASE)
    with open_store(store_path) as store:
        keys.register(store, made)
    return keys.unlock("dr-lee", PASSPHRASE)


def forge(store: Path, session_id: str, key: keys.SigningKey, *, actor: str = "dr-lee",
          at: str | None = None, meaning: str | None = None) -> int:  # fmt: skip
    """Append a session-signed event that verifies cryptographically; its seq."""
    with open_store(store) as opened:
        session = Session.load(opened, session_id, catalog=catalog())
        completed = next(e for e in opened.events(session_id) if e.type == "session-completed")
        what = meaning or keys.meaning(session)
        when = at or completed.at
        signature = key.private.sign(signed_payload(completed.hash, key.info.name, what, when))
        data = Signed(signs=completed.hash, name=key.info.name, meaning=what, key=key.info.key_id,
                      signature=base64.b64encode(signature).decode())  # fmt: skip
        (event,) = opened.append(Draft(session_id, "session-signed", actor, data, at=when))
    return event.seq


def test_a_second_signature_of_one_completion_is_found(store_path: Path, lee: keys.SigningKey) -> None:
    (session,) = record(store_path, [Plan()], signer_key=lee)
    seq = forge(store_path, session, lee)
    done = verify(store_path)
    assert done.returncode == 1
    assert f"seq {seq} · session {session}: a second signature of one completion" in done.stdout


def test_the_signer_must_be_the_clinician_who_completed(store_path: Path, lee: keys.SigningKey) -> None:
    _, kim_session = record(store_path, [Plan(), Plan()], signer_key=lee)  # dr-kim's is unsigned
    seq = forge(store_path, kim_session, lee)
    done = verify(store_path)
    assert done.returncode == 1
    assert (
        f"seq {seq} · session {kim_session}: signed by dr-lee, but dr-kim completed the session"
        in done.stdout
    )


def test_the_signature_time_is_the_completions(store_path: Path, lee: keys.SigningKey) -> None:
    (session,) = record(store_path, [Plan("completed")])
    seq = forge(store_path, session, lee, at="2031-01-01T00:00:00.000000Z")
    done = verify(store_path)
    assert done.returncode == 1
    assert f"seq {seq} · session {session}: signed at 2031-01-01T00:00:00.000000Z, not at" in done.stdout


def test_the_meaning_names_this_sessions_subject(store_path: Path, lee: keys.SigningKey) -> None:
    (session,) = record(store_path, [Plan()])
    wrong = "completed checklist example-walk version 1.0.0 for subject S-9999"
    seq = forge(store_path, session, lee, meaning=wrong)
    done = verify(store_path)
    assert done.returncode == 1
    assert f"seq {seq} · session {session}: signature meaning {wrong!r} is not" in done.stdout


def test_an_amendment_after_a_signature_is_allowed_and_said(store_path: Path, lee: keys.SigningKey) -> None:
    (session,) = record(store_path, [Plan()], signer_key=lee)
    with open_store(store_path) as opened:
        Session.load(opened, session, catalog=catalog()).amend(
            "setting-confirmed", "not-applicable", explanation="wrong key"
        )
    done = verify(store_path)
    assert done.returncode == 0, done.stdout
    assert "1 signed session(s) amended afterwards" in done.stdout


def trusted_file(path: Path, *clinicians: str) -> Path:
    listed = [
        {"clinician": c, "public_key": base64.b64encode(keys.info(c).public_key).decode()} for c in clinicians
    ]
    path.write_text(json.dumps(listed))
    return path


def test_trusted_keys_name_every_signer_outside_them(
    store_path: Path, tmp_path: Path, lee: keys.SigningKey
) -> None:
    (session,) = record(store_path, [Plan()], signer_key=lee)
    keys.create("dr-kim", "Dr Kim", PASSPHRASE)
    both = trusted_file(tmp_path / "both.json", "dr-lee", "dr-kim")
    assert verify(store_path, "--trusted-keys", str(both)).returncode == 0
    only_kim = trusted_file(tmp_path / "kim.json", "dr-kim")
    done = verify(store_path, "--trusted-keys", str(only_kim))
    assert done.returncode == 1
    assert (
        f"session {session}: signed with key {lee.info.key_id[:12]}…, which is not among the trusted keys"
        in (done.stdout)
    )


def test_trusted_keys_apply_to_a_checkpoints_signer(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint re-signed under another id passes on a machine without the auditor's key; not against the trusted keys."""
    monkeypatch.setenv("CDSS_PASSPHRASE", PASSPHRASE)
    record(store_path, [Plan()])
    keys.create("qa-ortiz", "R. Ortiz (QA)", PASSPHRASE)
    trusted = trusted_file(tmp_path / "trusted.json", "qa-ortiz")
    keys.create("qa-other", "Someone Else", PASSPHRASE)
    point = tmp_path / "cp.json"
    assert (
        cli("audit", "checkpoint", "--store", str(store_path), "--out", str(point), "--sign", "qa-other") == 0
    )
    assert verify(store_path, "--against", str(point)).returncode == 0  # no key for qa-other here to compare
    done = verify(store_path, "--against", str(point), "--trusted-keys", str(trusted))
    assert done.returncode == 1
    assert (
        f"records: checkpoint {point} taken" in done.stdout
        and "which is not among the trusted keys" in done.stdout
    )


def test_a_bad_trusted_keys_file_is_one_line(store_path: Path, tmp_path: Path) -> None:
    record(store_path, [Plan()])
    bad = tmp_path / "bad.json"
    for content in ("{", '[{"clinician": "dr-lee", "public_key": "AAAA"}]', "[" * 100_000):
        bad.write_text(content)
        done = verify(store_path, "--trusted-keys", str(bad))
        assert done.returncode == 1
        assert f"{bad}: is not a list of trusted keys" in done.stderr and "Traceback" not in done.stderr
