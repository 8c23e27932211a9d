"""How output looks: rich in a terminal, plain text otherwise or under NO_COLOR."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def plain() -> bool:
    """Plain text when output is not a terminal or NO_COLOR is set (https://no-color.org)."""
    return bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()


def console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    if plain():
        # No escape codes at all (not even bold), and no hard line breaks: one line per item.
        return Console(
            stderr=stderr, color_system=None, highlight=False, emoji=False, markup=False, soft_wrap=True
        )
    # markup=False: checklist text is data; "[before]" must print, not become a style.
    return Console(stderr=stderr, highlight=False, emoji=False, markup=False)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def line(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def error(text: str) -> None:
    sys.stderr.write(f"cdss: {text}\n")
