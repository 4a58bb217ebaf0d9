"""Session state: a pure fold over journal events.

``replay(events)`` never does I/O and never mutates its input.  Applying events one
by one with :func:`apply` (what the TUI does live) gives the same state as replaying
the whole list (what resume does).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable

from sessions import events as ev

# Host / step statuses
PENDING = "pending"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
UNKNOWN = "unknown"  # outcome unknown: the end was not seen
SKIPPED = "skipped"
CANCELLED = "cancelled"
TIMEOUT = "timeout"

# Task statuses
TASK_PENDING = "pending"
TASK_IN_PROGRESS = "in_progress"
TASK_DONE = "done"
TASK_SKIPPED = "skipped"

_OUTCOME_RANK = {SUCCEEDED: 0, SKIPPED: 1, PENDING: 2, RUNNING: 3, CANCELLED: 4, TIMEOUT: 5, FAILED: 6, UNKNOWN: 7}


def worst(statuses: Iterable[str]) -> str:
    items = list(statuses)
    if not items:
        return PENDING
    return max(items, key=lambda s: _OUTCOME_RANK.get(s, 0))


@dataclass(frozen=True, slots=True)
class HostRun:
    host: str
    status: str = RUNNING
    exit_status: int | None = None
    exit_signal: str | None = None
    duration_s: float = 0.0
    error: str = ""
    output_bytes: int = 0
    decided: str | None = None  # operator decision on an unknown outcome
    decided_reason: str = ""


@dataclass(frozen=True, slots=True)
class StepRun:
    run_id: str
    task: str
    step: int
    targets: tuple[str, ...]
    command: str
    mode: str
    rollback: bool
    detached: bool
    started: str  # ts of StepStarted
    seq: int
    hosts: dict[str, HostRun] = field(default_factory=dict)
    finished: bool = False
    outcome: str = RUNNING
    duration_s: float = 0.0
    expectations: dict[tuple[str, int], tuple[bool, str]] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """Effective status: operator decisions on unknown outcomes count."""
        if not self.hosts:
            return self.outcome if self.finished else RUNNING
        return worst(_effective(h) for h in self.hosts.values())


def _effective(h: HostRun) -> str:
    if h.status == UNKNOWN and h.decided in (SUCCEEDED, FAILED):
        return h.decided
    return h.status


@dataclass(frozen=True, slots=True)
class CheckboxState:
    key: str
    checked: bool
    who: str = ""
    ts: str = ""
    evidence: str = ""


@dataclass(frozen=True, slots=True)
class TaskState:
    task: str
    status: str = TASK_PENDING
    started: str | None = None
    finished: str | None = None
    skip_reason: str = ""
    who: str = ""
    rollback_started: bool = False


@dataclass(frozen=True, slots=True)
class SessionState:
    session_id: str = ""
    runbook_path: str = ""
    runbook_sha256: str = ""
    runbook_title: str = ""
    operators: tuple[str, ...] = ()
    opened: str | None = None
    last_activity: str | None = None
    closed: bool = False
    finished: bool = False
    window_end: str | None = None
    tasks: dict[str, TaskState] = field(default_factory=dict)
    runs: dict[str, StepRun] = field(default_factory=dict)
    latest_run: dict[tuple[str, int, bool], str] = field(default_factory=dict)  # (task, step, rollback) -> run_id
    step_skips: dict[tuple[str, int], str] = field(default_factory=dict)
    checkboxes: dict[str, CheckboxState] = field(default_factory=dict)
    placeholders: dict[str, ev.PlaceholderSupplied] = field(default_factory=dict)
    guards: tuple[ev.Event, ...] = ()
    notes: tuple[ev.Note, ...] = ()
    probes: dict[str, ev.ProbeResult] = field(default_factory=dict)
    recovered: tuple[ev.Recovered, ...] = ()
    count: int = 0  # events folded

    def task_status(self, task_id: str) -> str:
        t = self.tasks.get(task_id)
        return t.status if t else TASK_PENDING

    def step_run(self, task_id: str, step: int, rollback: bool = False) -> StepRun | None:
        rid = self.latest_run.get((task_id, step, rollback))
        return self.runs.get(rid) if rid else None

    def step_status(self, task_id: str, step: int, rollback: bool = False) -> str:
        if not rollback and (task_id, step) in self.step_skips:
            return SKIPPED
        run = self.step_run(task_id, step, rollback)
        return run.status if run else PENDING

    def unresolved_unknowns(self) -> list[tuple[StepRun, HostRun]]:
        out = []
        for rid in self.latest_run.values():
            run = self.runs[rid]
            for h in run.hosts.values():
                if h.status == UNKNOWN and h.decided is None:
                    out.append((run, h))
        return out

    def running(self) -> list[StepRun]:
        return [r for r in self.runs.values() if not r.finished]


def replay(events: Iterable[ev.Event | tuple[str, ev.Event]]) -> SessionState:
    """Fold events (or ``(ts, event)`` pairs, as journal records give) into state."""
    state = SessionState()
    for item in events:
        if isinstance(item, tuple):
            ts, e = item
        else:
            ts, e = "", item
        state = apply(state, e, ts)
    return state


def _set_host(run: StepRun, host: HostRun) -> StepRun:
    hosts = dict(run.hosts)
    hosts[host.host] = host
    return replace(run, hosts=hosts)


def apply(state: SessionState, e: ev.Event, ts: str = "") -> SessionState:  # noqa: C901 - a fold is a switch
    """Return the state after one event.  Pure: ``state`` is not modified."""
    s = replace(state, count=state.count + 1, last_activity=ts or state.last_activity)
    if isinstance(e, ev.SessionOpened):
        ops = s.operators if e.operator in s.operators else s.operators + (e.operator,)
        return replace(
            s,
            session_id=e.session_id,
            runbook_path=e.runbook_path,
            runbook_sha256=s.runbook_sha256 or e.runbook_sha256,
            runbook_title=e.runbook_title,
            operators=ops,
            opened=s.opened or ts,
            closed=False,
            window_end=e.window_end or s.window_end,
        )
    if isinstance(e, ev.SessionClosed):
        return replace(s, closed=True, finished=s.finished or e.finished)
    if isinstance(e, ev.RunbookChanged):
        return replace(s, runbook_sha256=e.new_sha256)
    if isinstance(e, ev.Recovered):
        return replace(s, recovered=s.recovered + (e,))
    if isinstance(e, (ev.TaskStarted, ev.TaskCompleted, ev.TaskSkipped, ev.RollbackStarted)):
        tasks = dict(s.tasks)
        t = tasks.get(e.task, TaskState(e.task))
        if isinstance(e, ev.TaskStarted):
            t = replace(t, status=TASK_IN_PROGRESS, started=t.started or ts, who=e.who, finished=None)
        elif isinstance(e, ev.TaskCompleted):
            t = replace(t, status=TASK_DONE, finished=ts, who=e.who or t.who)
        elif isinstance(e, ev.TaskSkipped):
            t = replace(t, status=TASK_SKIPPED, finished=ts, skip_reason=e.reason, who=e.who)
        else:
            t = replace(t, rollback_started=True)
        tasks[e.task] = t
        return replace(s, tasks=tasks)
    if isinstance(e, ev.StepStarted):
        run = StepRun(
            e.run_id, e.task, e.step, tuple(e.targets), e.command, e.mode, e.rollback, e.detached, ts, s.count,
            hosts={h: HostRun(h, status=PENDING) for h in e.targets},
        )
        runs = dict(s.runs)
        runs[e.run_id] = run
        latest = dict(s.latest_run)
        latest[(e.task, e.step, e.rollback)] = e.run_id
        skips = s.step_skips
        if (e.task, e.step) in skips and not e.rollback:
            skips = {k: v for k, v in skips.items() if k != (e.task, e.step)}
        tasks = s.tasks
        if e.task not in tasks or tasks[e.task].status == TASK_PENDING:
            tasks = dict(tasks)
            tasks[e.task] = replace(tasks.get(e.task, TaskState(e.task)), status=TASK_IN_PROGRESS, started=ts)
        return replace(s, runs=runs, latest_run=latest, step_skips=skips, tasks=tasks)
    if isinstance(e, ev.OutputChunk):
        run = s.runs.get(e.run_id)
        if run is None:
            return s
        h = run.hosts.get(e.host, HostRun(e.host))
        status = RUNNING if h.status == PENDING else h.status
        h = replace(h, status=status, output_bytes=h.output_bytes + len(e.raw))
        return _with_run(s, _set_host(run, h))
    if isinstance(e, ev.HostFinished):
        run = s.runs.get(e.run_id)
        if run is None:
            return s
        h = run.hosts.get(e.host, HostRun(e.host))
        h = replace(h, status=e.outcome, exit_status=e.exit_status, exit_signal=e.exit_signal,
                    duration_s=e.duration_s, error=e.error)
        return _with_run(s, _set_host(run, h))
    if isinstance(e, ev.StepFinished):
        run = s.runs.get(e.run_id)
        if run is None:
            return s
        hosts = {
            k: (replace(v, status=SKIPPED) if v.status == PENDING else v) for k, v in run.hosts.items()
        }
        return _with_run(s, replace(run, hosts=hosts, finished=True, outcome=e.outcome, duration_s=e.duration_s))
    if isinstance(e, ev.StepOutcomeUnknown):
        run = s.runs.get(e.run_id)
        if run is None:
            return s
        hosts = dict(run.hosts)
        for name, h in run.hosts.items():
            if (e.host is None and h.status in (PENDING, RUNNING)) or name == e.host:
                hosts[name] = replace(h, status=UNKNOWN, error=e.why)
        still = any(h.status in (PENDING, RUNNING) for h in hosts.values())
        return _with_run(s, replace(run, hosts=hosts, finished=run.finished or not still,
                                    outcome=UNKNOWN if not still else run.outcome))
    if isinstance(e, ev.OutcomeDecided):
        run = s.runs.get(e.run_id)
        if run is None:
            return s
        hosts = dict(run.hosts)
        for name, h in run.hosts.items():
            if h.status == UNKNOWN and (e.host is None or name == e.host):
                hosts[name] = replace(h, decided=e.decision, decided_reason=e.reason)
        return _with_run(s, replace(run, hosts=hosts))
    if isinstance(e, ev.StepSkipped):
        skips = dict(s.step_skips)
        skips[(e.task, e.step)] = e.reason
        return replace(s, step_skips=skips)
    if isinstance(e, ev.ExpectationChecked):
        run = s.runs.get(e.run_id)
        if run is None:
            return s
        exp = dict(run.expectations)
        exp[(e.host, e.index)] = (e.passed, e.evidence)
        return _with_run(s, replace(run, expectations=exp))
    if isinstance(e, (ev.CheckboxSet, ev.CheckboxCleared)):
        boxes = dict(s.checkboxes)
        checked = isinstance(e, ev.CheckboxSet)
        boxes[e.key] = CheckboxState(e.key, checked, e.who, ts, getattr(e, "evidence", "") or getattr(e, "reason", ""))
        return replace(s, checkboxes=boxes)
    if isinstance(e, ev.PlaceholderSupplied):
        ph = dict(s.placeholders)
        ph[e.name] = e
        return replace(s, placeholders=ph)
    if isinstance(e, (ev.GuardPassed, ev.GuardOverridden)):
        return replace(s, guards=s.guards + (e,))
    if isinstance(e, ev.Note):
        return replace(s, notes=s.notes + (e,))
    if isinstance(e, ev.ProbeResult):
        probes = dict(s.probes)
        probes[e.key] = e
        return replace(s, probes=probes)
    return s  # Checkpoint, FileUploaded, HostKeyAccepted, ...: no state change


def _with_run(s: SessionState, run: StepRun) -> SessionState:
    runs = dict(s.runs)
    runs[run.run_id] = run
    return replace(s, runs=runs)
