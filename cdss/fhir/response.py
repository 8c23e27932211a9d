"""A session's completion record as a QuestionnaireResponse, with a Provenance per signature and amendment.

The response mirrors its Questionnaire's item tree (FHIR requires it): the
context answers first, then each section group holding the answered items;
a not-done answer carries its reason (and the short text for ``other``) as
nested items. It shows each item's current answer; the corrections live in
the Provenance resources, one per amendment (who, when, why, which answer
it corrects) and one per signature (who, when, its meaning, the Ed25519
signature bytes, the key id and the completion event it signs).

The subject is an opaque identifier only, exactly as cdss holds it: never a
name. The resources go out together in a ``collection`` Bundle whose
references use the entries' ``urn:uuid`` full URLs.
"""

from __future__ import annotations

import uuid
from typing import Any

from cdss import fhir
from cdss.events import SignedEvent
from cdss.fhir.questionnaire import canonical, coding, questionnaire
from cdss.record import Answer, Record, RecordItem, Signature
from cdss.session import Session

_NAMESPACE = uuid.UUID("0b6f1d64-5a0e-5d1b-9c55-2f0e6f3b8a41")
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
SIGNATURE_TYPE = "urn:iso-astm:E1762-95:2013"
TARGET_ELEMENT = "http://hl7.org/fhir/StructureDefinition/targetElement"
STATUS_OF = {"open": "in-progress", "completed": "completed", "abandoned": "stopped"}


def full_url(resource_type: str, resource_id: str) -> str:
    """A stable ``urn:uuid`` for a resource, the same every time it is exported."""
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{resource_type}/{resource_id}')}"


def entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": full_url(resource["resourceType"], resource["id"]), "resource": resource}


def response_status(record: Record) -> str:
    """``amended`` when an answer was corrected after the session completed."""
    if record.status == "completed" and record.ended_at is not None:
        late = [a for item in record.items for a in item.history if a.corrects and a.at > record.ended_at]
        if late:
            return "amended"
    return STATUS_OF[record.status]


def _authored(record: Record) -> str:
    if record.ended_at is not None:
        return record.ended_at
    times = [a.at for item in record.items for a in item.history]
    return max(times, default=record.started_at)


def _answer(record: Record, item: RecordItem) -> dict[str, Any]:
    current = item.current
    assert current is not None
    answer: dict[str, Any] = {
        "valueCoding": coding(fhir.STATUS, current.status, fhir.STATUS_DISPLAY[current.status])
    }
    if current.reason is not None:
        labels = {r.code: r.label for r in record.checklist.reasons}
        nested: list[dict[str, Any]] = [
            {
                "linkId": fhir.reason_link(item.id),
                "answer": [
                    {"valueCoding": coding(fhir.NOT_DONE_REASON, current.reason, labels.get(current.reason))}
                ],
            }
        ]
        if current.reason_text is not None:
            nested.append(
                {"linkId": fhir.reason_text_link(item.id), "answer": [{"valueString": current.reason_text}]}
            )
        answer["item"] = nested
    return answer


def _items(record: Record, shape: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The answered part of the Questionnaire's item tree, in its order."""
    answered = {item.id: item for item in record.items if item.current is not None}
    options = {
        o["valueCoding"]["code"]: o["valueCoding"]
        for q in shape
        if q["linkId"] in (fhir.ROUTE_LINK, fhir.POPULATIONS_LINK)
        for o in q["answerOption"]
    }
    found: list[dict[str, Any]] = []
    for question in shape:
        link = question["linkId"]
        if question["type"] == "group":
            children = _items(record, question["item"])
            if children:
                found.append({"linkId": link, "text": question.get("text"), "item": children})
                if found[-1]["text"] is None:
                    del found[-1]["text"]
        elif link == fhir.ROUTE_LINK and record.context.route is not None:
            found.append({"linkId": link, "answer": [{"valueCoding": options[record.context.route]}]})
        elif link == fhir.POPULATIONS_LINK and record.context.populations:
            answers = [{"valueCoding": options[p]} for p in record.context.populations]
            found.append({"linkId": link, "answer": answers})
        elif link in answered:
            found.append(
                {
                    "id": link,
                    "linkId": link,
                    "text": question["text"],
                    "answer": [_answer(record, answered[link])],
                }
            )
    return found


def _person(clinician: str, display: str | None = None) -> dict[str, Any]:
    person: dict[str, Any] = {
        "type": "Practitioner",
        "identifier": {"system": fhir.CLINICIAN, "value": clinician},
    }
    if display is not None:
        person["display"] = display
    return person


def response(record: Record) -> dict[str, Any]:
    """The QuestionnaireResponse of one session."""
    shape = questionnaire(record.checklist, record.checklist_hash)["item"]
    return {
        "resourceType": "QuestionnaireResponse",
        "id": record.session,
        "identifier": {"system": fhir.SESSION, "value": record.session},
        "questionnaire": canonical(record.checklist),
        "status": response_status(record),
        "subject": {"type": "Patient", "identifier": {"system": fhir.SUBJECT, "value": record.subject}},
        "authored": _authored(record),
        "author": _person(record.clinician),
        "item": _items(record, shape),
    }


def _signature_provenance(
    record: Record, number: int, signature: Signature, signature_bytes: str
) -> dict[str, Any]:
    signer = _person(signature.actor, signature.name)
    return {
        "resourceType": "Provenance",
        "id": f"{record.session}-signature-{number}",
        "target": [{"reference": full_url("QuestionnaireResponse", record.session)}],
        "occurredDateTime": signature.at,
        "recorded": signature.at,
        "reason": [{"text": signature.meaning}],
        "agent": [{"type": {"coding": [coding(PARTICIPANT, "attester", "Attester")]}, "who": signer}],
        "entity": [
            {"role": "source", "what": {"identifier": {"system": fhir.EVENT, "value": signature.signs}}}
        ],
        "signature": [
            {
                "extension": [{"url": fhir.SIGNING_KEY, "valueString": signature.key}],
                "type": [coding(SIGNATURE_TYPE, "1.2.840.10065.1.12.1.1", "Author's Signature")],
                "when": signature.at,
                "who": signer,
                "targetFormat": "application/json",
                "data": signature_bytes,
            }
        ],
    }


def _amendment_provenance(record: Record, number: int, item: str, answer: Answer) -> dict[str, Any]:
    assert answer.corrects is not None
    target = {
        "reference": full_url("QuestionnaireResponse", record.session),
        "extension": [{"url": TARGET_ELEMENT, "valueUri": item}],
    }
    return {
        "resourceType": "Provenance",
        "id": f"{record.session}-amendment-{number}",
        "target": [target],
        "occurredDateTime": answer.at,
        "recorded": answer.at,
        "reason": [{"text": answer.explanation}],
        "activity": {"coding": [coding(DATA_OPERATION, "UPDATE", "revise")]},
        "agent": [
            {"type": {"coding": [coding(PARTICIPANT, "author", "Author")]}, "who": _person(answer.actor)}
        ],
        "entity": [
            {"role": "revision", "what": {"identifier": {"system": fhir.EVENT, "value": answer.corrects}}},
            {"role": "source", "what": {"identifier": {"system": fhir.EVENT, "value": answer.event}}},
        ],
    }


def provenances(record: Record, signature_bytes: dict[tuple[str, str], str]) -> list[dict[str, Any]]:
    """One Provenance per signature (``signature_bytes`` by (signs, key)) and per amendment, in time order."""
    found = [
        _signature_provenance(record, n, s, signature_bytes[(s.signs, s.key)])
        for n, s in enumerate(record.signatures, start=1)
    ]
    amendments = sorted(
        ((a.at, item.id, a) for item in record.items for a in item.history if a.corrects),
        key=lambda row: row[0],
    )
    found += [_amendment_provenance(record, n, item, a) for n, (_, item, a) in enumerate(amendments, start=1)]
    return found


def session_resources(session: Session) -> list[dict[str, Any]]:
    """The QuestionnaireResponse of a loaded session, then its Provenances."""
    record = session.record()
    signature_bytes = {
        (e.data.signs, e.data.key): e.data.signature
        for e in session.store.events(session.id)
        if isinstance(e, SignedEvent)
    }
    return [response(record), *provenances(record, signature_bytes)]
