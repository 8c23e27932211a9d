"""After any sequence of steps — legal, illegal, with the store closed and reopened
between them — the completion record equals a simple model of what was accepted."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from cdss.catalog import Catalog
from cdss.errors import InvalidInput, SessionStateError
from cdss.session import Session
from cdss.store.sqlite import SqliteStore

CATALOG = Catalog([Path(__file__).parent / "examples" / "valid"])
APPLICABLE = ["setting-confirmed", "infusion-monitoring-planned"]
ITEM_IDS = [*APPLICABLE, "older-adult-side-effects-reviewed", "no-such-item"]
CODES = ["patient-declined", "deferred", "not-possible-in-setting", "other"]

items = st.sampled_from(ITEM_IDS)
statuses = st.sampled_from(["done", "not-applicable", "not-done", "maybe"])
reasons = st.sampled_from([None, *CODES, "forgot"])
texts = st.sampled_from([None, "pump unavailable"])


def acceptable(item: str, status: str, reason: str | None, text: str | None) -> bool:
    """The model's own reading of the rules, written independently of cdss.session."""
    if item not in APPLICABLE or status not in ("done", "not-applicable", "not-done"):
        return False
    if status != "not-done":
        return reason is None and text is None
    if reason not in CODES:
        return False
    return (text is not None) if reason == "other" else text is None


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp())
        self.store = SqliteStore(self.folder / "records.sqlite3")
        self.status = "open"
        self.history: dict[str, list[tuple[str, str | None, str | None]]] = {}

    @initialize()
    def start(self) -> None:
        self.session = Session.start(
            self.store,
            "example-walk",
            subject="S-111111117",
            clinician="dr-lee",
            route="intravenous",
            catalog=CATALOG,
        )

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    @rule(item=items, status=statuses, reason=reasons, text=texts)
    def answer(self, item: str, status: str, reason: str | None, text: str | None) -> None:
        legal = self.status == "open" and item not in self.history and acceptable(item, status, reason, text)
        try:
            self.session.answer(item, status, reason, text)  # type: ignore[arg-type]
        except (InvalidInput, SessionStateError):
            assert not legal
        else:
            assert legal
            self.history[item] = [(status, reason, text)]

    @rule(item=items, status=statuses, reason=reasons, text=texts)
    def amend(self, item: str, status: str, reason: str | None, text: str | None) -> None:
        legal = item in self.history and acceptable(item, status, reason, text)
        try:
            self.session.amend(item, status, explanation="correction", reason=reason, reason_text=text)  # type: ignore[arg-type]
        except (InvalidInput, SessionStateError):
            assert not legal
        else:
            assert legal
            self.history[item].append((status, reason, text))

    @rule()
    def complete(self) -> None:
        legal = self.status == "open" and set(self.history) == set(APPLICABLE)
        try:
            self.session.complete()
        except SessionStateError:
            assert not legal
        else:
            assert legal
            self.status = "completed"

    @rule()
    def abandon(self) -> None:
        legal = self.status == "open"
        try:
            self.session.abandon("patient left")
        except SessionStateError:
            assert not legal
        else:
            assert legal
            self.status = "abandoned"

    @rule()
    def reopen(self) -> None:
        session_id = self.session.id
        self.store.close()
        self.store = SqliteStore(self.folder / "records.sqlite3")
        self.session = Session.load(self.store, session_id, catalog=CATALOG)

    @invariant()
    def record_matches_the_model(self) -> None:
        if not hasattr(self, "session"):
            return
        record = self.session.record()
        assert record.status == self.status
        assert [i.id for i in record.items] == APPLICABLE
        for item in record.items:
            recorded = [(a.status, a.reason, a.reason_text) for a in item.history]
            assert recorded == self.history.get(item.id, [])
        assert Session.load(self.store, self.session.id, catalog=CATALOG).record() == record


SessionMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=15, deadline=None)
test_session_machine = SessionMachine.TestCase
