"""The recap of one step run, host by host (like Ansible's PLAY RECAP).

A pure view of :class:`~sessions.state.state.StepRun`: the TUI shows it after each step and
the reports print it for every run, so both say the same thing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sessions.state.state import PENDING, RUNNING, SKIPPED, UNKNOWN, StepRun

NOT_RUN = "not run"


@dataclass(frozen=True, slots=True)
class RecapRow:
    host: str
    outcome: str  # succeeded, failed, ..., "unknown" (or the operator's decision on it), "not run"
    exit: str  # "0", "1", "SIGINT", "" when none
    duration_s: float | None
    detail: str  # where a failed script stopped, or why the end was not seen, or the decision


def recap_rows(run: StepRun) -> list[RecapRow]:
    """One row per target host, in target order; a host a serial run never reached is "not run"."""
    rows = []
    for host in run.targets:
        h = run.hosts.get(host)
        if h is None or h.status == SKIPPED or (h.status in (PENDING, RUNNING) and run.finished):
            not_run = h is None or h.status in (PENDING, SKIPPED)
            rows.append(RecapRow(host, NOT_RUN if not_run else UNKNOWN, "", None, ""))
            continue
        outcome, detail = h.status, h.error
        if h.status == UNKNOWN and h.decided:
            outcome = h.decided
            detail = f"outcome unknown, decided {h.decided} by {h.decided_by or '?'}: {h.decided_reason}".rstrip(": ")
        exit_ = str(h.exit_status) if h.exit_status is not None else (h.exit_signal or "")
        rows.append(RecapRow(host, outcome, exit_, h.duration_s if h.status not in (PENDING, RUNNING) else None,
                             detail))
    return rows


def recap_summary(rows: list[RecapRow]) -> str:
    """``3 hosts: 2 succeeded, 1 failed``."""
    counts = Counter(r.outcome for r in rows)
    return f"{len(rows)} host{'s' if len(rows) != 1 else ''}: " + ", ".join(f"{n} {o}" for o, n in counts.items())


def recap_lines(rows: list[RecapRow]) -> list[str]:
    """The rows as aligned text lines (host, outcome, exit, duration, detail)."""
    if not rows:
        return []
    hw = max(len(r.host) for r in rows)
    ow = max(len(r.outcome) for r in rows)
    lines = []
    for r in rows:
        exit_ = f"exit {r.exit}" if r.exit else ""
        took = f"{r.duration_s:.1f}s" if r.duration_s is not None else ""
        lines.append(f"{r.host.ljust(hw)}  {r.outcome.ljust(ow)}  {exit_:<11} {took:>7}  {r.detail}".rstrip())
    return lines
