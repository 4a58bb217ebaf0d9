"""Icons, words and durations shared by the widgets.  Never colour alone: every status
has an icon *and* a word, colours only repeat them.

Text from a runbook, an inventory, the journal or command output reaches a widget only as
:func:`safe` (a ``rich.text.Text``: never parsed as markup, every control, bidi or
zero-width character shown as a highlighted escape such as ``\x1b`` or ``\u202e``)."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text

from runbook.model import Risk
from runbook.sanitize.terminal_text import segments as segments  # re-exported: the TUI formats through this module
from runbook.sanitize.terminal_text import visible as visible

STATUS_ICON = {
    "pending": "○",
    "in_progress": "◐",
    "running": "◐",
    "done": "✔",
    "succeeded": "✔",
    "skipped": "⤼",
    "failed": "✘",
    "cancelled": "⊗",
    "timeout": "⌛",
    "unknown": "?",
    "expectation_failed": "✘",
}

STATUS_WORD = {
    "pending": "pending",
    "in_progress": "in progress",
    "running": "running",
    "done": "done",
    "succeeded": "succeeded",
    "skipped": "skipped",
    "failed": "FAILED",
    "cancelled": "cancelled",
    "timeout": "timed out",
    "unknown": "OUTCOME UNKNOWN",
    "expectation_failed": "FAILED (expectation)",
}

STATUS_STYLE = {
    "pending": "dim",
    "in_progress": "bold yellow",
    "running": "bold yellow",
    "done": "green",
    "succeeded": "green",
    "skipped": "dim",
    "failed": "bold red",
    "cancelled": "red",
    "timeout": "red",
    "unknown": "bold magenta",
    "expectation_failed": "bold red",
}

RISK_BADGE = {
    Risk.LOW: "LOW",
    Risk.MEDIUM: "MED",
    Risk.HIGH: "HIGH",
    Risk.CRITICAL: "CRIT",
    Risk.UNKNOWN: "?",
}

RISK_STYLE = {
    Risk.LOW: "green",
    Risk.MEDIUM: "yellow",
    Risk.HIGH: "bold red",
    Risk.CRITICAL: "bold white on red",
    Risk.UNKNOWN: "dim",
}

BLOCKED_MARK = "⊘"
ESCAPE_STYLE = "bold reverse"  # a character shown as an escape (\x1b, \u202e) stands out


def safe(text: object, style: str = "", *, multiline: bool = True) -> Text:
    """``text`` as a Text for a widget: never markup, controls shown visibly (see the module)."""
    out = Text(style=style)
    for piece, escaped in segments(str(text), multiline=multiline):
        out.append(piece, ESCAPE_STYLE if escaped else None)
    return out


def line(text: object, style: str = "") -> Text:
    """:func:`safe` for one-line fields (titles, host names): newlines and tabs shown too."""
    return safe(text, style, multiline=False)


def icon(status: str) -> str:
    return STATUS_ICON.get(status, "·")


def word(status: str) -> str:
    return STATUS_WORD.get(status, status)


def style(status: str) -> str:
    return STATUS_STYLE.get(status, "")


def minutes(value: float | None) -> str:
    """``90`` -> ``1h30``, ``45`` -> ``45m``, ``2880`` -> ``2d``, None -> ``–``."""
    if value is None:
        return "–"
    total = round(value)
    if total >= 24 * 60 and total % (24 * 60) == 0:
        return f"{total // (24 * 60)}d"
    if total >= 60:
        h, m = divmod(total, 60)
        return f"{h}h{m:02d}" if m else f"{h}h"
    return f"{total}m"


def clock(seconds: float) -> str:
    """``3725`` -> ``1:02:05``; ``125`` -> ``2:05``; negative -> ``-2:05``."""
    sign = "-" if seconds < 0 else ""
    s = int(abs(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{sign}{h}:{m:02d}:{sec:02d}" if h else f"{sign}{m}:{sec:02d}"


def hours(seconds: float) -> str:
    """``5400`` -> ``1h30``; ``125`` -> ``0h02``; rounded down to the minute."""
    total = int(abs(seconds)) // 60
    return f"{total // 60}h{total % 60:02d}"


def parse_ts(ts: str | None) -> datetime | None:
    """Parse a journal timestamp (``2026-11-27T04:32:16.123456Z``) or RFC 3339 string."""
    if not ts:
        return None
    try:
        dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def elapsed_minutes(start: str | None, end: str | None, now: datetime) -> float | None:
    s = parse_ts(start)
    if s is None:
        return None
    e = parse_ts(end) or now
    return max(0.0, (e - s).total_seconds() / 60)


_INLINE_STYLE = {"strong": "bold", "em": "italic", "s": "strike", "link": "underline"}


def inline_markdown(source: str, style: str = "") -> Text:
    """One line of the runbook's Markdown (``**PROD-specific**: see `kubectl`, [docs](url)``)
    as styled text: emphasis, code and link text shown, the markers not; never Rich markup."""
    from markdown_it import MarkdownIt

    source = visible(source, multiline=False)  # control, bidi and zero-width characters as escapes
    if not any(c in source for c in "*_`[~"):
        return Text(source, style)
    text = Text(style=style)
    try:
        tokens = MarkdownIt("commonmark", {"html": False}).enable("strikethrough").parseInline(source)
    except Exception:  # noqa: BLE001 - markdown-it never raises on text, but a row must never break the screen
        return Text(source, style)
    open_styles: list[str] = []
    for token in tokens[0].children or () if tokens else ():
        kind = token.type
        if kind.endswith("_open") and kind[:-5] in _INLINE_STYLE:
            open_styles.append(_INLINE_STYLE[kind[:-5]])
        elif kind.endswith("_close") and kind[:-6] in _INLINE_STYLE:
            if open_styles:
                open_styles.pop()
        elif kind == "code_inline":
            text.append(token.content, " ".join([*open_styles, "bold cyan"]))
        elif kind in ("softbreak", "hardbreak"):
            text.append("\n")
        else:  # text, html_inline, image alt text: as written
            text.append(token.content, " ".join(open_styles))
    return text
