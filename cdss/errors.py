"""One exception hierarchy, so the CLI can map every expected failure to a
message and an exit code in a single place (see ``cdss.cli.main``).

Library code raises these and never prints; an exception that is *not* a
``CdssError`` is a bug, and the CLI logs its traceback instead of showing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Issue:
    """One problem at one place: the file and the JSON pointer inside it.

    Rendered as ``FILE:POINTER: message`` so that every problem reads alike,
    whether the JSON Schema, the pydantic model or a semantic check found it.
    """

    file: str
    pointer: str
    message: str
    severity: Literal["error", "warning"] = "error"
    """A warning (a checklist-design rule, ``cdss.design``) fails only under --strict."""
    rule: str | None = None
    """The design rule that raised a warning: 'item-length', 'pause-size', ..."""

    def __str__(self) -> str:
        return f"{self.file}:{self.pointer or '/'}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        shown = {"file": self.file, "pointer": self.pointer or "/", "message": self.message}
        if self.severity != "error":
            shown |= {"severity": self.severity, "rule": self.rule or ""}
        return shown


class CdssError(Exception):
    """An expected failure with a message meant for a person.

    ``exit_code`` follows the documented table in the README: 1 for invalid
    input or a failed check, 2 for a usage error.
    """

    exit_code = 1

    def __init__(self, message: str, *, file: str | None = None, pointer: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.pointer = pointer

    def __str__(self) -> str:
        if self.file is None:
            return self.message
        if self.pointer is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.pointer or '/'}: {self.message}"


class UsageError(CdssError):
    """The command was called wrongly: a missing option, a conflicting flag."""

    exit_code = 2


class InvalidInput(CdssError):
    """A file or value given to cdss is not what it must be.

    Carries every issue found, not only the first, so an author fixes a file
    in one pass.
    """

    def __init__(self, message: str, issues: list[Issue] | None = None, **where: str | None):
        super().__init__(message, **where)
        self.issues: list[Issue] = issues or []


class NotFound(CdssError):
    """A checklist, version, session or key that does not exist."""


class ContextError(CdssError):
    """A route or population the checklist does not declare: a wrong argument."""

    exit_code = 2


class SessionStateError(CdssError):
    """An operation the session's state does not allow (answer after completion, ...)."""


class StoreError(CdssError):
    """The store cannot be used: not a cdss store, newer schema, unwritable, corrupt."""


class StoreUnreachable(StoreError):
    """The store's server cannot be reached (now): retrying later may succeed.

    What was acknowledged before is kept; what was being written when the
    connection dropped is either wholly recorded or not at all.
    """


class IntegrityError(CdssError):
    """Recorded data no longer matches what was recorded: a hash, a chain, a signature."""


class NotAllowed(CdssError):
    """The store's rules refuse this write: a key without the endorsement it needs, a second
    answer, a completion after another terminal completed the session. Nothing was written."""
