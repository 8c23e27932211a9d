"""The auditor's commands (``cdss audit ...``) and the clinician's keys (``cdss keys ...``).

Each command parses, calls one library function in ``cdss.audit`` or
``cdss.keys`` and renders; the checking itself never prints.
A failed verification exits 1 after listing every broken place.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cdss.cli.app import ChecklistFolders, JsonOutput, app, open_catalog
from cdss.cli.render import line, print_json
from cdss.cli.sessions import StorePath

if TYPE_CHECKING:
    from cdss.audit.verify import Anchor, Source, Verification

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


def store_path(store: Path | None) -> Path:
    from cdss.store.sqlite import default_path

    return store if store is not None else default_path()


def open_source(bundle: Path | None, store: Path | None, folders: list[Path] | None) -> Source:
    """A bundle when one is named, otherwise the store (``--store``, CDSS_STORE or the default)."""
    from cdss.errors import UsageError

    if bundle is not None and store is not None:
        raise UsageError("give either a BUNDLE or --store, not both")
    if bundle is not None:
        from cdss.audit.bundle import BundleSource

        return BundleSource(bundle)
    from cdss.audit.verify import StoreSource

    catalog = open_catalog(folders)
    return StoreSource(store_path(store), lambda i, v: catalog.load(f"{i}@{v}"))


def anchors_from(path: Path) -> list[Anchor]:
    """What ``--against`` names: a bundle's last event and its store's head, or a checkpoint."""
    from cdss.audit import bundle, checkpoint
    from cdss.audit.verify import Anchor

    if path.is_dir() or path.suffix == ".zip":
        return bundle.anchors(path)
    point = checkpoint.read(path)
    return [Anchor(point.seq, point.hash, f"checkpoint {path} taken {point.taken_at}")]


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
def verify_command(
    bundle: BundleArgument = None,
    store: StorePath = None,
    against: Annotated[
        Path | None,
        typer.Option(
            metavar="BUNDLE_OR_CHECKPOINT",
            help="Also require the events this bundle or checkpoint recorded (reveals a cut-off tail).",
        ),
    ] = None,
    checklists: ChecklistFolders = None,
    json: JsonOutput = False,
) -> None:
    """Check every event's hash, the chain, the schema, each session's order, checklists and signatures.

    Exit 0 when everything holds, 1 when anything does not (each broken place is listed).
    """
    from cdss.audit.verify import verify

    anchors = anchors_from(against) if against is not None else []
    source = open_source(bundle, store, checklists)
    try:
        result = verify(source, anchors)
    finally:
        source.close()
    _show(result, json)
    if not result.ok:
        raise typer.Exit(FAILED)


@audit.command("checkpoint")
def checkpoint_command(
    out: Annotated[Path, typer.Option(metavar="FILE", help="Where to write the checkpoint (a new file).")],
    store: StorePath = None,
) -> None:
    """Write the store's head (seq, hash, time) to a file for the auditor to keep."""
    from cdss.audit.checkpoint import take

    point = take(store_path(store), out)
    line(f"checkpoint {out}: seq {point.seq} hash {point.hash} ({point.at or 'empty store'})")


@audit.command("require-signatures")
def require_signatures(
    state: Annotated[str, typer.Argument(metavar="on|off", help="Whether completing needs a signature.")],
    store: StorePath = None,
) -> None:
    """Require (on) or stop requiring (off) a signature to complete a session in this store."""
    from cdss.errors import UsageError
    from cdss.store import REQUIRE_SIGNATURES
    from cdss.store.sqlite import SqliteStore

    if state not in ("on", "off"):
        raise UsageError(f"expected on or off, not {state!r}")
    with SqliteStore(store) as opened:
        opened.set_setting(REQUIRE_SIGNATURES, state)
    line(f"signatures {'required' if state == 'on' else 'not required'} to complete a session")


keys_app = typer.Typer(name="keys", help="Clinicians' signing keys.", no_args_is_help=True)
app.add_typer(keys_app)

KeyClinician = Annotated[str, typer.Option("--clinician", metavar="ID", help="Whose key, e.g. dr-lee.")]


def _new_passphrase(clinician: str) -> str:
    import sys

    from cdss.keys import passphrase_from_env

    secret = passphrase_from_env()
    if secret is not None:
        return secret
    if not sys.stdin.isatty():
        from cdss.errors import UsageError

        raise UsageError("no terminal to ask for a passphrase; set CDSS_PASSPHRASE")
    return str(
        typer.prompt(f"New passphrase for {clinician}'s key", hide_input=True, confirmation_prompt=True)
    )


@keys_app.command("init")
def keys_init(
    clinician: KeyClinician,
    name: Annotated[
        str, typer.Option("--name", metavar="TEXT", help="Your printed name, as signatures show it.")
    ],
    store: StorePath = None,
) -> None:
    """Create your Ed25519 signing key (passphrase-protected) and register it in the store."""
    from cdss import keys
    from cdss.session import check_clinician
    from cdss.store.sqlite import SqliteStore

    check_clinician(clinician)
    secret = _new_passphrase(clinician)
    with SqliteStore(store) as opened:  # a store cdss cannot use is refused before a key is made
        made = keys.create(clinician, name, secret)
        keys.register(opened, made)
    line(f"key {made.key_id} for {made.name} ({clinician}) created in {keys.key_folder()}")
    line(f"registered in {opened.path}")


@keys_app.command("register")
def keys_register(clinician: KeyClinician, store: StorePath = None) -> None:
    """Register your existing public key in another store (no passphrase needed)."""
    from cdss import keys
    from cdss.store.sqlite import SqliteStore

    found = keys.info(clinician)
    with SqliteStore(store) as opened:
        keys.register(opened, found)
    line(f"key {found.key_id} for {found.name} ({clinician}) registered in {opened.path}")
