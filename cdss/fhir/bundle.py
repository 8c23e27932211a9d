"""What the FHIR commands write: a Questionnaire, or a ``collection`` Bundle of records.

Each function returns resources already checked against the R4B models, so
a caller only serialises them (``to_bytes``) and writes them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cdss.catalog import Catalog, content_hash
from cdss.checklist import Checklist
from cdss.events import now
from cdss.fhir import models
from cdss.fhir.questionnaire import questionnaire
from cdss.fhir.response import entry, session_resources
from cdss.session import Session
from cdss.store import Store


def checklist_questionnaire(checklist: Checklist) -> dict[str, Any]:
    models.require()
    return models.check(questionnaire(checklist, content_hash(checklist.to_json())))


def collection(resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A ``collection`` Bundle: resources kept together, with no transaction semantics."""
    return models.check(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "timestamp": now(),
            "entry": [entry(models.check(r)) for r in resources],
        }
    )


def response_bundle(session: Session) -> dict[str, Any]:
    """One session: its QuestionnaireResponse first, then a Provenance per signature and amendment."""
    models.require()
    return collection(session_resources(session))


def records_bundle(store: Store, sessions: Iterable[str], catalog: Catalog) -> dict[str, Any]:
    """The Questionnaires the sessions were pinned to, then each session's response and Provenances."""
    models.require()
    loaded = [Session.load(store, session, catalog=catalog) for session in sessions]
    used: dict[tuple[str, str], Checklist] = {}
    for session in loaded:
        used.setdefault((session.checklist.id, session.checklist.version), session.checklist)
    resources = [questionnaire(c, content_hash(c.to_json())) for _, c in sorted(used.items())]
    for session in loaded:
        resources += session_resources(session)
    return collection(resources)


def write_audit_bundle(store: Store, sessions: list[str], catalog: Catalog, folder: Path) -> None:
    """``fhir-bundle.json`` in an audit bundle's folder: the selected sessions' records as FHIR."""
    from cdss import files
    from cdss.audit.bundle import FHIR

    files.write_bytes(folder / FHIR, to_bytes(records_bundle(store, sessions, catalog)))


def to_bytes(resource: dict[str, Any]) -> bytes:
    return (json.dumps(resource, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
