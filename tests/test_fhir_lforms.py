"""Each exported Questionnaire in LHC-Forms, in Debian's headless Chromium driven by playwright.

For several route/population combinations the form shows exactly the items
`cdss plan` gives; then the form is answered in the page, and the
QuestionnaireResponse LHC-Forms produces is imported with `cdss import fhir
response`, giving the answers that were clicked.
"""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from cdss import fhir
from cdss.checklist import Checklist
from cdss.fhir.bundle import checklist_questionnaire
from cdss.plan import RunContext, accepted_populations, declare, plan
from cdss.session import Session
from cdss.store.sqlite import SqliteStore
from tests.conftest import CHROMIUM_FLAGS, REPO, chromium
from tests.fhir_sessions import both_conditions_checklist, busiest_context, cdss, shipped

CHECKLISTS = shipped()
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>cdss in LHC-Forms</title>
<link href="lforms/webcomponent/styles.css" rel="stylesheet"></head>
<body><div id="form"></div>
<script src="lforms/webcomponent/assets/lib/zone.min.js"></script>
<script src="lforms/webcomponent/runtime.js"></script>
<script src="lforms/webcomponent/polyfills.js"></script>
<script src="lforms/webcomponent/main.js"></script>
<script src="lforms/fhir/R4/lformsFHIR.min.js"></script>
</body></html>
"""
# LHC-Forms renders each shown item as an element with id item-<linkId>/<n>[/<n>...] and each
# answer as a label whose id ends in |<system>|<code>; these helpers read and click through that.
HELPERS = r"""
window.cdssItem = (link) => {
  const escaped = link.replace(/[.*+?^${}()|[\]\\\/]/g, '\\$&');
  const pattern = new RegExp('^item-' + escaped + '(/\\d+)+$');
  return [...document.querySelectorAll('[id^="item-"]')].find(e => pattern.test(e.id));
};
window.cdssShown = () =>
  [...document.querySelectorAll('[id^="item-"]')].map(e => e.id.slice(5).replace(/(\/\d+)+$/, ''));
window.cdssClick = (link, system, code) => {
  const label = [...cdssItem(link).querySelectorAll('label')]
    .find(l => l.id.endsWith('|' + system + '|' + code));
  label.click();
};
true;  // playwright would call a script whose value is a function
"""


def lforms_folder() -> Path:
    """The unpacked lforms package: .ci/test puts it there; fetched here if a run skipped that."""
    found = subprocess.run(
        ["bash", str(REPO / ".ci" / "lforms")], capture_output=True, text=True, check=True, timeout=600
    )
    return REPO / found.stdout.strip() / "package" / "dist" / "lforms"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The page and LHC-Forms served on localhost."""
    root = tmp_path_factory.mktemp("lforms-site")
    (root / "lforms").symlink_to(lforms_folder(), target_is_directory=True)
    (root / "index.html").write_text(PAGE, encoding="utf-8")
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=chromium(), args=list(CHROMIUM_FLAGS))
        yield launched
        launched.close()


def open_form(browser: Browser, site: str, questionnaire: dict[str, Any]) -> Page:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(site)
    page.wait_for_function(
        '!!(window.LForms && LForms.Util && typeof LForms.Util.addFormToPage === "function")'
    )
    page.evaluate(HELPERS)
    page.evaluate('q => LForms.Util.addFormToPage(q, "form", {})', questionnaire)
    page.wait_for_selector("lhc-item")
    assert errors == []
    return page


def settle(page: Page) -> list[str]:
    """What the form shows once it stops changing after a click."""
    before: list[str] = page.evaluate("cdssShown()")
    while True:
        page.wait_for_timeout(150)
        now: list[str] = page.evaluate("cdssShown()")
        if now == before:
            return now
        before = now


def set_context(page: Page, context: RunContext) -> None:
    if context.route is not None:
        page.evaluate("a => cdssClick(...a)", [fhir.ROUTE_LINK, fhir.ROUTE, context.route])
    for population in context.populations:
        page.evaluate("a => cdssClick(...a)", [fhir.POPULATIONS_LINK, fhir.POPULATION, population])


def shown_items(page: Page, checklist: Checklist) -> list[str]:
    known = {item.id for _, item in checklist.items()}
    return [link for link in settle(page) if link in known]


def contexts(checklist: Checklist) -> list[RunContext]:
    """No population, the busiest population, and all of them, across the routes."""
    routes: list[str | None] = [o.id for o in checklist.context.routes] or [None]
    populations = accepted_populations(checklist)
    busiest = list(busiest_context(checklist).populations)
    wanted = [(routes[0], []), (routes[-1], busiest), (routes[len(routes) // 2], populations)]
    return [declare(checklist, route, chosen) for route, chosen in wanted]


def shows_the_plan(
    browser: Browser, site: str, questionnaire: dict[str, Any], checklist: Checklist, context: RunContext
) -> None:
    """LHC-Forms, with ``context`` set in its leading items, shows exactly the items `cdss plan` gives."""
    page = open_form(browser, site, questionnaire)
    try:
        set_context(page, context)
        assert shown_items(page, checklist) == [p.item.id for p in plan(checklist, context)], context
    finally:
        page.close()


def test_lhc_forms_follows_a_condition_on_a_route_and_a_population(
    browser: Browser, site: str, tmp_path: Path
) -> None:
    checklist = both_conditions_checklist(tmp_path)
    questionnaire = checklist_questionnaire(checklist)
    for route in ("intravenous", "intranasal-esketamine"):
        for populations in ([], ["older-adults"]):
            shows_the_plan(browser, site, questionnaire, checklist, declare(checklist, route, populations))


@pytest.mark.parametrize("checklist", CHECKLISTS, ids=[c.ref for c in CHECKLISTS])
def test_lhc_forms_shows_exactly_the_plan_and_its_response_imports(
    checklist: Checklist, browser: Browser, site: str, tmp_path: Path
) -> None:
    questionnaire = checklist_questionnaire(checklist)
    for context in contexts(checklist):
        shows_the_plan(browser, site, questionnaire, checklist, context)

    context = busiest_context(checklist)
    page = open_form(browser, site, questionnaire)
    try:
        set_context(page, context)
        planned = plan(checklist, context)
        expected = {}
        reasons = [r.code for r in checklist.reasons]
        for n, planned_item in enumerate(planned):
            link = planned_item.item.id
            status = ("done", "not-applicable", "not-done")[n % 3]
            page.evaluate("a => cdssClick(...a)", [link, fhir.STATUS, status])
            if status != "not-done":
                expected[link] = [link, status, None, None]
                continue
            reason = reasons[(n // 3) % len(reasons)]
            settle(page)
            page.evaluate("a => cdssClick(...a)", [fhir.reason_link(link), fhir.NOT_DONE_REASON, reason])
            text = None
            if reason == "other":
                settle(page)
                text = "clinic closed early"
                field = page.evaluate_handle(
                    "link => cdssItem(link).querySelector('input')", fhir.reason_text_link(link)
                ).as_element()
                assert field is not None
                field.fill(text)
            expected[link] = [link, status, reason, text]
        settle(page)
        produced = page.evaluate('LForms.Util.getFormFHIRData("QuestionnaireResponse", "R4")')
    finally:
        page.close()

    path = tmp_path / "from-lhc-forms.json"
    path.write_text(json.dumps(produced), encoding="utf-8")
    store = tmp_path / "records.sqlite3"
    args = ("--store", str(store), "--subject", "S-7F3K2M9Q1", "--clinician", "dr-lee")
    cdss("import", "fhir", "response", str(path), *args)
    with SqliteStore(store) as opened:
        [row] = opened.sessions()
        record = Session.load(opened, row.id).record()
    assert record.status == "completed"
    assert record.context == context
    assert [[i.id, i.status, i.current.reason, i.current.reason_text] for i in record.items if i.current] == [
        expected[p.item.id] for p in planned
    ]
