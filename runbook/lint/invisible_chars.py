"""Lint rule ``invisible-character``: what the operator reads must be what runs (Trojan Source).

A bidi control (U+202A-U+202E, U+2066-U+2069, U+200E/U+200F, U+061C) reorders what a
terminal or editor shows; a zero-width character (U+200B-U+200D, U+2060, U+FEFF, soft
hyphen) hides; a control character (ESC...) acts on the terminal.  In a command or an
uploaded file any of them means the shown text and the executed text differ, so each
line holding one is an error naming the characters.  Every printer shows them visibly
(:mod:`runbook.sanitize.terminal_text`).
"""

from __future__ import annotations

from collections.abc import Callable

from runbook.model import Block
from runbook.sanitize.terminal_text import BIDI_CONTROLS, ZERO_WIDTH, char_name, invisible_chars

Add = Callable[[int, str, str, str], None]


def _kind(ch: str) -> str:
    if ch in BIDI_CONTROLS:
        return "bidi control"
    if ch in ZERO_WIDTH:
        return "zero-width character"
    return "invisible character"


def check_invisible(owner: str, block: Block, add: Add) -> None:
    """One error per line of ``block`` that holds a character not shown as itself."""
    if not invisible_chars(block.code):
        return
    what = "command" if block.kind == "command" else "file"
    for i, raw in enumerate(block.code.split("\n")):
        found = invisible_chars(raw)
        if not found:
            continue
        names = ", ".join(dict.fromkeys(f"{_kind(ch)} {char_name(ch)} at column {col + 1}" for col, ch in found[:4]))
        more = f" and {len(found) - 4} more" if len(found) > 4 else ""
        add(block.code_line(i), "error", "invisible-character",
            f"{what} in {owner} holds {names}{more}: what is shown is not what runs (Trojan Source); "
            "remove it or write it as an escape")
