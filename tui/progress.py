"""Progress figures the header and the tree show, computed from the model and state only."""

from __future__ import annotations

from datetime import datetime

from runbook.model import Runbook
from runbook.plan import remaining_critical_path_minutes
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
    """Minutes of the longest chain of work left, by the rules of ``runbook plan``
    (task and phase dependencies).  A task in progress counts its estimate minus the
    time already spent (never below zero); a task without an estimate counts zero."""
    done = {t.id for t in runbook.tasks if state.task_status(t.id) in FINISHED}
    spent: dict[str, float] = {}
    for t in runbook.tasks:
        if state.task_status(t.id) == TASK_IN_PROGRESS:
            ts = state.tasks.get(t.id)
            spent[t.id] = elapsed_minutes(ts.started if ts else None, None, now) or 0.0
    return remaining_critical_path_minutes(runbook, done, elapsed=spent)
