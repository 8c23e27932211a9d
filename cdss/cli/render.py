"""How output looks: rich in a terminal, plain text otherwise or under NO_COLOR.

Everything printed goes through ``cdss.text.inert`` on its way out: text from
a store, a bundle or a checklist can hold escape sequences, and printing them
raw would let a record clear the auditor's screen or rewrite what it shows.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import TYPE_CHECKING, Any

from cdss.text import inert

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text


def plain() -> bool:
    """Plain text when output is not a terminal or NO_COLOR is set (https://no-color.org)."""
    return bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()


def inert_lines(text: str) -> str:
    """``inert`` for text whose own line breaks cdss put there (a blank line before a heading)."""
    return "\n".join(inert(part) for part in text.split("\n"))


def console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    class InertConsole(Console):
        """A rich console that never passes a control character from the data to the terminal."""

        def render_str(self, text: str, **options: Any) -> Text:
            return super().render_str(inert_lines(text), **options)

    if plain():
        # No escape codes at all (not even bold), and no hard line breaks: one line per item.
        return InertConsole(
            stderr=stderr, color_system=None, highlight=False, emoji=False, markup=False, soft_wrap=True
        )
    # markup=False: checklist text is data; "[before]" must print, not become a style.
    return InertConsole(stderr=stderr, highlight=False, emoji=False, markup=False)


# json.dumps escapes C0 controls itself; these it would write raw with ensure_ascii=False.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]")


def print_json(value: Any) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    sys.stdout.write(_JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")


def line(text: str = "") -> None:
    sys.stdout.write(inert(text) + "\n")


def error(text: str) -> None:
    sys.stderr.write(f"cdss: {inert(text)}\n")
