"""The ``cdss`` entry point: the one place errors become messages and exit codes.

Exit codes (documented in the README):
0 success · 1 invalid input or a failed check · 2 usage error ·
3 unexpected error (traceback in the log file named on screen) ·
4 a scripted run left items unanswered (the session stays open) · 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import typer

from cdss.cli import audit, checklists, sessions, store  # noqa: F401  (registers commands)
from cdss.cli.app import app
from cdss.cli.render import error
from cdss.errors import CdssError, InvalidInput

UNEXPECTED = 3
INTERRUPTED = 130


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
    guarded(lambda: app(args=argv, prog_name="cdss"))


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
    except Exception as exc:
        where = _log_unexpected(exc)
        detail = f"the traceback is in {where}" if where else "no log file could be written"
        error(f"unexpected error: {type(exc).__name__}: {exc} ({detail})")
        sys.exit(UNEXPECTED)
