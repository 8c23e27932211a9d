"""Building real stores for the audit tests: sessions through the real Session API, on real SQLite."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cdss.catalog import Catalog
from cdss.session import Session
from cdss.store.sqlite import open_store
from cdss.subject import check_character
from tests.conftest import EXAMPLES

if TYPE_CHECKING:
    from cdss.keys import SigningKey

CATALOG_FOLDER = EXAMPLES / "valid"


def catalog() -> Catalog:
    return Catalog.default([CATALOG_FOLDER])


@dataclass(frozen=True)
class Plan:
    """One session to record: how far it goes."""

    ending: str = "completed"  # completed, abandoned or open
    amend: bool = False
    older_adult: bool = False


def record(path: Path, plans: list[Plan], *, signer_key: SigningKey | None = None) -> list[str]:
    """Record the sessions in order; returns their ids."""
    from cdss.keys import signer

    ids = []
    with open_store(path) as store:
        for n, plan in enumerate(plans):
            populations = ["older-adults"] if plan.older_adult else []
            session = Session.start(
                store,
                "example-walk",
                catalog=catalog(),
                subject=f"S-{n:08d}{check_character(f'{n:08d}')}",
                clinician="dr-lee" if n % 2 == 0 else "dr-kim",
                route="intravenous",
                populations=populations,
            )
            ids.append(session.id)
            session.answer("setting-confirmed", "done")
            session.answer("infusion-monitoring-planned", "not-done", reason="deferred")
            if plan.amend:
                session.amend(
                    "setting-confirmed", "not-done", explanation="wrong key", reason="patient-declined"
                )
            if plan.ending == "open":
                continue
            if plan.ending == "abandoned":
                session.abandon("patient left")
                continue
            if plan.older_adult:
                session.answer("older-adult-side-effects-reviewed", "done")
            sign = (
                signer(session, signer_key)
                if signer_key is not None and session.clinician == "dr-lee"
                else None
            )
            session.complete(sign)
    return ids


def tamper(path: Path) -> sqlite3.Connection:
    """A plain connection with the append-only triggers dropped, as a tamperer would."""
    db = sqlite3.connect(path, isolation_level=None)
    for table in ("events", "keys"):
        for verb in ("update", "delete"):
            db.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    return db


def rows(db: sqlite3.Connection) -> list[tuple[int, str, str, str, str]]:
    return list(db.execute("SELECT seq, session, type, hash, event FROM events ORDER BY seq"))


def event_at(db: sqlite3.Connection, seq: int) -> dict[str, object]:
    (text,) = db.execute("SELECT event FROM events WHERE seq = ?", (seq,)).fetchone()
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


def cli(*args: str) -> int:
    """Run ``cdss ARGS`` in-process through the real entry point; its exit code."""
    from cdss.cli.main import run

    try:
        run(list(args))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0
