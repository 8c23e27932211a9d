"""`cdss X` registers only X's module (cdss.cli.main.register): X must still get its whole command."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

TREE = """
import json, sys
import typer.main
from cdss.cli.app import app
from cdss.cli.main import register
register(sys.argv[1:])
def tree(command):
    subs = getattr(command, "commands", None)
    if subs:
        return {name: tree(sub) for name, sub in sorted(subs.items())}
    return sorted(str(param.name) for param in command.params)
print(json.dumps(tree(typer.main.get_command(app))))
"""


def command_tree(*argv: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", TREE, *argv], capture_output=True, text=True, check=True)
    tree: dict[str, Any] = json.loads(done.stdout)
    return tree


FULL = command_tree()


@pytest.mark.parametrize("name", sorted(FULL))
def test_each_top_level_command_is_whole_when_only_its_module_is_registered(name: str) -> None:
    assert command_tree(name)[name] == FULL[name]


def test_no_command_name_registers_everything() -> None:
    assert command_tree("--help") == FULL
    assert {"run", "list", "audit", "keys", "store", "export", "import", "subject"} <= set(FULL)
