"""Progress figures the header and the tree show, computed from the model and state only."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from runbook.model import Runbook
from sessions.state import TASK_DONE, TASK_IN_PROGRESS, TASK_SKIPPED, SessionState

from tui.format import elapsed_minutes

FINISHED = (TASK_DONE, TASK_SKIPPED)


def unfinished_dependencies(runbook: Runbook, state: SessionState, task_id: str) -> list[str]:
    """Dependencies of ``task_id`` present in the runbook and not yet done or skipped.

    A dependency naming a task outside the document (an earlier runbook) cannot be
    tracked here; the guards (``sessions.guards``) decide what to do about it.
    """
    known = {t.id for t in runbook.tasks}
    try:
        task = runbook.task(task_id)
    except KeyError:
        return []
    return [d for d in task.dependencies if d in known and state.task_status(d) not in FINISHED]


def progress(runbook: Runbook, state: SessionState) -> tuple[int, int]:
    """(finished tasks, total tasks); skipped tasks count as finished."""
    tasks = runbook.tasks
    return sum(1 for t in tasks if state.task_status(t.id) in FINISHED), len(tasks)


def remaining_critical_path(runbook: Runbook, state: SessionState, now: datetime) -> float:
    """Minutes of the longest dependency chain through unfinished tasks.

    A task in progress counts its estimate minus the time already spent (never below
    zero); a task without an estimate counts zero.
    """
    tasks = {t.id: t for t in runbook.tasks}

    def remaining(task_id: str) -> float:
        t = tasks[task_id]
        status = state.task_status(task_id)
        if status in FINISHED:
            return 0.0
        estimate = t.duration_minutes or 0.0
        if status == TASK_IN_PROGRESS:
            ts = state.tasks.get(task_id)
            spent = elapsed_minutes(ts.started if ts else None, None, now) or 0.0
            return max(0.0, estimate - spent)
        return estimate

    @lru_cache(maxsize=None)
    def chain(task_id: str, depth: int = 0) -> float:
        if depth > len(tasks):  # a dependency cycle: lint reports it; do not loop
            return 0.0
        deps = [d for d in tasks[task_id].dependencies if d in tasks]
        before = max((chain(d, depth + 1) for d in deps), default=0.0)
        return before + remaining(task_id)

    return max((chain(t) for t in tasks), default=0.0)
