"""The change window's clock: time left against the remaining critical path.

Shared by the TUI's header (which shows it) and :mod:`sessions.team.notify` (which tells the
team when it turns amber or red), so both say the same thing at the same moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from runbook.model import Runbook
from runbook.plan import remaining_critical_path_minutes
from sessions.state.state import TASK_DONE, TASK_IN_PROGRESS, TASK_SKIPPED, SessionState, parse_ts

FINISHED = (TASK_DONE, TASK_SKIPPED)


def _ts(value: str | None) -> datetime | None:
    t = parse_ts(value)
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


class WindowLevel(StrEnum):
    """How the window looks: members are strings (``WindowLevel.AMBER == "amber"``)."""

    NONE = "none"  # no window set
    OK = "ok"
    AMBER = "amber"  # less than 25 % (or 15 minutes) of slack
    RED = "red"  # the critical path no longer fits, or the window ended

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {WindowLevel.NONE: 0, WindowLevel.OK: 0, WindowLevel.AMBER: 1, WindowLevel.RED: 2}


def window_level(left_s: float, critical_s: float) -> WindowLevel:
    """``ok``, ``amber`` or ``red`` for the time left against the critical path."""
    if left_s <= 0 or left_s < critical_s:
        return WindowLevel.RED
    slack = left_s - critical_s
    if slack < max(15 * 60, 0.25 * critical_s):
        return WindowLevel.AMBER
    return WindowLevel.OK


def remaining_critical_path(runbook: Runbook, state: SessionState, now: datetime) -> float:
    """Minutes of the longest chain of work left, by the rules of ``runbook plan``
    (task and phase dependencies).  A task in progress counts its estimate minus the
    time already spent (never below zero); a task without an estimate counts zero."""
    done = {t.id for t in runbook.tasks if state.task_status(t.id) in FINISHED}
    spent: dict[str, float] = {}
    for t in runbook.tasks:
        if state.task_status(t.id) == TASK_IN_PROGRESS:
            ts = state.tasks.get(t.id)
            start = _ts(ts.started if ts else None)
            spent[t.id] = max(0.0, (now - start).total_seconds() / 60) if start is not None else 0.0
    return remaining_critical_path_minutes(runbook, done, elapsed=spent)


@dataclass(frozen=True, slots=True)
class WindowClock:
    """The window's state at one moment (``left_s``/``critical_s`` are 0 without a window)."""

    level: WindowLevel
    left_s: float = 0.0
    critical_s: float = 0.0

    @property
    def closed(self) -> bool:
        """The window's end has passed."""
        return self.level != WindowLevel.NONE and self.left_s <= 0


def window_clock(runbook: Runbook | None, state: SessionState, now: datetime) -> WindowClock:
    """Where the window stands at ``now`` (``none`` without a window end; without a runbook
    the critical path counts zero)."""
    end = _ts(state.window_end)
    if end is None:
        return WindowClock(WindowLevel.NONE)
    left = (end - now).total_seconds()
    critical = remaining_critical_path(runbook, state, now) * 60 if runbook is not None else 0.0
    return WindowClock(window_level(left, critical), left, critical)
