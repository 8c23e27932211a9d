"""Sessions in every state, for every shipped checklist version, recorded through the real Session API."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from cdss import keys
from cdss.catalog import Catalog
from cdss.checklist import REASON_NEEDING_TEXT, Checklist
from cdss.keys import SigningKey
from cdss.plan import RunContext, declare, plan
from cdss.record import Record
from cdss.session import Session
from cdss.store import Store
from tests.conftest import cdss_command

STATES = ("open", "completed", "signed", "amended", "signed-amended", "abandoned")
PASSPHRASE = "correct horse battery"


def shipped() -> list[Checklist]:
    """Every shipped checklist version: the tests follow the catalog, never a list of versions."""
    catalog = Catalog.default()
    return [catalog.load(entry.ref) for entry in catalog.entries()]


def busiest_context(checklist: Checklist) -> RunContext:
    """The first route and the population that adds the most items: as much of the form as possible."""
    route = checklist.context.routes[0].id if checklist.context.routes else None
    base = len(plan(checklist, declare(checklist, route)))
    best: tuple[int, list[str]] = (0, [])
    for option in checklist.context.populations:
        extra = len(plan(checklist, declare(checklist, route, [option.id]))) - base
        if extra > best[0]:
            best = (extra, [option.id])
    return declare(checklist, route, best[1])


def both_conditions_checklist(folder: Path) -> Checklist:
    """The example checklist with an item and a section that need a route *and* a population.

    No shipped checklist has such a condition yet; the Questionnaire nests a
    group for it, which this checklist exercises.
    """
    import json

    from cdss.catalog import load_file
    from tests.conftest import EXAMPLES

    document = json.loads((EXAMPLES / "valid" / "example-walk" / "1.0.0.json").read_text(encoding="utf-8"))
    first = document["sections"][0]["items"][0]
    document["sections"][0]["items"].append(
        {
            **first,
            "id": "older-adult-infusion-checked",
            "applies_when": {"routes": ["intravenous"], "populations": ["older-adults"]},
        }
    )
    document["sections"].append(
        {
            "id": "esketamine-older-adults",
            "title": "Esketamine for an older adult",
            "applies_when": {"routes": ["intranasal-esketamine"], "populations": ["older-adults"]},
            "items": [{**first, "id": "older-adult-spray-checked"}],
        }
    )
    path = folder / "example-walk" / "1.0.0.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return load_file(path)


def make_key(folder: Path, clinician: str = "dr-lee") -> SigningKey:
    keys.create(clinician, "Dr Example Lee", PASSPHRASE, folder=folder)
    return keys.unlock(clinician, PASSPHRASE, folder=folder)


def answer_every(session: Session, *, upto: int | None = None) -> None:
    """Answers cycling through every status and reason, the reason 'other' with its text."""
    reasons = [r.code for r in session.checklist.reasons]
    for n, planned in enumerate(session.planned[:upto]):
        kind = n % 4
        if kind in (0, 1) or not reasons:
            session.answer(planned.item.id, "done" if kind == 0 else "not-applicable")
        elif kind == 2:
            session.answer(planned.item.id, "not-done", reasons[0])
        else:
            text = "short reason" if reasons[-1] == REASON_NEEDING_TEXT else None
            session.answer(planned.item.id, "not-done", reasons[-1], text)


def record_state(
    store: Store, checklist: Checklist, state: str, key: SigningKey | None, subject: str = "S-7F3K2M9Q1"
) -> Session:
    """One session of ``checklist`` left in ``state`` (see STATES)."""
    context = busiest_context(checklist)
    session = Session.start(
        store,
        checklist,
        subject=subject,
        clinician="dr-lee",
        route=context.route,
        populations=context.populations,
    )
    if state in ("open", "abandoned"):
        answer_every(session, upto=max(1, len(session.planned) // 2))
        first = session.planned[0].item.id
        session.amend(first, "not-applicable", explanation="pressed the wrong key", actor="dr-kim")
        if state == "abandoned":
            session.abandon("patient left before the end")
        return session
    answer_every(session)
    signed = state.startswith("signed")
    session.complete(keys.signer(session, key) if signed and key is not None else None)
    if state.endswith("amended"):
        last = session.planned[-1].item.id
        session.amend(last, "done", explanation="documented later the same day", actor="dr-kim")
    return session


def completion(record: Record) -> dict[str, Any]:
    """What an import must reproduce: checklist, who, context, and each item's current answer."""
    return {
        "checklist": [record.checklist.id, record.checklist.version, record.checklist_hash],
        "subject": record.subject,
        "clinician": record.clinician,
        "context": record.context.to_json(),
        "status": record.status,
        "items": [
            [i.id, i.status, i.current.reason, i.current.reason_text] if i.current else [i.id, None]
            for i in record.items
        ],
    }


def cdss(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The installed command, as a user runs it."""
    result = subprocess.run([cdss_command(), *args], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result
