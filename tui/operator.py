"""Operator flows: guard dialogs, then session intents and engine runs.

Every method here runs inside a Textual worker (it awaits modal answers with
``push_screen_wait``).  The flows never change state themselves: they ask the
operator, then call :class:`sessions.engine.session.Session` intents (each journals one
event) or :class:`sessions.engine.engine.Engine` coroutines; the screen redraws from the
state those produce.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, cast

from textual.notifications import SeverityLevel
from textual.screen import ModalScreen

from runbook.errors import UserError
from sessions.engine.flow import Declined, StepFlow, StepRequest
from sessions.planning import guards as guards_mod
from sessions.state.state import UNKNOWN
from tui.widgets.modals import ConfirmModal, PlaceholderModal, ReasonModal, TypeHostModal

if TYPE_CHECKING:  # pragma: no cover
    from sessions.engine.engine import Engine
    from sessions.engine.session import Session
    from sessions.planning.planning import PlannedStep
    from sessions.state.state import StepRun
    from sessions.team.watch import WatchedSession
    from tui.app import RunbookApp
    from tui.items import Item
    from tui.screens.main import MainScreen
    from tui.widgets.modals import ChooseTargetModal

GUARD_TITLES = {
    "risk": "⚠ High-risk task",
    "destructive": "⚠ Destructive command",
    "dependencies": "⊘ Dependencies unfinished",
    "external": "⊘ External dependency",
    "gate": "⊘ Phase gate not passed",
    "rerun": "↻ Run again?",
    "lint": "⚠ Cannot run as written",
    "window": "✘ Change window ended",
    "placeholder": "Value needed",
    "approval": "⚿ Four-eyes approval",
}


class Operator:
    """The flows behind the main screen's actions."""

    def __init__(self, screen: MainScreen) -> None:
        self.screen = screen

    @property
    def session(self) -> Session | WatchedSession:
        return self.screen.session

    @property
    def engine(self) -> Engine:
        return self.screen.engine

    async def ask(self, modal: ModalScreen[Any]) -> Any:
        """Show ``modal`` and wait for its answer (``None``/False when declined)."""
        return await self.screen.app.push_screen_wait(modal)

    # -- guards -------------------------------------------------------------------
    def guard_modal(self, guard: guards_mod.Guard) -> ModalScreen[Any]:
        title = GUARD_TITLES.get(guard.kind, guard.kind)
        if guard.needs == "confirm":
            yes = {"rerun": "Run again", "external": "It is done"}.get(guard.kind, "Start")
            return ConfirmModal(title, guard.message, yes=yes, no="Not now", danger=True)
        if guard.needs == "type_host":
            return TypeHostModal(guard.message, guard.expected, guard.commands)
        if guard.needs == "value":
            return PlaceholderModal(guard.expected, secret=guard.secret, where=guard.message)
        return ReasonModal(f"{title}: override?", guard.message, placeholder="why go ahead anyway (required, journaled)")

    async def resolve_guard(self, guard: guards_mod.Guard) -> None:
        """Ask for one guard and journal the answer, or raise :class:`Declined`."""
        answer = await self.ask(self.guard_modal(guard))
        if answer is None or answer is False:
            raise Declined(f"{guard.kind} guard not passed: nothing was run")
        if answer is True:
            answer = guard.expected if guard.needs == "type_host" else "yes"
        guards_mod.resolve(self.session, guard, str(answer))

    async def resolve(self, guard: guards_mod.Guard) -> None:
        """:class:`~sessions.engine.flow.Asker`: a guard's dialog."""
        await self.resolve_guard(guard)

    def flow(self) -> StepFlow:
        """The one path a step takes (:mod:`sessions.engine.flow`), asking through this operator."""
        return StepFlow(self.engine, self)

    # -- four-eyes approval ----------------------------------------------------------
    async def approve(self, guard: guards_mod.Guard, *, target: str | None = None, only_host: str | None = None) -> None:
        """Request an approval of the guard's task (or reuse a request that still fits), then wait
        in a modal for the approver's signature (polled) or a signature file typed in.  Raises
        :class:`Declined` when the operator stops waiting: nothing runs."""
        import hashlib

        from sessions.team.approval import Approvals, read_signature, read_signature_file, signature_path

        task, step = guard.task, guard.step
        if self.session.state.approvers is None:
            raise Declined(guard.message)
        launch = cast("RunbookApp", self.screen.app).launch

        def planner(t: str, n: int) -> PlannedStep:  # the step being run as it will run; the others as planned
            mine = n == step
            return self.engine.plan(t, n, target=target if mine else None, only_host=only_host if mine else None,
                                    now=self.screen.now())

        approvals = Approvals(self.session, planner, launch.operator_keys)
        await self.settle_task(task, step)  # the approver signs every step's hosts and commands: ask for them first
        pending = approvals.latest_request(task)
        if pending is None or not approvals.reusable(pending):
            approvals.request(task)
            pending = approvals.latest_request(task)
        assert pending is not None
        sig = signature_path(pending.path)
        seen: set[str] = set()

        def check(path: str | None) -> tuple[bool | None, str]:
            if path is None:  # polling the request's own .sig
                data = read_signature_file(sig)
                if data is None or hashlib.sha256(data).hexdigest() in seen:
                    return None, ""
                seen.add(hashlib.sha256(data).hexdigest())
                source = str(sig)
            else:
                try:
                    data = read_signature(path)
                except UserError as exc:
                    return False, f"✘ {exc}"
                source = path
            verdict = approvals.offer(task, data, source, pending)
            if verdict.ok:
                self.screen.notify(f"approved by {verdict.principal} ({verdict.fingerprint})", title=task)
                return True, verdict.reason
            return False, f"✘ refused ({source}): {verdict.reason}"

        from tui.widgets.modals.approval import ApprovalModal

        granted = await self.ask(ApprovalModal(task, guard.message, pending.path, str(sig), check))
        if not granted:
            raise Declined(f"{task} not approved: nothing was run (the request stays: {pending.path})")

    async def settle_task(self, task: str, step: int | None) -> None:
        """Before an approval is requested: where the task's other steps run (the target picker,
        when nobody chose) and the values they need, so that the plan signed is the one that
        runs.  Backing out of a picker leaves that step unplanned in the request."""
        from sessions.planning.guards import resolve_task

        for other in resolve_task(self.screen.runbook, task).steps:
            if not other.runnable or other.number == step:
                continue
            plan = self.engine.plan(task, other.number, now=self.screen.now())
            if not plan.target_chosen and not await self.choose_target(task, other.number):
                continue
            plan = self.engine.plan(task, other.number, now=self.screen.now())
            for ph in plan.missing:
                await self.resolve_guard(guards_mod.Guard(
                    "placeholder", task, other.number, f"value for {ph.name} (line {ph.line}), needed by step "
                    f"{other.number} of the plan the approver signs", "value", ph.name, secret=ph.secret))

    # -- runs -----------------------------------------------------------------------
    # -- targets --------------------------------------------------------------------
    def target_modal(self, task_id: str, step: int, rollback: bool = False) -> ChooseTargetModal:
        """The target picker for one step: suggestions first, then every inventory host, then local."""
        import socket

        from runbook.parse.annotations import bindings_path
        from sessions.planning.guards import resolve_task
        from sessions.planning.planning import resolve_hosts
        from sessions.planning.targeting import suggestions_for
        from tui.widgets.modals import ChooseTargetModal

        runbook, inventory, state = self.screen.runbook, self.engine.inventory, self.session.state
        ref = resolve_task(runbook, task_id)
        st = ref.step(step, rollback)
        plan = self.engine.plan(task_id, step, rollback=rollback, now=self.screen.now())
        what = f"{task_id} {'rollback ' if rollback else ''}step {step}"
        if plan.target_chosen:
            now = f"Now: {plan.spec.pattern} ({plan.spec.source}): {', '.join(plan.hosts[:5])}"
            now += ", ..." if len(plan.hosts) > 5 else ""
        else:
            now = "No target: neither you, the runbook, its bindings nor a document default said where it runs."
        hosts = list(inventory.hosts.values()) if inventory is not None else []
        own = st.target is not None and st.target.chosen
        return ChooseTargetModal(
            f"{what}: where does it run?", f"{ref.title}: {st.title}\n{now}",
            suggestions=suggestions_for(runbook, inventory, task_id, st, rollback, state),
            hosts=hosts, groups=inventory.groups if inventory is not None else {},
            resolve=lambda pattern: resolve_hosts(inventory, pattern), local_name=socket.gethostname(),
            current=plan.spec.pattern if plan.target_chosen and plan.spec.source == "operator" else "",
            all_untargeted=not own, save_to=os.path.basename(bindings_path(runbook.path)),
        )

    async def choose_target(self, task_id: str, step: int, rollback: bool = False) -> bool:
        """Ask where ``step`` runs and journal the answer; False when the operator backed out."""
        from sessions.planning.guards import resolve_task

        choice = await self.ask(self.target_modal(task_id, step, rollback))
        if choice is None:
            return False
        st = resolve_task(self.screen.runbook, task_id).step(step, rollback)
        own = st.target is not None and st.target.chosen  # the task-wide choice does not reach it
        if choice.all_untargeted:
            self.session.choose_target(task_id, choice.pattern, rollback=rollback, hosts=choice.hosts, save=choice.save)
        if own or not choice.all_untargeted:
            self.session.choose_target(task_id, choice.pattern, step=step, rollback=rollback, hosts=choice.hosts,
                                       save=choice.save)
        return True

    # -- runs -----------------------------------------------------------------------
    async def run_step(self, task_id: str, step: int, *, rollback: bool = False, only_host: str | None = None,
                       target: str | None = None) -> str | None:
        """The step's one path (target asked when nobody chose, guards, approval, then the run).
        Returns the outcome, or None when nothing ran.

        ``target``: a pattern for this run only (``h``: one host)."""
        request = StepRequest(task_id, step, rollback=rollback, only_host=only_host, target=target)
        try:
            summary = await self.flow().run(request, now=self.screen.now())
        except Declined as exc:
            self.screen.notify(str(exc), title=f"{task_id} step {step}", severity="warning")
            return None
        outcome = summary.outcome
        severity: SeverityLevel = "information" if outcome == "succeeded" else "error" if outcome in ("failed", UNKNOWN, "timeout") else "warning"
        self.screen.notify(f"{outcome}", title=request.what, severity=severity)
        return outcome

    async def pause_between_hosts(self, done: str, next_host: str) -> bool:
        """A serial step with ``pause``: ask before the next host (runs inside the run worker)."""
        return await self.confirm("Serial step paused", f"{done} is done. Go on with {next_host}?",
                                  yes="Continue", no="Stop here")

    async def run_all(self, task_id: str, steps: list[int], *, rollback: bool = False) -> None:
        """Run the steps not yet succeeded or skipped, in order; stop at the first that does not succeed."""
        for number in steps:
            status = self.session.state.step_status(task_id, number, rollback)
            if status in ("succeeded", "skipped"):
                continue
            outcome = await self.run_step(task_id, number, rollback=rollback)
            if outcome != "succeeded":
                return

    async def decide(self, run: StepRun) -> str | None:
        """Decide an outcome-unknown run, or one whose automatic expectation was not met
        (failed (expectation)).  ``rerun`` re-runs the step at once."""
        from tui.widgets.modals import DecideOutcomeModal

        hosts = [h for h in run.hosts.values() if h.undecided]
        what = f"{run.task} {'rollback ' if run.rollback else ''}step {run.step} on {', '.join(h.host for h in hosts)}"
        if all(h.status == UNKNOWN for h in hosts):
            why = "; ".join(sorted({h.error for h in hosts if h.error})) or "the session ended before the command did"
            modal = DecideOutcomeModal(what, why)
        else:
            unmet = sorted({f"{h.host}: Expected #{i + 1} ({ok_ev[1]})" for h in hosts
                            for (host, i), ok_ev in run.expectations.items() if host == h.host and not ok_ev[0]})
            modal = DecideOutcomeModal(what, "; ".join(unmet) or "an expectation was not met", expectation=True)
        answer = await self.ask(modal)
        if answer is None:
            return None
        decision: str
        reason: str
        decision, reason = answer
        self.session.decide(run.run_id, decision, reason)
        if decision == "rerun":
            await self.run_step(run.task, run.step, rollback=run.rollback)
        return decision

    async def reason(self, title: str, message: str) -> str:
        answer: str | None = await self.ask(ReasonModal(title, message))
        if answer is None:
            raise Declined("cancelled")
        return answer

    async def confirm(self, title: str, message: str, **kw: Any) -> bool:
        return bool(await self.ask(ConfirmModal(title, message, **kw)))

    # -- decisions (each journals one event, or nothing when the operator backs out) ----
    async def note(self, task_id: str | None) -> None:
        from tui.widgets.modals import NoteModal

        text = await self.ask(NoteModal(task_id))
        if text:
            self.session.note(text, task=task_id)

    async def skip_step(self, task_id: str, step: int) -> None:
        reason = await self.reason(f"Skip {task_id} step {step}?", "Why is this step skipped?")
        self.session.skip_step(task_id, step, reason)

    async def skip_task(self, task_id: str, title: str) -> None:
        reason = await self.reason(f"Skip task {task_id}?", f"{title}\nWhy is the whole task skipped?")
        self.session.skip_task(task_id, reason)

    async def untick(self, key: str) -> None:
        reason = await self.reason("Untick?", "Why is this no longer true?")
        self.session.set_checkbox(key, False, reason=reason)

    async def start_rollback(self, task_id: str) -> None:
        reason = await self.reason(f"Roll back {task_id}?", "Why roll back? (journaled)")
        self.session.start_rollback(task_id, reason)

    async def finish_task(self, item: Item) -> None:
        """Mark a task done; with steps skipped or not succeeded, or boxes not ticked, a reason is
        needed first (journaled as a ``finish`` override: a deviation in the report)."""
        problems = guards_mod.finish_problems(self.session.state, self.screen.runbook, item.id)
        if problems:
            reason = await self.ask(ReasonModal(
                f"Finish {item.id} anyway?", "Not done: " + "; ".join(problems) + ".",
                placeholder="why finish it anyway (required, journaled, shown in the report)"))
            if not reason:
                return
            self.session.override_guard("finish", item.id, f"{reason} (not done: {'; '.join(problems)})")
        self.session.complete_task(item.id)
