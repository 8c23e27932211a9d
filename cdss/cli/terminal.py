"""The walk-through prompt: one item at a time, one key per answer.

Every key that records something calls the session, which has committed the
event before the next item is drawn — so ``q``, Ctrl-C or a killed terminal
never loses an acknowledged answer. Keys are read one at a time in raw mode
(restored on every exit path); longer replies (a reason in the clinician's
words, why an answer changed) are read as ordinary lines.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Literal, Protocol

from cdss.text import free_text_problem

if TYPE_CHECKING:
    from rich.console import Console

    from cdss.events import Status
    from cdss.plan import PlannedItem
    from cdss.record import Record
    from cdss.session import Session, Signer

Outcome = Literal["completed", "saved"]
STATUS_KEYS: dict[str, Status] = {"d": "done", "n": "not-applicable", "x": "not-done"}
LABELS = {"done": "done", "not-applicable": "not applicable", "not-done": "not done"}
ITEM_KEYS = "d done · n not applicable · x not done · ? why · b back · q save and quit"
END_KEYS = "c complete the session · b back · q save and quit (the session stays open)"


def say(out: Console, text: str = "", style: str = "") -> None:
    """Print text as it is: never read as rich markup (item texts may hold brackets).

    Plain output is not wrapped, so a piped record stays one line per item.
    """
    from rich.text import Text

    from cdss.cli.render import plain
    from cdss.text import inert

    bare = plain()
    out.print(Text(inert(text), style="" if bare else style), soft_wrap=bare)


class Keys(Protocol):
    """Where the clinician's keys come from: the terminal, or a script in tests."""

    def key(self) -> str: ...

    def text(self, prompt: str) -> str: ...


class TerminalKeys:
    """Single keypresses from a TTY in raw mode; Ctrl-C and Ctrl-D keep their meaning."""

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno()

    def key(self) -> str:
        import termios
        import tty

        saved = termios.tcgetattr(self.fd)
        try:
            tty.setraw(self.fd)
            # Read a whole burst so an arrow key's escape sequence counts as one (ignored) key.
            data = os.read(self.fd, 16)
        finally:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)
        if data[:1] == b"\x03":
            raise KeyboardInterrupt
        if data[:1] in (b"\x04", b""):
            raise EOFError
        return data.decode("utf-8", "replace") if len(data) == 1 else ""

    def text(self, prompt: str) -> str:
        """One line as typed, read from the descriptor so the key reads see nothing buffered.

        Bytes that are not UTF-8 (a Latin-1 ``é`` from a misconfigured
        terminal) come back as lone surrogates, which the free-text check
        refuses with a message: they never end the walk.
        """
        sys.stdout.write(prompt)
        sys.stdout.flush()
        data = b""
        while not data.endswith(b"\n"):
            chunk = os.read(self.fd, 1024)
            if not chunk:
                if not data:
                    raise EOFError
                break
            data += chunk
        return data.decode("utf-8", "surrogateescape").rstrip("\r\n")


def _header(out: Console, planned: PlannedItem, total: int) -> None:
    section = planned.section
    phase = f" · {section.phase}" if section.phase else ""
    say(out)
    say(out, f"{section.title}{phase}  —  item {planned.number} of {total}", "bold cyan")


def _show_item(out: Console, planned: PlannedItem, total: int) -> None:
    _header(out, planned, total)
    say(out, planned.item.text)
    say(out, ITEM_KEYS, "dim")


def _show_why(out: Console, session: Session, planned: PlannedItem) -> None:
    say(out, f"Why: {planned.item.why}", "italic")
    for source in planned.item.sources:
        say(out, f"Source: {session.checklist.citation(source)}", "dim")


def _choose_status(
    out: Console, session: Session, keys: Keys, key: str
) -> tuple[Status, str | None, str | None] | None:
    """The status for a key, with a reason for not-done; None if the clinician backs out."""
    status = STATUS_KEYS[key]
    if status != "not-done":
        return status, None, None
    reasons = session.checklist.reasons
    say(out, "Not done — why?")
    for number, option in enumerate(reasons, 1):
        say(out, f"  {number}  {option.label}")
    say(out, "(press a number; any other key goes back)", "dim")
    choice = keys.key()
    if not (choice.isdigit() and 1 <= int(choice) <= len(reasons)):
        return None
    reason = reasons[int(choice) - 1]
    if reason.code != "other":
        return status, reason.code, None
    text = keys.text("Short reason (no clinical findings): ").strip()
    if not text:
        say(out, "Nothing recorded: the reason 'other' needs a short text.")
        return None
    problem = free_text_problem(text, "the reason")
    if problem:
        say(out, f"Nothing recorded: {problem}.")
        return None
    return status, reason.code, text


def _answer(out: Console, session: Session, keys: Keys, planned: PlannedItem, key: str) -> None:
    choice = _choose_status(out, session, keys, key)
    if choice is None:
        return
    status, reason, text = choice
    session.answer(planned.item.id, status, reason, text)
    say(out, f"Recorded: {LABELS[status]}" + (f" ({reason})" if reason else ""), "green")


def _go_back(out: Console, session: Session, keys: Keys, before: int) -> None:
    """Amend an earlier answer: ``b`` again steps further back, any other non-status key cancels."""
    answered = [p for p in session.planned if p.number < before and session.answer_of(p.item.id)]
    while answered:
        planned = answered.pop()
        current = session.answer_of(planned.item.id)
        assert current is not None
        _header(out, planned, len(session.planned))
        say(out, planned.item.text)
        say(
            out,
            f"Recorded now: {LABELS[current.status]}" + (f" ({current.reason})" if current.reason else ""),
        )
        say(
            out,
            "Change to: d done · n not applicable · x not done · b further back · other key: cancel",
            "dim",
        )
        key = keys.key()
        if key == "b":
            continue
        if key not in STATUS_KEYS:
            break
        choice = _choose_status(out, session, keys, key)
        if choice is None:
            break
        explanation = keys.text("Why the change (recorded with the amendment): ").strip()
        if not explanation:
            say(out, "Not changed: a change needs a short explanation.")
            break
        problem = free_text_problem(explanation, "the explanation")
        if problem:
            say(out, f"Not changed: {problem}.")
            break
        status, reason, text = choice
        session.amend(planned.item.id, status, explanation=explanation, reason=reason, reason_text=text)
        say(out, f"Amended: {LABELS[status]} (the earlier answer stays in the record)", "green")
        return
    say(out, "Nothing changed." if answered or before > 1 else "There is no earlier answer to change.")


def show_summary(out: Console, record: Record) -> None:
    counts = record.counts()
    say(out)
    say(out, f"{record.checklist.title} ({record.checklist.ref}) — summary", "bold")
    say(out, "  ".join(f"{LABELS.get(k, k)}: {v}" for k, v in counts.items() if v or k != "unanswered"))
    labels = {r.code: r.label for r in record.checklist.reasons}
    for item in record.items:
        current = item.current
        if current and current.status == "not-done":
            why = labels.get(current.reason or "", current.reason or "")
            why += f": {current.reason_text}" if current.reason_text else ""
            say(out, f"  not done: {item.planned.item.text} — {why}")


def walk(session: Session, keys: Keys, out: Console, signer: Signer | None = None) -> Outcome:
    """Ask every unanswered item, then offer to complete (signed when ``signer`` is given)."""
    total = len(session.planned)
    while True:
        planned = session.next_item()
        if planned is None:
            show_summary(out, session.record())
            say(out, END_KEYS, "dim")
            key = keys.key()
            if key == "c":
                session.complete(signer)
                say(out, f"Session {session.id} completed{' and signed' if signer else ''}.", "bold green")
                return "completed"
            if key == "b":
                _go_back(out, session, keys, total + 1)
            elif key == "q":
                return "saved"
            continue
        _show_item(out, planned, total)
        while True:
            key = keys.key()
            if key in STATUS_KEYS:
                _answer(out, session, keys, planned, key)
            elif key == "?":
                _show_why(out, session, planned)
                continue
            elif key == "b":
                _go_back(out, session, keys, planned.number)
            elif key == "q":
                return "saved"
            else:
                say(out, f"Press one of: {ITEM_KEYS}", "dim")
                continue
            break
