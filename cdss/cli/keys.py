"""Signing keys and the store settings they endorse: ``cdss keys ...``,
``cdss audit require-signatures`` and ``cdss audit subject-pattern``.

Every change here is an event in the store's chain (docs/record-events.md):
the store refuses a second key for a clinician unless it is endorsed by that
clinician's current key or an administrator's, and once a store has an
administrator, a setting changes only with an administrator's endorsement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cdss.cli.app import JsonOutput, app
from cdss.cli.audit import audit
from cdss.cli.render import line, print_json
from cdss.cli.sessions import StorePath, open_existing, passphrase, unlock_key

if TYPE_CHECKING:
    from cdss.keys import SigningKey
    from cdss.store import Store


def shown(store: Store) -> str:
    """``cdss.store.location.shown``, imported only when a key command runs: importing the store
    package loads the event models, which `cdss list` and `--help` should not wait for."""
    from cdss.store.location import shown as named

    return named(store)


keys_app = typer.Typer(name="keys", help="Clinicians' signing keys, registered in the store's chain.")
app.add_typer(keys_app)

KeyClinician = Annotated[str, typer.Option("--clinician", metavar="ID", help="Whose key, e.g. dr-lee.")]
EndorseWith = Annotated[
    str | None,
    typer.Option(
        "--endorse-with",
        metavar="ID",
        help="Endorse with this person's key (an administrator's, or the clinician's current key).",
    ),
]
Administrator = Annotated[
    bool, typer.Option("--administrator", help="Register the key as an administrator's key.")
]


def _endorser(endorse_with: str | None) -> SigningKey | None:
    return unlock_key(endorse_with) if endorse_with is not None else None


@keys_app.command("init")
def keys_init(
    *,
    clinician: KeyClinician,
    name: Annotated[
        str, typer.Option("--name", metavar="TEXT", help="Your printed name, as signatures show it.")
    ],
    administrator: Administrator = False,
    rotate: Annotated[
        bool,
        typer.Option("--rotate", help="Replace your key: the old one endorses the new, then retires."),
    ] = False,
    endorse_with: EndorseWith = None,
    store: StorePath = None,
) -> None:
    """Create your Ed25519 signing key (passphrase-protected) and register it in the store.

    The store must exist already: `cdss run` creates it with its first session, `cdss store
    init PATH` creates an empty one.
    """
    from cdss import keys
    from cdss.session import check_clinician

    check_clinician(clinician)
    keys.printed_name(name)
    # Everything is asked for before the store is opened; a store cdss cannot use (or that
    # does not exist: only `cdss run` and `cdss store init` create one) is refused before a
    # key is made, and a key the store refuses is not kept.
    old = unlock_key(clinician) if rotate else None
    endorser = _endorser(endorse_with)
    secret = passphrase(clinician, new=True)
    with open_existing(store) as opened:
        archived = keys.archive(clinician) if old is not None else []
        made = keys.create(clinician, name, secret)
        try:
            if old is not None:
                keys.rotate(opened, old, made, administrator=administrator)
            else:
                keys.register(opened, made, administrator=administrator, endorser=endorser)
        except BaseException:
            keys.discard(clinician)
            for kept, original in archived:
                kept.rename(original)
            raise
    line(f"key {made.key_id} for {made.name} ({clinician}) created in {keys.key_folder()}")
    if old is not None:
        line(f"key {old.info.key_id} retired; kept as {clinician}.{old.info.key_id[:12]}.pem")
    line(f"registered in {shown(opened)}")


@keys_app.command("register")
def keys_register(
    clinician: KeyClinician,
    administrator: Administrator = False,
    endorse_with: EndorseWith = None,
    store: StorePath = None,
) -> None:
    """Register your existing public key in another store (no passphrase needed unless endorsing)."""
    from cdss import keys

    found = keys.info(clinician)
    with open_existing(store) as opened:
        written = keys.register(opened, found, administrator=administrator, endorser=_endorser(endorse_with))
    state = "registered" if written else "was already registered"
    line(f"key {found.key_id} for {found.name} ({clinician}) {state} in {shown(opened)}")


@keys_app.command("retire")
def keys_retire(
    clinician: KeyClinician,
    key: Annotated[
        str, typer.Option("--key", metavar="KEY_ID", help="The key id (or its first 12+ characters).")
    ],
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why (lost, left the clinic).")],
    endorse_with: EndorseWith = None,
    store: StorePath = None,
) -> None:
    """Retire a key so it can no longer sign: endorsed by that key itself, or an administrator's."""
    from cdss import keys
    from cdss.errors import NotFound, UsageError
    from cdss.session import check_clinician

    check_clinician(clinician)
    with open_existing(store) as opened:
        found = [k for k in opened.keys() if k.clinician == clinician and k.key_id.startswith(key.lower())]
        if len(key) < 12 or not found:
            raise NotFound(f"no key {key} of {clinician} in {shown(opened)}; `cdss keys list` shows them")
        if len(found) > 1:
            raise UsageError(f"{key} matches {len(found)} keys; give more of the id")
        endorser = unlock_key(endorse_with or clinician)
        keys.retire(opened, clinician, found[0].key_id, _text(reason), endorser)
    line(f"key {found[0].key_id} of {clinician} retired")


def _text(value: str) -> str:
    from cdss.errors import InvalidInput

    text = " ".join(value.split())
    if not text or len(text) > 200 or not text.isprintable():
        raise InvalidInput("the reason must be 1 to 200 printable characters")
    return text


@keys_app.command("list")
def keys_list(store: StorePath = None, json: JsonOutput = False) -> None:
    """Every key registered in the store, with who endorsed it and when it was retired."""
    with open_existing(store, read_only=True) as opened:
        registered = opened.keys()
    if json:
        print_json([k.to_json() for k in registered])
        return
    if not registered:
        line("No keys registered.")
        return
    for k in registered:
        role = " administrator" if k.administrator else ""
        endorsed = f", endorsed by {k.endorsed_by[:12]}…" if k.endorsed_by else ""
        state = f"retired {k.retired_at} ({k.retired_reason})" if not k.active else "active"
        line(f"{k.clinician}  {k.key_id[:16]}…{role}  {k.name}  since {k.registered_at}{endorsed}  {state}")


# --- settings -------------------------------------------------------------------------

SettingBy = Annotated[
    str,
    typer.Option(
        "--clinician",
        metavar="ID",
        help="Who changes it; when the store has an administrator, their key endorses the change.",
    ),
]


def _change(opened: Store, name: str, value: str, clinician: str) -> None:
    from cdss import keys
    from cdss.store.ledger import Ledger

    ledger = Ledger()
    ledger.keys = {k.key_id: k for k in opened.keys()}
    endorser = unlock_key(clinician) if ledger.has_administrator() else None
    keys.change_setting(opened, name, value, clinician, endorser)


@audit.command("require-signatures")
def require_signatures(
    state: Annotated[str, typer.Argument(metavar="on|off", help="Whether completing needs a signature.")],
    clinician: SettingBy,
    store: StorePath = None,
) -> None:
    """Require (on) or stop requiring (off) a signature to complete a session in this store."""
    from cdss.errors import UsageError
    from cdss.store import REQUIRE_SIGNATURES

    if state not in ("on", "off"):
        raise UsageError(f"expected on or off, not {state!r}")
    with open_existing(store) as opened:
        _change(opened, REQUIRE_SIGNATURES, state, clinician)
    line(f"signatures {'required' if state == 'on' else 'not required'} to complete a session")


@audit.command("subject-pattern")
def subject_pattern(
    pattern: Annotated[
        str,
        typer.Argument(
            metavar="PATTERN|default",
            help="An ECMA-262 pattern the whole subject reference must match, or default for "
            "codes from `cdss subject new`.",
        ),
    ],
    clinician: SettingBy,
    store: StorePath = None,
) -> None:
    """Set which subject references this store accepts (recorded in the chain)."""
    from cdss.store import SUBJECT_PATTERN
    from cdss.subject import DEFAULT_PATTERN

    value = DEFAULT_PATTERN if pattern == "default" else pattern
    with open_existing(store) as opened:
        _change(opened, SUBJECT_PATTERN, value, clinician)
    line(f"subject references must now match {value}")


# --- subject codes ----------------------------------------------------------------------

subject_app = typer.Typer(name="subject", help="Opaque subject codes.", no_args_is_help=True)
app.add_typer(subject_app)


@subject_app.command("new")
def subject_new(
    count: Annotated[int, typer.Option("--count", min=1, max=1000, help="How many codes to print.")] = 1,
) -> None:
    """Print new opaque subject codes (S- and 9 characters, the last a check character)."""
    from cdss.subject import new_code

    for _ in range(count):
        line(new_code())
