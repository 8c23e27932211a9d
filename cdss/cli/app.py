"""The typer application and the options several command groups share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from cdss.catalog import Catalog

app = typer.Typer(
    name="cdss",
    help=(
        "Checklists for ketamine and esketamine treatment of depression, with "
        "tamper-evident completion records.\n\n"
        "cdss records that each item was done, not applicable or not done, by whom "
        "and when. It never records clinical findings and never makes a decision."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ChecklistFolders = Annotated[
    list[Path] | None,
    typer.Option(
        "--checklists",
        metavar="DIR",
        help="An extra folder of checklists (<DIR>/<id>/<version>.json); repeatable. "
        "Also read from CDSS_CHECKLISTS.",
    ),
]

Route = Annotated[
    str | None,
    typer.Option(metavar="ROUTE", help="The route of administration for this run; `cdss show` lists them."),
]

Populations = Annotated[
    list[str] | None,
    typer.Option("--population", metavar="NAME", help="A special-population module to include; repeatable."),
]

JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def open_catalog(folders: list[Path] | None) -> Catalog:
    """The shipped checklists, CDSS_CHECKLISTS and the --checklists folders."""
    from cdss.catalog import Catalog

    return Catalog.default(folders or [])
