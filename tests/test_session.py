"""Sessions: legal steps, refused steps, resuming on the pinned version, signatures, the record."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cdss.catalog import Catalog
from cdss.errors import ContextError, IntegrityError, InvalidInput, NotFound, SessionStateError, UsageError
from cdss.events import CompletedEvent, Signed, check_chain
from cdss.keys import KeyInfo, change_setting, register
from cdss.session import Session, check_subject, find_session, signed_payload
from cdss.store import REQUIRE_SIGNATURES
from cdss.store.sqlite import SqliteStore, open_store
from cdss.subject import PERSONAL_LOOKING, new_code

EXAMPLES = Path(__file__).parent / "examples" / "valid"
CATALOG = Catalog([EXAMPLES])
ITEMS = ["setting-confirmed", "infusion-monitoring-planned", "older-adult-side-effects-reviewed"]


@pytest.fixture
def store(store_path: Path) -> Iterator[SqliteStore]:
    with open_store(store_path) as opened:
        yield opened


def start(store: SqliteStore, **overrides: object) -> Session:
    options: dict[str, object] = {
        "subject": "S-7F3K2M9Q1",
        "clinician": "dr-lee",
        "route": "intravenous",
        "populations": ["older-adults"],
        "catalog": CATALOG,
    }
    options.update(overrides)
    return Session.start(store, "example-walk", **options)  # type: ignore[arg-type]


def test_start_pins_version_hash_and_context(store: SqliteStore) -> None:
    session = start(store, populations=[])
    assert [p.item.id for p in session.planned] == ITEMS[:2]
    first = next(store.events(session.id))
    assert first.data.checklist.version == "1.0.0"  # type: ignore[union-attr]
    assert len(first.data.checklist.hash) == 64  # type: ignore[union-attr]
    assert session.status == "open"
    assert len(session.id) == 32


def test_start_from_a_path(store: SqliteStore) -> None:
    session = Session.start(
        store,
        EXAMPLES / "example-walk" / "1.0.0.json",
        subject="S-111111117",
        clinician="dr-lee",
        route="intranasal-esketamine",
    )
    assert [p.item.id for p in session.planned] == ["setting-confirmed"]


def test_a_full_walk_records_every_answer(store: SqliteStore) -> None:
    session = start(store)
    session.answer(ITEMS[0], "done")
    session.answer(ITEMS[1], "not-done", reason="other", reason_text=" pump unavailable ")
    session.answer(ITEMS[2], "not-applicable")
    session.complete()
    record = session.record()
    assert record.status == "completed"
    assert [(i.id, i.status) for i in record.items] == [
        (ITEMS[0], "done"),
        (ITEMS[1], "not-done"),
        (ITEMS[2], "not-applicable"),
    ]
    assert record.items[1].current is not None
    assert record.items[1].current.reason_text == "pump unavailable"
    assert record.counts() == {"done": 1, "not-applicable": 1, "not-done": 1, "unanswered": 0}
    assert record.ended_at is not None
    assert list(check_chain(store.events())) == []
    assert Session.load(store, session.id, catalog=CATALOG).record() == record


def test_amendments_keep_the_original(store: SqliteStore) -> None:
    session = start(store)
    original = session.answer(ITEMS[0], "done")
    amendment = session.amend(ITEMS[0], "not-done", reason="deferred", explanation="pressed the wrong key")
    assert amendment.data.corrects == original.hash  # type: ignore[union-attr]
    item = session.record().items[0]
    assert item.status == "not-done"
    assert [a.status for a in item.history] == ["done", "not-done"]
    assert item.history[1].explanation == "pressed the wrong key"
    assert item.to_json()["amended"] is True


def test_amending_after_completion_by_another_clinician(store: SqliteStore) -> None:
    session = start(store, populations=[])
    session.answer(ITEMS[0], "done")
    session.answer(ITEMS[1], "done")
    session.complete()
    session.amend(
        ITEMS[1], "not-done", reason="patient-declined", explanation="late correction", actor="dr-kim"
    )
    record = Session.load(store, session.id, catalog=CATALOG).record()
    assert record.status == "completed"
    assert record.items[1].current is not None
    assert record.items[1].current.actor == "dr-kim"


@pytest.mark.parametrize(
    "case",
    [
        ("no-such-item", "done", None, None, "no item 'no-such-item'"),
        ("older-adult-side-effects-reviewed", "done", None, None, "does not apply"),
        (ITEMS[0], "maybe", None, None, "is not one of"),
        (ITEMS[0], "not-done", None, None, "needs a reason"),
        (ITEMS[0], "not-done", "forgot", None, "'forgot' is not one of"),
        (ITEMS[0], "not-done", "other", None, "needs a short text"),
        (ITEMS[0], "not-done", "other", "   ", "needs a short text"),
        (ITEMS[0], "not-done", "deferred", "because", "only with reason 'other'"),
        (ITEMS[0], "done", "deferred", None, "only for not-done"),
        (ITEMS[0], "not-done", "other", "x" * 201, "the limit is 200"),
    ],
)
def test_bad_answers_are_refused_and_nothing_is_written(
    store: SqliteStore, case: tuple[str, str, str | None, str | None, str]
) -> None:
    item, status, reason, text, message = case
    session = start(store, populations=[])
    before = store.head()
    with pytest.raises(InvalidInput, match=message):
        session.answer(item, status, reason=reason, reason_text=text)  # type: ignore[arg-type]
    assert store.head() == before


def test_illegal_transitions(store: SqliteStore) -> None:
    session = start(store, populations=[])
    with pytest.raises(SessionStateError, match="no answer to amend"):
        session.amend(ITEMS[0], "done", explanation="x")
    session.answer(ITEMS[0], "done")
    with pytest.raises(SessionStateError, match="already answered"):
        session.answer(ITEMS[0], "not-applicable")
    with pytest.raises(SessionStateError, match="1 applicable item"):
        session.complete()
    with pytest.raises(InvalidInput, match="explanation is required"):
        session.amend(ITEMS[0], "done", explanation=" ")
    session.abandon("patient left")
    attempts: list[Callable[[], object]] = [
        lambda: session.answer(ITEMS[1], "done"),
        session.complete,
        lambda: session.abandon("again"),
    ]
    for attempt in attempts:
        with pytest.raises(SessionStateError, match="is abandoned"):
            attempt()
    record = session.record()
    assert (record.status, record.abandon_reason) == ("abandoned", "patient left")


def test_bad_context_subject_and_clinician(store: SqliteStore) -> None:
    with pytest.raises(ContextError, match="unknown route"):
        start(store, route="oral")
    with pytest.raises(ContextError, match="unknown population"):
        start(store, populations=["pets"])
    with pytest.raises(InvalidInput, match="clinician id"):
        start(store, clinician="Dr Lee")
    with pytest.raises(NotFound):
        Session.start(store, "no-such-checklist", subject="S-111111117", clinician="dr-lee", catalog=CATALOG)
    assert store.head()[0] == 0


CLINIC = "[A-Za-z0-9][A-Za-z0-9._:+/@ -]*"
"""A careless clinic pattern: the personal-data checks still hold under it."""


@pytest.mark.parametrize("subject", [*PERSONAL_LOOKING, "S-7F3K2", "S-7F3K2M9QE", "s-7f3k2m9q1"])
def test_by_default_only_issued_codes_are_accepted(subject: str) -> None:
    with pytest.raises(InvalidInput, match="cdss subject new"):
        check_subject(subject)


@pytest.mark.parametrize(
    ("subject", "why"),
    [
        ("Jane Doe", "spaces"),
        ("jane.doe@example.org", "e-mail"),
        ("1985-03-12", "date"),
        ("12/03/1985", "date"),
        ("S-19850312", "date"),
        ("+44 20 7946 0958", "spaces"),
        ("+44-20-7946-0958", "phone"),
        ("0612345678", "phone"),
        ("x" * 65, "limit is 64"),
        ("", "empty"),
        ("S#1", "only letters"),
    ],
)
def test_personal_data_is_refused_under_a_clinic_pattern(subject: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        check_subject(subject, CLINIC)


@pytest.mark.parametrize("subject", ["study:K7Q2", "a1b2c3", "P.004512", "3f2a9c10-e29b-41d4"])
def test_opaque_references_are_accepted_under_a_clinic_pattern(subject: str) -> None:
    assert check_subject(subject, "[A-Za-z0-9][A-Za-z0-9._:-]*") == subject
    assert check_subject(new_code()) is not None


def test_find_session_by_prefix(store: SqliteStore) -> None:
    session = start(store)
    assert find_session(store, session.id[:6].upper()) == session.id
    with pytest.raises(UsageError, match="at least 6"):
        find_session(store, session.id[:5])
    with pytest.raises(NotFound, match="no session"):
        find_session(store, "ffffff" if not session.id.startswith("ffffff") else "eeeeee")


# --- resuming on the pinned version ----------------------------------------------------


def _folder_with_versions(tmp_path: Path) -> Path:
    folder = tmp_path / "checklists"
    shutil.copytree(EXAMPLES, folder)
    newer = json.loads((folder / "example-walk" / "1.0.0.json").read_text())
    newer["version"] = "1.1.0"
    newer["sections"][0]["items"].pop(0)
    (folder / "example-walk" / "1.1.0.json").write_text(json.dumps(newer))
    return folder


def test_resume_uses_the_pinned_version_after_a_newer_release(store: SqliteStore, tmp_path: Path) -> None:
    folder = _folder_with_versions(tmp_path)
    catalog = Catalog([folder])
    shutil.move(folder / "example-walk" / "1.1.0.json", tmp_path / "later.json")
    session = Session.start(
        store, "example-walk", subject="S-111111117", clinician="dr-lee", route="intravenous", catalog=catalog
    )
    shutil.move(tmp_path / "later.json", folder / "example-walk" / "1.1.0.json")
    resumed = Session.load(store, session.id, catalog=Catalog([folder]))
    assert resumed.checklist.version == "1.0.0"
    assert resumed.next_item() is not None
    assert resumed.next_item().item.id == "setting-confirmed"  # type: ignore[union-attr]


def test_resume_refuses_a_changed_released_version(store: SqliteStore, tmp_path: Path) -> None:
    folder = _folder_with_versions(tmp_path)
    session = Session.start(
        store,
        "example-walk@1.0.0",
        subject="S-111111117",
        clinician="dr-lee",
        route="intravenous",
        catalog=Catalog([folder]),
    )
    path = folder / "example-walk" / "1.0.0.json"
    changed = json.loads(path.read_text())
    changed["title"] = "Silently edited"
    path.write_text(json.dumps(changed))
    with pytest.raises(IntegrityError, match="must never change"):
        Session.load(store, session.id, catalog=Catalog([folder]))


def test_loading_an_unknown_session(store: SqliteStore) -> None:
    with pytest.raises(NotFound):
        Session.load(store, "0" * 32, catalog=CATALOG)


# --- signatures ----------------------------------------------------------------------


def _signer(store: SqliteStore, key: Ed25519PrivateKey | None = None) -> tuple[Ed25519PrivateKey, object]:
    key = key or Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key_id = hashlib.sha256(public).hexdigest()
    register(store, KeyInfo("dr-lee", "Dr A. Lee", key_id, public, ""))

    def sign(completed: CompletedEvent) -> Signed:
        meaning = "completed example-walk 1.0.0"
        payload = signed_payload(completed.hash, "Dr A. Lee", meaning, completed.at)
        signature = base64.b64encode(key.sign(payload)).decode()
        return Signed(
            signs=completed.hash, name="Dr A. Lee", meaning=meaning, key=key_id, signature=signature
        )

    return key, sign


def _answered_session(store: SqliteStore) -> Session:
    session = start(store, populations=[])
    session.answer(ITEMS[0], "done")
    session.answer(ITEMS[1], "done")
    return session


def test_required_signature_is_written_with_the_completion(store: SqliteStore) -> None:
    change_setting(store, REQUIRE_SIGNATURES, "on", "dr-lee", None)
    session = _answered_session(store)
    with pytest.raises(SessionStateError, match="requires a signature"):
        session.complete()
    _, sign = _signer(store)
    completed = session.complete(sign)  # type: ignore[arg-type]
    record = Session.load(store, session.id, catalog=CATALOG).record()
    assert record.status == "completed"
    assert [(s.name, s.signs, s.at) for s in record.signatures] == [
        ("Dr A. Lee", completed.hash, completed.at)
    ]
    assert list(check_chain(store.events())) == []


def test_a_bad_signature_records_nothing(store: SqliteStore) -> None:
    change_setting(store, REQUIRE_SIGNATURES, "on", "dr-lee", None)
    session = _answered_session(store)
    _, sign = _signer(store)

    def forged(completed: CompletedEvent) -> Signed:
        good = sign(completed)  # type: ignore[operator]
        return good.model_copy(update={"meaning": "something else"})  # type: ignore[no-any-return]

    before = store.head()
    with pytest.raises(IntegrityError, match="does not verify"):
        session.complete(forged)
    assert store.head() == before
    assert Session.load(store, session.id, catalog=CATALOG).status == "open"


def test_an_unregistered_key_records_nothing(store: SqliteStore, store_path: Path) -> None:
    session = _answered_session(store)
    with open_store(store_path.with_name("other.sqlite3")) as other:
        _, sign = _signer(other)
    before = store.head()
    with pytest.raises(IntegrityError, match="not registered"):
        session.complete(sign)  # type: ignore[arg-type]
    assert store.head() == before
