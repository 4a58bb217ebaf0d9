"""Text made safe for a terminal: every printer of document, inventory, file-name or output text uses this.

A terminal interprets some characters: ESC starts sequences that set the window title
(OSC 0), write the clipboard (OSC 52), reset or fill the screen (``ESC c``, ``ESC # 8``),
rename a tmux window (``ESC k``); C1 controls (U+0080-U+009F) do the same on some
terminals; bidi controls (U+202A-U+202E, U+2066-U+2069) and zero-width characters make
what is shown differ from what runs (Trojan Source).  None of these comes from us, so
none is ever printed as itself.

The rule is an allow-list, by construction: a character passes only when it is not a
control (Unicode category Cc, except newline and tab where text is multi-line), not a
format character (Cf: bidi controls, zero-width spaces and joiners, BOM), not a line or
paragraph separator (Zl, Zp) and not a lone surrogate (undecodable bytes from a file
name).  Everything else is shown visibly, as an escape a reader can type back:
``\\x1b`` for C0 controls, ``\\u007f``, ``\\u009b``, ``\\u202e``, ``\\udcff`` for the rest.  The
``\\uXXXX`` forms are valid JSON escapes, so JSON output put through :func:`visible` is
still the same JSON.

- :func:`visible` -- one text, for a terminal;
- :func:`invisible_chars` -- where bidi controls and zero-width characters hide (lint);
- :class:`OutputCleaner` -- command output (bytes, in chunks) for a terminal;
- :class:`SafeStream` -- a text stream that puts everything written through :func:`visible`
  (the CLI wraps stdout and stderr in it, so every ``print`` is safe).
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterator
from typing import IO, Any

# Characters that are never shown as themselves: Unicode categories Cc, Cf, Zl, Zp and Cs
# (Unicode 14, Python 3.11), as code point ranges so that importing costs nothing.
# tests/unit/test_terminal_text.py checks them against unicodedata.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
UNSAFE_RANGES: tuple[tuple[int, int], ...] = (
    (0x0, 0x1F), (0x7F, 0x9F), (0xAD, 0xAD), (0x600, 0x605), (0x61C, 0x61C), (0x6DD, 0x6DD),
    (0x70F, 0x70F), (0x890, 0x891), (0x8E2, 0x8E2), (0x180E, 0x180E), (0x200B, 0x200F),
    (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xD800, 0xDFFF), (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)
def _class(ranges: tuple[tuple[int, int], ...]) -> re.Pattern[str]:
    return re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges) + "]")


_ALL = _class(UNSAFE_RANGES)
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))  # never escaped: the fast path of visible()
_LAYOUT_ASCII = _PRINTABLE_ASCII + b"\t\n"
_BUT_LAYOUT = _class(((0x0, 0x8), (0xB, 0x1F)) + UNSAFE_RANGES[1:])  # all but \t and \n

BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e\u00ad")


def escape_char(ch: str) -> str:
    """``\\x1b`` for C0 controls, ``\\u202e`` (JSON-compatible) for every other unsafe character."""
    cp = ord(ch)
    if cp < 0x20:
        return f"\\x{cp:02x}"
    if cp > 0xFFFF:
        hi, lo = divmod(cp - 0x10000, 0x400)
        return f"\\u{0xD800 + hi:04x}\\u{0xDC00 + lo:04x}"  # as JSON writes it
    return f"\\u{cp:04x}"


def _sub_all(m: re.Match[str]) -> str:
    return escape_char(m.group(0))


def visible(text: str, *, multiline: bool = True) -> str:
    """``text`` with every character a terminal would interpret shown as an escape.

    ``multiline`` keeps newlines and tabs (for a block of text); otherwise they are
    escaped too (one field on one line: a title, a host name).
    """
    if text.isascii() and not text.encode("ascii").translate(None, _LAYOUT_ASCII if multiline else _PRINTABLE_ASCII):
        return text  # printable ASCII (most output): nothing to escape, no regex pass over it
    return (_BUT_LAYOUT if multiline else _ALL).sub(_sub_all, text)


def is_safe(text: str, *, multiline: bool = True) -> bool:
    """Whether :func:`visible` would leave ``text`` unchanged."""
    return visible(text, multiline=multiline) == text


def segments(text: str, *, multiline: bool = True) -> Iterator[tuple[str, bool]]:
    """``text`` as (piece, escaped) pairs: widgets style the escaped pieces so they stand out."""
    pos = 0
    for m in (_BUT_LAYOUT if multiline else _ALL).finditer(text):
        if m.start() > pos:
            yield text[pos:m.start()], False
        yield escape_char(m.group(0)), True
        pos = m.end()
    if pos < len(text):
        yield text[pos:], False


def char_name(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'control character')}"


def invisible_chars(text: str) -> list[tuple[int, str]]:
    """(offset, char) of every bidi control, zero-width or other invisible format/control
    character in ``text`` (newline and tab excepted): what Trojan Source hides behind."""
    return [(m.start(), m.group(0)) for m in _BUT_LAYOUT.finditer(text)]


class OutputCleaner:
    """Command output (bytes arriving in chunks) as safe text for a terminal.

    UTF-8 is decoded across chunk boundaries; bytes that are not UTF-8 are shown as
    ``\\xff``; a carriage return before a newline is dropped (PTY line ends) and any
    other carriage return, ESC and control character is shown visibly, so escape
    sequences show as text (``\\x1b[31m``) and never act.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="backslashreplace")
        self._cr = False  # a chunk ended in \r: it is a line end if the next starts with \n

    def feed(self, data: bytes, final: bool = False) -> str:
        text = self._decoder.decode(data, final)
        if self._cr:
            text = "\r" + text
            self._cr = False
        if text.endswith("\r") and not final:
            text, self._cr = text[:-1], True
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        return visible(text)

    def finish(self) -> str:
        return self.feed(b"", final=True)


class SafeStream:
    """A text stream whose writes go through :func:`visible` (newlines and tabs kept).

    Everything else (``buffer``, ``fileno``, ``isatty``, ``encoding``...) is the wrapped
    stream's, so bytes written to ``buffer`` are not filtered: their writers clean them
    (:class:`OutputCleaner`).
    """

    def __init__(self, stream: IO[str]) -> None:
        self.unsafe = stream

    def write(self, text: str) -> int:
        self.unsafe.write(visible(text))
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.unsafe.flush()

    def __getattr__(self, name: str) -> Any:  # buffer, fileno, isatty, encoding, errors, closed...
        return getattr(self.unsafe, name)
