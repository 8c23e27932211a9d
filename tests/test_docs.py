"""The README's command table cannot fall behind the CLI (as sqlite-utils checks its docs)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer.main

from cdss.cli.app import app
from cdss.cli.main import register
from tests.conftest import REPO

register()  # every command, for CliRunner

README = (REPO / "README.md").read_text(encoding="utf-8")


def commands() -> Iterator[tuple[str, Any]]:
    def walk(prefix: str, command: Any) -> Iterator[tuple[str, Any]]:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from walk(f"{prefix} {name}", sub)
        else:
            yield prefix, command

    yield from walk("cdss", typer.main.get_command(app))


def table_row(name: str) -> str:
    rows = [
        line
        for line in README.splitlines()
        if line.startswith(f"| `{name} ") or line.startswith(f"| `{name}`")
    ]
    assert rows, f"README's command table has no row for `{name}`"
    return rows[0]


@pytest.mark.parametrize(("name", "command"), list(commands()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_and_option_is_in_the_readme(name: str, command: Any) -> None:
    row = table_row(name)
    shared = ("--checklists", "--store", "--help")
    for parameter in command.params:
        for option in parameter.opts:
            if option.startswith("--") and option not in shared:
                assert option in row, f"README's row for `{name}` does not mention {option}"
    assert command.help, f"`{name}` has no help text"


def test_shared_options_are_explained() -> None:
    for text in ("--checklists DIR", "CDSS_CHECKLISTS", "--store PATH", "CDSS_STORE"):
        assert text in README
