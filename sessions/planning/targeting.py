"""Choosing targets: what to suggest for a step nobody targeted, and how to name hosts.

No step runs on a host nobody chose.  When a step has no target (no operator choice,
annotation, binding or document default), the planner gives it no hosts and these
suggestions, best first:

* for a rollback step, the hosts where the task's steps failed or whose outcome is
  unknown (the rollback goes where the damage is);
* what the document says (:func:`runbook.targets.suggest.suggest_targets`).

Pure functions of the runbook, the inventory and the session state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from runbook.model import Runbook, Step
from runbook.targets.suggest import Suggestion, not_chosen_text, suggest_targets
from sessions.state import state as st

if TYPE_CHECKING:
    from runbook.targets.inventory import Inventory

DAMAGE = (st.FAILED, st.UNKNOWN, st.TIMEOUT, st.CANCELLED)
SHOWN_HOSTS = 3

__all__ = ["binding_key", "damaged_hosts", "hosts_text", "not_chosen_text", "suggestions_for"]


def hosts_text(hosts: Sequence[str], shown: int = SHOWN_HOSTS) -> str:
    """``1 host (web-1)``, ``5 hosts (m-01, m-02, m-03, ...)``: the count and the first names."""
    if not hosts:
        return "no host"
    names = ", ".join(hosts[:shown]) + (", ..." if len(hosts) > shown else "")
    return f"{len(hosts)} host{'s' if len(hosts) != 1 else ''} ({names})"


def damaged_hosts(state: st.SessionState | None, task: str) -> list[tuple[str, str]]:
    """``(host, why)`` for every host where the latest run of one of ``task``'s steps failed,
    timed out, was cancelled or has an unknown outcome (operator decisions count), in step order."""
    if state is None:
        return []
    found: dict[str, str] = {}
    for (tid, step, rollback), run_id in sorted(state.latest_run.items(), key=lambda kv: (kv[0][2], kv[0][1])):
        if tid != task or rollback:
            continue
        run = state.runs.get(run_id)
        if run is None:
            continue
        for host in run.hosts:
            status = state.host_status(task, step, host)
            if status in DAMAGE and host not in found:
                found[host] = f"step {step} {status}"
    return list(found.items())


def suggestions_for(runbook: Runbook, inventory: Inventory | None, task: str, step: Step, rollback: bool,
                    state: st.SessionState | None) -> list[Suggestion]:
    """What to suggest for ``step`` of ``task`` (rollback: the damaged hosts first)."""
    out: list[Suggestion] = []
    if rollback:
        damaged = damaged_hosts(state, task)
        if damaged:
            why = "; ".join(f"{h}: {w}" for h, w in damaged[:SHOWN_HOSTS]) + (" ..." if len(damaged) > SHOWN_HOSTS else "")
            out.append(Suggestion(",".join(h for h, _ in damaged), f"where {task}'s steps failed or are unknown: {why}",
                                  step.line))
    for s in suggest_targets(step, inventory):
        if all(s.pattern != o.pattern for o in out):
            out.append(s)
    return out


def binding_key(task: str, step: int | None, rollback: bool) -> str:
    """The bindings-file key for a choice: ``TASK``, ``TASK.N``, ``TASK.rollback``, ``TASK.rollback.N``."""
    key = f"{task}.rollback" if rollback else task
    return key if step is None else f"{key}.{step}"
