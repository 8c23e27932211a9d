"""The ``cdss`` entry point: the one place errors become messages and exit codes.

Exit codes (documented in the README):
0 success · 1 invalid input or a failed check · 2 usage error ·
3 unexpected error (traceback in the log file named on screen) ·
4 a scripted run left items unanswered (the session stays open) · 130 interrupted.

Exit 3 is kept for genuine bugs. What the world does to a command (a full
disk, a read-only medium, a permission, a damaged zip, bytes that are not
UTF-8 in an argument) is the user's to fix, so it is one line naming the
file and the cause, and exit 1 (2 when it is how cdss was called).
"""

from __future__ import annotations

import importlib
import io
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import typer

from cdss.cli.app import app
from cdss.cli.render import error
from cdss.errors import CdssError, InvalidInput, UsageError

UNEXPECTED = 3
INTERRUPTED = 130

COMMAND_MODULES = ("audit", "checklists", "fhir", "keys", "sessions", "store")
"""The modules under ``cdss.cli`` whose import registers commands on ``app``."""
_HOME: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("run", "resume", "sessions", "record", "amend", "abandon"), ("sessions",)),
    **dict.fromkeys(("list", "show", "plan", "validate", "diff", "release"), ("checklists",)),
    "audit": ("audit", "keys"),  # keys adds require-signatures and subject-pattern to audit
    "keys": ("keys",),
    "subject": ("keys",),
    "store": ("store",),
    "export": ("fhir",),
    "import": ("fhir",),
}
"""Where each top-level command is registered (tests/test_cli_registration.py keeps it true)."""


def register(argv: Sequence[str] | None = None) -> None:
    """Register the commands ``argv`` can reach: only its top-level command's module, or every
    module when it names none (``--help``, a typo). typer builds every registered command's
    parameters before it runs one, which would make `cdss list` wait for some sixty."""
    for name in _HOME.get(argv[0], COMMAND_MODULES) if argv else COMMAND_MODULES:
        importlib.import_module(f"cdss.cli.{name}")


def log_path() -> Path:
    import platformdirs

    return platformdirs.user_log_path("cdss", appauthor=False) / "errors.log"


def _log_unexpected(exc: BaseException) -> Path | None:
    # Only on the failure path: every command's start-up stays free of these imports.
    import traceback
    from datetime import UTC, datetime

    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"--- {datetime.now(UTC).isoformat()} cdss {' '.join(sys.argv[1:])}\n")
            handle.write("".join(traceback.format_exception(exc)))
    except OSError:
        return None
    return path


def run(argv: list[str] | None = None) -> None:
    """Console-script entry point; never lets a traceback reach the screen."""
    for stream in (sys.stdout, sys.stderr):
        # A terminal or pipe that cannot show a character gets \\xe9, not a UnicodeEncodeError.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    problem = _undecodable(sys.argv[1:] if argv is None else argv)
    if problem:
        error(problem)
        sys.exit(UsageError.exit_code)
    register(sys.argv[1:] if argv is None else argv)
    guarded(lambda: app(args=argv, prog_name="cdss"))


_ENVIRONMENT = ("CDSS_", "XDG_", "HOME", "NO_COLOR")


def _shown(value: str) -> str:
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _undecodable(arguments: list[str]) -> str | None:
    """Arguments and environment values that were not UTF-8 (Python holds them as lone surrogates)."""
    for number, argument in enumerate(arguments, 1):
        if not _is_text(argument):
            return f"argument {number} ('{_shown(argument)}') is not valid UTF-8; type it again as UTF-8"
    for name, value in sorted(os.environ.items()):
        if name.startswith(_ENVIRONMENT) and not (_is_text(name) and _is_text(value)):
            return f"environment variable {_shown(name)} is not valid UTF-8 ('{_shown(value)}'); set it again"
    return None


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _from_a_zip(exc: Exception) -> bool:
    """A zip's own errors (bad CRC, truncated or unsupported entries), without importing zipfile up front."""
    if type(exc).__module__ in ("zipfile", "zlib"):
        return True
    # zipfile reports a truncated entry as EOFError and an unknown method as NotImplementedError.
    frames = exc.__traceback__
    while frames is not None and frames.tb_next is not None:
        frames = frames.tb_next
    return (
        isinstance(exc, EOFError | NotImplementedError)
        and frames is not None
        and "zipfile" in frames.tb_frame.f_code.co_filename
    )


def _named_zips() -> str:
    """The zip files named on the command line: the ones a zip error can be about."""
    named = [a for a in sys.argv[1:] if a.lower().endswith(".zip") and os.path.isfile(a)]
    return ", ".join(named) if named else "a zip file"


def guarded(command: Callable[[], object]) -> None:
    """Run a command, turning every exception into one line and an exit code."""
    try:
        command()
    except InvalidInput as exc:
        for issue in exc.issues:
            sys.stderr.write(f"{issue}\n")
        error(str(exc))
        sys.exit(exc.exit_code)
    except CdssError as exc:
        error(str(exc))
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        error("interrupted")
        sys.exit(INTERRUPTED)
    except OSError as exc:
        from cdss.files import cause

        where = exc.filename if exc.filename is not None else "a file"
        error(f"{where}: {cause(exc)}; nothing more was done")
        sys.exit(CdssError.exit_code)
    except RecursionError as exc:
        where = _log_unexpected(exc)
        detail = f"details in {where}" if where else "no log file could be written"
        error(f"the input is nested too deeply to read; nothing was changed ({detail})")
        sys.exit(CdssError.exit_code)
    except Exception as exc:
        if _from_a_zip(exc):
            error(
                f"{_named_zips()}: the zip is damaged or not one cdss can read ({exc}); nothing was changed"
            )
            sys.exit(CdssError.exit_code)
        where = _log_unexpected(exc)
        detail = f"the traceback is in {where}" if where else "no log file could be written"
        error(f"unexpected error: {type(exc).__name__}: {exc} ({detail})")
        sys.exit(UNEXPECTED)
