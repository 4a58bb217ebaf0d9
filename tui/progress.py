"""Progress figures the header and the tree show, computed from the model and state only."""

from __future__ import annotations

from runbook.model import Runbook
from sessions.state.state import TASK_DONE, TASK_SKIPPED, SessionState

FINISHED = (TASK_DONE, TASK_SKIPPED)


def unfinished_dependencies(runbook: Runbook, state: SessionState, task_id: str) -> list[str]:
    """Dependencies of ``task_id`` present in the runbook and not yet done or skipped.

    A dependency naming a task outside the document (an earlier runbook) cannot be
    tracked here; the guards (``sessions.planning.guards``) decide what to do about it.
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

