"""The shipped checklists: faithful to the four source documents, traceable to them or to
a declared external source, and free of marketing, verdicts and doses (issues #4, #12).

1.0.0 stays released and unchanged; 2.0.0 adds what the label, the REMS and the APA
consensus require. Everything here reads the real shipped files, the real source
documents and ``docs/content-review.md``; nothing is mocked.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cdss.catalog import Catalog, content_hash, read_lock, shipped_folder
from cdss.checklist import Checklist, DocumentSource, Item, ReferenceSource, Section
from cdss.cli.app import app
from cdss.cli.main import register
from cdss.design import looks_like_dose
from cdss.errors import ContextError
from cdss.plan import POPULATIONS as CLINIC_POPULATIONS
from cdss.plan import PlannedItem, declare, nothing_extra_note, plan
from cdss.validation import check_catalog

register()  # every command, for CliRunner

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


FIRST = "1.0.0"
NEWEST = "newest"
"""Whatever a run gets by default: 2.0.0, or a later 2.x that only rewords."""
VERSIONS = (FIRST, NEWEST)
EVERY = ("every",)
"""Every released version of every checklist."""


@cache
def shipped(checklist_id: str, version: str = NEWEST) -> Checklist:
    return Catalog([shipped_folder()]).load(
        checklist_id if version == NEWEST else f"{checklist_id}@{version}"
    )


def released_versions(checklist_id: str) -> list[str]:
    return [entry.version for entry in Catalog([shipped_folder()]).versions(checklist_id)]


def all_shipped(versions: tuple[str, ...] = (NEWEST,)) -> list[Checklist]:
    return [
        shipped(c, v) for c in CHECKLISTS for v in (released_versions(c) if versions == EVERY else versions)
    ]


def items_with_sections(versions: tuple[str, ...] = (NEWEST,)) -> Iterator[tuple[Checklist, Section, Item]]:
    for checklist in all_shipped(versions):
        for section, item in checklist.items():
            yield checklist, section, item


def document_files() -> dict[str, str]:
    """Document id -> file name, as the shipped checklists declare them."""
    files: dict[str, str] = {}
    for checklist in all_shipped(EVERY):
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
    """Every item of every shipped version: the review may name an item 2.0.0 removed."""
    return {f"{checklist.id}/{item.id}" for checklist, _, item in items_with_sections(EVERY)}


# --- catalog, lock and sources --------------------------------------------------------


def test_the_four_checklists_are_shipped_at_1_0_0_and_2_0_0() -> None:
    catalog = Catalog([shipped_folder()])
    assert set(CHECKLISTS) <= set(catalog.ids())
    for checklist_id in CHECKLISTS:
        versions = [e.version for e in catalog.versions(checklist_id)]
        assert FIRST in versions and "2.0.0" in versions
        assert catalog.load(checklist_id).version.startswith("2."), "2.x is what a run gets by default"


def test_shipped_catalog_is_valid_against_the_source_documents() -> None:
    count, issues = check_catalog(Catalog([shipped_folder()]), documents=SEEDS)
    assert issues == []
    assert count >= len(CHECKLISTS)


def test_declared_documents_are_the_seed_files_with_their_sha256() -> None:
    for checklist in all_shipped(EVERY):
        for document in checklist.documents:
            data = (SEEDS / document.file).read_bytes()
            assert hashlib.sha256(data).hexdigest() == document.sha256, (checklist.id, document.file)
    assert sorted(document_files().values()) == sorted(p.name for p in SEEDS.glob("*.txt"))


def test_every_shipped_version_is_released_with_its_hash() -> None:
    released = read_lock(shipped_folder())
    for checklist_id in CHECKLISTS:
        for version in released_versions(checklist_id):
            path = shipped_folder() / checklist_id / f"{version}.json"
            document = json.loads(path.read_text(encoding="utf-8"))
            assert released[checklist_id][version] == content_hash(document), (checklist_id, version)


def test_1_0_0_is_unchanged() -> None:
    """The hashes 1.0.0 was released with (issue #4); records made with it must still verify."""
    released = read_lock(shipped_folder())
    assert {c: released[c][FIRST] for c in CHECKLISTS} == {
        "course-review": "94a824e8c33e545d57ffb568589914920061d29d3e5482e48fcfed0db8ffaaa4",
        "informed-consent": "d1897e255f095c4bb7fa186f0a697b0ecd629a69dd5da63e91623a7196c6ca5d",
        "pre-treatment-evaluation": "b8b8bf2ada8c7c279547142bc7dcfac11c8c85bece616fe0314c5989f454d4d2",
        "treatment-session": "8050d406cbc9c750b7a2486d612cdc7474cd1cc4c2d20c6582e37d4cf0749bb9",
    }


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
    for checklist, _, item in items_with_sections(EVERY):
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
    """Everything a clinician reads, in every shipped version, labelled by where it is."""
    for checklist in all_shipped(EVERY):
        yield f"{checklist.ref} title", checklist.title
        yield f"{checklist.ref} summary", checklist.summary
        for section in checklist.sections:
            yield f"{checklist.ref}/{section.id} title", section.title
            for item in section.items:
                yield f"{checklist.ref}/{item.id} text", item.text
                yield f"{checklist.ref}/{item.id} why", item.why


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


def test_items_are_confirmations_without_doses() -> None:
    """Durations and times ("about 40 minutes", "at least 24 hours") may be stated; doses never."""
    for checklist, _, item in items_with_sections(EVERY):
        where = f"{checklist.ref}/{item.id}"
        assert item.text.startswith(CONFIRMATION_VERBS), f"{where} is not worded as a confirmation"
        assert not looks_like_dose(item.text), f"{where}: a dose in {item.text!r}"
        assert re.search(r"\b(mg|milligram|ml|per kg)\b", item.text, re.IGNORECASE) is None, where
        assert item.why.strip(), where
    for checklist, _, item in items_with_sections((FIRST,)):
        assert not re.search(r"\d", item.text), f"{checklist.ref}/{item.id}: 1.0.0 states no number at all"


def test_the_dose_check_allows_durations_and_refuses_doses() -> None:
    for duration in ("about 40 minutes after the dose", "at least 24 hours", "for at least two hours"):
        assert not looks_like_dose(duration), duration
    for dose in ("0.5 mg/kg over 40 minutes", "56 mg", "84 mg of esketamine"):
        assert looks_like_dose(dose), dose


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
        # Self-administration is the esketamine rule only under a provider's direct observation.
        assert "self-administ" not in lowered or "not" in lowered or "observ" in lowered, where
        if "at home" in lowered or "take home" in lowered:
            assert re.search(r"\b(not|no)\b", lowered), f"{where} presents home use: {text}"


def test_sections_are_short_and_ids_unique() -> None:
    for checklist in all_shipped((FIRST,)):
        ids = [item.id for _, item in checklist.items()]
        assert len(ids) == len(set(ids)), checklist.id
        for section in checklist.sections:
            assert len(section.items) <= 7, f"{checklist.id}/{section.id} has {len(section.items)} items"


# --- applicability: routes and population modules --------------------------------------


def planned_ids(
    checklist_id: str, route: str | None = None, populations: tuple[str, ...] = (), version: str = NEWEST
) -> list[str]:
    checklist = shipped(checklist_id, version)
    return [p.item.id for p in plan(checklist, declare(checklist, route, populations))]


def planned(
    checklist_id: str, route: str | None = None, populations: tuple[str, ...] = ()
) -> list[PlannedItem]:
    checklist = shipped(checklist_id)
    return plan(checklist, declare(checklist, route, populations))


# --- 1.0.0, as released (issue #4) ---------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_routes_and_populations_declared(version: str) -> None:
    for checklist_id in ("informed-consent", "treatment-session"):
        assert tuple(r.id for r in shipped(checklist_id, version).context.routes) == ROUTES
    for checklist_id in ("pre-treatment-evaluation", "course-review"):
        assert shipped(checklist_id, version).context.routes == []
    for checklist_id in ("pre-treatment-evaluation", "informed-consent", "course-review"):
        assert tuple(p.id for p in shipped(checklist_id, version).context.populations) == POPULATIONS
    session_populations = {p.id for p in shipped("treatment-session", version).context.populations}
    assert session_populations == set(POPULATIONS) - {"ptsd"}
    assert {o.id for o in CLINIC_POPULATIONS} == set(POPULATIONS), "the clinic-wide list: every checklist's"


@pytest.mark.parametrize("version", VERSIONS)
def test_route_is_required_where_the_checklist_distinguishes_routes(version: str) -> None:
    with pytest.raises(ContextError):
        declare(shipped("informed-consent", version))
    with pytest.raises(ContextError):
        declare(shipped("treatment-session", version), "intranasal")


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
    applying = {route for route in ROUTES if item_id in planned_ids(checklist_id, route, version=FIRST)}
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
    route = "intravenous" if shipped(checklist_id, FIRST).context.routes else None
    assert item_id not in planned_ids(checklist_id, route, version=FIRST)
    assert item_id in planned_ids(checklist_id, route, (population,), version=FIRST)
    others = tuple(p for p in POPULATIONS if p != population and p not in {"adolescents", "children"})
    declarable = {p.id for p in shipped(checklist_id, FIRST).context.populations}
    planned_others = planned_ids(
        checklist_id, route, tuple(p for p in others if p in declarable), version=FIRST
    )
    assert item_id not in planned_others


def test_no_population_items_without_a_declared_module() -> None:
    # Hand-counted from the 1.0.0 files: the core items every run gets.
    assert len(planned_ids("pre-treatment-evaluation", version=FIRST)) == 12
    assert len(planned_ids("informed-consent", "intravenous", version=FIRST)) == 29
    assert len(planned_ids("informed-consent", "intramuscular", version=FIRST)) == 29
    assert len(planned_ids("informed-consent", "intranasal-esketamine", version=FIRST)) == 31
    assert len(planned_ids("treatment-session", "intravenous", version=FIRST)) == 18
    assert len(planned_ids("treatment-session", "intramuscular", version=FIRST)) == 17
    assert len(planned_ids("treatment-session", "intranasal-esketamine", version=FIRST)) == 20
    assert len(planned_ids("course-review", version=FIRST)) == 14


@pytest.mark.parametrize("version", VERSIONS)
def test_every_population_module_adds_items_in_every_checklist_that_declares_it(version: str) -> None:
    for checklist in all_shipped((version,)):
        route = ROUTES[0] if checklist.context.routes else None
        base = set(planned_ids(checklist.id, route, version=version))
        for option in checklist.context.populations:
            added = set(planned_ids(checklist.id, route, (option.id,), version=version)) - base
            assert added, f"{checklist.id}: module {option.id} adds no items"


@pytest.mark.parametrize("version", VERSIONS)
def test_treatment_session_phases_run_before_during_after(version: str) -> None:
    checklist = shipped("treatment-session", version)
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

    intravenous = ids("informed-consent@1.0.0", "--route", "intravenous")
    nasal = ids("informed-consent@1.0.0", "--route", "intranasal-esketamine")
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


# --- 2.0.0: what the label, the REMS and the APA consensus add (issue #12) ------------


def cites_reference(item: Item, *references: str) -> bool:
    return any(isinstance(s, ReferenceSource) and s.reference in references for s in item.sources)


def item_of(checklist_id: str, item_id: str) -> Item:
    return next(item for _, item in shipped(checklist_id).items() if item.id == item_id)


UNIVERSAL_SCREENS = {
    "pre-treatment-evaluation": (
        "suicidal-ideation-screened",
        "mania-history-screened",
        "psychosis-history-screened",
    ),
    "treatment-session": ("suicidal-thoughts-asked",),
    "course-review": ("suicidal-thoughts-reviewed",),
}


@pytest.mark.parametrize("checklist_id", sorted(UNIVERSAL_SCREENS))
def test_universal_screens_apply_with_no_population_declared(checklist_id: str) -> None:
    routes: list[str | None] = [r.id for r in shipped(checklist_id).context.routes] or [None]
    for route in routes:
        ids = planned_ids(checklist_id, route)
        for screen in UNIVERSAL_SCREENS[checklist_id]:
            assert screen in ids, f"{checklist_id} ({route}) does not screen {screen} without a population"
            assert item_of(checklist_id, screen).applies_when is None


def test_population_modules_keep_only_what_is_additional() -> None:
    """The 1.0.0 module items that became universal screens are not asked twice."""
    assert "mania-history-reviewed" not in {i.id for _, i in shipped("pre-treatment-evaluation").items()}
    with_module = planned_ids("treatment-session", "intravenous", ("suicidal-ideation",))
    assert with_module.count("suicidal-thoughts-asked") == 1
    assert "suicidal-ideation-reviewed" not in {i.id for _, i in shipped("course-review").items()}


BASE_REVIEWS = (
    "label-contraindications-reviewed",
    "blood-pressure-history-reviewed",
    "vascular-conditions-reviewed",
    "misuse-risk-reviewed",
    "pregnancy-asked",
    "pregnancy-plans-discussed",
    "breastfeeding-asked",
)


def test_contraindications_precautions_and_pregnancy_are_reviewed_before_every_course() -> None:
    ids = planned_ids("pre-treatment-evaluation")
    for item_id in BASE_REVIEWS:
        assert item_id in ids, item_id
        item = item_of("pre-treatment-evaluation", item_id)
        assert cites_reference(item, "spravato-pi", "ketalar-pi"), f"{item_id} cites no label"
        assert item.text.startswith(("Reviewed", "Asked", "Discussed")), (
            f"{item_id} decides instead of reviewing"
        )
    assert "hypertension" in item_of("pre-treatment-evaluation", "blood-pressure-history-reviewed").text
    assert "substance use disorder" in item_of("pre-treatment-evaluation", "misuse-risk-reviewed").text


# Each label and REMS element of an esketamine session, the item that carries it, and
# what that item must cite.
ESKETAMINE_ELEMENTS = {
    "certified setting": ("treatment-session", "esketamine-setting-certified", "spravato-rems"),
    "healthcare provider on site": ("treatment-session", "esketamine-provider-on-site", "spravato-rems"),
    "patient enrolled before the first treatment": (
        "informed-consent",
        "consent-esketamine-rems-enrolment",
        "spravato-rems",
    ),
    "patient enrolled, checked every session": (
        "treatment-session",
        "esketamine-patient-enrolled",
        "spravato-rems",
    ),
    "self-administration under direct observation": (
        "treatment-session",
        "esketamine-self-administration-observed",
        "spravato-rems",
    ),
    "nothing taken home": ("treatment-session", "esketamine-none-taken-home", "spravato-rems"),
    "blood pressure before the dose": (
        "treatment-session",
        "baseline-heart-rate-blood-pressure",
        "spravato-pi",
    ),
    "blood pressure about 40 minutes after": (
        "treatment-session",
        "esketamine-blood-pressure-rechecked",
        "spravato-pi",
    ),
    "blood pressure before discharge": (
        "treatment-session",
        "esketamine-discharge-blood-pressure",
        "spravato-rems",
    ),
    "sedation and breathing, pulse oximeter": (
        "treatment-session",
        "sedation-breathing-watched",
        "spravato-pi",
    ),
    "observed for at least two hours": (
        "treatment-session",
        "esketamine-post-dose-observation",
        "spravato-pi",
    ),
    "until the effects have resolved": ("treatment-session", "acute-effects-subsided", "spravato-pi"),
    "patient monitoring form": ("treatment-session", "esketamine-monitoring-form", "spravato-rems"),
    "no driving until the next day": ("treatment-session", "no-driving-reminded-esketamine", "spravato-pi"),
    "someone drives the patient home": ("informed-consent", "consent-going-home-esketamine", "spravato-pi"),
    "supervised setting explained": (
        "informed-consent",
        "consent-esketamine-supervised-setting",
        "spravato-rems",
    ),
}


@pytest.mark.parametrize("element", sorted(ESKETAMINE_ELEMENTS))
def test_each_rems_and_label_element_is_its_own_item_on_the_esketamine_route(element: str) -> None:
    checklist_id, item_id, reference = ESKETAMINE_ELEMENTS[element]
    assert item_id in planned_ids(checklist_id, "intranasal-esketamine"), element
    assert cites_reference(item_of(checklist_id, item_id), reference), f"{item_id} does not cite {reference}"


def test_esketamine_items_never_reach_the_ketamine_routes() -> None:
    for checklist_id in ("informed-consent", "treatment-session"):
        for route in KETAMINE_ROUTES:
            declarable = tuple(p.id for p in shipped(checklist_id).context.populations)
            leaked = [i for i in planned_ids(checklist_id, route, declarable) if "esketamine" in i]
            assert not leaked, f"{checklist_id} {route}: {leaked}"


KETAMINE_ROUTES = ("intravenous", "intramuscular")
KETAMINE_COUNTERPARTS = {
    "airway-trained-clinician-present": ("ketalar-pi", "apa-consensus"),
    "resuscitation-equipment-ready": ("ketalar-pi", "apa-consensus"),
    "heart-rate-blood-pressure-monitored": ("ketalar-pi", "apa-consensus"),
    "sedation-breathing-watched": ("ketalar-pi",),
    "observed-until-ready-to-leave": ("apa-consensus",),
    "no-driving-reminded-ketamine": ("ketalar-pi",),
}


@pytest.mark.parametrize("item_id", sorted(KETAMINE_COUNTERPARTS))
def test_ketamine_routes_carry_the_counterparts_the_label_and_apa_support(item_id: str) -> None:
    for route in KETAMINE_ROUTES:
        assert item_id in planned_ids("treatment-session", route), (item_id, route)
    assert cites_reference(item_of("treatment-session", item_id), *KETAMINE_COUNTERPARTS[item_id])


def test_regulatory_status_is_accurate() -> None:
    approved = item_of("informed-consent", "consent-esketamine-approved-use")
    assert "adults" in approved.text
    assert cites_reference(approved, "spravato-pi")
    off_label = item_of("informed-consent", "consent-off-label-status")
    assert "off-label" in off_label.text and cites_reference(off_label, "ketalar-pi")
    nasal = "intranasal-esketamine"
    for population, item_id in (
        ("adolescents", "consent-young-esketamine-off-label"),
        ("children", "consent-young-esketamine-off-label"),
        ("bipolar-depression", "consent-bipolar-esketamine-off-label"),
    ):
        assert item_id not in planned_ids("informed-consent", nasal)
        assert item_id in planned_ids("informed-consent", nasal, (population,))
        assert item_id not in planned_ids("informed-consent", "intravenous", (population,))
        assert "off-label" in item_of("informed-consent", item_id).text
    assert "until the next day" in item_of("treatment-session", "no-driving-reminded-esketamine").text
    assert "restful sleep" in item_of("informed-consent", "consent-going-home-esketamine").text


CONSENT_CORE = ("consent-alternatives-discussed", "consent-right-to-withdraw", "consent-capacity-assessed")


@pytest.mark.parametrize("route", ROUTES)
def test_consent_has_its_core_elements_and_stays_short(route: str) -> None:
    ids = planned_ids("informed-consent", route)
    for item_id in CONSENT_CORE:
        assert item_id in ids, item_id
        assert cites_reference(item_of("informed-consent", item_id), "ama-code")
    assert len(ids) <= 20, f"base consent for {route} has {len(ids)} items"


@pytest.mark.parametrize("route", ROUTES)
def test_treatment_session_is_organised_into_pauses_of_at_most_nine_base_items(route: str) -> None:
    checklist = shipped("treatment-session")
    assert [p.id for p in checklist.pauses or ()] == ["before-dose", "observation-check", "sign-out"]
    assert all(section.pause for section in checklist.sections), "every section belongs to a pause"
    base = planned("treatment-session", route)
    sizes = Counter(p.section.pause for p in base)
    assert set(sizes) == {"before-dose", "observation-check", "sign-out"}
    assert max(sizes.values()) <= 9, sizes
    moments = ["before-dose", "observation-check", "sign-out"]
    order = [
        moments.index(p.section.pause or "") for p in planned("treatment-session", route, POPULATIONS[:5])
    ]
    assert order == sorted(order)


# Words that mark a statement the four documents do not make.
BEYOND_THE_DOCUMENTS = re.compile(
    r"REMS|label|off-label|approved|pregnan|breastfe|psychosis|hypertension|oximet|"
    r"two hours|40 minutes|24 hours|next day|contraindicat|bladder|memory|enrol|"
    r"capacity|decline|alternatives|airway|resuscitation|certified|hospital",
    re.IGNORECASE,
)
ADDED_IN_2_0_0 = frozenset(
    {
        "suicidal-ideation-screened",
        "mania-history-screened",
        "psychosis-history-screened",
        *BASE_REVIEWS,
        "hospital-care-considered",
        "consent-esketamine-rems-enrolment",
        "consent-going-home-ketamine",
        "consent-going-home-esketamine",
        "consent-pregnancy-discussed",
        "consent-right-to-withdraw",
        "consent-capacity-assessed",
        "consent-young-esketamine-off-label",
        "consent-bipolar-esketamine-off-label",
        "consent-esketamine-not-suicide-prevention",
        "airway-trained-clinician-present",
        "resuscitation-equipment-ready",
        "esketamine-setting-certified",
        "esketamine-patient-enrolled",
        "esketamine-provider-on-site",
        "sedation-breathing-watched",
        "esketamine-self-administration-observed",
        "esketamine-blood-pressure-rechecked",
        "esketamine-discharge-blood-pressure",
        "no-driving-reminded-ketamine",
        "no-driving-reminded-esketamine",
        "esketamine-none-taken-home",
        "esketamine-monitoring-form",
        "suicidal-thoughts-reviewed",
        "blood-pressure-trend-reviewed",
        "bladder-symptoms-asked",
        "cognition-asked",
        "pregnancy-breastfeeding-reviewed",
    }
)


def test_every_item_beyond_the_documents_cites_an_external_source() -> None:
    newest = {item.id for _, _, item in items_with_sections()}
    assert newest >= ADDED_IN_2_0_0, sorted(ADDED_IN_2_0_0 - newest)
    first = {item.id for _, _, item in items_with_sections((FIRST,))}
    assert not (ADDED_IN_2_0_0 & first), "an item new in 2.0.0 reuses a 1.0.0 id"
    for checklist, _, item in items_with_sections():
        where = f"{checklist.id}/{item.id}"
        if item.id in ADDED_IN_2_0_0:
            assert cites_reference(item, *REFERENCE_IDS), (
                f"{where} goes beyond the documents without a reference"
            )
        flagged = BEYOND_THE_DOCUMENTS.search(item.text)
        if flagged:
            assert cites_reference(item, *REFERENCE_IDS), (
                f"{where} says {flagged[0]!r} but cites no reference"
            )


REFERENCE_IDS = ("spravato-pi", "spravato-rems", "ketalar-pi", "apa-consensus", "ama-code")


def test_external_sources_are_declared_with_version_and_identifier() -> None:
    for checklist in all_shipped():
        declared = {r.id: r for r in checklist.references or ()}
        assert set(declared) <= set(REFERENCE_IDS), checklist.id
        for reference in declared.values():
            assert reference.version.strip() and (reference.url or reference.doi), reference.id
    apa = next(r for c in all_shipped() for r in c.references or () if r.id == "apa-consensus")
    assert apa.doi == "10.1001/jamapsychiatry.2017.0080"
    review = REVIEW.read_text(encoding="utf-8")
    for reference_id in REFERENCE_IDS:
        assert f"| `{reference_id}` |" in review, f"{reference_id} is missing from the external sources table"
    assert "## How to revise a checklist when a source changes" in review
    assert "### What could not be confirmed" in review


def test_every_population_is_accepted_by_every_checklist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDSS_CHECKLISTS", raising=False)
    runner = CliRunner()
    for checklist in all_shipped():
        route = ["--route", ROUTES[0]] if checklist.context.routes else []
        for population in (o.id for o in CLINIC_POPULATIONS):
            result = runner.invoke(app, ["plan", checklist.id, *route, "--population", population])
            assert result.exit_code == 0, (checklist.id, population, result.output)
    ptsd = runner.invoke(app, ["plan", "treatment-session", "--route", "intravenous", "--population", "ptsd"])
    assert nothing_extra_note(shipped("treatment-session"), "ptsd") in ptsd.output
    assert "item" in ptsd.output.lower() or "confirmed" in ptsd.output.lower(), "the plan carries on"


def test_newest_versions_pass_the_design_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDSS_CHECKLISTS", raising=False)
    result = CliRunner().invoke(app, ["validate", "--strict", "--documents", str(SEEDS)])
    assert result.exit_code == 0, result.output


def test_the_smaller_corrections_of_the_review() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "never as routine home use" not in readme
    assert "never dispensed for home use" in readme
    review = REVIEW.read_text(encoding="utf-8")
    assert "on the day of treatment" not in review.replace('driving "on the day of treatment"', "")
    assert "until the next day, after a restful sleep" in review
    assert "history of psychosis)" not in review, "psychosis is a precaution, not a contraindication"
    bridge = item_of("treatment-session", "ongoing-support-confirmed").why
    assert not bridge.startswith("Ketamine is a bridge") and "document" in bridge
    young = item_of("informed-consent", "consent-young-other-treatments-first").text
    assert "only after" not in young and "last resort" in young
    tolerance = item_of("course-review", "tolerance-reviewed").text
    assert "weaker" not in tolerance and "shorter" not in tolerance
    for checklist_id, item_id in (
        ("informed-consent", "consent-dissociation-explained"),
        ("treatment-session", "what-to-expect-reminded"),
        ("treatment-session", "dissociation-supported"),
    ):
        item = item_of(checklist_id, item_id)
        assert item.applies_when is None, item_id
        for timing in ("during administration", "infusion", "when it ends"):
            assert timing not in item.text, f"{item_id} times every route like an infusion"
    assert "consent-perception-changes-explained" not in {
        i.id for _, i in shipped("informed-consent").items()
    }
