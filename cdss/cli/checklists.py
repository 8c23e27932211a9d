"""Commands for reading and authoring checklists: list, show, plan, validate, diff, release."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cdss.cli.app import ChecklistFolders, JsonOutput, Populations, Route, app, open_catalog
from cdss.cli.render import console, line, print_json

if TYPE_CHECKING:
    from cdss.checklist import Checklist, DocumentSource, ReferenceSource

Ref = Annotated[
    str, typer.Argument(metavar="ID[@VERSION]", help="A checklist, newest version unless @VERSION is given.")
]


@app.command("list")
def list_checklists(checklists: ChecklistFolders = None, json: JsonOutput = False) -> None:
    """List checklists: id, newest version, title and number of items."""
    catalog = open_catalog(checklists)
    rows: list[dict[str, Any]] = []
    for checklist_id in catalog.ids():
        entry, raw = catalog.read(checklist_id)
        # A listing reads files before validation: a wrong shape counts as nothing, never a crash.
        sections = raw.get("sections")
        items = sum(
            len(s["items"])
            for s in (sections if isinstance(sections, list) else [])
            if isinstance(s, dict) and isinstance(s.get("items"), list)
        )
        title = raw.get("title")
        rows.append(
            {
                "id": entry.id,
                "version": entry.version,
                "title": title if isinstance(title, str) else "",
                "items": items,
            }
        )
    if json:
        print_json(rows)
        return
    if not rows:
        line("No checklists found.")
        return
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        line(f"{r['id']:<{width}}  {r['version']:<8}  {r['items']:>3} items  {r['title']}")


@app.command()
def show(ref: Ref, checklists: ChecklistFolders = None, json: JsonOutput = False) -> None:
    """Show a checklist's sections and items with their sources."""
    checklist = open_catalog(checklists).load(ref)
    if json:
        print_json(checklist.to_json())
        return
    _render_checklist(checklist)


def _applies_text(condition: Any) -> str:
    if condition is None:
        return ""
    bits = []
    if condition.routes:
        bits.append("route: " + ", ".join(condition.routes))
    if condition.populations:
        bits.append("population: " + ", ".join(condition.populations))
    return "only when " + "; ".join(bits)


def _source_text(
    checklist: Checklist, source: DocumentSource | ReferenceSource, titles: dict[str, str]
) -> str:
    from cdss.checklist import DocumentSource

    if isinstance(source, DocumentSource):
        return f"{titles.get(source.document, source.document)} [{source.document}] — {source.heading}"
    reference = checklist.reference(source.reference)
    section = reference.section(source.section) if reference else None
    title = f"{reference.title} ({reference.version})" if reference else source.reference
    heading = f" {section.title}" if section else ""
    return f"{title} [{source.reference}] — section {source.section}{heading}"


def _render_checklist(checklist: Checklist) -> None:
    from cdss.catalog import content_hash

    titles = {d.id: d.title for d in checklist.documents}
    out = console()
    out.print(f"{checklist.title}  ({checklist.ref})", style="bold")
    out.print(checklist.summary)
    out.print(f"content hash {content_hash(checklist.to_json())}", style="dim")
    if checklist.context.routes:
        out.print("Routes: " + ", ".join(o.id for o in checklist.context.routes))
    if checklist.context.populations:
        out.print("Population modules: " + ", ".join(o.id for o in checklist.context.populations))
    for reference in checklist.references or ():
        where = " ".join(x for x in (reference.url, reference.doi and f"doi:{reference.doi}") if x)
        out.print(
            f"Reference [{reference.id}]: {reference.title}, {reference.issuer}, {reference.version}; {where}"
        )
    pause_titles = {p.id: p.title for p in checklist.pauses or ()}
    for section in checklist.sections:
        out.print()
        phase = f" [{section.phase}]" if section.phase else ""
        if section.pause:
            phase += f" (pause: {pause_titles.get(section.pause, section.pause)})"
        condition = _applies_text(section.applies_when)
        out.print(f"{section.title}{phase}" + (f"  ({condition})" if condition else ""), style="bold cyan")
        for item in section.items:
            condition = _applies_text(item.applies_when)
            out.print(f"  - {item.text}" + (f"  ({condition})" if condition else ""))
            out.print(f"    {item.id}", style="dim")
            for source in item.sources:
                out.print(f"    source: {_source_text(checklist, source, titles)}", style="dim")


@app.command("plan")
def plan_command(
    ref: Ref,
    route: Route = None,
    population: Populations = None,
    checklists: ChecklistFolders = None,
    json: JsonOutput = False,
) -> None:
    """Show the items that apply for a route and populations, in order."""
    from cdss.plan import declare, nothing_extra_notes, plan

    checklist = open_catalog(checklists).load(ref)
    context = declare(checklist, route, population or [])
    planned = plan(checklist, context)
    notes = nothing_extra_notes(checklist, context)
    if json:
        for note in notes:  # stdout stays one JSON document
            sys.stderr.write(note + "\n")
        print_json([p.to_json() for p in planned])
        return
    for note in notes:
        line(note)
    out = console()
    route_text = f"route {context.route}" if context.route else "no route"
    populations = ", ".join(context.populations) or "none"
    out.print(f"{checklist.ref}: {len(planned)} items apply ({route_text}; populations: {populations})")
    current = None
    for p in planned:
        if p.section.id != current:
            current = p.section.id
            phase = f" [{p.section.phase}]" if p.section.phase else ""
            out.print(f"\n{p.section.title}{phase}", style="bold cyan")
        out.print(f"  {p.number:>3}. {p.item.text}")


STRICT_FAILED = 1
"""`cdss validate --strict` with design warnings exits like any failed check."""


@app.command()
def validate(
    *,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Checklist files or folders. Default: every shipped checklist and the lock."),
    ] = None,
    documents: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Folder of the source documents: check hashes and cited headings."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail (exit 1) on design warnings as well as on errors.")
    ] = False,
    all_versions: Annotated[
        bool,
        typer.Option(
            "--all-versions",
            help="Design warnings for every version, not only the newest of each checklist "
            "(files named on the command line always get them).",
        ),
    ] = False,
    checklists: ChecklistFolders = None,
    json: JsonOutput = False,
) -> None:
    """Check checklists against the schema, the semantic rules and the release lock,
    and report checklist-design warnings separately.

    Exit 0 when everything is valid (warnings alone do not fail unless --strict),
    1 when anything is invalid or --strict finds a warning, 2 for usage errors.
    """
    from cdss.validation import Design, check_catalog, check_paths

    if documents is not None and not documents.is_dir():
        from cdss.errors import UsageError

        raise UsageError(f"--documents {documents}: not a folder")
    design: Design = "all" if all_versions else "newest"
    if paths:
        count, found = check_paths(paths, documents=documents, design=design)
    else:
        count, found = check_catalog(open_catalog(checklists), documents=documents, design=design)
    errors = [i for i in found if i.severity == "error"]
    warnings = [i for i in found if i.severity != "error"]
    failed = bool(errors) or (strict and bool(warnings))
    if json:
        print_json(
            {
                "valid": not failed,
                "checked": count,
                "issues": [i.as_dict() for i in errors],
                "warnings": [i.as_dict() for i in warnings],
            }
        )
    else:
        for issue in [*errors, *warnings]:
            line(str(issue))
        files = f"{count} checklist file{'s' if count != 1 else ''}"
        summary = f"{files} checked: " + (f"{len(errors)} problem(s)" if errors else "all valid")
        if warnings:
            summary += f"; {len(warnings)} design warning(s)" + (" (--strict)" if strict else "")
        line(summary)
    if failed:
        raise typer.Exit(STRICT_FAILED)


@app.command("diff")
def diff_command(
    checklist_id: Annotated[str, typer.Argument(metavar="ID")],
    version_a: Annotated[str, typer.Argument(metavar="VERSION_A")],
    version_b: Annotated[str, typer.Argument(metavar="VERSION_B")],
    checklists: ChecklistFolders = None,
    json: JsonOutput = False,
) -> None:
    """Show what changed between two versions: items added, removed, reworded, moved,
    re-scoped, re-cited or moved to another pause, and the references and pauses declared."""
    from cdss.diff import diff

    catalog = open_catalog(checklists)
    old = catalog.load(f"{checklist_id}@{version_a}")
    new = catalog.load(f"{checklist_id}@{version_b}")
    changes = diff(old, new)
    if json:
        print_json([c.to_json() for c in changes])
        return
    for change in changes:
        where = f" {change.item}" if change.item else ""
        mark = "+" if change.kind.endswith("added") else "-" if change.kind.endswith("removed") else "~"
        line(f"{mark} {change.kind}{where}: {change.detail}")
    line(f"{len(changes)} change(s) from {old.ref} to {new.ref}")


@app.command()
def release(
    ref: Annotated[str, typer.Argument(metavar="ID@VERSION")], checklists: ChecklistFolders = None
) -> None:
    """Release a version: record its content hash in the lock, so it can never silently change."""
    from cdss.catalog import release as release_entry
    from cdss.catalog import split_ref
    from cdss.errors import UsageError

    if split_ref(ref)[1] is None:
        raise UsageError("release needs an exact version: ID@VERSION")
    entry = open_catalog(checklists).resolve(ref)
    digest = release_entry(entry)
    line(f"released {entry.ref} (content hash {digest}) in {entry.folder / 'lock.json'}")
