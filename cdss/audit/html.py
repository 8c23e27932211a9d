"""Rendering report figures: one self-contained HTML page with inline SVG charts, and CSV files.

The page loads nothing from anywhere — no script, no stylesheet, no font, no
image — so it opens offline, can be archived as one file, and prints cleanly
(``@media print`` drops the screen colours and keeps tables whole on a page).
"""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import Any

from cdss import files
from cdss.audit.report import Figures, Table
from cdss.text import csv_cell

CHART_COLOUR = "#1f6feb"
"""Bars are drawn in this colour; the browser test looks for its pixels in a screenshot."""
MUTED = "#8b949e"
ROWS_ON_PAGE = 500

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1b1f24; max-width: 1100px; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f6f8fa; }
.note { color: #57606a; font-size: .9rem; }
svg { display: block; margin: .5rem 0; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  h2 { break-after: avoid; }
  table, svg { break-inside: avoid; }
  th { background: none; }
}
"""


def _cell(value: Any) -> str:
    if value is None:
        return "<td>-</td>"
    if isinstance(value, float):
        return f'<td class="n">{value:.1%}</td>'
    if isinstance(value, int):
        return f'<td class="n">{value}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    rows = "".join(f"<tr>{''.join(_cell(v) for v in row)}</tr>" for row in table.rows[:ROWS_ON_PAGE])
    more = (
        f'<p class="note">{len(table.rows) - ROWS_ON_PAGE} more rows in {table.name}.csv (--csv)</p>'
        if len(table.rows) > ROWS_ON_PAGE
        else ""
    )
    if not table.rows:
        return '<p class="note">None.</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{more}"


def bar_chart(
    title: str, bars: list[tuple[str, float]], *, maximum: float | None = None, percent: bool = False
) -> str:
    """Horizontal bars, one per label, as an inline SVG with its own title for screen readers."""
    if not bars:
        return ""
    top = maximum or max(value for _, value in bars) or 1
    label_width, bar_width, row = 320, 420, 26
    height = row * len(bars) + 10
    parts = [
        f'<svg class="chart" role="img" aria-label="{html.escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{label_width + bar_width + 80}" height="{height}" shape-rendering="crispEdges">',
        f"<title>{html.escape(title)}</title>",
    ]
    for index, (label, value) in enumerate(bars):
        y = 5 + index * row
        width = max(1, round(bar_width * value / top)) if value else 0
        shown = f"{value:.0%}" if percent else f"{value:g}"
        parts += [
            f'<text x="{label_width - 8}" y="{y + 16}" text-anchor="end" font-size="13">'
            f"{html.escape(label[:48])}</text>",
            f'<rect x="{label_width}" y="{y}" width="{bar_width}" height="{row - 6}" fill="#eaeef2"/>',
            f'<rect class="bar" x="{label_width}" y="{y}" width="{width}" height="{row - 6}" '
            f'fill="{CHART_COLOUR}"/>',
            f'<text x="{label_width + bar_width + 6}" y="{y + 16}" font-size="13" fill="#1b1f24">'
            f"{html.escape(shown)}</text>",
        ]
    parts.append("</svg>")
    return "".join(parts)


def charts(figures: Figures) -> dict[str, str]:
    """The charts drawn above their tables."""
    tables = figures.tables
    return {
        "status": bar_chart("Sessions by status", [(str(r[0]), r[1]) for r in tables["status"].rows]),
        "checklists": bar_chart(
            "Completion rate by checklist",
            [(str(r[0]), float(r[5] or 0)) for r in tables["checklists"].rows],
            maximum=1.0,
            percent=True,
        ),
        "not_done": bar_chart(
            "Items most often not done",
            [(f"{r[1]} ({r[2]})", r[3]) for r in tables["not_done"].rows[:10]],
        ),
        "clinicians": bar_chart(
            "Sessions per clinician", [(str(r[0]), r[1]) for r in tables["clinicians"].rows[:15]]
        ),
    }


def page(figures: Figures) -> str:
    drawn = charts(figures)
    sections = [
        f"<h2>{html.escape(table.title)}</h2>{drawn.get(name, '')}{_table(table)}"
        for name, table in figures.tables.items()
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>cdss audit report</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>cdss audit report</h1>"
        f'<p class="note">{html.escape(figures.source)} · generated {html.escape(figures.generated_at)}. '
        "Completion records only: no clinical findings. A report reads what is recorded; "
        "<code>cdss audit verify</code> says whether it can be trusted.</p>"
        f"{''.join(sections)}</body></html>\n"
    )


def write_html(figures: Figures, out: Path) -> None:
    files.write_text(out, page(figures))


def write_csv(figures: Figures, folder: Path) -> list[Path]:
    """One CSV file per table, named after it; the folder is created when missing.

    Each file is written whole or not at all, never through a link planted in the folder.
    """
    new = not folder.exists()
    files.ensure_folder(folder)
    written: list[Path] = []
    try:
        for table in figures.tables.values():
            path = folder / f"{table.name}.csv"
            buffer = io.StringIO(newline="")
            writer = csv.writer(buffer)
            # OWASP's rule: a name such as =HYPERLINK(...) must reach a spreadsheet as text, not a formula.
            writer.writerow([csv_cell(c) for c in table.columns])
            writer.writerows([csv_cell(c) for c in row] for row in table.rows)
            files.write_text(path, buffer.getvalue())
            written.append(path)
    except BaseException:
        if new:  # a folder this call made holds nothing half-done afterwards
            for path in written:
                path.unlink(missing_ok=True)
            folder.rmdir()
        raise
    return written
