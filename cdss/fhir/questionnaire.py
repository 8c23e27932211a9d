"""A checklist version as a FHIR R4 Questionnaire (SDC style), readable by any form renderer.

The shape, documented in the README's FHIR section:

- ``url`` = ``urn:cdss:checklist:<id>``, ``version`` = the checklist version, the
  content hash as an identifier, status ``active``;
- the run context first: ``context/route`` (one choice) and ``context/populations``
  (a repeating choice), so every ``applies_when`` becomes ``enableWhen`` with
  ``enableBehavior: any`` and a renderer shows exactly the items ``cdss plan``
  gives for the context entered (a condition on both routes and populations
  nests a group holding the route condition around the population one);
- one group per section, its phase (and pause) as ``code``; in it one ``choice``
  question per item (``linkId`` = the item id) answered done / not applicable /
  not done, the ``why`` as an SDC help child, the not-done reason as a child
  question enabled by ``not-done``, and a short text enabled by the reason ``other``;
- sources as ``urn:cdss:fhir:source`` extensions on each item, and the
  documents and references as ``cqf-relatedArtifact`` on the Questionnaire.
"""

from __future__ import annotations

import re
from typing import Any

from cdss import fhir
from cdss.checklist import (
    REASON_NEEDING_TEXT,
    Checklist,
    Condition,
    DocumentSource,
    Item,
    ReferenceSource,
    Section,
)
from cdss.plan import accepted_populations, population_title

ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
ITEM_CONTROL_CODES = "http://hl7.org/fhir/questionnaire-item-control"
RELATED_ARTIFACT = "http://hl7.org/fhir/StructureDefinition/cqf-relatedArtifact"
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
REASON_TEXT_LIMIT = 200


def resource_id(checklist: Checklist, digest: str) -> str:
    """``<id>-<version>`` when that is a valid FHIR id, else the content hash (also 64 characters)."""
    readable = f"{checklist.id}-{checklist.version}"
    return readable if _FHIR_ID.fullmatch(readable) else digest


def computable_name(checklist_id: str) -> str:
    """FHIR's machine name (``[A-Z][A-Za-z0-9_]*``): ``treatment-session`` -> ``TreatmentSession``."""
    name = "".join(part.capitalize() for part in checklist_id.split("-"))
    return name if name[:1].isalpha() else f"Checklist{name}"


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    found = {"system": system, "code": code}
    if display is not None:
        found["display"] = display
    return found


def _control(code: str) -> dict[str, Any]:
    return {
        "url": ITEM_CONTROL,
        "valueCodeableConcept": {"coding": [coding(ITEM_CONTROL_CODES, code)]},
    }


def _when(question: str, system: str, codes: list[str]) -> dict[str, Any]:
    return {
        "enableWhen": [
            {"question": question, "operator": "=", "answerCoding": coding(system, code)} for code in codes
        ],
        "enableBehavior": "any",
    }


def conditioned(element: dict[str, Any], condition: Condition | None) -> dict[str, Any]:
    """``element`` enabled only when ``condition`` holds, as ``cdss.plan.applies`` reads it.

    A route list and a population list each become one ``any`` list; when both
    are present (they must both hold) the route condition moves to a wrapping
    group, since one ``enableWhen`` list is either all-of or any-of.
    """
    if condition is None:
        return element
    if condition.routes is not None and condition.populations is not None:
        inner = {**element, **_when(fhir.POPULATIONS_LINK, fhir.POPULATION, condition.populations)}
        return {
            "linkId": f"{element['linkId']}/when-route",
            "type": "group",
            **_when(fhir.ROUTE_LINK, fhir.ROUTE, condition.routes),
            "item": [inner],
        }
    if condition.routes is not None:
        return {**element, **_when(fhir.ROUTE_LINK, fhir.ROUTE, condition.routes)}
    assert condition.populations is not None
    return {**element, **_when(fhir.POPULATIONS_LINK, fhir.POPULATION, condition.populations)}


def _source_extension(source: DocumentSource | ReferenceSource) -> dict[str, Any]:
    parts = (
        (("document", source.document), ("heading", source.heading))
        if isinstance(source, DocumentSource)
        else (("reference", source.reference), ("section", source.section))
    )
    return {"url": fhir.SOURCE, "extension": [{"url": key, "valueString": value} for key, value in parts]}


def _item(checklist: Checklist, item: Item) -> dict[str, Any]:
    status_options = [{"valueCoding": coding(fhir.STATUS, s, d)} for s, d in fhir.STATUS_DISPLAY.items()]
    reason_options = [
        {"valueCoding": coding(fhir.NOT_DONE_REASON, r.code, r.label)} for r in checklist.reasons
    ]
    children: list[dict[str, Any]] = [
        {
            "linkId": f"{item.id}/why",
            "type": "display",
            "text": item.why,
            "extension": [_control("help")],
        },
        {
            "linkId": fhir.reason_link(item.id),
            "text": "Reason not done",
            "type": "choice",
            "required": True,
            "extension": [_control("radio-button")],
            "enableWhen": [
                {"question": item.id, "operator": "=", "answerCoding": coding(fhir.STATUS, "not-done")}
            ],
            "answerOption": reason_options,
        },
    ]
    if any(r.code == REASON_NEEDING_TEXT for r in checklist.reasons):
        children.append(
            {
                "linkId": fhir.reason_text_link(item.id),
                "text": "Short reason (no clinical findings)",
                "type": "string",
                "required": True,
                "maxLength": REASON_TEXT_LIMIT,
                "enableWhen": [
                    {
                        "question": fhir.reason_link(item.id),
                        "operator": "=",
                        "answerCoding": coding(fhir.NOT_DONE_REASON, REASON_NEEDING_TEXT),
                    }
                ],
            }
        )
    question = {
        "linkId": item.id,
        "text": item.text,
        "type": "choice",
        "required": True,
        "extension": [_control("radio-button"), *(_source_extension(s) for s in item.sources)],
        "answerOption": status_options,
        "item": children,
    }
    return conditioned(question, item.applies_when)


def _section(checklist: Checklist, section: Section) -> dict[str, Any]:
    codes = []
    if section.phase is not None:
        codes.append(coding(fhir.PHASE, section.phase, section.phase.capitalize()))
    if section.pause is not None:
        titles = {p.id: p.title for p in checklist.pauses or ()}
        codes.append(coding(fhir.PAUSE, section.pause, titles.get(section.pause)))
    group: dict[str, Any] = {"linkId": f"section/{section.id}", "text": section.title, "type": "group"}
    if codes:
        group["code"] = codes
    group["item"] = [_item(checklist, item) for item in section.items]
    return conditioned(group, section.applies_when)


def _context_items(checklist: Checklist) -> list[dict[str, Any]]:
    found = []
    if checklist.context.routes:
        found.append(
            {
                "linkId": fhir.ROUTE_LINK,
                "text": "Route of administration",
                "type": "choice",
                "required": True,
                "extension": [_control("radio-button")],
                "answerOption": [
                    {"valueCoding": coding(fhir.ROUTE, o.id, o.title)} for o in checklist.context.routes
                ],
            }
        )
    # Every checklist accepts every clinic-wide population (cdss.plan.POPULATIONS), in declare's order.
    found.append(
        {
            "linkId": fhir.POPULATIONS_LINK,
            "text": "Special populations that apply",
            "type": "choice",
            "repeats": True,
            "extension": [_control("check-box")],
            "answerOption": [
                {"valueCoding": coding(fhir.POPULATION, p, population_title(checklist, p))}
                for p in accepted_populations(checklist)
            ],
        }
    )
    return found


def _related_artifacts(checklist: Checklist) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {
            "url": RELATED_ARTIFACT,
            "valueRelatedArtifact": {
                "type": "derived-from",
                "label": document.id,
                "display": document.title,
                "citation": f"{document.file} (sha256 {document.sha256})",
            },
        }
        for document in checklist.documents
    ]
    for reference in checklist.references or ():
        artifact: dict[str, Any] = {
            "type": "citation",
            "label": reference.id,
            "display": reference.title,
            "citation": f"{reference.issuer}. {reference.title}. {reference.version}. Sections: "
            + "; ".join(f"{s.id} {s.title}" for s in reference.sections),
        }
        url = reference.url or (f"https://doi.org/{reference.doi}" if reference.doi else None)
        if url:
            artifact["url"] = url
        found.append({"url": RELATED_ARTIFACT, "valueRelatedArtifact": artifact})
    return found


def questionnaire(checklist: Checklist, digest: str) -> dict[str, Any]:
    """The Questionnaire for one checklist version whose content hash is ``digest``."""
    return {
        "resourceType": "Questionnaire",
        "id": resource_id(checklist, digest),
        "extension": _related_artifacts(checklist),
        "url": fhir.checklist_url(checklist.id),
        "identifier": [{"system": fhir.CONTENT_HASH, "value": digest}],
        "version": checklist.version,
        "name": computable_name(checklist.id),
        "title": checklist.title,
        "status": "active",
        "subjectType": ["Patient"],
        "description": checklist.summary,
        "item": [*_context_items(checklist), *(_section(checklist, s) for s in checklist.sections)],
    }


def canonical(checklist: Checklist) -> str:
    """What a QuestionnaireResponse names: ``url|version``."""
    return f"{fhir.checklist_url(checklist.id)}|{checklist.version}"
