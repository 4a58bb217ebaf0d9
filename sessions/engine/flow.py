"""One path for a step, whatever the front end: plan, where it runs, guards and values, the
four-eyes approval, then the run.

``runbook exec`` and the TUI both call :class:`StepFlow`; each front end only asks and shows,
through its :class:`Asker` (a terminal prompt or ``--yes``/``--override``/``--approval`` for
``exec``, modal dialogs for the TUI).  The order is the flow's, never the front end's:

1. plan the step (:meth:`Engine.plan <sessions.engine.engine.Engine.plan>`);
2. nobody chose where it runs: :meth:`Asker.choose_target` (unless the caller gave a target);
3. every guard but the approval, and every value the plan still misses, through
   :meth:`Asker.resolve`; then plan again, since an answer can change what the step does
   (a value becomes part of a command), until nothing is left to ask;
4. the approval last, so that the approver signs the plan as it will run
   (:meth:`Asker.approve`), and plan again;
5. :meth:`StepFlow.run_prepared`: the task starts (journaled) and the engine runs the plan.

Every answer is journaled by the front end's asker through the session's intents
(:func:`sessions.planning.guards.resolve`, :meth:`Session.choose_target
<sessions.engine.session.Session.choose_target>`); the flow itself journals only the task's start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from runbook.errors import UserError
from sessions.planning.guards import Guard

if TYPE_CHECKING:  # pragma: no cover
    from sessions.engine.engine import Engine
    from sessions.engine.step_runner import RunSummary
    from sessions.planning.planning import PlannedStep

MAX_GUARD_ROUNDS = 8  # plan, ask, plan again: answers that keep raising new guards stop here


class Declined(Exception):
    """The operator said no (or backed out) to a question: nothing more happens, nothing ran."""


class Asker(Protocol):
    """What a front end answers for :class:`StepFlow`.  Each method journals the answer it gets
    (or raises :class:`Declined`, or :class:`~runbook.errors.UserError` when it cannot ask)."""

    async def choose_target(self, task: str, step: int, rollback: bool) -> bool:
        """Ask where ``task`` step ``step`` runs and journal the choice; False when nobody chose."""
        ...

    async def resolve(self, guard: Guard) -> None:
        """Answer one guard (a confirmation, a typed host name, a reason, a value) and journal it
        (:func:`sessions.planning.guards.resolve`), or raise :class:`Declined`."""
        ...

    async def approve(self, guard: Guard, *, target: str | None, only_host: str | None) -> None:
        """Obtain the four-eyes approval ``guard`` asks for (request, then an approver's
        signature, checked and journaled), or raise :class:`Declined`.  ``target`` and
        ``only_host`` are the run's, so the approver signs the plan that runs."""
        ...


@dataclass(frozen=True)
class StepRequest:
    """One step as a front end asks for it."""

    task: str
    step: int
    rollback: bool = False
    only_host: str | None = None  # one host of the step's targets (the TUI's ``h``)
    target: str | None = None  # a pattern for this run only (``exec --target``)

    @property
    def what(self) -> str:
        return f"{self.task} {'rollback ' if self.rollback else ''}step {self.step}"


class StepFlow:
    """Prepare and run steps of one session's engine, asking through ``asker``."""

    def __init__(self, engine: Engine, asker: Asker) -> None:
        self.engine = engine
        self.asker = asker

    def plan(self, request: StepRequest, now: datetime | None = None) -> PlannedStep:
        return self.engine.plan(request.task, request.step, rollback=request.rollback, target=request.target,
                                only_host=request.only_host, now=now)

    async def prepare(self, request: StepRequest, now: datetime | None = None) -> PlannedStep:
        """The step's plan with nothing left to ask: target chosen, guards resolved, values
        known, approval granted.  Raises :class:`Declined` when the operator backs out."""
        plan = self.plan(request, now)
        if (request.target is None and not plan.target_chosen
                and not await self.asker.choose_target(request.task, request.step, request.rollback)):
            raise Declined("no target chosen: nothing was run")
        for _ in range(MAX_GUARD_ROUNDS):
            plan = self.plan(request, now)
            pending = questions(plan)
            if not pending:
                if not plan.hosts:
                    raise Declined("no host to run on")
                return plan
            others = [g for g in pending if g.needs != "approval"]
            if others:  # the approval covers the plan as it will run: settle everything else first
                for guard in others:
                    await self.asker.resolve(guard)
                continue
            for guard in pending:
                await self.asker.approve(guard, target=request.target, only_host=request.only_host)
        raise UserError(f"{request.what}: guards still unresolved after {MAX_GUARD_ROUNDS} rounds")

    async def run_prepared(self, request: StepRequest, plan: PlannedStep, now: datetime | None = None) -> RunSummary:
        """Run a prepared plan: the task starts first (journaled), then the engine runs it, judging
        its guards by the same clock (``now``) as :meth:`prepare` did."""
        session = self.engine.session
        if session.state.task_status(request.task) == "pending" and not request.task.startswith("gate:"):
            session.start_task(request.task)
        return await self.engine.run_step_summary(request.task, request.step, rollback=request.rollback,
                                                  target=request.target, only_host=request.only_host, now=now)

    async def run(self, request: StepRequest, now: datetime | None = None) -> RunSummary:
        """:meth:`prepare`, then :meth:`run_prepared`."""
        return await self.run_prepared(request, await self.prepare(request, now), now)


def questions(plan: PlannedStep) -> list[Guard]:
    """What must be answered before ``plan`` runs: its guards, and a value guard for each
    placeholder it still misses (unless a guard already asks for it)."""
    pending = list(plan.guards)
    asked = {g.expected for g in pending if g.needs == "value"}
    for ph in plan.missing:
        if ph.name not in asked:
            asked.add(ph.name)
            pending.append(Guard("placeholder", plan.task, plan.step, f"value for {ph.name} (line {ph.line})",
                                 "value", ph.name, secret=ph.secret))
    return pending
