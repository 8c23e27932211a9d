"""Report figures from a store and from a bundle, in the terminal, as CSV and as one HTML file."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cdss.audit.bundle import Selection
from cdss.audit.export import export
from cdss.audit.report import report
from tests.audit_records import Plan, catalog, cli, record


@pytest.fixture
def recorded(store_path: Path) -> list[str]:
    return record(
        store_path,
        [Plan(), Plan(amend=True), Plan("abandoned"), Plan("open"), Plan(older_adult=True)],
    )


def test_figures_from_a_store(store_path: Path, recorded: list[str]) -> None:
    tables = report(store=store_path).tables
    assert dict(tables["status"].rows) == {"completed": 3, "abandoned": 1, "open": 1}
    assert tables["checklists"].rows == [("example-walk@1.0.0", 5, 3, 1, 1, 0.6)]
    items = {row[1]: row[2:] for row in tables["items"].rows}
    assert items["setting-confirmed"] == (5, 4, 0, 1, 0.8)  # the amendment counts as the current answer
    assert items["older-adult-side-effects-reviewed"] == (1, 1, 0, 0, 1.0)
    assert tables["not_done"].rows[0] == ("example-walk@1.0.0", "infusion-monitoring-planned", "deferred", 5)
    assert dict((r[0], r[1]) for r in tables["clinicians"].rows) == {"dr-lee": 3, "dr-kim": 2}
    assert tables["amendments"].rows == [("example-walk@1.0.0", "setting-confirmed", 1)]
    assert tables["signing"].rows == [("example-walk@1.0.0", 3, 0, 3)]
    assert tables["open"].rows == []  # the open session is minutes old
    later = report(store=store_path, at=datetime.now(UTC) + timedelta(days=2))
    assert [row[0] for row in later.tables["open"].rows] == [recorded[3]]


def test_a_bundle_reports_only_its_selected_sessions(
    store_path: Path, tmp_path: Path, recorded: list[str]
) -> None:
    bundle = tmp_path / "bundle.zip"
    export(store_path, bundle, Selection(), catalog())
    assert report(bundle=bundle).tables["status"].rows == report(store=store_path).tables["status"].rows
    # A manifest that selects fewer sessions is reported on those alone.
    from tests.test_audit_export import export as cli_export

    folder = tmp_path / "folder"
    assert cli_export(store_path, folder) == 0
    import json

    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["sessions"] = [recorded[2]]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert report(bundle=folder).tables["status"].rows == [("abandoned", 1)]


def test_terminal_csv_and_html(
    store_path: Path, tmp_path: Path, recorded: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    page, folder = tmp_path / "report.html", tmp_path / "csv"
    assert cli("audit", "report", "--store", str(store_path), "--html", str(page), "--csv", str(folder)) == 0
    out = capsys.readouterr().out
    assert "Sessions by status:" in out and "completed  3" in out
    assert "\x1b[" not in out  # plain when not a terminal
    with (folder / "items.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["checklist", "item", "answered", "done", "not applicable", "not done", "done rate"]
    assert len(list(folder.glob("*.csv"))) == 9
    text = page.read_text()
    assert text.count("<svg") == 4 and "@media print" in text
    for outside in ("http://", "https://", "<script", "<link", "src="):
        assert outside not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_bad_report_targets(
    store_path: Path, tmp_path: Path, recorded: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli("audit", "report", "--store", str(store_path), "--html", str(tmp_path / "absent" / "r.html")) == 2
    )
    assert "does not exist" in capsys.readouterr().err
    assert cli("audit", "report", str(tmp_path), "--store", str(store_path)) == 2
