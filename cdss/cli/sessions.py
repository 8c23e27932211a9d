"""Commands that run checklists and read records: run, resume, sessions, record, amend, abandon.

Exit codes beyond the usual ones: ``run --answers`` exits 4 when the file
left applicable items unanswered (the session stays open, and the remaining
items are listed), and an interrupted walk exits 130 after saying how to resume.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cdss.cli.app import ChecklistFolders, JsonOutput, Populations, Route, app, open_catalog
from cdss.cli.render import console, line, print_json

if TYPE_CHECKING:
    from rich.console import Console

    from cdss.cli.terminal import Keys
    from cdss.errors import CdssError
    from cdss.keys import SigningKey
    from cdss.session import Session, Signer
    from cdss.store import Store
    from cdss.store.location import OpenedStore

UNANSWERED = 4
INTERRUPTED = 130

StorePath = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="PATH|URL",
        help="The records: a SQLite file, or a postgresql:// URL for a clinic's shared store. "
        "Default: CDSS_STORE, else records.sqlite3 in the user's data folder.",
    ),
]
SessionId = Annotated[
    str, typer.Argument(metavar="SESSION", help="A session id, or its first 6+ characters.")
]
Clinician = Annotated[str, typer.Option(metavar="ID", help="Your clinician id, e.g. dr-lee.")]
Sign = Annotated[
    bool,
    typer.Option(
        "--sign",
        help="Sign the completion with your key (`cdss keys init`); passphrase prompted or CDSS_PASSPHRASE.",
    ),
]


def unlock_key(clinician: str) -> SigningKey:
    """Unlock before anything is recorded, so a wrong passphrase or a missing key writes nothing."""
    from cdss.keys import info, unlock

    info(clinician)  # no key at all is said before a passphrase is asked for
    return unlock(clinician, passphrase(clinician))


def passphrase(clinician: str, *, new: bool = False) -> str:
    """``CDSS_PASSPHRASE``, else asked for, hidden, in the terminal (twice for a new key)."""
    from cdss.keys import passphrase_from_env

    secret = passphrase_from_env()
    if secret is not None:
        return secret
    verb = "protect" if new else "unlock"
    _require_terminal("for a passphrase", f"set CDSS_PASSPHRASE to {verb} {clinician}'s key without a prompt")
    label = f"{'New passphrase' if new else 'Passphrase'} for {clinician}'s key"
    try:
        return str(typer.prompt(label, hide_input=True, confirmation_prompt=new))
    except typer.Abort:  # click's own answer to Ctrl-C at a prompt ("Aborted!", exit 1)
        raise KeyboardInterrupt from None  # exits 130, as every other interruption does


def require_registered(opened: Store, key: SigningKey) -> None:
    from cdss.errors import NotFound
    from cdss.store.location import shown

    if key.info.key_id not in {k.key_id for k in opened.keys() if k.active}:
        where = shown(opened)
        raise NotFound(
            f"{key.info.clinician}'s key {key.info.key_id[:12]}… is not registered in {where}; "
            f"run `cdss keys register --clinician {key.info.clinician} --store {where}`"
        )


def _signer(session: Session, key: SigningKey | None) -> Signer | None:
    from cdss.keys import signer

    return signer(session, key) if key is not None else None


def store_path(store: str | None) -> str:
    """What ``--store`` names, else the default store (CDSS_STORE or the user's data folder)."""
    from cdss.store.location import resolve

    return resolve(store)


def open_existing(store: str | None, *, create: bool = False, read_only: bool = False) -> OpenedStore:
    """The store, by path or URL (``cdss.store.location``); it must exist unless ``create``
    (only ``cdss run``, ``cdss import`` and ``cdss store init`` create one).

    A store that only needs reading is opened read-only: it is never migrated
    or checkpointed by a listing, and it can be read on read-only media or
    with an auditor's read-only role.
    """
    from cdss.store.location import open_store

    return open_store(store, create=create, read_only=read_only)


def _refuse_damaged(opened: Store) -> None:
    """No new events on top of damaged pages: they could be lost with them, or hide the damage."""
    from cdss.errors import StoreError
    from cdss.store.location import shown

    damage = opened.integrity(thorough=False)
    if damage:
        raise StoreError(
            f"store {shown(opened)} is damaged ({damage[0]}); nothing was recorded. Keep a copy, "
            "run `cdss audit verify`, and record in a new store until it is repaired"
        )


def load_session(opened: Store, session_id: str, folders: list[Path] | None) -> Session:
    from cdss.session import Session, find_session

    return Session.load(opened, find_session(opened, session_id), catalog=open_catalog(folders))


def _resume_hint(session: Session, store: str | None) -> str:
    from cdss.store.location import describe

    where = f" --store {describe(store)}" if store else ""
    return f"Saved. Session {session.id[:12]} is open; continue with: cdss resume {session.id[:12]}{where}"


def _interactive(session: Session, store: str | None, key: SigningKey | None = None) -> None:
    from cdss.cli.terminal import TerminalKeys, say, walk
    from cdss.errors import StoreUnreachable

    out = console()
    keys = TerminalKeys()
    say(out, f"{session.checklist.title} ({session.checklist.ref}) · subject {session.subject}", "bold")
    try:
        while True:
            try:
                outcome = walk(session, keys, out, _signer(session, key))
                break
            except StoreUnreachable as error:
                session = _after_outage(session, keys, out, store, error)
    except (KeyboardInterrupt, EOFError):
        say(out)
        say(out, _resume_hint(session, store))
        raise typer.Exit(INTERRUPTED) from None
    if outcome == "saved":
        say(out, _resume_hint(session, store))


OUTAGE_KEYS = "r retry · q quit"


def _after_outage(session: Session, keys: Keys, out: Console, store: str | None, error: CdssError) -> Session:
    """The store's server went away: one line, then retry (reconnect, reread the session) or quit.

    Every answer acknowledged before is on the server; the one being recorded
    when the connection dropped is there whole or not at all. So a retry
    rereads the session from the store and the walk goes on at its first
    unanswered item, exactly as ``cdss resume`` would.
    """
    from cdss.cli.terminal import say
    from cdss.errors import StoreUnreachable
    from cdss.session import Session

    say(out, f"{error} · {OUTAGE_KEYS}", "bold red")
    while True:
        key = keys.key()
        if key == "q":
            say(out, _resume_hint(session, store))
            raise typer.Exit(1)
        if key != "r":
            say(out, f"Press one of: {OUTAGE_KEYS}", "dim")
            continue
        try:
            return Session.load(session.store, session.id, checklist=session.checklist)
        except StoreUnreachable as again:
            say(out, f"{again} · {OUTAGE_KEYS}", "bold red")


def _require_terminal(asks: str, alternative: str) -> None:
    if not sys.stdin.isatty():
        from cdss.errors import UsageError

        raise UsageError(f"this asks {asks} in a terminal, and stdin is not one; {alternative}")


@app.command()
def run(
    *,
    ref: Annotated[
        str, typer.Argument(metavar="ID[@VERSION]", help="The checklist; newest version by default.")
    ],
    subject: Annotated[
        str, typer.Option(metavar="REF", help="An opaque subject reference (never a name or birth date).")
    ],
    clinician: Clinician,
    route: Route = None,
    population: Populations = None,
    answers: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="Answer from a JSON file instead of the prompt (item id -> status)."
        ),
    ] = None,
    sign: Sign = False,
    store: StorePath = None,
    checklists: ChecklistFolders = None,
) -> None:
    """Walk through a checklist one item at a time, recording each answer as it is given.

    With --answers, record a whole file at once: exit 0 when every applicable item
    is answered (the session completes), 4 when some are left (the session stays open).
    With --sign, the completion is signed with your key in the same transaction.
    """
    from cdss.answers import read_answers
    from cdss.plan import declare, nothing_extra_notes, plan
    from cdss.session import Session, check_clinician, check_subject
    from cdss.subject import DEFAULT_PATTERN

    if answers is None:
        _require_terminal("each item", "give --answers FILE to record from a file")
    # Everything that can be wrong with the input is checked before the store is opened,
    # so a mistyped command never creates a store or records a half session.
    checklist = open_catalog(checklists).load(ref)
    context = declare(checklist, route, population or [])
    from cdss.store.location import exists

    check_subject(subject, None if exists(store) else DEFAULT_PATTERN)
    check_clinician(clinician)
    for note in nothing_extra_notes(checklist, context):
        line(note)
    given = read_answers(answers, checklist, plan(checklist, context)) if answers else None
    key = unlock_key(clinician) if sign else None
    with open_existing(store, create=True) as opened:
        _refuse_damaged(opened)
        if key is not None:
            require_registered(opened, key)
        elif given is not None and len(given) == len(plan(checklist, context)):
            _refuse_unsigned(opened)
        session = Session.start(
            opened,
            checklist,
            subject=subject,
            clinician=clinician,
            route=context.route,
            populations=context.populations,
        )
        if given is None:
            _interactive(session, store, key)
            return
        for answer in given:
            session.answer(answer.item, answer.status, answer.reason, answer.reason_text)
        remaining = session.unanswered()
        if not remaining:
            session.complete(_signer(session, key))
            signed = f" and signed by {key.info.name}" if key else ""
            line(f"session {session.id} completed{signed}: {len(given)} item(s) recorded")
            return
        line(f"session {session.id} is open: {len(given)} item(s) recorded, {len(remaining)} unanswered:")
        for planned in remaining:
            line(f"  {planned.item.id}: {planned.item.text}")
        line(f"continue with: cdss resume {session.id[:12]}")
        raise typer.Exit(UNANSWERED)


def _refuse_unsigned(opened: Store) -> None:
    """Say so before recording anything, rather than after every answer is in."""
    from cdss.errors import SessionStateError
    from cdss.store import REQUIRE_SIGNATURES, is_on

    if is_on(opened.setting(REQUIRE_SIGNATURES)):
        raise SessionStateError(
            "this store requires a signature to complete a session; add --sign "
            "(your key from `cdss keys init`). Nothing was recorded"
        )


@app.command()
def resume(
    session_id: SessionId, sign: Sign = False, store: StorePath = None, checklists: ChecklistFolders = None
) -> None:
    """Continue an open session at its first unanswered item."""
    from cdss.errors import SessionStateError

    with open_existing(store) as opened:
        _refuse_damaged(opened)
        session = load_session(opened, session_id, checklists)
        if session.status != "open":
            raise SessionStateError(
                f"session {session.id[:12]} is {session.status} and cannot be resumed; "
                "correct an answer with `cdss amend`"
            )
        _require_terminal("each item", "resume it in a terminal")
        key = unlock_key(session.clinician) if sign else None
        if key is not None:
            require_registered(opened, key)
        _interactive(session, store, key)


@app.command()
def sessions(
    status: Annotated[
        str | None, typer.Option(metavar="open|completed|abandoned", help="Only sessions in this state.")
    ] = None,
    checklist: Annotated[str | None, typer.Option(metavar="ID", help="Only runs of this checklist.")] = None,
    clinician: Annotated[
        str | None, typer.Option(metavar="ID", help="Only sessions run by this clinician.")
    ] = None,
    store: StorePath = None,
    json: JsonOutput = False,
) -> None:
    """List sessions: id, status, checklist, subject reference, clinician, when."""
    from cdss.errors import UsageError

    if status not in (None, "open", "completed", "abandoned"):
        raise UsageError(f"--status {status}: expected open, completed or abandoned")
    with open_existing(store, read_only=True) as opened:
        rows = [
            row
            for row in opened.sessions()
            if (status is None or row.status == status)
            and (checklist is None or row.checklist == checklist)
            and (clinician is None or row.clinician == clinician)
        ]
    if json:
        print_json([row.to_json() for row in rows])
        return
    if not rows:
        line("No sessions.")
        return
    for row in rows:
        line(
            f"{row.id[:12]}  {row.status:<9}  {row.checklist}@{row.version}  {row.subject}  "
            f"{row.clinician}  {row.started_at[:16].replace('T', ' ')}"
        )


@app.command()
def record(
    session_id: SessionId,
    store: StorePath = None,
    checklists: ChecklistFolders = None,
    json: JsonOutput = False,
) -> None:
    """Show a session's completion record: every applicable item, its status and corrections."""
    from cdss.cli.terminal import LABELS, say, show_summary

    with open_existing(store, read_only=True) as opened:
        built = load_session(opened, session_id, checklists).record()
    if json:
        print_json(built.to_json())
        return
    out = console()
    context = built.context
    say(out, f"Session {built.session} — {built.status}", "bold")
    say(out, f"{built.checklist.ref} (content hash {built.checklist_hash})")
    say(
        out,
        f"subject {built.subject} · clinician {built.clinician} · route {context.route or '-'} · "
        f"populations {', '.join(context.populations) or '-'}",
    )
    say(out, f"started {built.started_at}" + (f" · ended {built.ended_at}" if built.ended_at else ""))
    if built.abandon_reason:
        say(out, f"abandoned: {built.abandon_reason}")
    for item in built.items:
        current = item.current
        status = LABELS[current.status] if current else "unanswered"
        reason = (
            f" ({current.reason}{': ' + current.reason_text if current.reason_text else ''})"
            if current and current.reason
            else ""
        )
        say(out, f"{item.planned.number:>3}. [{status}{reason}] {item.planned.item.text}")
        for earlier, later in zip(item.history, item.history[1:], strict=False):
            say(
                out,
                f"     corrected from {LABELS[earlier.status]} ({earlier.at} by {earlier.actor}) "
                f"at {later.at} by {later.actor}: {later.explanation}",
                "dim",
            )
    for signature in built.signatures:
        say(out, f"signed by {signature.name} at {signature.at}: {signature.meaning}")
    show_summary(out, built)


@app.command()
def amend(
    *,
    session_id: SessionId,
    item: Annotated[str, typer.Argument(metavar="ITEM", help="The item id.")],
    status: Annotated[str, typer.Argument(metavar="STATUS", help="done, not-applicable or not-done.")],
    reason: Annotated[str, typer.Option(metavar="TEXT", help="Why the answer is corrected (recorded).")],
    not_done_reason: Annotated[
        str | None, typer.Option(metavar="CODE", help="For not-done: a reason code of the checklist.")
    ] = None,
    not_done_text: Annotated[
        str | None, typer.Option(metavar="TEXT", help="For the reason code 'other': a short reason.")
    ] = None,
    clinician: Annotated[
        str | None, typer.Option(metavar="ID", help="Who corrects it; default: the session's clinician.")
    ] = None,
    store: StorePath = None,
    checklists: ChecklistFolders = None,
) -> None:
    """Correct an answer, also after completion; the record keeps the original and the correction."""
    with open_existing(store) as opened:
        session = load_session(opened, session_id, checklists)
        session.amend(
            item,
            status,  # type: ignore[arg-type]  # checked by the session
            explanation=reason,
            reason=not_done_reason,
            reason_text=not_done_text,
            actor=clinician,
        )
    line(f"amended {item} in session {session.id[:12]}: now {status}")


@app.command()
def abandon(
    session_id: SessionId,
    reason: Annotated[str, typer.Option(metavar="TEXT", help="Why the session ends without completion.")],
    clinician: Annotated[
        str | None, typer.Option(metavar="ID", help="Who abandons it; default: the session's clinician.")
    ] = None,
    store: StorePath = None,
    checklists: ChecklistFolders = None,
) -> None:
    """Close an open session without completing it; its answers stay recorded."""
    with open_existing(store) as opened:
        session = load_session(opened, session_id, checklists)
        session.abandon(reason, actor=clinician)
    line(f"session {session.id[:12]} abandoned")
