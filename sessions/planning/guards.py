"""Guards: what must be confirmed, typed, explained or supplied before a step runs.

Shared by the TUI (which asks in modals) and ``runbook exec`` (which asks on the
terminal, or takes ``--yes``).  :func:`guards_for` is a pure function of the
session state and the runbook: a guard is *unresolved* until the journal holds the
event that satisfies it, so a resumed session asks again only for what was not
answered before.

Kinds (``Guard.kind``) and what satisfies them:

``risk``
    Starting a HIGH or CRITICAL task: confirm once per task (``GuardPassed``).
``destructive``
    A destructive command, found on a shell-aware reading (``runbook.shell.destructive``):
    type the host name (one host) or the number of hosts (several).  Satisfied by a
    ``GuardPassed`` for that task/step whose detail starts with the same host list,
    so choosing other hosts asks again.
``dependencies``
    In-document dependencies not done (or skipped): override with a reason.
``external``
    A dependency on a task that is not in the document: confirm once that it is done
    (``GuardPassed`` with detail ``dependency=ID``; asked once per session and id).
``gate``
    A phase gate (``gate:<phase>`` steps) of an earlier phase has not *passed*: it
    never ran, failed, is running or unknown, was skipped, or its checkboxes are not
    all ticked.  Override with a reason.
``window``
    The change window has ended and the task did not start before its end: override.
``rerun``
    Running again a step that already succeeded on one of the hosts: confirm
    (``GuardPassed`` with detail ``after=RUN_ID``, so each further re-run asks again).
``lint``
    A command block of the step that lint says cannot run as written (elided
    ``...`` arguments, example values, commands meant for different hosts):
    override with a reason, once per step.
``placeholder``
    A value the step needs is missing: supply it (``Session.supply``).
``approval``
    A task that needs a four-eyes approval (:mod:`sessions.team.approval`): satisfied by an
    ``ApprovalGranted`` whose signed plan holds the step exactly as it will run now.  Never
    answered here: an approver signs the request (``runbook approve``).  Added last by
    :func:`sessions.planning.planning.plan_step`, once the values and targets are settled.
``finish``
    Not a step guard: finishing a task with acceptance criteria unticked or steps
    skipped or not succeeded needs a reason (:func:`finish_problems`).

Rollback steps are guarded only by ``destructive``, ``rerun``, ``lint`` and
``placeholder``: a rollback must not be blocked by the state that made it necessary.

``runbook exec``: ``--yes`` answers the confirmations (``risk``, ``destructive``,
``external``, ``rerun``); the overrides (``needs == "reason"``) need
``--override REASON``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from runbook.model import Diagnostic, Phase, Risk, Runbook, Step, TaskKey
from runbook.sanitize.redaction import secret_value_problem
from runbook.shell import destructive as _destructive
from sessions.planning.substitution import is_secret, placeholder_names
from sessions.planning.targeting import hosts_text
from sessions.state import state as st

KINDS = ("risk", "destructive", "dependencies", "external", "gate", "window", "rerun", "lint", "placeholder", "approval",
         "finish")
OVERRIDES = ("dependencies", "gate", "window", "lint", "finish")  # need a reason, journaled as GuardOverridden
# lint rules whose finding means the block cannot run as written
CANNOT_RUN = ("elided-command", "example-values", "mixed-hosts")


@dataclass(frozen=True)
class Guard:
    """One thing to resolve before a step runs.

    ``needs``: ``confirm`` (yes/no), ``type_host`` (type ``expected``), ``reason``
    (an override with a reason), ``value`` (supply placeholder ``expected``) or
    ``approval`` (an approver's signature: :mod:`sessions.team.approval`).
    """

    kind: str
    task: str
    step: int | None
    message: str
    needs: str
    expected: str = ""
    secret: bool = False
    detail: str = ""  # what GuardPassed.detail must start with (destructive: the host list)
    commands: tuple[str, ...] = ()  # destructive: the commands exactly as they will run (secrets masked)

    def describe(self) -> str:
        where = self.task if self.step is None else f"{self.task} step {self.step}"
        return f"{self.kind} ({where}): {self.message}"


@dataclass(frozen=True)
class TaskRef:
    """A task or a phase gate (``gate:<phase>``), seen the same way by guards and engine."""

    id: str
    title: str
    risk: Risk
    phase_index: int
    dependencies: tuple[str, ...]
    steps: tuple[Step, ...]
    rollback_steps: tuple[Step, ...] = ()
    is_gate: bool = False

    def step(self, number: int, rollback: bool = False) -> Step:
        for s in self.rollback_steps if rollback else self.steps:
            if s.number == number:
                return s
        what = "rollback step" if rollback else "step"
        raise KeyError(f"task {self.id} has no {what} {number}")


def gate_id(phase: Phase) -> str:
    return f"gate:{phase.number}"


def resolve_task(runbook: Runbook, task_id: str) -> TaskRef:
    """The task (or gate) ``task_id``; ``KeyError`` naming it when there is none."""
    for i, phase in enumerate(runbook.phases):
        if task_id == gate_id(phase) and phase.gates:
            steps = tuple(s for g in phase.gates for s in g.steps)
            return TaskRef(task_id, phase.gates[0].title, phase.risk, i, (), steps, is_gate=True)
        for t in phase.tasks:
            if t.id == task_id:
                rb = t.rollback.steps if t.rollback is not None else ()
                return TaskRef(t.id, t.title, t.risk, i, t.dependencies, t.steps, rb)
    raise KeyError(f"no task {task_id!r} in {runbook.path}")


# --- destructive commands ---------------------------------------------------------

def destructive_patterns(code: str) -> list[str]:
    """Names of the destructive patterns in ``code`` (a shell-aware reading:
    :mod:`runbook.shell.destructive`)."""
    return _destructive.destructive_patterns(code)


def destructive_key(hosts: Sequence[str], rollback: bool = False) -> str:
    return ("rollback " if rollback else "") + "hosts=" + ",".join(hosts)


def destructive_expected(hosts: Sequence[str]) -> str:
    return hosts[0] if len(hosts) == 1 else str(len(hosts))


# --- the journal's answers --------------------------------------------------------


def _answered(state: st.SessionState, kind: str, task: str, step: int | None = None,
              detail_key: str | None = None) -> bool:
    from sessions.journal import events as ev

    for g in state.guards:
        if not isinstance(g, (ev.GuardPassed, ev.GuardOverridden)):
            continue
        if g.guard != kind or g.task != task:
            continue
        if step is not None and g.step != step:
            continue
        if detail_key is not None:
            if not isinstance(g, ev.GuardPassed):
                continue
            if g.detail.split(";", 1)[0].strip() != detail_key:
                continue
        return True
    return False


def _parse_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def gate_problems(state: st.SessionState, runbook: Runbook, before: int) -> list[str]:
    """Why the gates of the phases before index ``before`` have not passed (empty: all passed).

    A gate passes when every runnable step of it succeeded on every host it last ran
    on (``SessionState.step_matrix``) and every checkbox of it is ticked.
    """
    return [problem for _label, problem in _gate_problems(state, runbook, before)]


def gate_label(phase: Phase) -> str:
    """What the operator reads for a phase's gate (``gate:1`` is the journal's id)."""
    return f"Phase {phase.number} gate"


def _gate_problems(state: st.SessionState, runbook: Runbook, before: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for phase in runbook.phases[:before]:
        if not phase.gates:
            continue
        gid, label = gate_id(phase), gate_label(phase)
        for step in (s for g in phase.gates for s in g.steps):
            if not step.runnable:
                continue
            status = state.step_status(gid, step.number)
            if status != st.SUCCEEDED:
                out.append((label, f"{label} step {step.number} " + ("never ran" if status == st.PENDING else
                                                                     _STATUS_WORDS.get(status, status))))
        boxes = [b for g in phase.gates for b in g.checkboxes if not _ticked(state, b.key, b.checked)]
        if boxes:
            out.append((label, f"{label}: {len(boxes)} checkbox(es) not ticked"))
    return out


_STATUS_WORDS: dict[str, str] = {st.EXPECTATION_FAILED: "failed (expectation)", st.UNKNOWN: "outcome unknown"}


def _ticked(state: st.SessionState, key: str, default: bool) -> bool:
    box = state.checkboxes.get(key)
    return box.checked if box is not None else default


def pending_dependencies(state: st.SessionState, runbook: Runbook, task_id: str) -> list[str]:
    """In-document dependencies of ``task_id`` neither done nor skipped."""
    known = {t.id for t in runbook.tasks}
    ref = resolve_task(runbook, task_id)
    return [d for d in ref.dependencies if d in known and state.task_status(d) not in (st.TASK_DONE, st.TASK_SKIPPED)]


def external_dependencies(runbook: Runbook, task_id: str) -> list[str]:
    """Dependencies of ``task_id`` naming tasks that are not in the document."""
    known = {t.id for t in runbook.tasks}
    return [d for d in resolve_task(runbook, task_id).dependencies if d not in known]


def external_confirmed(state: st.SessionState, dependency: str) -> bool:
    """The operator confirmed (once, for the whole session) that external task ``dependency`` is done."""
    from sessions.journal import events as ev

    key = f"dependency={dependency}"
    return any(isinstance(g, ev.GuardPassed) and g.guard == "external" and g.detail.split(";", 1)[0].strip() == key
               for g in state.guards)


def blockers(state: st.SessionState, runbook: Runbook, task_id: str) -> list[str]:
    """Why ``task_id`` is blocked, in short words for the tree (empty when it is not, or the
    operator overrode it): unfinished dependencies and earlier gates that have not passed."""
    ref = resolve_task(runbook, task_id)
    out: list[str] = []
    pending = pending_dependencies(state, runbook, task_id)
    if pending and not _answered(state, "dependencies", task_id):
        out.append("needs " + ", ".join(pending))
    gates = _gate_problems(state, runbook, ref.phase_index)
    if gates and not _answered(state, "gate", task_id):
        out.append(", ".join(dict.fromkeys(label for label, _ in gates)) + " not passed")
    return out


def cannot_run(runbook: Runbook, step: Step) -> list[Diagnostic]:
    """Lint findings saying a command block of ``step`` cannot run as written."""
    return [d for d in step_diagnostics(runbook, step) if d.code in CANNOT_RUN]


_LINT_CACHE: list[tuple[Runbook, list[Diagnostic]]] = []


def lint_of(runbook: Runbook) -> list[Diagnostic]:
    """``runbook.lint.lint(runbook)``, computed once per runbook object."""
    for rb, diags in _LINT_CACHE:
        if rb is runbook:
            return diags
    from runbook.lint.lint import lint

    try:
        diags = lint(runbook)
    except Exception:  # noqa: BLE001 - lint never stops a step from being planned
        diags = []
    _LINT_CACHE.insert(0, (runbook, diags))
    del _LINT_CACHE[4:]
    return diags


def step_diagnostics(runbook: Runbook, step: Step) -> list[Diagnostic]:
    """The lint diagnostics that fall inside ``step`` (its title line to the end of its last block)."""
    end = max([step.line] + [b.end_line or b.line for b in step.blocks] + [e.line for e in step.expected])
    return [d for d in lint_of(runbook) if d.path == runbook.path and step.line <= d.line <= end]


def finish_problems(state: st.SessionState, runbook: Runbook, task_id: str) -> list[str]:
    """What is not done in ``task_id``: steps skipped or not succeeded, acceptance criteria
    (and other checkboxes) not ticked.  Finishing anyway needs a reason (kind ``finish``)."""
    ref = resolve_task(runbook, task_id)
    out: list[str] = []
    skipped = [s.number for s in ref.steps if state.step_status(task_id, s.number) == st.SKIPPED]
    not_ok = [s.number for s in ref.steps if s.runnable and
              state.step_status(task_id, s.number) not in (st.SUCCEEDED, st.SKIPPED)]
    if skipped:
        out.append(f"step(s) {', '.join(map(str, skipped))} skipped")
    if not_ok:
        out.append(f"step(s) {', '.join(map(str, not_ok))} not succeeded")
    if ref.is_gate:
        boxes: Sequence[Any] = [b for p in runbook.phases if gate_id(p) == task_id for g in p.gates for b in g.checkboxes]
        acceptance: Sequence[Any] = ()
    else:
        task = runbook.task(task_id)
        boxes, acceptance = task.prerequisites, task.acceptance
    open_acc = [b for b in acceptance if not _ticked(state, b.key, b.checked)]
    open_other = [b for b in boxes if not _ticked(state, b.key, b.checked)]
    if open_acc:
        out.append(f"{len(open_acc)} acceptance criteria unticked")
    if open_other:
        out.append(f"{len(open_other)} other checkbox(es) unticked")
    return out


def _task_start_guards(state: st.SessionState, runbook: Runbook, ref: TaskRef, task_id: str, now: datetime,
                       window_end: datetime | str | None, on: str, runs_on: str) -> list[Guard]:
    """Guards for starting the task (not for a rollback): risk, dependencies, earlier gates, the window."""
    out: list[Guard] = []
    if ref.risk.needs_confirmation and not _answered(state, "risk", task_id):
        out.append(Guard("risk", task_id, None, f"{ref.risk.value} risk task {task_id} ({ref.title}){on}: start it?",
                         "confirm"))
    pending = pending_dependencies(state, runbook, task_id)
    if pending and not _answered(state, "dependencies", task_id):
        out.append(Guard("dependencies", task_id, None,
                         f"dependencies not finished: {', '.join(pending)}{runs_on}; override with a reason", "reason"))
    for dep in external_dependencies(runbook, task_id):
        if not external_confirmed(state, dep):
            out.append(Guard("external", task_id, None,
                             f"{task_id} depends on {dep}, which is not in this document: is {dep} done?",
                             "confirm", detail=f"dependency={dep}"))
    failed = gate_problems(state, runbook, ref.phase_index)
    if failed and not _answered(state, "gate", task_id):
        out.append(Guard("gate", task_id, None,
                         f"an earlier phase gate has not passed ({'; '.join(failed)}){runs_on}; override with a reason",
                         "reason"))
    end = _parse_time(window_end if window_end is not None else state.window_end)
    if end is not None and now > end:
        tstate = state.tasks.get(task_id)
        started = _parse_time(tstate.started) if tstate is not None else None
        if (started is None or started > end) and not _answered(state, "window", task_id):
            out.append(Guard("window", task_id, None,
                             f"the change window ended at {end.strftime('%Y-%m-%d %H:%M UTC')}{runs_on}; "
                             "override with a reason", "reason"))
    return out


def _rerun_guard(state: st.SessionState, task_id: str, step_no: int, hosts: Sequence[str],
                 rollback: bool) -> Guard | None:
    """Confirm running a step again on hosts where it already succeeded."""
    matrix = state.step_matrix(task_id, step_no, rollback)
    again = [h for h in (hosts or matrix.hosts_with(st.SUCCEEDED)) if h in matrix.hosts_with(st.SUCCEEDED)]
    if not (again and matrix.runs):
        return None
    last = state.latest_run.get((task_id, step_no, rollback), "")
    key = f"after={last}"
    if _answered(state, "rerun", task_id, step_no, detail_key=key):
        return None
    shown = ", ".join(again[:5]) + (", ..." if len(again) > 5 else "")
    what = "rollback step" if rollback else "step"
    return Guard("rerun", task_id, step_no,
                 f"{what} {step_no} already succeeded on {shown} ({matrix.runs} run(s) so far): "
                 "run it again?", "confirm", detail=key)


def _destructive_guard(state: st.SessionState, task_id: str, step_no: int, hosts: Sequence[str],
                       rollback: bool, codes: Iterable[str]) -> Guard | None:
    """Type the host name (or the number of hosts) before a destructive command runs."""
    patterns: list[str] = []
    exact: list[str] = []
    for code in codes:
        for finding in _destructive.find_destructive(code):
            patterns.extend(p for p in finding.labels if p not in patterns)
            if finding.text not in exact:
                exact.append(finding.text)
    patterns = [p for p in _destructive.LABELS if p in patterns]
    if not (patterns and hosts):
        return None
    key = destructive_key(hosts, rollback)
    if _answered(state, "destructive", task_id, step_no, detail_key=key):
        return None
    expected = destructive_expected(hosts)
    if len(hosts) == 1:
        msg = f"destructive command ({', '.join(patterns)}) on {hosts[0]}: type the host name {expected!r}"
    else:
        shown = ", ".join(hosts[:5]) + (", ..." if len(hosts) > 5 else "")
        msg = (f"destructive command ({', '.join(patterns)}) on {len(hosts)} hosts ({shown}): "
               f"type the number of hosts {expected!r}")
    return Guard("destructive", task_id, step_no, msg, "type_host", expected, detail=key, commands=tuple(exact))


def _placeholder_guards(state: st.SessionState, step: Step, task_id: str, step_no: int,
                        values: Mapping[str, str] | None, secret_names: Iterable[str]) -> list[Guard]:
    """A value to supply for each placeholder the step's commands or files use and nobody gave."""
    secret_set = set(secret_names)
    used: set[str] = set()
    for block in step.blocks:
        if block.kind in ("command", "file"):
            used.update(placeholder_names(block.code, step.placeholders, block.kind))
    out: list[Guard] = []
    for ph in step.placeholders:
        if ph.name not in used:  # named only in prose: nothing to fill in
            continue
        secret = is_secret(ph, secret_set)
        if values is not None:
            have = ph.name in values
        else:
            rec = state.placeholders.get(ph.name)
            have = rec is not None and not rec.secret
        if not have and not any(g.expected == ph.name for g in out):
            what = "secret value" if secret else "value"
            out.append(Guard("placeholder", task_id, step_no, f"{what} for {ph.name} needed (line {ph.line})",
                             "value", ph.name, secret=secret))
    return out


def guards_for(
    state: st.SessionState,
    runbook: Runbook,
    task_id: str,
    step_no: int | None,
    hosts: Sequence[str],
    now: datetime | None = None,
    window_end: datetime | str | None = None,
    *,
    rollback: bool = False,
    values: Mapping[str, str] | None = None,
    secret_names: Iterable[str] = (),
    commands: Sequence[str] | None = None,
) -> list[Guard]:
    """The unresolved guards for starting ``task_id`` (``step_no`` None) or running a step.

    ``values`` are the placeholder values in memory (``Session.values``); without
    them a non-secret placeholder counts as supplied when the journal has it.
    ``commands`` overrides the step's command blocks (the engine passes them filled
    in).  ``window_end`` defaults to the session's; ``now`` to the current time.
    """
    ref = resolve_task(runbook, task_id)
    now = _parse_time(now) or datetime.now(UTC)
    # every confirmation names where it will run: the count and the first names
    on = f" on {hosts_text(hosts)}" if step_no is not None and hosts else ""
    runs_on = f"; step {step_no} runs on {hosts_text(hosts)}" if on else ""
    out = [] if rollback else _task_start_guards(state, runbook, ref, task_id, now, window_end, on, runs_on)
    if step_no is None:
        return out
    step = ref.step(step_no, rollback)
    rerun = _rerun_guard(state, task_id, step_no, hosts, rollback)
    if rerun is not None:
        out.append(rerun)
    unrunnable = cannot_run(runbook, step)
    if unrunnable and not _answered(state, "lint", task_id, step_no):
        listed = "; ".join(f"line {d.line}: {d.message}" for d in unrunnable[:3])
        out.append(Guard("lint", task_id, step_no,
                         f"lint says this block cannot run as written ({listed}); override with a reason", "reason"))
    codes = list(commands) if commands is not None else [b.code for b in step.commands]
    destructive = _destructive_guard(state, task_id, step_no, hosts, rollback, codes)
    if destructive is not None:
        out.append(destructive)
    return out + _placeholder_guards(state, step, task_id, step_no, values, secret_names)


def answer_ok(guard: Guard, answer: str) -> bool:
    """Whether ``answer`` resolves ``guard`` (typed host name, y/yes, non-empty reason/value)."""
    a = answer.strip()
    if guard.needs == "approval":
        return False
    if guard.needs == "confirm":
        return a.lower() in ("y", "yes")
    if guard.needs == "type_host":
        return a == guard.expected
    if guard.needs == "reason":
        return bool(a)
    if guard.secret:
        return secret_value_problem(answer) is None
    return answer != ""


class GuardJournal(Protocol):
    """Where :func:`resolve` journals an answer (a Session; a watch refuses)."""

    def pass_guard(self, guard: Guard | str, task: TaskKey, step: int | None = None, detail: str = "") -> None: ...

    def override_guard(self, guard: Guard | str, task: TaskKey, reason: str, step: int | None = None) -> None: ...

    def supply(self, name: str, value: str, secret: bool) -> bool | None: ...


def resolve(session: GuardJournal, guard: Guard, answer: str, *, yes: bool = False) -> None:
    """Journal the answer to ``guard`` through the session's intents.

    ``yes``: the answer came from ``--yes`` (confirm and type_host pass with detail
    ``--yes``).  ``--yes`` never overrides: a reason guard needs a non-empty reason
    (``--override REASON``).  Raises ``ValueError`` when the answer does not resolve
    the guard.
    """
    if guard.needs == "approval":
        raise ValueError(f"{guard.kind}: an approval is given by an approver's signature, not answered")
    if guard.needs == "value":
        if answer == "":
            raise ValueError(f"no value for {guard.expected}")
        problem = secret_value_problem(answer) if guard.secret else None
        if problem:
            raise ValueError(f"{guard.expected}: {problem}")
        session.supply(guard.expected, answer, guard.secret)
        return
    if guard.needs == "reason":
        reason = answer.strip()
        if not reason:
            raise ValueError(f"{guard.kind}: a reason is needed to override")
        session.override_guard(guard.kind, guard.task, reason, step=guard.step)
        return
    if yes:
        detail = "--yes" if not guard.detail else f"{guard.detail}; --yes"
    else:
        if not answer_ok(guard, answer):
            raise ValueError(f"{guard.kind}: expected {guard.expected!r}" if guard.expected else "not confirmed")
        detail = "confirmed" if guard.needs == "confirm" else f"typed {answer.strip()!r}"
        detail = f"{guard.detail}; {detail}" if guard.detail else detail
    session.pass_guard(guard.kind, guard.task, step=guard.step, detail=detail)
