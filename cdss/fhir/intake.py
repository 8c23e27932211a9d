"""Importing a QuestionnaireResponse as a session, through the same checks as an answers file.

The response may come from ``cdss export fhir response`` (a Bundle whose
QuestionnaireResponse is recorded; its Provenances are derived data and are
not replayed) or from a form renderer such as LHC-Forms (a bare
QuestionnaireResponse, often without subject or author: the caller supplies
them). The whole file is read and checked first — the R4B model, the
checklist version it answers (which must be released), the context, every
answer with ``cdss.session.answer_problem`` — and every problem is reported
at once, each at its JSON pointer. Only then is anything written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdss import fhir, jsonfile
from cdss.answers import FileAnswer
from cdss.catalog import Catalog, content_hash, read_lock
from cdss.checklist import Checklist
from cdss.errors import CdssError, InvalidInput, Issue, SessionStateError
from cdss.fhir import models
from cdss.plan import RunContext, declare, plan
from cdss.session import Session, answer_problem, check_clinician, check_subject
from cdss.store import REQUIRE_SIGNATURES, Store, is_on

if TYPE_CHECKING:
    from cdss.keys import SigningKey

COMPLETE = ("completed", "amended")
OPEN = ("in-progress",)


@dataclass(frozen=True)
class Intake:
    """A QuestionnaireResponse checked whole and ready to record."""

    source: str
    checklist: Checklist
    context: RunContext
    subject: str
    clinician: str
    answers: tuple[FileAnswer, ...]
    complete: bool
    session: str | None
    """The cdss session id the response names, when cdss exported it."""


@dataclass
class _Found:
    """What the item walk collects, with where each thing was found."""

    route: tuple[str, str] | None = None
    populations: tuple[list[str], str] | None = None
    answers: dict[str, tuple[FileAnswer, str]] | None = None


def _find_response(raw: Any, source: str) -> tuple[dict[str, Any], str]:
    """The QuestionnaireResponse, and its pointer: the document itself or the one in a Bundle."""
    if isinstance(raw, dict) and raw.get("resourceType") == "Bundle":
        entries = raw.get("entry") if isinstance(raw.get("entry"), list) else []
        found = [
            (entry["resource"], f"/entry/{n}/resource")
            for n, entry in enumerate(entries or [])
            if isinstance(entry, dict)
            and isinstance(entry.get("resource"), dict)
            and entry["resource"].get("resourceType") == "QuestionnaireResponse"
        ]
        if len(found) != 1:
            raise InvalidInput(
                f"the Bundle holds {len(found)} QuestionnaireResponses; import one at a time",
                file=source,
                pointer="/entry",
            )
        return found[0]
    if isinstance(raw, dict) and raw.get("resourceType") == "QuestionnaireResponse":
        return raw, ""
    raise InvalidInput(
        "expected a FHIR QuestionnaireResponse, or a Bundle holding one", file=source, pointer=""
    )


def _checklist(response: dict[str, Any], source: str, at: str, catalog: Catalog) -> Checklist:
    canonical = response.get("questionnaire")
    url, _, version = (canonical or "").partition("|")
    checklist_id = url.removeprefix(fhir.CHECKLIST_URL)
    if not url.startswith(fhir.CHECKLIST_URL) or not checklist_id or not version:
        raise InvalidInput(
            f"questionnaire {canonical!r} is not a cdss checklist; expected {fhir.CHECKLIST_URL}ID|VERSION",
            file=source,
            pointer=f"{at}/questionnaire",
        )
    try:
        entry = catalog.resolve(f"{checklist_id}@{version}")
        checklist = catalog.load(entry.ref)
    except CdssError as error:
        raise InvalidInput(error.message, file=source, pointer=f"{at}/questionnaire") from None
    released = read_lock(entry.folder).get(checklist.id, {}).get(checklist.version)
    if released != content_hash(checklist.to_json()):
        raise InvalidInput(
            f"{checklist.ref} is not a released version (`cdss release` it first); "
            "records are only kept against released checklists",
            file=source,
            pointer=f"{at}/questionnaire",
        )
    return checklist


def _nested(question: dict[str, Any], at: str) -> list[tuple[dict[str, Any], str]]:
    """Child items of a question: under its answers (FHIR's place) or beside them (some renderers)."""
    found = [(child, f"{at}/item/{n}") for n, child in enumerate(question.get("item") or [])]
    for a, answer in enumerate(question.get("answer") or []):
        found += [(child, f"{at}/answer/{a}/item/{n}") for n, child in enumerate(answer.get("item") or [])]
    return found


class _Reading:
    """One pass over a response's items, collecting answers and every issue with its place."""

    def __init__(self, source: str, checklist: Checklist):
        self.source = source
        self.checklist = checklist
        self.known = {item.id for _, item in checklist.items()}
        self.issues: list[Issue] = []
        self.route: tuple[str, str] | None = None
        self.populations: tuple[list[str], str] | None = None
        self.answers: dict[str, tuple[FileAnswer, str]] = {}

    def issue(self, pointer: str, message: str) -> None:
        self.issues.append(Issue(self.source, pointer, message))

    def identifier(self, response: dict[str, Any], at: str, key: str, given: str | None) -> str | None:
        """The subject or author: from the response, else from the command line; both must agree."""
        system, option = (fhir.SUBJECT, "--subject") if key == "subject" else (fhir.CLINICIAN, "--clinician")
        reference = response.get(key)
        identifier = reference.get("identifier") if isinstance(reference, dict) else None
        stated = (
            identifier.get("value")
            if isinstance(identifier, dict) and identifier.get("system") == system
            else None
        )
        if stated is not None and given is not None and stated != given:
            self.issue(f"{at}/{key}", f"says {stated!r}, but {given!r} was given")
            return None
        value = stated if stated is not None else given
        if value is None:
            self.issue(f"{at}/{key}", f"no {system} identifier here; give it with {option}")
            return None
        check = check_subject if key == "subject" else check_clinician
        try:
            check(value)
        except CdssError as error:
            self.issue(f"{at}/{key}", error.message)
            return None
        return str(value)

    def codes(self, question: dict[str, Any], system: str, at: str) -> list[str]:
        codes = []
        for n, answer in enumerate(question.get("answer") or []):
            value = answer.get("valueCoding")
            if not isinstance(value, dict) or value.get("system") != system or not value.get("code"):
                self.issue(f"{at}/answer/{n}", f"expected a valueCoding from {system}")
            else:
                codes.append(str(value["code"]))
        return codes

    def item_answer(self, item_id: str, question: dict[str, Any], at: str) -> FileAnswer | None:
        statuses = self.codes(question, fhir.STATUS, at)
        if len(question.get("answer") or []) != 1:
            self.issue(at, f"item {item_id!r} needs exactly one answer")
            return None
        if not statuses:
            return None
        reason = reason_text = None
        for child, where in _nested(question, at):
            link = child.get("linkId")
            if link == fhir.reason_link(item_id):
                codes = self.codes(child, fhir.NOT_DONE_REASON, where)
                reason = codes[0] if len(codes) == 1 else reason
            elif link == fhir.reason_text_link(item_id):
                texts = [a.get("valueString") for a in child.get("answer") or []]
                if len(texts) != 1 or not isinstance(texts[0], str):
                    self.issue(where, "expected one valueString")
                else:
                    reason_text = texts[0]
            elif link != f"{item_id}/why":
                self.issue(f"{where}/linkId", f"unexpected item {link!r} inside {item_id!r}")
        status: Any = statuses[0]  # checked with answer_problem once the context is known
        return FileAnswer(item_id, status, reason, reason_text)

    def walk(self, items: list[dict[str, Any]], at: str) -> None:
        for n, question in enumerate(items):
            where = f"{at}/item/{n}"
            link = str(question.get("linkId"))
            if link == fhir.ROUTE_LINK:
                routes = self.codes(question, fhir.ROUTE, where)
                if len(routes) == 1:
                    self.route = (routes[0], where)
                elif routes:
                    self.issue(where, "give one route")
            elif link == fhir.POPULATIONS_LINK:
                self.populations = (self.codes(question, fhir.POPULATION, where), where)
            elif link in self.known:
                answer = self.item_answer(link, question, where)
                if link in self.answers:
                    self.issue(f"{where}/linkId", f"item {link!r} is answered twice")
                elif answer is not None:
                    self.answers[link] = (answer, where)
            elif link.startswith("section/") or link.endswith("/when-route"):
                if question.get("answer"):
                    self.issue(f"{where}/answer", "a group has no answer")
                self.walk(question.get("item") or [], where)
            else:
                self.issue(f"{where}/linkId", f"no item {link!r} in {self.checklist.ref}")

    def context(self, at: str) -> RunContext | None:
        route, route_at = self.route or (None, f"{at}/item")
        populations, populations_at = self.populations or ([], f"{at}/item")
        try:
            return declare(self.checklist, route, populations)
        except CdssError as error:
            population_problem = route is not None and "population" in error.message
            self.issue(populations_at if population_problem else route_at, error.message)
            return None

    def planned_answers(self, context: RunContext, status: str, at: str) -> list[FileAnswer]:
        """The answers in checklist order, each checked as an answers file's would be."""
        planned = plan(self.checklist, context)
        applicable = {p.item.id: p for p in planned}
        for item_id, (answer, where) in self.answers.items():
            problem = answer_problem(
                self.checklist,
                applicable,
                item_id,
                answer.status,
                reason=answer.reason,
                reason_text=answer.reason_text,
            )
            if problem:
                self.issue(where, problem)
        missing = [p.item.id for p in planned if p.item.id not in self.answers]
        if status in COMPLETE and missing:
            more = ", …" if len(missing) > 3 else ""
            self.issue(
                f"{at}/status",
                f"says {status} but {len(missing)} applicable item(s) are unanswered: "
                f"{', '.join(missing[:3])}{more}",
            )
        return [self.answers[p.item.id][0] for p in planned if p.item.id in self.answers]


def read_response(
    raw: Any,
    source: str,
    catalog: Catalog,
    *,
    subject: str | None = None,
    clinician: str | None = None,
) -> Intake:
    """Check a parsed QuestionnaireResponse (or Bundle) whole; ``InvalidInput`` carrying every issue."""
    models.require()
    response, at = _find_response(raw, source)
    invalid = models.problems(raw, source)
    if invalid:
        raise InvalidInput(
            "is not a valid FHIR R4 resource; nothing was recorded", issues=invalid, file=source
        )
    checklist = _checklist(response, source, at, catalog)
    reading = _Reading(source, checklist)
    status = str(response.get("status"))
    if status not in (*COMPLETE, *OPEN):
        reading.issue(
            f"{at}/status",
            f"status {status!r} cannot be recorded; expected in-progress, completed or amended",
        )
    who = reading.identifier(response, at, "subject", subject)
    author = reading.identifier(response, at, "author", clinician)
    reading.walk(response.get("item") or [], at)
    context = reading.context(at)
    answers = reading.planned_answers(context, status, at) if context is not None else []
    if reading.issues or context is None or who is None or author is None:
        raise InvalidInput(
            "invalid QuestionnaireResponse; nothing was recorded", issues=reading.issues, file=source
        )
    identifier = response.get("identifier")
    session = (
        str(identifier.get("value"))
        if isinstance(identifier, dict) and identifier.get("system") == fhir.SESSION
        else None
    )
    return Intake(source, checklist, context, who, author, tuple(answers), status in COMPLETE, session)


def read_file(
    path: Path, catalog: Catalog, *, subject: str | None = None, clinician: str | None = None
) -> Intake:
    return read_response(jsonfile.read(path), str(path), catalog, subject=subject, clinician=clinician)


def check_store(store: Store, intake: Intake, *, signed: bool) -> None:
    """What the store itself must allow, checked before anything is written."""
    if intake.session is not None and any(row.id == intake.session for row in store.sessions()):
        raise SessionStateError(
            f"session {intake.session} is already in this store; importing it again would record it twice"
        )
    if intake.complete and not signed and is_on(store.setting(REQUIRE_SIGNATURES)):
        raise SessionStateError(
            "this store requires a signature to complete a session; add --sign. Nothing was recorded"
        )


def record(store: Store, intake: Intake, key: SigningKey | None = None) -> Session:
    """Record a checked response as a new session: started, every answer, then completed if it was.

    ``key`` signs the completion, as ``cdss run --sign`` does.
    """
    from cdss.keys import signer

    check_store(store, intake, signed=key is not None)
    session = Session.start(
        store,
        intake.checklist,
        subject=intake.subject,
        clinician=intake.clinician,
        route=intake.context.route,
        populations=intake.context.populations,
    )
    for answer in intake.answers:
        session.answer(answer.item, answer.status, answer.reason, answer.reason_text)
    if intake.complete:
        session.complete(signer(session, key) if key is not None else None)
    return session
