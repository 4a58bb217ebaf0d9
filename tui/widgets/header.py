"""Header: session id, operator, progress, the journal mirror's head (when ``--mirror``), and the window clock.

The clock compares the time left in the change window with the remaining
critical-path estimate: ``on time`` (green), ``tight`` (amber: less than 25 % or
15 minutes of slack) or ``over`` / ``window closed`` (red).  Words and icons say it
too, never colour alone.  ``now`` always comes from the injected clock.  The mirror's
part (:meth:`RunbookHeader.show_mirror`) says how far the mirror has acknowledged the
journal and how many records it is behind, or that it is lost, in words and icons.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from runbook.model import Runbook
from sessions.state.state import SessionState
from sessions.state.window import remaining_critical_path, window_level
from tui import format as fmt
from tui.progress import progress

if TYPE_CHECKING:
    from sessions.team.mirror import MirrorStatus

LEVEL_WORDS = {"ok": "✔ on time", "amber": "⚠ tight", "red": "✘ over"}


def _show(static: Static, text: str) -> None:
    """Update only on a change: every update lays the whole screen out again, and the clock
    ticks every second, also while a step floods the output pane."""
    if static.content != text:
        static.update(text)


class RunbookHeader(Horizontal):
    """One line: ``id · operator │ progress │ window clock``."""

    def __init__(self, runbook: Runbook, session_id: str, operator: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.runbook = runbook
        self.session_id = session_id
        self.operator = operator
        self.level = "none"
        self.closed = False  # the window's end has passed

    def compose(self) -> ComposeResult:
        yield Static(fmt.line(f"{self.session_id} · {self.operator}"), id="header-session")
        yield Static(id="header-progress")
        yield Static(id="header-mirror")
        yield Static(id="header-clock")

    def refresh_state(self, state: SessionState, now: datetime) -> None:
        done, total = progress(self.runbook, state)
        pct = int(100 * done / total) if total else 100
        unknown = len(state.unresolved_unknowns())
        text = f"{done}/{total} tasks {pct}%"
        if unknown:
            text += f" · ? {unknown} unknown"
        _show(self.query_one("#header-progress", Static), text)
        clock = self.query_one("#header-clock", Static)
        end = fmt.parse_ts(state.window_end)
        self.closed = end is not None and end <= now
        if end is None:
            self.level = "none"
            _show(clock, "no window set")
        else:
            left = (end - now).total_seconds()
            critical = remaining_critical_path(self.runbook, state, now) * 60
            self.level = window_level(left, critical)
            if left <= 0:
                _show(clock, f"✘ window closed {fmt.hours(-left)} ago · crit {fmt.hours(critical)}")
            else:
                _show(clock, f"⏱ {fmt.hours(left)} left · crit {fmt.hours(critical)} {LEVEL_WORDS[self.level]}")
        for level in ("none", "ok", "amber", "red"):
            clock.set_class(self.level == level, f"-{level}")

    def show_mirror(self, status: MirrorStatus | None) -> None:
        """The mirror's head: ``mirror ✔ 1240``, ``mirror ⚠ 1234 (6 behind)``, ``mirror ✘ lost ...``."""
        part = self.query_one("#header-mirror", Static)
        self.set_class(status is not None, "-mirrored")
        if status is None:
            part.update("")
            part.display = False
            return
        part.display = True
        part.update(fmt.line(status.text()))
        part.set_class(status.state.following and not status.lag, "-ok")
        part.set_class(not status.state.following, "-lost")
