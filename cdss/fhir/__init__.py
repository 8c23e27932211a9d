"""FHIR exchange: checklists as Questionnaires, records as QuestionnaireResponses with Provenance.

Hospitals exchange forms and their completion as FHIR R4 resources (the
Structured Data Capture way), so an EHR or a form renderer such as LHC-Forms
can show a cdss checklist and its records without knowing cdss. The resources
are built here as plain JSON; ``cdss.fhir.models`` checks each one against the
R4B models of ``fhir.resources`` (the optional ``fhir`` extra) before it is
written or after it is read.

Every code and identifier cdss puts into a resource lives under one of the
``urn:cdss:`` systems below, so a receiving system can tell them apart from
its own, and ``cdss import fhir response`` can read them back.
"""

from __future__ import annotations

CHECKLIST_URL = "urn:cdss:checklist:"
"""``Questionnaire.url`` is this prefix and the checklist id; ``version`` the checklist version."""
CONTENT_HASH = "urn:cdss:content-hash"
"""The system of the Questionnaire identifier whose value is the checklist's sha256 content hash."""
STATUS = "urn:cdss:answer-status"
"""Codes done / not-applicable / not-done: the answer to every checklist item."""
NOT_DONE_REASON = "urn:cdss:not-done-reason"
"""The checklist's not-done reason codes."""
ROUTE = "urn:cdss:route"
POPULATION = "urn:cdss:population"
PHASE = "urn:cdss:phase"
PAUSE = "urn:cdss:pause"
SOURCE = "urn:cdss:fhir:source"
"""Complex extension on an item: one per source (document + heading, or reference + section)."""
SESSION = "urn:cdss:session"
SUBJECT = "urn:cdss:subject"
CLINICIAN = "urn:cdss:clinician"
EVENT = "urn:cdss:event"
SIGNING_KEY = "urn:cdss:fhir:signing-key"
"""Extension on a Provenance signature: the signing key's id (sha256 of the Ed25519 public key)."""

ROUTE_LINK = "context/route"
POPULATIONS_LINK = "context/populations"

STATUS_DISPLAY = {"done": "Done", "not-applicable": "Not applicable", "not-done": "Not done"}


def checklist_url(checklist_id: str) -> str:
    return f"{CHECKLIST_URL}{checklist_id}"


def reason_link(item_id: str) -> str:
    """The linkId of an item's not-done reason question."""
    return f"{item_id}/reason"


def reason_text_link(item_id: str) -> str:
    """The linkId of the short text that goes with the reason ``other``."""
    return f"{item_id}/reason-text"
