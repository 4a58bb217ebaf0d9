"""Session state: a pure fold over journal events.

``replay(events)`` never does I/O and never mutates its input.  Applying events one
by one with :func:`apply` (what a live session does) gives the same state as
replaying the whole list (what resume does).

Both go through one fold, :class:`_Fold`, which works copy-on-write: it clones
the root state once and then clones only the objects an event touches (a run, a
host, a task, a dict), the first time it touches them, and mutates its own clones
in place.  ``apply`` folds one event over a shared state, touching only what that
event changes; ``replay`` folds many events with one fold, so each object is
cloned at most once.  The result is made of the public frozen dataclasses below;
once returned, nothing mutates it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sessions.journal import events as ev

if TYPE_CHECKING:
    from runbook.model import Runbook
    from sessions.journal.format import Record


class Outcome(StrEnum):
    """A host's (or a step's) status.  Members are strings: ``Outcome.FAILED == "failed"``."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPECTATION_FAILED = "expectation_failed"  # the command succeeded, an automatic ``Expected:`` was not met
    UNKNOWN = "unknown"  # outcome unknown: the end was not seen
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"


# Host / step statuses (the Outcome members, by their old names)
PENDING = Outcome.PENDING
RUNNING = Outcome.RUNNING
SUCCEEDED = Outcome.SUCCEEDED
FAILED = Outcome.FAILED
EXPECTATION_FAILED = Outcome.EXPECTATION_FAILED
UNKNOWN = Outcome.UNKNOWN
SKIPPED = Outcome.SKIPPED
CANCELLED = Outcome.CANCELLED
TIMEOUT = Outcome.TIMEOUT

# Task statuses
TASK_PENDING = "pending"
TASK_IN_PROGRESS = "in_progress"
TASK_DONE = "done"
TASK_SKIPPED = "skipped"

_OUTCOME_RANK: dict[str, int] = {SUCCEEDED: 0, SKIPPED: 1, PENDING: 2, RUNNING: 3, CANCELLED: 4, TIMEOUT: 5, EXPECTATION_FAILED: 6,
                 FAILED: 7, UNKNOWN: 8}
DECIDABLE = (UNKNOWN, EXPECTATION_FAILED)  # what the operator decides (OutcomeDecided)


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
    decided_by: str = ""
    detached_id: str = ""  # last DetachedStarted on this host ("" when not detached)
    expectation_failed: bool = False  # an automatic ``Expected:`` was not met in this host's output

    @property
    def effective(self) -> str:
        """The host's result: an operator decision on an unknown outcome or an unmet expectation
        counts; a command that succeeded with an unmet expectation is ``expectation_failed``."""
        return _effective(self)

    @property
    def decidable(self) -> bool:
        """The operator may decide this host's result: outcome unknown, or an unmet expectation."""
        return self.status == UNKNOWN or (self.status == SUCCEEDED and self.expectation_failed)

    @property
    def undecided(self) -> bool:
        """Outcome unknown, or an unmet expectation, and the operator has not decided yet."""
        return self.decided is None and self.decidable


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
    who: str = ""
    ended: str | None = None  # ts of StepFinished (or of the unknown outcome that ended it)
    hosts_tracked: bool = False  # the journal says when each host started (HostStarted)

    @property
    def status(self) -> str:
        """Effective status: operator decisions on unknown outcomes count."""
        if not self.hosts:
            return self.outcome if self.finished else RUNNING
        status = worst(_effective(h) for h in self.hosts.values())
        return RUNNING if status == PENDING and not self.finished else status  # started: no host has output yet

    @property
    def unfinished_hosts(self) -> tuple[str, ...]:
        return tuple(h.host for h in self.hosts.values() if h.status in (PENDING, RUNNING))


def _effective(h: HostRun) -> str:
    if h.status == UNKNOWN and h.decided in (SUCCEEDED, FAILED):
        return Outcome(h.decided)
    if h.status == SUCCEEDED and h.expectation_failed:
        return Outcome(h.decided) if h.decided in (SUCCEEDED, FAILED) else EXPECTATION_FAILED
    return h.status


@dataclass(frozen=True, slots=True)
class HostCell:
    """One host of a step's matrix: its last outcome over all the step's runs."""

    host: str
    status: str  # effective (decisions count); RUNNING while a run goes on there
    run_id: str  # the run that gave ``status`` ("" when the host never ran)
    runs: int  # runs of this step that ran on this host


@dataclass(frozen=True, slots=True)
class StepMatrix:
    """A step's status as a host matrix: the last outcome per host over all its runs."""

    task: str
    step: int
    rollback: bool
    runs: int  # runs of the step
    hosts: tuple[HostCell, ...] = ()  # in the order hosts first appeared
    running: bool = False  # the latest run has not finished

    @property
    def status(self) -> str:
        if self.running:
            return RUNNING
        if not self.hosts:
            return PENDING
        return worst(c.status for c in self.hosts)

    def cell(self, host: str) -> HostCell | None:
        return next((c for c in self.hosts if c.host == host), None)

    def hosts_with(self, *statuses: str) -> tuple[str, ...]:
        return tuple(c.host for c in self.hosts if c.status in statuses)


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

    def actual_s(self, now: str | datetime | None = None) -> float | None:
        """Seconds from start to finish (to ``now`` while in progress); None if not started."""
        start = parse_ts(self.started)
        if start is None:
            return None
        end = parse_ts(self.finished) or parse_ts(now)
        return None if end is None else max(0.0, (end - start).total_seconds())


@dataclass(frozen=True, slots=True)
class TaskTiming:
    task: str
    status: str
    estimated_s: float | None  # from the runbook (Task.duration_minutes)
    actual_s: float | None


@dataclass(frozen=True)  # no slots: the fold clones it once per event, and a __dict__ copies fastest
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
    # -- added fields (keep the ones above stable) --
    operator: str = ""  # who opened the session last
    opens: tuple[ev.SessionOpened, ...] = ()  # every open: create, resumes, handovers
    task_ids: tuple[str, ...] = ()  # tasks of the runbook as last opened
    runbook_changes: tuple[ev.RunbookChanged, ...] = ()
    last_checkpoint: ev.Checkpoint | None = None
    step_runs: dict[tuple[str, int, bool], tuple[str, ...]] = field(default_factory=dict)  # every run of a step, in order
    # (task, step or None for the task's untargeted steps, rollback) -> the operator's latest choice
    target_choices: dict[tuple[str, int | None, bool], ev.TargetChosen] = field(default_factory=dict)
    window_alerts: tuple[ev.WindowAlert, ...] = ()  # the window clock's alerts, oldest first
    notifications_sent: int = 0  # notifications delivered (``--notify``)
    notification_failures: tuple[ev.NotificationFailed, ...] = ()  # and those that could not be
    approvers: ev.ApproversSet | None = None  # the approvers file in force (``--approvers``)
    # approval requests, grants and refusals, oldest first (sessions.team.approval)
    approvals: tuple[ev.ApprovalRequested | ev.ApprovalGranted | ev.ApprovalRefused, ...] = ()

    def task_status(self, task_id: str) -> str:
        t = self.tasks.get(task_id)
        return t.status if t else TASK_PENDING

    def item_status(self, task_id: str, steps: Iterable[int], *, gate: bool = False) -> str:
        """What the TUI's tree and every report show for a task or a phase gate (one rule, so
        they agree): a gate is the worst of its steps (pending until one ran); a task in
        progress whose step failed or whose outcome is unknown shows that, else its status."""
        statuses = [self.step_status(task_id, n) for n in steps]
        if gate:
            return PENDING if all(s == PENDING for s in statuses) else worst(statuses)
        status = self.task_status(task_id)
        if status == TASK_IN_PROGRESS and any(s in (FAILED, UNKNOWN) for s in statuses):
            return UNKNOWN if UNKNOWN in statuses else FAILED
        return status

    def step_run(self, task_id: str, step: int, rollback: bool = False) -> StepRun | None:
        rid = self.latest_run.get((task_id, step, rollback))
        return self.runs.get(rid) if rid else None

    def step_matrix(self, task_id: str, step: int, rollback: bool = False) -> StepMatrix:
        """The last outcome per host over every run of the step (with the number of runs).

        A host that a run did not reach (a serial run stopped, a cancel) keeps its
        earlier outcome; a host running now is ``running``.
        """
        ids = self.step_runs.get((task_id, step, rollback), ())
        if not ids:
            rid = self.latest_run.get((task_id, step, rollback))  # states built before step_runs existed
            ids = (rid,) if rid else ()
        cells: dict[str, HostCell] = {}
        running = False
        for rid in ids:
            run = self.runs.get(rid)
            if run is None:
                continue
            running = run.status == RUNNING
            for h in run.hosts.values():
                prev = cells.get(h.host)
                status = _effective(h)
                if status in (SKIPPED, PENDING):
                    if prev is None:  # never reached by any run: pending while the run goes on, else as recorded
                        cells[h.host] = HostCell(h.host, RUNNING if (status == PENDING and not run.finished) else
                                                 status, "", 0)
                    continue
                cells[h.host] = HostCell(h.host, status, rid, (prev.runs if prev else 0) + 1)
        return StepMatrix(task_id, step, rollback, len(ids), tuple(cells.values()), running)

    def step_status(self, task_id: str, step: int, rollback: bool = False) -> str:
        """The step's status: skipped, else the worst last outcome over its hosts (:meth:`step_matrix`)."""
        if not rollback and (task_id, step) in self.step_skips:
            return SKIPPED
        return self.step_matrix(task_id, step, rollback).status

    def host_status(self, task_id: str, step: int, host: str, rollback: bool = False) -> str:
        """Last outcome of one host over every run of a step (operator decisions count)."""
        if not rollback and (task_id, step) in self.step_skips:
            return SKIPPED
        cell = self.step_matrix(task_id, step, rollback).cell(host)
        return cell.status if cell else PENDING

    def target_choice(self, task_id: str, step: int, rollback: bool = False) -> ev.TargetChosen | None:
        """The operator's choice for this very step (``TargetChosen`` with a step number), if any."""
        return self.target_choices.get((task_id, step, rollback))

    def task_target_choice(self, task_id: str, rollback: bool = False) -> ev.TargetChosen | None:
        """The operator's choice for the task's (or its rollback's) untargeted steps, if any."""
        return self.target_choices.get((task_id, None, rollback))

    def unresolved_unknowns(self) -> list[tuple[StepRun, HostRun]]:
        """Hosts of the latest runs whose outcome is unknown and not decided yet."""
        out: list[tuple[StepRun, HostRun]] = []
        for rid in self.latest_run.values():
            run = self.runs[rid]
            for h in run.hosts.values():
                if h.status == UNKNOWN and h.decided is None:
                    out.append((run, h))
        return out

    def undecided(self) -> list[tuple[StepRun, HostRun]]:
        """Hosts of the latest runs the operator must decide: outcome unknown, or an unmet expectation."""
        out: list[tuple[StepRun, HostRun]] = []
        for rid in self.latest_run.values():
            run = self.runs[rid]
            out.extend((run, h) for h in run.hosts.values() if h.undecided)
        return out

    def running(self) -> list[StepRun]:
        return [r for r in self.runs.values() if not r.finished]

    def detached_unfinished(self) -> list[StepRun]:
        """Unfinished detached runs (the engine re-attaches them on resume)."""
        return [r for r in self.runs.values() if r.detached and not r.finished]

    @property
    def placeholder_names(self) -> frozenset[str]:
        """Names of the placeholders supplied so far (secret or not)."""
        return frozenset(self.placeholders)

    @property
    def handovers(self) -> tuple[ev.SessionOpened, ...]:
        """Opens by someone else than the previous operator."""
        return tuple(o for o in self.opens if o.handover_from)

    def progress(self, task_ids: Iterable[str] | None = None) -> tuple[int, int]:
        """(tasks done or skipped, tasks) over ``task_ids`` (default: the runbook's as last opened)."""
        ids = list(self.task_ids if task_ids is None else task_ids) or list(self.tasks)
        done = sum(1 for t in ids if self.task_status(t) in (TASK_DONE, TASK_SKIPPED))
        return done, len(ids)


def parse_ts(value: str | datetime | None) -> datetime | None:
    """An RFC 3339 timestamp (as journaled) or datetime; None for None/""/garbage."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def timings(state: SessionState, runbook: Runbook, now: str | datetime | None = None) -> list[TaskTiming]:
    """Estimated (runbook) versus actual (journal) duration of every task of ``runbook``."""
    out = []
    for task in runbook.tasks:
        t = state.tasks.get(task.id)
        est = task.duration_minutes * 60.0 if task.duration_minutes is not None else None
        out.append(TaskTiming(task.id, state.task_status(task.id), est, t.actual_s(now) if t else None))
    return out


# --- the fold ----------------------------------------------------------------------

_set = object.__setattr__
_CLONERS: dict[type, Callable[[Any], Any]] = {}


def _make_cloner(cls: type) -> Callable[[Any], Any]:
    if "__slots__" not in cls.__dict__:
        def clone_dict(obj: Any) -> Any:
            new: Any = object.__new__(cls)
            new.__dict__.update(obj.__dict__)
            return new

        return clone_dict
    # Unrolled attribute copies (as dataclasses generates __init__): twice as fast as a loop.
    lines = [f"    _set(new, {name!r}, obj.{name})\n" for name in cls.__dict__["__slots__"]]
    src = "def clone(obj):\n    new = _new(cls)\n" + "".join(lines) + "    return new\n"
    namespace: dict[str, Any] = {"_new": object.__new__, "_set": _set, "cls": cls}
    exec(src, namespace)
    clone: Callable[[Any], Any] = namespace["clone"]
    return clone


def _clone(obj: Any) -> Any:
    """Shallow copy of a slots dataclass instance (fast; no __init__)."""
    cloner = _CLONERS.get(type(obj))
    if cloner is None:
        cloner = _CLONERS[type(obj)] = _make_cloner(type(obj))
    return cloner(obj)


class _Fold:
    """Working copy of a state: owns (and may mutate) only what it cloned or created."""

    __slots__ = ("appends", "own", "s")

    def __init__(self, base: SessionState) -> None:
        self.s: SessionState = _clone(base)
        self.own: set[int] = set()  # ids of objects this fold created (base objects stay alive: no id reuse)
        self.appends: dict[str, list[Any]] | None = None

    def owned(self, obj: Any) -> Any:
        self.own.add(id(obj))
        return obj

    def wdict(self, obj: Any, name: str) -> dict[Any, Any]:
        """Writable dict field ``name`` of ``obj`` (``obj`` must be writable)."""
        d: dict[Any, Any] = getattr(obj, name)
        if id(d) not in self.own:
            d = self.owned(dict(d))
            _set(obj, name, d)
        return d

    def item(self, obj: Any, name: str, key: Any) -> Any:
        """Writable value ``obj.name[key]`` (None when missing)."""
        value = getattr(obj, name).get(key)
        if value is None or id(value) in self.own:
            return value
        value = self.owned(_clone(value))
        self.wdict(obj, name)[key] = value
        return value

    def put(self, obj: Any, name: str, key: Any, value: Any) -> Any:
        self.wdict(obj, name)[key] = self.owned(value)
        return value

    def run(self, run_id: str) -> StepRun | None:
        found: StepRun | None = self.item(self.s, "runs", run_id)
        return found

    def host(self, run: StepRun, host: str) -> HostRun | None:
        found: HostRun | None = self.item(run, "hosts", host)
        return found

    def own_host(self, run: StepRun, host: str) -> HostRun:
        """Writable ``run.hosts[host]`` of a host the run has."""
        found: HostRun = self.item(run, "hosts", host)
        return found

    def task(self, task_id: str) -> TaskState:
        found: TaskState = self.item(self.s, "tasks", task_id) or self.put(self.s, "tasks", task_id, TaskState(task_id))
        return found

    def append(self, name: str, item: Any) -> None:
        if self.appends is None:
            self.appends = {}
        self.appends.setdefault(name, []).append(item)

    def freeze(self) -> SessionState:
        s = self.s
        if self.appends:
            for name, items in self.appends.items():
                _set(s, name, getattr(s, name) + tuple(items))
            self.appends = None
        return s


def _session_opened(f: _Fold, e: ev.SessionOpened, ts: str) -> None:
    s = f.s
    if e.operator and e.operator not in s.operators:
        _set(s, "operators", s.operators + (e.operator,))
    _set(s, "session_id", e.session_id)
    _set(s, "runbook_path", e.runbook_path)
    _set(s, "runbook_sha256", s.runbook_sha256 or e.runbook_sha256)
    _set(s, "runbook_title", e.runbook_title)
    _set(s, "opened", s.opened or ts)
    _set(s, "closed", False)
    _set(s, "window_end", e.window_end or s.window_end)
    _set(s, "operator", e.operator)
    if e.task_ids:
        _set(s, "task_ids", tuple(e.task_ids))
    f.append("opens", e)


def _session_closed(f: _Fold, e: ev.SessionClosed, ts: str) -> None:
    _set(f.s, "closed", True)
    _set(f.s, "finished", f.s.finished or e.finished)


def _runbook_changed(f: _Fold, e: ev.RunbookChanged, ts: str) -> None:
    _set(f.s, "runbook_sha256", e.new_sha256)
    f.append("runbook_changes", e)


def _task_event(f: _Fold, e: Any, ts: str) -> None:
    t = f.task(e.task)
    if isinstance(e, ev.TaskStarted):
        _set(t, "status", TASK_IN_PROGRESS)
        _set(t, "started", t.started or ts)
        _set(t, "who", e.who)
        _set(t, "finished", None)
    elif isinstance(e, ev.TaskCompleted):
        _set(t, "status", TASK_DONE)
        _set(t, "finished", ts)
        _set(t, "who", e.who or t.who)
    elif isinstance(e, ev.TaskSkipped):
        _set(t, "status", TASK_SKIPPED)
        _set(t, "finished", ts)
        _set(t, "skip_reason", e.reason)
        _set(t, "who", e.who)
    else:  # RollbackStarted
        _set(t, "rollback_started", True)


def _step_started(f: _Fold, e: ev.StepStarted, ts: str) -> None:
    s = f.s
    targets = tuple(e.targets)
    hosts = f.owned({h: f.owned(HostRun(h, status=PENDING)) for h in targets})
    run = StepRun(e.run_id, e.task, e.step, targets, e.command, e.mode, e.rollback, e.detached, ts, s.count,
                  hosts=hosts, who=e.who)
    f.put(s, "runs", e.run_id, run)
    f.wdict(s, "latest_run")[(e.task, e.step, e.rollback)] = e.run_id
    key = (e.task, e.step, e.rollback)
    f.wdict(s, "step_runs")[key] = s.step_runs.get(key, ()) + (e.run_id,)
    if not e.rollback and (e.task, e.step) in s.step_skips:
        del f.wdict(s, "step_skips")[(e.task, e.step)]
    if s.task_status(e.task) == TASK_PENDING:
        t = f.task(e.task)
        _set(t, "status", TASK_IN_PROGRESS)
        _set(t, "started", ts)


def _output(f: _Fold, e: ev.OutputChunk, ts: str) -> None:
    run = f.run(e.run_id)
    if run is None:
        return
    h = f.host(run, e.host)
    if h is None:
        if run.finished:
            return  # output after the end: nothing to attribute it to
        h = f.put(run, "hosts", e.host, HostRun(e.host))
    elif h.status == PENDING and not run.finished:
        _set(h, "status", RUNNING)
    if e.b64 is not None:
        n = len(e.raw)
    else:
        data = e.data
        n = len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
    _set(h, "output_bytes", h.output_bytes + n)


def _detached_started(f: _Fold, e: Any, ts: str) -> None:
    run = f.run(e.run_id)
    if run is None or run.finished:  # like output: nothing starts on a run that has ended
        return
    h = f.host(run, e.host) or f.put(run, "hosts", e.host, HostRun(e.host))
    if h.status == PENDING:
        _set(h, "status", RUNNING)
    _set(h, "detached_id", e.detached_id)


def _host_started(f: _Fold, e: Any, ts: str) -> None:
    run = f.run(e.run_id)
    if run is None or run.finished:  # nothing starts on a run that has ended
        return
    _set(run, "hosts_tracked", True)
    h = f.host(run, e.host) or f.put(run, "hosts", e.host, HostRun(e.host))
    if h.status == PENDING:
        _set(h, "status", RUNNING)


def _host_finished(f: _Fold, e: ev.HostFinished, ts: str) -> None:
    run = f.run(e.run_id)
    if run is None:
        return
    h = f.host(run, e.host) or f.put(run, "hosts", e.host, HostRun(e.host))
    _set(h, "status", e.outcome)
    _set(h, "exit_status", e.exit_status)
    _set(h, "exit_signal", e.exit_signal)
    _set(h, "duration_s", e.duration_s)
    _set(h, "error", e.error)


def _step_finished(f: _Fold, e: ev.StepFinished, ts: str) -> None:
    run = f.run(e.run_id)
    if run is None:
        return
    for name, h in tuple(run.hosts.items()):
        if h.status == PENDING:  # never started (serial run stopped)
            _set(f.host(run, name), "status", SKIPPED)
        elif h.status == RUNNING:  # started, but no result was journaled: never success
            w = f.own_host(run, name)
            _set(w, "status", UNKNOWN)
            _set(w, "error", w.error or "step finished without a result for this host")
    _set(run, "finished", True)
    _set(run, "outcome", e.outcome)
    _set(run, "duration_s", e.duration_s)
    _set(run, "ended", ts)


def _outcome_unknown(f: _Fold, e: ev.StepOutcomeUnknown, ts: str) -> None:
    run = f.run(e.run_id)
    if run is None:
        return
    for name, h in tuple(run.hosts.items()):
        if (e.host is None and h.status in (PENDING, RUNNING)) or name == e.host:
            w = f.own_host(run, name)
            _set(w, "status", UNKNOWN)
            _set(w, "error", e.why)
            if e.duration_s is not None:
                _set(w, "duration_s", e.duration_s)
    if not run.unfinished_hosts:
        if not run.finished:
            _set(run, "ended", ts)
            if e.duration_s is not None:  # how long it ran, as far as anyone saw
                _set(run, "duration_s", max(run.duration_s, e.duration_s))
        _set(run, "finished", True)
        _set(run, "outcome", UNKNOWN)


def _outcome_decided(f: _Fold, e: ev.OutcomeDecided, ts: str) -> None:
    run = f.run(e.run_id)
    if run is None:
        return
    for name, h in tuple(run.hosts.items()):
        if h.decidable and (e.host is None or name == e.host):
            w = f.own_host(run, name)
            _set(w, "decided", e.decision)
            _set(w, "decided_reason", e.reason)
            _set(w, "decided_by", e.who)


def _step_skipped(f: _Fold, e: ev.StepSkipped, ts: str) -> None:
    f.wdict(f.s, "step_skips")[(e.task, e.step)] = e.reason


def _expectation(f: _Fold, e: ev.ExpectationChecked, ts: str) -> None:
    run = f.run(e.run_id)
    if run is not None:
        f.wdict(run, "expectations")[(e.host, e.index)] = (e.passed, e.evidence)
        h = run.hosts.get(e.host)
        if not e.passed and h is not None and not h.expectation_failed:
            _set(f.host(run, e.host), "expectation_failed", True)


def _checkbox(f: _Fold, e: Any, ts: str) -> None:
    checked = isinstance(e, ev.CheckboxSet)
    why = e.evidence if checked else e.reason
    f.wdict(f.s, "checkboxes")[e.key] = CheckboxState(e.key, checked, e.who, ts, why)


def _placeholder(f: _Fold, e: ev.PlaceholderSupplied, ts: str) -> None:
    f.wdict(f.s, "placeholders")[e.name] = e


def _probe(f: _Fold, e: ev.ProbeResult, ts: str) -> None:
    f.wdict(f.s, "probes")[e.key] = e


def _target_chosen(f: _Fold, e: ev.TargetChosen, ts: str) -> None:
    f.wdict(f.s, "target_choices")[(e.task, e.step, e.rollback)] = e


def _checkpoint(f: _Fold, e: ev.Checkpoint, ts: str) -> None:
    _set(f.s, "last_checkpoint", e)


_HANDLERS: dict[type, Callable[[_Fold, Any, str], None]] = {
    ev.SessionOpened: _session_opened,
    ev.SessionClosed: _session_closed,
    ev.RunbookChanged: _runbook_changed,
    ev.Recovered: lambda f, e, ts: f.append("recovered", e),
    ev.TaskStarted: _task_event,
    ev.TaskCompleted: _task_event,
    ev.TaskSkipped: _task_event,
    ev.RollbackStarted: _task_event,
    ev.StepStarted: _step_started,
    ev.OutputChunk: _output,
    ev.HostFinished: _host_finished,
    ev.StepFinished: _step_finished,
    ev.StepOutcomeUnknown: _outcome_unknown,
    ev.OutcomeDecided: _outcome_decided,
    ev.StepSkipped: _step_skipped,
    ev.ExpectationChecked: _expectation,
    ev.CheckboxSet: _checkbox,
    ev.CheckboxCleared: _checkbox,
    ev.PlaceholderSupplied: _placeholder,
    ev.GuardPassed: lambda f, e, ts: f.append("guards", e),
    ev.GuardOverridden: lambda f, e, ts: f.append("guards", e),
    ev.Note: lambda f, e, ts: f.append("notes", e),
    ev.ProbeResult: _probe,
    ev.Checkpoint: _checkpoint,
    ev.DetachedStarted: _detached_started,
    ev.HostStarted: _host_started,
    ev.TargetChosen: _target_chosen,
    ev.WindowAlert: lambda f, e, ts: f.append("window_alerts", e),
    ev.NotificationSent: lambda f, e, ts: _set(f.s, "notifications_sent", f.s.notifications_sent + 1),
    ev.NotificationFailed: lambda f, e, ts: f.append("notification_failures", e),
    ev.ApproversSet: lambda f, e, ts: _set(f.s, "approvers", e),
    ev.ApprovalRequested: lambda f, e, ts: f.append("approvals", e),
    ev.ApprovalGranted: lambda f, e, ts: f.append("approvals", e),
    ev.ApprovalRefused: lambda f, e, ts: f.append("approvals", e),
}
# no state change: FileUploaded, HostKeyAccepted and events added later


def _fold(f: _Fold, e: ev.Event, ts: str) -> None:
    s = f.s
    _set(s, "count", s.count + 1)
    if ts:
        _set(s, "last_activity", ts)
    handler = _HANDLERS.get(type(e))
    if handler is not None:
        handler(f, e, ts)


def replay(events: Iterable[Any], initial: SessionState | None = None) -> SessionState:
    """Fold events, ``(ts, event)`` pairs or journal records into state.

    ``initial`` continues from an earlier state: ``replay(b, replay(a)) == replay(a + b)``.
    """
    f = _Fold(initial if initial is not None else SessionState())
    for item in events:
        if isinstance(item, tuple):
            ts, e = item
        elif isinstance(item, ev.Event):
            ts, e = "", item
        else:  # a journal Record
            ts, e = item.ts, item.event
        _fold(f, e, ts)
    return f.freeze()


def apply(state: SessionState, e: ev.Event, ts: str = "") -> SessionState:
    """Return the state after one event.  Pure: ``state`` is not modified."""
    f = _Fold(state)
    _fold(f, e, ts)
    return f.freeze()


class Replayer:
    """Incremental replay for a caller that gets events one by one (a journal being
    read): :meth:`feed` each, then :meth:`result` once.  Same result as :func:`replay`."""

    def __init__(self, initial: SessionState | None = None) -> None:
        self._fold = _Fold(initial if initial is not None else SessionState())

    def feed(self, ts: str, e: ev.Event) -> None:
        _fold(self._fold, e, ts)

    def feed_record(self, record: Record) -> None:
        _fold(self._fold, record.event, record.ts)

    def result(self) -> SessionState:
        return self._fold.freeze()
