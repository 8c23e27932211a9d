"""Signature rules (docs/bundle-format.md S1-S7): who signs, when, what it names, and how often.

Each forgery is appended through the store itself, so the chain is intact and
only the signature rules can find it; verification runs through the installed
``cdss``, as an auditor would meet it.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from cdss import keys
from cdss.events import Draft, Signed
from cdss.session import Session, signed_payload
from cdss.store.sqlite import open_store
from tests.audit_records import CATALOG_FOLDER, Plan, catalog, record
from tests.conftest import cdss_command

PASSPHRASE = "correct horse battery"


def verify(store: Path) -> subprocess.CompletedProcess[str]:
    command = [cdss_command(), "audit", "verify", "--store", str(store), "--checklists", str(CATALOG_FOLDER)]
    return subprocess.run(command, capture_output=True, text=True)


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
