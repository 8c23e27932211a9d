"""FHIR exchange commands: ``cdss export fhir ...`` and ``cdss import fhir response``.

Each parses, calls one function in ``cdss.fhir`` and writes or reports;
without the optional ``fhir`` extra they stop with one line naming it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from cdss.cli.app import ChecklistFolders, app, open_catalog
from cdss.cli.render import line
from cdss.cli.sessions import SessionId, Sign, StorePath

export_app = typer.Typer(
    name="export", no_args_is_help=True, help="Export checklists and records in exchange formats."
)
export_fhir = typer.Typer(
    name="fhir", no_args_is_help=True, help="FHIR R4 resources (needs the optional 'fhir' extra)."
)
export_app.add_typer(export_fhir)
import_app = typer.Typer(name="import", no_args_is_help=True, help="Import records from exchange formats.")
import_fhir = typer.Typer(
    name="fhir", no_args_is_help=True, help="FHIR R4 resources (needs the optional 'fhir' extra)."
)
import_app.add_typer(import_fhir)
app.add_typer(export_app)
app.add_typer(import_app)

Out = Annotated[
    Path | None, typer.Option("--out", metavar="FILE", help="Write here instead of to standard output.")
]


def _write(resource: dict[str, Any], out: Path | None, what: str) -> None:
    from cdss.fhir.bundle import to_bytes

    data = to_bytes(resource)
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    from cdss import files

    files.write_bytes(out, data)
    line(f"{what}: {out}")


@export_fhir.command("questionnaire")
def export_questionnaire(
    ref: Annotated[
        str, typer.Argument(metavar="ID[@VERSION]", help="The checklist; newest version by default.")
    ],
    out: Out = None,
    checklists: ChecklistFolders = None,
) -> None:
    """Write a checklist version as a FHIR R4 Questionnaire (SDC style)."""
    from cdss.fhir import models
    from cdss.fhir.bundle import checklist_questionnaire

    models.require()
    checklist = open_catalog(checklists).load(ref)
    _write(checklist_questionnaire(checklist), out, f"Questionnaire {checklist.ref}")


@export_fhir.command("response")
def export_response(
    session_id: SessionId,
    out: Out = None,
    store: StorePath = None,
    checklists: ChecklistFolders = None,
) -> None:
    """Write a session as a FHIR Bundle: its QuestionnaireResponse and a Provenance per signature and
    amendment."""
    from cdss.cli.sessions import load_session, open_existing
    from cdss.fhir import models
    from cdss.fhir.bundle import response_bundle

    models.require()
    with open_existing(store) as opened:
        bundle = response_bundle(load_session(opened, session_id, checklists))
    _write(bundle, out, "QuestionnaireResponse and Provenance bundle")


@import_fhir.command("response")
def import_response(
    *,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A QuestionnaireResponse, or a Bundle with one.")
    ],
    store: StorePath = None,
    subject: Annotated[
        str | None,
        typer.Option(metavar="REF", help="The opaque subject reference, when the response has none."),
    ] = None,
    clinician: Annotated[
        str | None, typer.Option(metavar="ID", help="Who answered, when the response names no author.")
    ] = None,
    sign: Sign = False,
    checklists: ChecklistFolders = None,
) -> None:
    """Record a QuestionnaireResponse for a released checklist version as a session.

    The whole file is checked, as an answers file is, before anything is written.
    A completed response completes the session; an in-progress one leaves it open.
    """
    from cdss.cli.sessions import open_existing, require_registered, unlock_key
    from cdss.fhir import intake, models

    models.require()
    checked = intake.read_file(file, open_catalog(checklists), subject=subject, clinician=clinician)
    key = unlock_key(checked.clinician) if sign else None
    with open_existing(store, create=True) as opened:
        if key is not None:
            require_registered(opened, key)
        session = intake.record(opened, checked, key)
    state = "completed" if session.status == "completed" else "open"
    line(
        f"session {session.id} {state}: {len(checked.answers)} item(s) recorded from {file} "
        f"({checked.checklist.ref})"
    )
