"""Signing keys: encrypted on disk, registered in the store, used by `cdss run --sign`, refused clearly."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from cdss import keys
from cdss.audit.sources import StoreSource
from cdss.audit.verify import verify
from cdss.errors import InvalidInput, NotFound, UsageError
from cdss.store import REQUIRE_SIGNATURES
from cdss.store.sqlite import open_store
from tests.audit_records import CATALOG_FOLDER, Plan, catalog, cli, record
from tests.conftest import new_store

PASSPHRASE = "correct horse battery"
ANSWERS = {
    "setting-confirmed": "done",
    "infusion-monitoring-planned": {"status": "not-done", "reason": "deferred"},
}


@pytest.fixture
def passphrase(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CDSS_PASSPHRASE", PASSPHRASE)
    return PASSPHRASE


@pytest.fixture
def answers(tmp_path: Path) -> Path:
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(ANSWERS))
    return path


def run_walk(store: Path, answers: Path, *extra: str) -> int:
    return cli(
        "run", "example-walk", "--route", "intravenous", "--subject", "S-00000001H", "--clinician", "dr-lee",
        "--answers", str(answers), "--store", str(store), "--checklists", str(CATALOG_FOLDER), *extra,
    )  # fmt: skip


def test_init_writes_an_encrypted_private_key_and_registers_it(
    store_path: Path, passphrase: str, capsys: pytest.CaptureFixture[str]
) -> None:
    new_store(store_path)
    assert (
        cli("keys", "init", "--clinician", "dr-lee", "--name", "Dr A. Lee", "--store", str(store_path)) == 0
    )
    folder = keys.key_folder()
    pem = (folder / "dr-lee.pem").read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE((folder / "dr-lee.pem").stat().st_mode) == 0o600
    described = keys.info("dr-lee")
    assert described.name == "Dr A. Lee"
    with open_store(store_path) as store:
        assert [(k.key_id, k.clinician) for k in store.keys()] == [(described.key_id, "dr-lee")]
    assert described.key_id in capsys.readouterr().out
    # A key is never replaced: old signatures name it.
    assert (
        cli("keys", "init", "--clinician", "dr-lee", "--name", "Dr A. Lee", "--store", str(store_path)) == 2
    )


def test_a_signed_run_shows_the_manifestation_and_verifies(
    store_path: Path, passphrase: str, answers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new_store(store_path)
    cli("keys", "init", "--clinician", "dr-lee", "--name", "Dr A. Lee", "--store", str(store_path))
    assert cli("audit", "require-signatures", "on", "--clinician", "dr-lee", "--store", str(store_path)) == 0
    capsys.readouterr()
    assert run_walk(store_path, answers) == 1
    assert "requires a signature" in capsys.readouterr().err
    with open_store(store_path) as store:
        assert store.head()[0] == 2  # the key and the setting; refused before anything else was recorded
        assert store.setting(REQUIRE_SIGNATURES) == "on"
    assert run_walk(store_path, answers, "--sign") == 0
    assert "signed by Dr A. Lee" in capsys.readouterr().out
    with open_store(store_path) as store:
        session = store.sessions()[0].id
    assert cli("record", session[:8], "--store", str(store_path), "--checklists", str(CATALOG_FOLDER)) == 0
    shown = capsys.readouterr().out
    assert "signed by Dr A. Lee at 20" in shown
    assert "completed checklist example-walk version 1.0.0 for subject S-00000001H" in shown
    loaded = catalog()
    source = StoreSource(store_path, loaded)
    result = verify(source)
    source.close()
    assert result.ok and result.signatures == 1
    assert cli("audit", "require-signatures", "off", "--clinician", "dr-lee", "--store", str(store_path)) == 0


def test_wrong_passphrase_and_unknown_key_write_nothing(
    store_path: Path, answers: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CDSS_PASSPHRASE", PASSPHRASE)
    new_store(store_path)
    cli("keys", "init", "--clinician", "dr-lee", "--name", "Dr A. Lee", "--store", str(store_path))
    capsys.readouterr()
    monkeypatch.setenv("CDSS_PASSPHRASE", "not the passphrase")
    assert run_walk(store_path, answers, "--sign") == 1
    err = capsys.readouterr().err
    assert err == "cdss: wrong passphrase for dr-lee's key (or the key file is damaged)\n"
    monkeypatch.setenv("CDSS_PASSPHRASE", PASSPHRASE)
    code = cli(
        "run", "example-walk", "--route", "intravenous", "--subject", "S-00000001H", "--clinician", "dr-nobody",
        "--answers", str(answers), "--store", str(store_path), "--checklists", str(CATALOG_FOLDER), "--sign",
    )  # fmt: skip
    assert code == 1
    assert (
        capsys.readouterr().err == "cdss: no key for clinician dr-nobody; create one with `cdss keys init`\n"
    )
    with open_store(store_path) as store:
        assert store.head()[0] == 1  # the key's registration only


def test_without_a_terminal_or_passphrase_the_missing_piece_is_named(
    store_path: Path,
    tmp_path: Path,
    answers: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io
    import sys

    assert run_walk(store_path, answers) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal
    point = ["audit", "checkpoint", "--store", str(store_path), "--sign", "qa-ortiz"]
    capsys.readouterr()
    assert cli(*point, "--out", str(tmp_path / "a.json")) == 1
    assert (
        capsys.readouterr().err == "cdss: no key for clinician qa-ortiz; create one with `cdss keys init`\n"
    )
    keys.create("qa-ortiz", "R. Ortiz (QA)", PASSPHRASE)
    assert cli(*point, "--out", str(tmp_path / "b.json")) == 2
    assert capsys.readouterr().err == (
        "cdss: this asks for a passphrase in a terminal, and stdin is not one; "
        "set CDSS_PASSPHRASE to unlock qa-ortiz's key without a prompt\n"
    )
    assert not (tmp_path / "a.json").exists() and not (tmp_path / "b.json").exists()


def test_a_key_not_registered_in_this_store_is_refused_then_registered(
    tmp_path: Path, passphrase: str, answers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = new_store(tmp_path / "a.sqlite3"), tmp_path / "b.sqlite3"
    cli("keys", "init", "--clinician", "dr-lee", "--name", "Dr A. Lee", "--store", str(first))
    assert run_walk(second, answers, "--sign") == 1
    assert "is not registered in" in capsys.readouterr().err
    assert cli("keys", "register", "--clinician", "dr-lee", "--store", str(second)) == 0
    assert run_walk(second, answers, "--sign") == 0


def test_library_signer(store_path: Path) -> None:
    made = keys.create("dr-lee", "Dr A. Lee", PASSPHRASE)
    with open_store(store_path) as store:
        keys.register(store, made)
    record(store_path, [Plan(), Plan()], signer_key=keys.unlock("dr-lee", PASSPHRASE))
    with pytest.raises(InvalidInput, match="wrong passphrase"):
        keys.unlock("dr-lee", "something else")
    with pytest.raises(NotFound):
        keys.info("dr-kim")
    with pytest.raises(UsageError, match="passphrase is needed"):
        keys.unlock("dr-lee")
    with pytest.raises(InvalidInput, match="at least 8"):
        keys.create("dr-kim", "Dr Kim", "short")


def test_a_forged_signature_is_found(store_path: Path) -> None:
    import base64

    import rfc8785

    from cdss.events import hash_body
    from tests.audit_records import event_at, tamper

    made = keys.create("dr-lee", "Dr A. Lee", PASSPHRASE)
    with open_store(store_path) as store:
        keys.register(store, made)
    record(store_path, [Plan()], signer_key=keys.unlock("dr-lee", PASSPHRASE))
    db = tamper(store_path)
    (last,) = db.execute("SELECT max(seq) FROM events").fetchone()
    event = event_at(db, last)
    assert event["type"] == "session-signed"
    data = dict(event["data"])  # type: ignore[call-overload]
    data["signature"] = base64.b64encode(bytes(64)).decode()
    body: dict[str, Any] = {k: v for k, v in event.items() if k != "hash"} | {"data": data}
    forged = body | {"hash": hash_body(body)}
    db.execute(
        "UPDATE events SET event = ?, hash = ? WHERE seq = ?",
        (bytes(rfc8785.dumps(forged)).decode(), forged["hash"], last),
    )
    db.close()
    loaded = catalog()
    source = StoreSource(store_path, loaded)
    result = verify(source)
    source.close()
    assert [(f.seq, f.problem) for f in result.findings] == [
        (last, "signature does not verify with the registered key")
    ]
    assert result.signatures == 0


def test_a_signed_checkpoint_names_its_signer_and_refuses_a_forgery(
    store_path: Path, tmp_path: Path, passphrase: str, answers: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's 'signed checkpoint': only the auditor's key can vouch for the head it names."""
    assert run_walk(store_path, answers) == 0
    assert cli("keys", "init", "--clinician", "qa-ortiz", "--name", "R. Ortiz (QA)") == 0
    point = tmp_path / "head.json"
    assert (
        cli("audit", "checkpoint", "--out", str(point), "--store", str(store_path), "--sign", "qa-ortiz") == 0
    )
    assert "signed by R. Ortiz (QA)" in capsys.readouterr().out
    against = ["audit", "verify", "--store", str(store_path), "--against", str(point)]
    assert cli(*against, "--checklists", str(CATALOG_FOLDER)) == 0
    assert "the key this machine holds for qa-ortiz" in capsys.readouterr().out

    # The signer's printed name is covered too.
    from cdss.catalog import content_hash

    written = json.loads(point.read_text())
    point.write_text(json.dumps({**written, "signature": {**written["signature"], "name": "Someone Else"}}))
    assert cli(*against) == 1
    assert "checkpoint signature does not verify" in capsys.readouterr().err

    # A tamperer who cuts the tail and rewrites the checkpoint to an earlier head, digest and all,
    # cannot make the signature cover it.
    body = {k: v for k, v in written.items() if k not in ("digest", "signature")}
    body["seq"] -= 1
    point.write_text(json.dumps({**body, "digest": content_hash(body), "signature": written["signature"]}))
    assert cli(*against) == 1
    assert "checkpoint signature does not verify" in capsys.readouterr().err

    # Re-signed with another key under the auditor's id: refused, the machine knows the real key.
    other = tmp_path / "other-keys"
    forged = keys.unlock("qa-ortiz", folder=_impostor(other))
    from cdss.audit.checkpoint import take

    point.unlink()
    take(store_path, point, forged)
    assert cli(*against) == 1
    assert "not with qa-ortiz's key on this machine" in capsys.readouterr().err


def _impostor(folder: Path) -> Path:
    keys.create("qa-ortiz", "R. Ortiz (QA)", PASSPHRASE, folder=folder)
    return folder
