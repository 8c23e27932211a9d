"""The shipped checklists: faithful to the four source documents, traceable, and free of
marketing, verdicts and doses (issue #4).

Everything here reads the real shipped files, the real source documents and
``docs/content-review.md``; nothing is mocked.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdss.catalog import Catalog, content_hash, read_lock, shipped_folder
from cdss.checklist import Checklist, DocumentSource, Item, Section
from cdss.cli.app import app
from cdss.cli.main import run as _registered  # noqa: F401  (registers every command)
from cdss.errors import ContextError
from cdss.plan import declare, plan
from cdss.validation import check_catalog

REPO = Path(__file__).resolve().parents[1]
REVIEW = REPO / "docs" / "content-review.md"

CHECKLISTS = ("pre-treatment-evaluation", "informed-consent", "treatment-session", "course-review")
ROUTES = ("intravenous", "intramuscular", "intranasal-esketamine")
POPULATIONS = (
    "older-adults",
    "adolescents",
    "children",
    "bipolar-depression",
    "postpartum-depression",
    "ptsd",
    "suicidal-ideation",
    "antidepressant-combination",
    "psychotherapy",
)


def find_seeds() -> Path:
    """The source documents: ``shared/seeds`` beside the repository or a folder above it."""
    for folder in (REPO, *REPO.parents):
        candidate = folder / "shared" / "seeds"
        if candidate.is_dir():
            return candidate
    raise AssertionError(
        f"source documents not found: no shared/seeds folder beside {REPO} or above it. "
        "Clone the repository next to the shared/ folder that holds the seeds."
    )


SEEDS = find_seeds()


@cache
def shipped(checklist_id: str) -> Checklist:
    return Catalog([shipped_folder()]).load(f"{checklist_id}@1.0.0")


def all_shipped() -> list[Checklist]:
    return [shipped(c) for c in CHECKLISTS]


def items_with_sections() -> Iterator[tuple[Checklist, Section, Item]]:
    for checklist in all_shipped():
        for section, item in checklist.items():
            yield checklist, section, item


def document_files() -> dict[str, str]:
    """Document id -> file name, as the shipped checklists declare them."""
    files: dict[str, str] = {}
    for checklist in all_shipped():
        for document in checklist.documents:
            assert files.setdefault(document.id, document.file) == document.file, document.id
    return files


# --- headings of the source documents --------------------------------------------

BULLETS = ("-", "•", "*")
SENTENCE_ENDINGS = (".", ":", ";", ",", "!")
MAX_HEADING_LENGTH = 150


def headings(text: str) -> list[str]:
    """The headings of a source document, in order, without repeats.

    A heading is a non-empty line (whitespace stripped) that is not a bullet, is
    at most 150 characters, and does not end like a sentence or a lead-in. That
    keeps section headings ("Administration", "Preparing for a Ketamine
    Infusion"), titles and the question lines of the FAQ document, and drops
    paragraphs, bullets and lead-ins such as "Here are key points about ketamine
    therapy:". The FAQ's opening paragraph ends without a full stop but is far
    longer than any heading.
    """
    found: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(BULLETS):
            continue
        if len(stripped) > MAX_HEADING_LENGTH or stripped.endswith(SENTENCE_ENDINGS):
            continue
        if stripped not in found:
            found.append(stripped)
    return found


def document_headings(document_id: str) -> list[str]:
    return headings((SEEDS / document_files()[document_id]).read_text(encoding="utf-8"))


# --- the content review -------------------------------------------------------------

DOC_SECTION = re.compile(r"^## (?P<document>[a-z0-9-]+) — (?P<file>\S+)\s*$")
ITEM_REF = re.compile(r"`?(?P<checklist>[a-z0-9-]+)/(?P<item>[a-z0-9-]+)`?")


def parse_review() -> dict[str, dict[str, tuple[set[str], str]]]:
    """``{document id: {heading: (item refs, note)}}`` from the per-document tables."""
    review: dict[str, dict[str, tuple[set[str], str]]] = {}
    current: dict[str, tuple[set[str], str]] | None = None
    for number, line in enumerate(REVIEW.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("## "):
            match = DOC_SECTION.match(line)
            current = None
            if match:
                files = document_files()
                assert match["document"] in files, f"review line {number}: unknown document {line!r}"
                assert files[match["document"]] == match["file"], f"review line {number}: wrong file"
                current = review.setdefault(match["document"], {})
            continue
        if current is None or not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 3, f"review line {number}: expected Heading | Items | Note, got {line!r}"
        heading, items, note = cells
        if heading == "Heading" or set(heading) <= {"-"}:
            continue
        assert heading not in current, f"review line {number}: {heading!r} listed twice"
        refs = set() if items == "—" else {ref.strip().strip("`") for ref in items.split(",")}
        for ref in refs:
            assert ITEM_REF.fullmatch(ref), f"review line {number}: {ref!r} is not checklist/item"
        current[heading] = (refs, note)
    return review


def citing_items() -> dict[tuple[str, str], set[str]]:
    cited: dict[tuple[str, str], set[str]] = {}
    for checklist, _, item in items_with_sections():
        for source in item.sources:
            if not isinstance(source, DocumentSource):
                continue
            cited.setdefault((source.document, source.heading), set()).add(f"{checklist.id}/{item.id}")
    return cited


def item_ids() -> set[str]:
    return {f"{checklist.id}/{item.id}" for checklist, _, item in items_with_sections()}


# --- catalog, lock and sources --------------------------------------------------------


def test_the_four_checklists_are_shipped_at_1_0_0() -> None:
    catalog = Catalog([shipped_folder()])
    assert set(CHECKLISTS) <= set(catalog.ids())
    for checklist_id in CHECKLISTS:
        assert "1.0.0" in [e.version for e in catalog.versions(checklist_id)]


def test_shipped_catalog_is_valid_against_the_source_documents() -> None:
    count, issues = check_catalog(Catalog([shipped_folder()]), documents=SEEDS)
    assert issues == []
    assert count >= len(CHECKLISTS)


def test_declared_documents_are_the_seed_files_with_their_sha256() -> None:
    for checklist in all_shipped():
        for document in checklist.documents:
            data = (SEEDS / document.file).read_bytes()
            assert hashlib.sha256(data).hexdigest() == document.sha256, (checklist.id, document.file)
    assert sorted(document_files().values()) == sorted(p.name for p in SEEDS.glob("*.txt"))


def test_every_shipped_version_is_released_with_its_hash() -> None:
    released = read_lock(shipped_folder())
    for checklist_id in CHECKLISTS:
        path = shipped_folder() / checklist_id / "1.0.0.json"
        document = json.loads(path.read_text(encoding="utf-8"))
        assert released[checklist_id]["1.0.0"] == content_hash(document), checklist_id


def test_cdss_validate_passes_from_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDSS_CHECKLISTS", raising=False)
    runner = CliRunner()
    plain = runner.invoke(app, ["validate"])
    assert plain.exit_code == 0, plain.output
    assert "all valid" in plain.output
    with_documents = runner.invoke(app, ["validate", "--documents", str(SEEDS), "--json"])
    assert with_documents.exit_code == 0, with_documents.output
    assert json.loads(with_documents.output)["valid"] is True


def test_every_item_cites_a_heading_that_is_a_line_of_its_document() -> None:
    for checklist, _, item in items_with_sections():
        assert item.sources, f"{checklist.id}/{item.id} has no source"
        for source in item.sources:
            if not isinstance(source, DocumentSource):
                continue
            assert source.heading in document_headings(source.document), (
                f"{checklist.id}/{item.id} cites {source.heading!r}, not a heading of {source.document}"
            )


# --- completeness: every heading is encoded or excluded with a reason ----------------


def test_heading_extractor_keeps_headings_and_drops_bullets_and_paragraphs() -> None:
    by_file = {
        name: headings((SEEDS / name).read_text(encoding="utf-8"))
        for name in sorted(p.name for p in SEEDS.glob("*.txt"))
    }
    faq, overview, therapy, clinics = (by_file[name] for name in sorted(by_file))
    assert "How are patients selected for ketamine therapy in the treatment of depression?" in faq
    assert "How does tolerance develop with ketamine use?" in faq
    assert {"Administration", "Safety and Side Effects", "Maintenance Treatments"} <= set(therapy)
    assert {"Preparing for a Ketamine Infusion", "What is Ketamine?", "Contact Us Today"} <= set(clinics)
    assert overview == [
        "Ketamine for Depression",
        "Benefits Of Ketamine And Depression",
        "How Ketamine Works",
    ]
    everything = [h for found in by_file.values() for h in found]
    assert "Here are key points about ketamine therapy:" not in everything
    assert not any(h.startswith(BULLETS) for h in everything)
    assert [len(by_file[name]) for name in sorted(by_file)] == [27, 3, 8, 19]


def test_every_heading_is_cited_or_excluded_in_the_content_review() -> None:
    review = parse_review()
    assert set(review) == set(document_files()), "the review needs one section per document"
    cited = citing_items()
    for document_id in document_files():
        expected = document_headings(document_id)
        rows = review[document_id]
        missing = [h for h in expected if h not in rows]
        assert not missing, f"{document_id}: headings missing from the review: {missing}"
        extra = [h for h in rows if h not in expected]
        assert not extra, f"{document_id}: review rows that are not headings: {extra}"
        for heading in expected:
            refs, note = rows[heading]
            citing = cited.get((document_id, heading), set())
            assert refs == citing, (
                f"{document_id} / {heading!r}: review lists {sorted(refs)}, items citing it: {sorted(citing)}"
            )
            if not refs:
                assert len(note) > 20, f"{document_id} / {heading!r}: excluded without a reason"


def test_content_review_names_only_existing_items() -> None:
    known = item_ids()
    text = REVIEW.read_text(encoding="utf-8")
    named = {f"{m['checklist']}/{m['item']}" for m in ITEM_REF.finditer(text) if m["checklist"] in CHECKLISTS}
    assert named, "the review names no items"
    assert named <= known, f"the review names items that do not exist: {sorted(named - known)}"


def test_content_review_records_the_known_corrections() -> None:
    text = REVIEW.read_text(encoding="utf-8")
    assert "informed-consent/consent-off-label-status" in text
    assert "Spravato" in text
    assert re.search(r"self-administer", text), "the home self-administration claim must be addressed"
    assert "neuronal damage" in text


# --- wording -----------------------------------------------------------------------

PROMOTIONAL = (
    "revolution",
    "groundbreaking",
    "remarkable",
    "life-saving",
    "lifesaving",
    "new hope",
    "hope",
    "powerful",
    "transformative",
    "transformation",
    "breakthrough",
    "miracle",
    "game-changer",
    "cutting-edge",
    "innovative",
    "profound",
    "lifeline",
    "brighter future",
    "promising",
    "exceptionally effective",
    "highly effective",
    "response rate",
    "success rate",
    "contact us",
    "book a",
    "schedule a",
    "call today",
    "buy ketamine",
    "online",
)
CLINIC_NAMES = ("alchemy wellness", "trippy world", "alchemy", "trippy")
VERDICTS = re.compile(
    r"\b(safe|safely|eligible|eligibility|suitable|suitability|recommend\w*)\b", re.IGNORECASE
)
CONFIRMATION_VERBS = (
    "Confirmed",
    "Reviewed",
    "Explained",
    "Discussed",
    "Asked",
    "Assessed",
    "Documented",
    "Monitored",
    "Observed",
    "Supported",
    "Watched",
    "Kept",
    "Checked",
    "Reminded",
    "Recorded",
    "Revisited",
    "Gave",
)


def shown_text() -> Iterator[tuple[str, str]]:
    """Everything a clinician reads, labelled by where it is."""
    for checklist in all_shipped():
        yield f"{checklist.id} title", checklist.title
        yield f"{checklist.id} summary", checklist.summary
        for section in checklist.sections:
            yield f"{checklist.id}/{section.id} title", section.title
            for item in section.items:
                yield f"{checklist.id}/{item.id} text", item.text
                yield f"{checklist.id}/{item.id} why", item.why


def test_no_promotional_wording_or_clinic_names() -> None:
    for where, text in shown_text():
        lowered = text.lower()
        for phrase in (*PROMOTIONAL, *CLINIC_NAMES):
            assert phrase not in lowered, f"{where}: promotional wording {phrase!r}: {text}"
        assert "%" not in text, f"{where}: a percentage figure: {text}"


def test_no_verdicts() -> None:
    for where, text in shown_text():
        assert not VERDICTS.search(text), f"{where}: verdict word {VERDICTS.search(text)}: {text}"
        assert "appropriate candidate" not in text.lower(), where


def test_items_are_confirmations_without_numbers() -> None:
    for checklist, _, item in items_with_sections():
        where = f"{checklist.id}/{item.id}"
        assert item.text.startswith(CONFIRMATION_VERBS), f"{where} is not worded as a confirmation"
        assert not re.search(r"\d", item.text), f"{where}: a number (dose, count or figure) in {item.text!r}"
        assert re.search(r"\b(mg|milligram|ml|per kg)\b", item.text, re.IGNORECASE) is None, where
        assert item.why.strip(), where


def test_no_claim_that_ketamine_itself_is_approved() -> None:
    approved_ketamine = re.compile(
        r"fda[- ]approved ketamine|(?<!es)ketamine[^.;:]*?\b(is|was|has been|are)\s+(fda[- ])?approved",
        re.IGNORECASE,
    )
    for where, text in shown_text():
        assert not approved_ketamine.search(text), f"{where}: claims ketamine itself is approved: {text}"


def test_home_use_is_never_presented_as_routine() -> None:
    for where, text in shown_text():
        lowered = text.lower()
        assert "self-administ" not in lowered or "not" in lowered, where
        if "at home" in lowered or "take home" in lowered:
            assert re.search(r"\b(not|no)\b", lowered), f"{where} presents home use: {text}"


def test_sections_are_short_and_ids_unique() -> None:
    for checklist in all_shipped():
        ids = [item.id for _, item in checklist.items()]
        assert len(ids) == len(set(ids)), checklist.id
        for section in checklist.sections:
            assert len(section.items) <= 7, f"{checklist.id}/{section.id} has {len(section.items)} items"


# --- applicability: routes and population modules --------------------------------------


def planned_ids(checklist_id: str, route: str | None = None, populations: tuple[str, ...] = ()) -> list[str]:
    checklist = shipped(checklist_id)
    return [p.item.id for p in plan(checklist, declare(checklist, route, populations))]


def test_routes_and_populations_declared() -> None:
    for checklist_id in ("informed-consent", "treatment-session"):
        assert tuple(r.id for r in shipped(checklist_id).context.routes) == ROUTES
    for checklist_id in ("pre-treatment-evaluation", "course-review"):
        assert shipped(checklist_id).context.routes == []
    for checklist_id in ("pre-treatment-evaluation", "informed-consent", "course-review"):
        assert tuple(p.id for p in shipped(checklist_id).context.populations) == POPULATIONS
    session_populations = {p.id for p in shipped("treatment-session").context.populations}
    assert session_populations == set(POPULATIONS) - {"ptsd"}


def test_route_is_required_where_the_checklist_distinguishes_routes() -> None:
    with pytest.raises(ContextError):
        declare(shipped("informed-consent"))
    with pytest.raises(ContextError):
        declare(shipped("treatment-session"), "intranasal")


@pytest.mark.parametrize(
    ("checklist_id", "item_id", "routes"),
    [
        ("informed-consent", "consent-off-label-status", {"intravenous", "intramuscular"}),
        ("informed-consent", "consent-esketamine-approved-use", {"intranasal-esketamine"}),
        ("informed-consent", "consent-esketamine-supervised-setting", {"intranasal-esketamine"}),
        ("informed-consent", "consent-nasal-session-frequency", {"intranasal-esketamine"}),
        ("informed-consent", "consent-dissociation-explained", set(ROUTES)),
        ("informed-consent", "consent-transport-home-discussed", set(ROUTES)),
        ("treatment-session", "infusion-prescription-checked", {"intravenous"}),
        ("treatment-session", "infusion-monitored", {"intravenous"}),
        ("treatment-session", "injection-prescription-checked", {"intramuscular"}),
        ("treatment-session", "esketamine-setting-requirements-met", {"intranasal-esketamine"}),
        ("treatment-session", "esketamine-taken-on-site", {"intranasal-esketamine"}),
        ("treatment-session", "esketamine-post-dose-observation", {"intranasal-esketamine"}),
        ("treatment-session", "continuous-monitoring", set(ROUTES)),
        ("treatment-session", "observed-until-ready-to-leave", set(ROUTES)),
    ],
)
def test_route_specific_items_apply_only_to_their_routes(
    checklist_id: str, item_id: str, routes: set[str]
) -> None:
    applying = {route for route in ROUTES if item_id in planned_ids(checklist_id, route)}
    assert applying == routes


@pytest.mark.parametrize(
    ("checklist_id", "population", "item_id"),
    [
        ("pre-treatment-evaluation", "older-adults", "older-adult-medication-interactions"),
        ("pre-treatment-evaluation", "adolescents", "young-specialist-involved"),
        ("pre-treatment-evaluation", "children", "young-specialist-involved"),
        ("pre-treatment-evaluation", "bipolar-depression", "mania-history-reviewed"),
        ("pre-treatment-evaluation", "postpartum-depression", "postpartum-risks-benefits-reviewed"),
        ("pre-treatment-evaluation", "ptsd", "ptsd-history-reviewed"),
        ("pre-treatment-evaluation", "suicidal-ideation", "suicidal-ideation-assessed"),
        ("pre-treatment-evaluation", "antidepressant-combination", "combination-reviewed-by-prescriber"),
        ("pre-treatment-evaluation", "psychotherapy", "psychotherapy-arrangements-reviewed"),
        ("informed-consent", "older-adults", "consent-older-adult-considerations"),
        ("informed-consent", "adolescents", "consent-young-brain-development"),
        ("informed-consent", "children", "consent-young-other-treatments-first"),
        ("informed-consent", "bipolar-depression", "consent-mania-risk-explained"),
        ("informed-consent", "postpartum-depression", "consent-postpartum-risks-benefits-discussed"),
        ("informed-consent", "ptsd", "consent-ptsd-under-investigation"),
        ("informed-consent", "suicidal-ideation", "consent-not-standalone-treatment"),
        ("informed-consent", "antidepressant-combination", "consent-combination-discussed"),
        ("informed-consent", "psychotherapy", "consent-psychotherapy-role-discussed"),
        ("treatment-session", "older-adults", "older-adult-close-monitoring"),
        ("treatment-session", "children", "young-close-supervision"),
        ("treatment-session", "bipolar-depression", "mania-signs-asked"),
        ("treatment-session", "suicidal-ideation", "suicidal-thoughts-asked"),
        ("treatment-session", "psychotherapy", "psychotherapy-follow-up-arranged"),
        ("course-review", "older-adults", "older-adult-monitoring-reviewed"),
        ("course-review", "adolescents", "young-specialist-took-part"),
        ("course-review", "bipolar-depression", "mania-reviewed"),
        ("course-review", "ptsd", "ptsd-symptoms-reviewed"),
        ("course-review", "suicidal-ideation", "suicidal-ideation-reviewed"),
        ("course-review", "antidepressant-combination", "combination-reviewed-with-prescriber"),
        ("course-review", "psychotherapy", "psychotherapy-progress-reviewed"),
        ("course-review", "postpartum-depression", "postpartum-risks-benefits-revisited"),
    ],
)
def test_population_items_apply_only_when_their_module_is_declared(
    checklist_id: str, population: str, item_id: str
) -> None:
    route = "intravenous" if shipped(checklist_id).context.routes else None
    assert item_id not in planned_ids(checklist_id, route)
    assert item_id in planned_ids(checklist_id, route, (population,))
    others = tuple(p for p in POPULATIONS if p != population and p not in {"adolescents", "children"})
    declarable = {p.id for p in shipped(checklist_id).context.populations}
    assert item_id not in planned_ids(checklist_id, route, tuple(p for p in others if p in declarable))


def test_no_population_items_without_a_declared_module() -> None:
    # Hand-counted from the 1.0.0 files: the core items every run gets.
    assert len(planned_ids("pre-treatment-evaluation")) == 12
    assert len(planned_ids("informed-consent", "intravenous")) == 29
    assert len(planned_ids("informed-consent", "intramuscular")) == 29
    assert len(planned_ids("informed-consent", "intranasal-esketamine")) == 31
    assert len(planned_ids("treatment-session", "intravenous")) == 18
    assert len(planned_ids("treatment-session", "intramuscular")) == 17
    assert len(planned_ids("treatment-session", "intranasal-esketamine")) == 20
    assert len(planned_ids("course-review")) == 14


def test_every_population_module_adds_items_in_every_checklist_that_declares_it() -> None:
    for checklist in all_shipped():
        route = ROUTES[0] if checklist.context.routes else None
        base = set(planned_ids(checklist.id, route))
        for option in checklist.context.populations:
            added = set(planned_ids(checklist.id, route, (option.id,))) - base
            assert added, f"{checklist.id}: module {option.id} adds no items"


def test_treatment_session_phases_run_before_during_after() -> None:
    checklist = shipped("treatment-session")
    order = {"before": 0, "during": 1, "after": 2}
    phases = [section.phase for section in checklist.sections]
    assert None not in phases
    assert phases == sorted(phases, key=lambda phase: order[phase or "before"])
    planned = plan(checklist, declare(checklist, "intranasal-esketamine", POPULATIONS[:3]))
    seen = [order[p.section.phase or "before"] for p in planned]
    assert seen == sorted(seen)


def test_plan_command_shows_the_off_label_item_for_infusion_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDSS_CHECKLISTS", raising=False)
    runner = CliRunner()

    def ids(*args: str) -> list[str]:
        result = runner.invoke(app, ["plan", *args, "--json"])
        assert result.exit_code == 0, result.output
        return [entry["id"] for entry in json.loads(result.output)]

    intravenous = ids("informed-consent", "--route", "intravenous")
    nasal = ids("informed-consent", "--route", "intranasal-esketamine")
    assert "consent-off-label-status" in intravenous
    assert "consent-off-label-status" not in nasal
    assert "consent-esketamine-supervised-setting" in nasal
    older = ids("treatment-session@1.0.0", "--route", "intramuscular", "--population", "older-adults")
    assert "older-adult-close-monitoring" in older
    assert "older-adult-close-monitoring" not in ids("treatment-session@1.0.0", "--route", "intramuscular")
    assert "injection-prescription-checked" in older
    assert "esketamine-taken-on-site" not in older

    unknown = runner.invoke(app, ["plan", "treatment-session", "--route", "oral", "--json"])
    assert unknown.exit_code != 0
