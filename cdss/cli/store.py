"""The store itself (``cdss store ...``): setting up a shared store, moving records between stores."""

from __future__ import annotations

from typing import Annotated

import typer

from cdss.cli.app import app
from cdss.cli.render import line

store = typer.Typer(
    name="store",
    help="Set up a store and move records between stores (SQLite file or PostgreSQL URL).",
    no_args_is_help=True,
)
app.add_typer(store)

LocationArgument = Annotated[
    str,
    typer.Argument(
        metavar="STORE",
        help="A postgresql:// URL (libpq: sslmode, service files, PG* variables work) or a SQLite file.",
    ),
]


@store.command("init")
def init(
    location: LocationArgument,
    writer: Annotated[
        str, typer.Option(metavar="ROLE", help="Name of the workstations' role (read and append).")
    ] = "cdss_writer",
    auditor: Annotated[str, typer.Option(metavar="ROLE", help="Name of the auditors' role (read only).")] = (
        "cdss_auditor"
    ),
) -> None:
    """Create an empty store (schema and version) and print the SQL for its two roles.

    Run it once, as a role that may create a schema in the database. Then run
    the printed SQL as a database administrator, and give the workstations the
    writer role and the auditors the auditor role in their CDSS_STORE URL.
    """
    from cdss.store.location import describe, open_store, resolve
    from cdss.store.postgres import PostgresStore, roles_sql

    resolved = resolve(location)
    with open_store(resolved, create=True) as opened:
        if not isinstance(opened, PostgresStore):
            line(f"store {describe(resolved)} is ready")
            return
        database = opened.database()
        version = opened.schema_version()
    sql = roles_sql(database, writer, auditor)
    line(f"-- store {describe(resolved)} is ready (schema version {version}).")
    line("-- Run this as a database administrator to create the two roles:")
    line(sql)


@store.command("copy")
def copy(
    source: Annotated[str, typer.Argument(metavar="FROM", help="The store to copy from (left unchanged).")],
    target: Annotated[
        str, typer.Argument(metavar="TO", help="The store to copy into: empty, or holding a prefix of FROM.")
    ],
) -> None:
    """Copy every event (and so every key and setting) from one store to another, and verify the copy.

    The events keep their numbers, times and hashes. A non-empty TO is refused
    unless it holds the start of the same chain (an earlier or interrupted
    copy); then the rest is appended.
    """
    from cdss.errors import UsageError
    from cdss.store.copying import copy_store
    from cdss.store.location import describe, open_store, resolve

    if resolve(source) == resolve(target):
        raise UsageError("FROM and TO are the same store")
    with open_store(source, read_only=True) as origin, open_store(target, create=True) as destination:
        copied = copy_store(
            origin,
            destination,
            source_name=f"store {describe(source)}",
            target_name=f"store {describe(target)}",
        )
    fresh = copied.events - copied.already
    kept = f" ({copied.already} were already there)" if copied.already else ""
    line(
        f"copied {fresh} event{'' if fresh == 1 else 's'}{kept}; {describe(target)} now holds "
        f"the same {copied.events} events as {describe(source)}, read back and compared, "
        f"ending at {copied.head[:12]}…"
    )
