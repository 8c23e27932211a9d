"""The auditor's commands (``cdss audit ...``); keys and settings are in ``cdss.cli.keys``.

Each command parses, calls one library function in ``cdss.audit`` or
``cdss.keys`` and renders; the checking itself never prints.
A failed verification exits 1 after listing every broken place.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cdss.audit.findings import Finding, Verification
from cdss.cli.app import ChecklistFolders, JsonOutput, app, open_catalog
from cdss.cli.render import line, print_json
from cdss.cli.sessions import StorePath, store_path

if TYPE_CHECKING:
    from rich.console import Console

    from cdss.audit.against import Reference
    from cdss.audit.report import Figures
    from cdss.audit.sources import Source

FAILED = 1
SHOWN_FINDINGS = 200

audit = typer.Typer(
    name="audit",
    help="Verify, checkpoint, report on and export the records.",
    no_args_is_help=True,
)
app.add_typer(audit)

BundleArgument = Annotated[
    Path | None,
    typer.Argument(metavar="BUNDLE", help="An exported bundle (folder or .zip) instead of a store."),
]


def open_source(bundle: Path | None, store: str | None, folders: list[Path] | None) -> Source:
    """A bundle when one is named, otherwise the store (``--store``, CDSS_STORE or the default)."""
    from cdss.errors import UsageError

    if bundle is not None and store is not None:
        raise UsageError("give either a BUNDLE or --store, not both")
    if bundle is not None:
        from cdss.audit.bundle import BundleSource

        return BundleSource(bundle)
    from cdss.audit.sources import StoreSource

    return StoreSource(store_path(store), open_catalog(folders))


def reference_from(path: Path) -> Reference:
    """What ``--against`` names: a bundle, a store file, or a checkpoint (see ``cdss.audit.against``)."""
    from cdss.audit import against, bundle, checkpoint
    from cdss.audit.findings import Anchor
    from cdss.audit.sources import StoreSource

    if path.is_dir() or path.suffix == ".zip":
        source = bundle.BundleSource(path)
        return against.SourceReference(source, bundle.manifest_anchors(source.manifest, source.name))
    if not checkpoint.looks_like_one(path):
        store = StoreSource(path)
        seq, hash_, _ = store.head()
        return against.SourceReference(store, [Anchor(seq, hash_, f"{store.name} (its head)")])
    point = checkpoint.read(path)
    signed = f", signed by {point.signed_by}" if point.signed_by else ", not signed"
    return against.CheckpointReference(point, f"checkpoint {path} taken {point.taken_at}{signed}")


def _show(result: Verification, json: bool) -> None:
    if json:
        print_json(result.to_json())
        return
    for finding in result.findings[:SHOWN_FINDINGS]:
        line(str(finding))
    hidden = len(result.findings) - SHOWN_FINDINGS + result.more_findings
    if hidden > 0:
        line(f"... and {hidden} more (--json lists them all)")
    for text in result.summary():
        line(text)
    if result.ok:
        line("verified: every check holds")
    else:
        line(f"verification FAILED: {len(result.findings) + result.more_findings} problem(s)")


@audit.command("verify")
def verify_command(  # noqa: PLR0917 — typer passes the options by name
    bundle: BundleArgument = None,
    store: StorePath = None,
    against: Annotated[
        Path | None,
        typer.Option(
            metavar="BUNDLE_STORE_OR_CHECKPOINT",
            help="Also compare with this bundle, store or checkpoint the auditor kept (reveals a cut-off "
            "tail; see docs/bundle-format.md).",
        ),
    ] = None,
    trusted_keys: Annotated[
        Path | None,
        typer.Option(
            "--trusted-keys",
            metavar="FILE",
            help="Public keys obtained independently (JSON list of {clinician, public_key}); every signer "
            "outside them, a checkpoint's included, is a finding.",
        ),
    ] = None,
    checklists: ChecklistFolders = None,
    json: JsonOutput = False,
) -> None:
    """Check every event's hash, the chain, the schema, each session's order, checklists and signatures.

    Exit 0 when everything holds, 1 when anything does not (each broken place is listed).
    """
    from cdss.audit import trust
    from cdss.audit.against import ends_agree
    from cdss.audit.verify import verify

    trusted = trust.read(trusted_keys) if trusted_keys is not None else None
    reference = reference_from(against) if against is not None else None
    try:
        source = open_source(bundle, store, checklists)
        try:
            result = verify(source, reference.anchors() if reference else (), trusted=trusted)
            if reference is not None:
                result.keep(ends_agree(result, source, reference))
        finally:
            source.close()
    finally:
        if reference is not None:
            reference.close()
    if trusted is not None and reference is not None and reference.signer is not None:
        signer, key = reference.signer
        outside = trusted.problem(key, signer, f"{reference.name} is signed")
        if outside:
            result.keep([Finding(None, None, outside)])
    _show(result, json)
    if not result.ok:
        raise typer.Exit(FAILED)


@audit.command("checkpoint")
def checkpoint_command(
    out: Annotated[Path, typer.Option(metavar="FILE", help="Where to write the checkpoint (a new file).")],
    store: StorePath = None,
    sign: Annotated[
        str | None,
        typer.Option(metavar="ID", help="Sign it with this person's key (from `cdss keys init`)."),
    ] = None,
) -> None:
    """Write the store's head (seq, hash, time) to a file for the auditor to keep."""
    from cdss.audit.checkpoint import take
    from cdss.cli.sessions import unlock_key

    key = unlock_key(sign) if sign is not None else None
    point = take(store_path(store), out, key)
    signed = f"; signed by {point.signed_by}" if point.signed_by else ""
    line(f"checkpoint {out}: seq {point.seq} hash {point.hash} ({point.at or 'empty store'}){signed}")


@audit.command("export")
def export_command(
    *,
    out: Annotated[Path, typer.Option(metavar="PATH", help="A new folder, or a file ending in .zip.")],
    since: Annotated[
        str | None, typer.Option(metavar="DATE", help="Only sessions started on or after this UTC date.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="DATE", help="Only sessions started on or before this UTC date.")
    ] = None,
    checklist: Annotated[str | None, typer.Option(metavar="ID", help="Only runs of this checklist.")] = None,
    store: StorePath = None,
    checklists: ChecklistFolders = None,
    fhir: Annotated[
        bool, typer.Option("--fhir", help="Also write fhir-bundle.json: a FHIR Bundle of the records.")
    ] = False,
) -> None:
    """Write a self-contained bundle that verifies offline (docs/bundle-format.md)."""
    from cdss.audit.bundle import Selection
    from cdss.audit.export import export

    selection = Selection(since, until, checklist)
    manifest = export(store_path(store), out, selection, open_catalog(checklists), fhir=fhir)
    events = manifest["events"]
    line(
        f"bundle {out}: {len(manifest['sessions'])} session(s), {events['count']} event(s) "
        f"(seq {events['first_seq']}..{events['last_seq']}), {len(manifest['files'])} file(s)"
    )
    line(f"check it anywhere with: cdss audit verify {out}")


@audit.command("report")
def report_command(
    bundle: BundleArgument = None,
    store: StorePath = None,
    html: Annotated[
        Path | None, typer.Option("--html", metavar="FILE", help="Also write one self-contained HTML page.")
    ] = None,
    csv: Annotated[
        Path | None, typer.Option("--csv", metavar="DIR", help="Also write each table as a CSV file.")
    ] = None,
) -> None:
    """Sessions by status, completion per checklist and item, not-done reasons, open sessions,
    clinicians, amendments and signatures."""
    from cdss.audit import html as rendering
    from cdss.audit.report import report
    from cdss.cli.render import console, plain
    from cdss.errors import UsageError

    if bundle is not None and store is not None:
        raise UsageError("give either a BUNDLE or --store, not both")
    from cdss import files

    # Wrong path kinds are refused before any work is done (cdss.files).
    if html is not None:
        files.check_file_target(html, replace=True)
    if csv is not None:
        files.check_folder_target(csv)
    figures = report(store=None if bundle else store_path(store), bundle=bundle)
    if plain():
        _plain_report(figures)
    else:
        _rich_report(figures, console())
    if html is not None:
        rendering.write_html(figures, html)
        line(f"HTML report: {html}")
    if csv is not None:
        written = rendering.write_csv(figures, csv)
        line(f"CSV: {len(written)} file(s) in {csv}")


TERMINAL_ROWS = 20


def _plain_report(figures: Figures) -> None:
    line(f"cdss audit report · {figures.source} · {figures.generated_at}")
    for table in figures.tables.values():
        line()
        line(f"{table.title}:")
        if not table.rows:
            line("  none")
            continue
        cells = [[_text(v) for v in row] for row in table.rows[:TERMINAL_ROWS]]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(table.columns)]
        line("  " + "  ".join(c.ljust(w) for c, w in zip(table.columns, widths, strict=True)).rstrip())
        for row in cells:
            line("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if len(table.rows) > TERMINAL_ROWS:
            line(f"  ... {len(table.rows) - TERMINAL_ROWS} more (--csv or --html for all)")


def _rich_report(figures: Figures, out: Console) -> None:
    from rich.table import Table as RichTable

    out.print(f"[bold]cdss audit report[/bold] · {figures.source} · {figures.generated_at}")
    for table in figures.tables.values():
        shown = RichTable(title=table.title, title_justify="left", title_style="bold")
        for column in table.columns:
            shown.add_column(column, overflow="fold")
        for row in table.rows[:TERMINAL_ROWS]:
            shown.add_row(*(_text(v) for v in row))
        if not table.rows:
            shown.add_row(*(["none"] + [""] * (len(table.columns) - 1)))
        out.print(shown)
        if len(table.rows) > TERMINAL_ROWS:
            out.print(f"  ... {len(table.rows) - TERMINAL_ROWS} more (--csv or --html for all)")


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1%}"
    return str(value)
