"""The main screen: tree of tasks, the selected task, live output, header and footer.

It subscribes to the session (every journal record), buffers what arrives and
redraws on a timer: output lines go to :class:`OutputPane`'s buffer, everything
else only marks the state dirty.  Actions are key bindings (each with an id and a
tooltip, shown in the footer and the command palette); the interactive ones run in
``@work(exclusive=True, exit_on_error=False)`` workers on the app's event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from runbook.errors import UserError
from runbook.model import Runbook, Step
from sessions.engine.flow import Declined
from sessions.journal import events as ev
from sessions.planning.guards import lint_of
from sessions.state.recap import NOT_RUN, recap_lines, recap_rows, recap_summary
from sessions.state.state import UNKNOWN, SessionState, StepRun
from tui import format as fmt
from tui.items import Item, display_name
from tui.messages import CheckboxToggleRequested, ProbeAcceptRequested, StateRefreshed, StepFocused, TaskSelected
from tui.operator import Operator
from tui.progress import FINISHED
from tui.widgets.checklist import CheckItem
from tui.widgets.header import RunbookHeader
from tui.widgets.lint_banner import LintBanner
from tui.widgets.output import OutputPane
from tui.widgets.task_view import TaskView
from tui.widgets.tree import TaskTree

if TYPE_CHECKING:
    from sessions.engine.engine import Engine
    from sessions.engine.session import Session
    from sessions.journal.format import Record
    from sessions.state.state import StepRun
    from sessions.team.watch import WatchedSession
    from tui.app import RunbookApp

STATE_FLUSH_S = 0.08


def B(key: str, action: str, description: str, tooltip: str, *, show: bool = True, priority: bool = False,
      key_display: str | None = None) -> Binding:
    ident = action.replace("(", "_").replace(")", "").replace(",", "_")
    return Binding(key, action, description, show=show, priority=priority, id=f"main.{ident}", tooltip=tooltip,
                   key_display=key_display)


class MainScreen(Screen[None]):
    """Walks the operator through the runbook of ``session``, running steps with ``engine``."""

    BINDINGS = [
        B("r", "run_step", "Run", "Run the current step on its target hosts (guards first)"),
        B("a", "run_task", "Run all", "Run every step of the task not yet succeeded, stop at the first failure"),
        B("h", "run_on_host", "On host", "Run the current step on one host you choose (any inventory host)", show=False),
        B("T", "retarget", "Target", "Choose where the current step runs, before it runs (journaled; can be saved "
          "to NAME.targets.yaml)", show=False),
        B("R", "rerun", "Re-run", "Run the current step again on all its hosts, the failed ones or one (a new run; the old one stays in the journal)", show=False),
        B("ctrl+c", "cancel", "Cancel", "Send Ctrl-C (SIGINT) to the running step on every host", priority=True),
        B("i", "send_input", "Input", "Type a line into the running (PTY) step", show=False),
        B("n", "note", "Note", "Add a note to the journal for this task"),
        B("s", "skip_step", "Skip step", "Skip the current step (a reason is required)", show=False),
        B("S", "skip_task", "Skip task", "Skip the whole task (a reason is required)", show=False),
        B("o", "decide", "Decide", "Decide a step whose outcome is unknown or whose expectation was not met: succeeded, failed or re-run"),
        B("b", "rollback", "Rollback", "Open the rollback procedure and run its blocks as steps (journaled as rollback)"),
        B("d", "done", "Done", "Mark the task done"),
        B("g", "jump", "Jump", "Jump to a task: type part of its id or title (only jumps, runs nothing)", show=False),
        B("slash", "search", "Search", "Search the output shown (case-insensitive); ] and [ move between matches",
          show=False, key_display="/"),
        B("right_square_bracket", "next_match", "Next match", "Next match of the output search", show=False,
          key_display="]"),
        B("left_square_bracket", "previous_match", "Previous match", "Previous match of the output search",
          show=False, key_display="["),
        B("w", "toggle_wrap", "Wrap", "Wrap long output lines (on by default; ↪ marks a continued line) or not",
          show=False),
        B("y", "copy_output", "Copy", "Copy the selected output (OSC 52), and write the whole output of the host "
          "shown into a file in the session directory", show=False),
        B("1", "show_host(1)", "Host 1-9", "Show the output of host 1-9 (as numbered on the tabs)",
          show=False, key_display="1-9"),
        *(B(str(n), f"show_host({n})", "", f"Show the output of host {n}", show=False) for n in range(2, 10)),
        B("0", "show_host(0)", "All hosts", "Show every host's output interleaved, each line prefixed with its host",
          show=False),
        B("z", "zoom_output", "Zoom", "Maximise the output pane, or restore the layout", show=False),
        B("t", "toggle_tree", "Tree", "Hide or show the task tree", show=False),
        B("less_than_sign", "tree_width(-4)", "Narrower", "Make the task tree narrower", show=False, key_display="<"),
        B("greater_than_sign", "tree_width(4)", "Wider", "Make the task tree wider", show=False, key_display=">"),
        B("question_mark,f1", "help", "Help", "Every key, grouped by purpose, and the guards explained", key_display="?"),
        B("e", "export", "Export", "Export the session report (Markdown, signed with $RUNBOOK_SIGNING_KEY if set) into the session directory", show=False),
        B("P", "probes", "Probes", "Run the acceptance probes of the task", show=False),
        B("q", "quit", "Quit", "Quit; the session stays resumable"),
        B("escape", "back", "Tree", "Back to the task tree", show=False),
    ]

    def __init__(self, session: Session | WatchedSession, engine: Engine, *, clock: Callable[[], datetime], flush_interval: float = STATE_FLUSH_S) -> None:
        super().__init__(id="main")
        self.session = session
        self.engine = engine
        if session.runbook is None:  # Launch.open_session and WatchedSession.open refuse these
            raise UserError(f"session {session.id}: its runbook could not be loaded")
        self.runbook: Runbook = session.runbook
        self.clock = clock
        self.flush_interval = flush_interval
        self.state: SessionState = session.state
        self.operator = Operator(self)
        self._dirty = True
        self._unsubscribe: Callable[[], None] | None = None
        self._streaming: set[tuple[str, str]] = set()
        self._shown: str | None = None
        self._wanted: tuple[str, bool] | None = None
        self._showing = False
        self._focus_after_show = False
        self._pin_after_show: tuple[str, int] | None = None
        self._target: tuple[str, bool] | None = None  # (item, rollback) being shown or on screen
        self._tree_width = 0  # cells, once the operator changed it (< >)
        self._alerted_over = False
        self._alerted_closed = False

    def now(self) -> datetime:
        return self.clock()

    # -- layout ---------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield RunbookHeader(self.runbook, self.session.id, self.session.operator, id="header")
        yield LintBanner(self.runbook.path, lint_of(self.runbook), id="lint-banner")
        with Horizontal(id="body"):
            yield TaskTree(self.runbook, id="tree")
            with Vertical(id="right"):
                yield TaskView(self.runbook, self.describe_targets, self.value_known, id="task-view")
                yield OutputPane(id="output")
        yield Footer(compact=True, show_command_palette=False)  # ctrl+p is in the help (?): room for Quit at 80 columns

    @property
    def task_tree(self) -> TaskTree:
        return self.query_one(TaskTree)

    @property
    def task_view(self) -> TaskView:
        return self.query_one(TaskView)

    @property
    def output(self) -> OutputPane:
        return self.query_one(OutputPane)

    def on_mount(self) -> None:
        self._unsubscribe = self.session.subscribe(self._on_record)
        if self.engine.on_pause is None:
            self.engine.on_pause = self.operator.pause_between_hosts
        self.set_interval(self.flush_interval, self._flush_state, name="state-flush")
        self.set_interval(1.0, self._tick, name="clock")
        self._redraw()
        self._window_alert(self.query_one(RunbookHeader))  # at once: a window already too short is said on opening
        self.task_tree.focus()
        unknowns = self.state.unresolved_unknowns()
        if unknowns:  # a resume after a crash: open the step that needs a decision
            run = unknowns[0][0]
            self.task_tree.select_item(run.task)
            self._want(run.task, rollback=run.rollback, step=run.step)
        else:
            first = self._first_open_item()
            if first is not None:
                self.task_tree.select_item(first)
                self._want(first)
        for warning in self.session.warnings:
            self.notify(warning, title="session", severity="warning", timeout=15)
        unknown = len(self.state.unresolved_unknowns())
        if unknown:
            self.notify(f"{unknown} host run(s) have an UNKNOWN outcome: press o to decide", title="resume",
                        severity="warning", timeout=15)
        if self.state.runs:
            self._load_history()

    @work(group="history", exclusive=True, exit_on_error=False)
    async def _load_history(self) -> None:
        """After a resume: each host's output tail from the journal, then live output."""
        from tui.history import output_tails

        tails = await output_tails(self.session.journal.path, self.output.max_lines)
        latest: dict[str, str] = {}
        for run in sorted(self.state.runs.values(), key=lambda r: r.seq):
            for host in run.hosts.values():
                latest[host.host] = host.effective  # a decision on an unknown outcome counts, as in the tree
        for name, lines in tails.items():
            self.output.preload(name, lines)
            if name in latest:
                self.output.set_host_status(name, latest[name])

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A flow failed unexpectedly: tell the operator and log it; the session goes on."""
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.notify(f"{type(error).__name__}: {error}", title=f"{event.worker.name or 'action'} failed",
                        severity="error", timeout=20)
            self.session.log.error("tui action failed", worker=event.worker.name, error=repr(error))

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _first_open_item(self) -> str | None:
        for task in self.runbook.tasks:
            if self.state.task_status(task.id) not in FINISHED:
                return task.id
        return self.runbook.tasks[0].id if self.runbook.tasks else None

    # -- session -> screen --------------------------------------------------------------
    def _on_record(self, record: Record, state: SessionState) -> None:
        """Called synchronously for every journal record: buffer, never draw."""
        self.state = state
        event = record.event
        if isinstance(event, ev.OutputChunk):
            self.output.feed(event.host, event.data if event.b64 is None else event.raw.decode("utf-8", "replace"))
            if (event.run_id, event.host) not in self._streaming:  # first output: pending -> running
                self._streaming.add((event.run_id, event.host))
                self._dirty = True
            return
        self._dirty = True
        if isinstance(event, ev.StepStarted):
            stamp = record.ts[11:19] if len(record.ts) >= 19 else record.ts
            which = f"{display_name(event.task)} {'rollback ' if event.rollback else ''}step {event.step}"
            heading = f"{which} · {stamp} UTC · run {event.run_id[:8]}"
            self.output.border_title = fmt.line(f"output of {which}")  # stays visible when another task is selected
            for i, host in enumerate(event.targets):
                self.output.begin_run(host, heading, activate=i == 0)
                self.output.set_host_status(host, "running")
        elif isinstance(event, ev.HostFinished):
            detail = f"exit {event.exit_status}" if event.exit_status is not None else (event.exit_signal or event.error or "")
            if event.failed_line is not None or event.failed_command:  # where the script stopped
                detail = event.error
            self.output.feed(event.host, f"── {event.outcome}{' · ' + detail if detail else ''} · {event.duration_s:.1f}s ──\n")
            self.output.set_host_status(event.host, event.outcome)
        elif isinstance(event, ev.StepFinished):
            run = state.runs.get(event.run_id)
            if run is not None:
                self._show_recap(run)
        elif isinstance(event, ev.OutcomeDecided):
            run = state.runs.get(event.run_id)
            for host_run in (run.hosts.values() if run else ()):
                if host_run.decided is not None:
                    self.output.set_host_status(host_run.host, host_run.effective)
        elif isinstance(event, ev.StepOutcomeUnknown):
            run = state.runs.get(event.run_id)
            for name, host_run in (run.hosts.items() if run else ()):
                if host_run.status == UNKNOWN:
                    self.output.set_host_status(name, UNKNOWN)

    def _show_recap(self, run: StepRun) -> None:
        """After each step on several hosts: host, outcome, exit, duration and where it failed (PLAY RECAP style)."""
        rows = recap_rows(run)
        if len(rows) < 2:  # one host: its own end line already says outcome, exit, duration, failed line
            return
        which = f"{display_name(run.task)} {'rollback ' if run.rollback else ''}step {run.step}"
        lines = [f"── RECAP {which} · {recap_summary(rows)} ──", *recap_lines(rows)]
        for row in rows:
            if row.outcome == NOT_RUN:
                self.output.set_host_status(row.host, "skipped")
        self.output.recap(list(run.targets), lines)

    def _flush_state(self) -> None:
        if self._dirty:
            self._dirty = False
            self._redraw()
            self.post_message(StateRefreshed())

    def _tick(self) -> None:
        now = self.now()
        header = self.query_one(RunbookHeader)
        header.refresh_state(self.state, now)
        self._window_alert(header)

    def _window_alert(self, header: RunbookHeader) -> None:
        """Say it once when the remaining critical path stops fitting and when the window ends
        (the header keeps showing it, in words)."""
        if header.closed and not self._alerted_closed:
            self._alerted_closed = True
            self.notify("The change window has ended: new steps need an override with a reason.",
                        title="window closed", severity="error", timeout=30)
        elif header.level == "red" and not header.closed and not self._alerted_over:
            self._alerted_over = True
            self.notify("The remaining critical path no longer fits in the window.", title="window",
                        severity="warning", timeout=30)

    def _redraw(self) -> None:
        now = self.now()
        self.query_one(RunbookHeader).refresh_state(self.state, now)
        self.task_tree.refresh_state(self.state, now)
        self.task_view.refresh_state(self.state, now)

    # -- what the widgets need -------------------------------------------------------------
    def describe_targets(self, item_id: str, step: Step, rollback: bool) -> str:
        if not step.runnable:
            return ""
        try:
            plan = self.engine.plan(item_id, step.number, rollback=rollback, now=self.now())
        except (UserError, KeyError, ValueError) as exc:
            pattern = step.target.pattern if step.target and step.target.chosen else "not chosen"
            return f"{pattern} (not resolved: {exc})"
        if not plan.target_chosen:
            first = plan.suggestions[0].text() if plan.suggestions else "the document suggests none"
            return f"not chosen: r asks, T chooses (suggested: {first})"
        mode = "one at a time" if plan.spec.serial else "parallel" if len(plan.hosts) > 1 else ""
        return ", ".join(plan.hosts) + (f" ({mode})" if mode else "")

    def value_known(self, name: str) -> bool:
        if name in self.session.values:
            return True
        supplied = self.state.placeholders.get(name)
        return supplied is not None and not supplied.secret

    # -- selection -------------------------------------------------------------------
    @on(TaskSelected)
    def _task_selected(self, message: TaskSelected) -> None:
        if message.open:
            self._focus_after_show = True
        self._want(message.task_id)

    def _focus_detail(self) -> None:
        """Enter on a task: focus its current step (or its first checkbox)."""
        self._focus_after_show = False
        view = self.task_view.step_view()
        target = view if view is not None else next(iter(self.task_view.query(CheckItem)), None)
        if target is not None:
            target.focus()

    def _want(self, item_id: str, *, rollback: bool | None = None, step: int | None = None) -> None:
        """Show ``item_id`` (coalesced); ``rollback`` None keeps the mode of that item if it is
        already shown or wanted; ``step``: make it the current step once shown."""
        before = self._wanted or self._target
        if rollback is None:
            rollback = before[1] if before is not None and before[0] == item_id else False
        if step is not None:
            self._pin_after_show = (item_id, step)
        if (item_id, rollback) == self._target and self._wanted is None:
            if not self._showing:  # already on screen: only the pin and focus are left
                self._after_show()
            return
        self._wanted = (item_id, rollback)
        if not self._showing:
            self._show_next()

    @work(group="show", exit_on_error=False)
    async def _show_next(self) -> None:
        """Build the detail pane for the wanted item; coalesces fast cursor moves."""
        self._showing = True
        try:
            while self._wanted is not None:
                self._target, self._wanted = self._wanted, None
                item_id, rollback = self._target
                item = self.task_tree.items.get(item_id)
                if item is not None:
                    await self.task_view.show(item, self.state, self.now(), rollback_mode=rollback)
                    self._shown = item_id
                    self._dirty = True  # the state may have moved on while the pane was built
            self._after_show()
        finally:
            self._showing = False

    def _after_show(self) -> None:
        if self._pin_after_show is not None and self._pin_after_show[0] == self._shown:
            self.task_view.pin_step(self._pin_after_show[1])
            self._pin_after_show = None
            self._dirty = True
        if self._focus_after_show:
            self._focus_detail()

    @on(StepFocused)
    def _step_focused(self, message: StepFocused) -> None:
        self.task_view.pin_step(message.step)
        self._dirty = True

    @property
    def item(self) -> Item | None:
        return self.task_view.item

    def _current(self) -> tuple[Item, int, bool] | None:
        item = self.item
        view = self.task_view.step_view()
        if item is None or view is None:
            self.notify("select a task with steps first", severity="warning")
            return None
        return item, view.step.number, view.rollback

    def _busy(self) -> bool:
        for worker in self.workers:
            if worker.group == "run" and worker.is_running:
                self.notify("a step is running: wait, or ctrl+c to cancel it", severity="warning")
                return True
        return False

    # -- actions: runs -------------------------------------------------------------------
    def action_run_step(self) -> None:
        current = self._current()
        if current and not self._busy():
            item, step, rollback = current
            self._run(item.id, [step], rollback)

    def run_given_step(self, item_id: str, step: int, rollback: bool = False) -> None:
        """Run ``step`` of ``item_id`` whatever is selected (command palette)."""
        if not self._busy():
            self._run(item_id, [step], rollback)

    def action_rerun(self) -> None:
        current = self._current()
        if current and not self._busy():
            item, step, rollback = current
            self._rerun(item.id, step, rollback)

    @work(group="run", exclusive=True, exit_on_error=False)
    async def _rerun(self, item_id: str, step: int, rollback: bool) -> None:
        """``R``: which hosts (all, the failed ones, one), then the run (its guards ask first)."""
        from tui.widgets.modals import RerunHostsModal

        try:
            hosts = list(self.engine.plan(item_id, step, rollback=rollback, now=self.now()).hosts)
            matrix = self.state.step_matrix(item_id, step, rollback)
            failed = [c.host for c in matrix.hosts if c.status not in ("succeeded", "skipped", "pending")]
            choice = ("all", tuple(hosts))
            if len(hosts) > 1 or failed:
                what = f"{item_id} {'rollback ' if rollback else ''}step {step}"
                choice = await self.operator.ask(RerunHostsModal(f"Run {what} again: on which hosts?", hosts, failed))
            if choice is None:
                return
            kind, chosen = choice
            if kind == "all":
                await self.operator.run_step(item_id, step, rollback=rollback)
            elif len(chosen) == 1 and chosen[0] in hosts:
                await self.operator.run_step(item_id, step, rollback=rollback, only_host=chosen[0])
            else:
                await self.operator.run_step(item_id, step, rollback=rollback, target=",".join(chosen))
        except UserError as exc:
            self.notify(str(exc), title="not run", severity="error")

    def action_run_task(self) -> None:
        item = self.item
        if item is None or self._busy():
            return
        rollback = self.task_view.rollback_mode
        steps = item.task.rollback.steps if rollback and item.task and item.task.rollback else item.steps
        self._run(item.id, [s.number for s in steps if s.runnable], rollback, all_steps=True)

    def action_run_on_host(self) -> None:
        current = self._current()
        if current and not self._busy():
            item, step, rollback = current
            self._run_on_host(item.id, step, rollback)

    @work(group="run", exclusive=True, exit_on_error=False)
    async def _run(self, item_id: str, steps: list[int], rollback: bool, all_steps: bool = False) -> None:
        try:
            if all_steps:
                await self.operator.run_all(item_id, steps, rollback=rollback)
            else:
                await self.operator.run_step(item_id, steps[0], rollback=rollback)
        except UserError as exc:
            self.notify(str(exc), title="not run", severity="error")

    @work(group="run", exclusive=True, exit_on_error=False)
    async def _run_on_host(self, item_id: str, step: int, rollback: bool) -> None:
        import socket

        from tui.widgets.modals import ChooseHostModal

        try:
            plan = self.engine.plan(item_id, step, rollback=rollback, now=self.now())
            inventory = self.engine.inventory
            names = list(plan.hosts) + [h for h in (inventory.hosts if inventory is not None else {}) if h not in plan.hosts]
            if "local" not in names:
                names.append("local")
            labels = [f"{h}  (a target of this step)" if h in plan.hosts else h for h in names]
            labels = [f"{label}  this machine ({socket.gethostname()})" if h == "local" else label
                      for h, label in zip(names, labels, strict=True)]
            host = await self.operator.ask(ChooseHostModal(f"{item_id} step {step}: run on which host?", names, labels))
            if host is not None:
                await self.operator.run_step(item_id, step, rollback=rollback, target=host)
        except UserError as exc:
            self.notify(str(exc), title="not run", severity="error")

    def action_retarget(self) -> None:
        current = self._current()
        if current is None:
            return
        item, step, rollback = current
        run = self.state.step_run(item.id, step, rollback)
        if run is not None and not run.finished:
            self.notify("the step is running: retarget it before it runs", severity="warning")
            return

        async def flow() -> None:
            if await self.operator.choose_target(item.id, step, rollback):
                self._dirty = True

        self._dialog(flow)

    def _running_run(self) -> StepRun | None:
        running = self.state.running()
        if not running:
            return None
        view = self.task_view.step_view()
        for run in running:
            if view is not None and (run.task, run.step, run.rollback) == (view.item_id, view.step.number, view.rollback):
                return run
        return running[-1]

    def action_cancel(self) -> None:
        run = self._running_run()
        if run is None:
            self.notify("nothing is running", severity="warning")
            return
        self._cancel(run.run_id)

    @work(group="cancel", exclusive=True, exit_on_error=False)
    async def _cancel(self, run_id: str) -> None:
        await self.engine.cancel(run_id)
        self.notify("Ctrl-C sent to every host of the run", title="cancel")

    def action_send_input(self) -> None:
        run = self._running_run()
        if run is None:
            self.notify("no running step to type into", severity="warning")
            return
        host = self.output.active_host
        if host not in run.hosts:
            host = next(iter(run.hosts))
        self._send_input(run.run_id, run.task, run.step, host)

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def _send_input(self, run_id: str, task: str, step: int, host: str) -> None:
        from tui.widgets.modals import SendInputModal

        line = await self.operator.ask(SendInputModal(host, task, step))
        if line is not None:
            await self.engine.send_input(run_id, host, (line + "\n").encode())

    def action_decide(self) -> None:
        unknown = self.state.undecided()  # outcome unknown, or an automatic expectation not met
        if not unknown:
            self.notify("no step has an unknown outcome or an unmet expectation to decide", severity="warning")
            return
        view = self.task_view.step_view()
        runs = {run.run_id: run for run, _host in unknown}
        chosen = next((r for r in runs.values() if view is not None and (r.task, r.step, r.rollback) == (view.item_id, view.step.number, view.rollback)), None)
        chosen = chosen or next((r for r in runs.values() if self.item and r.task == self.item.id), None) or next(iter(runs.values()))
        if self.item is None or chosen.task != self.item.id or self.task_view.rollback_mode != chosen.rollback:
            self.task_tree.select_item(chosen.task)
            self._want(chosen.task, rollback=chosen.rollback, step=chosen.step)
        else:
            self.task_view.pin_step(chosen.step)
        self._decide(chosen)

    @work(group="run", exclusive=True, exit_on_error=False)
    async def _decide(self, run: StepRun) -> None:
        try:
            await self.operator.decide(run)
        except UserError as exc:
            self.notify(str(exc), severity="error")

    # -- actions: decisions -------------------------------------------------------------
    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def _dialog(self, flow: Callable[[], Any]) -> None:
        try:
            await flow()
        except Declined:
            pass
        except UserError as exc:
            self.notify(str(exc), severity="error")

    def action_note(self) -> None:
        self._dialog(partial(self.operator.note, self.item.id if self.item else None))

    def action_skip_step(self) -> None:
        current = self._current()
        if current is None:
            return
        item, step, rollback = current
        if rollback:
            self.notify("rollback steps are not skipped: just do not run them", severity="warning")
            return
        self._dialog(partial(self.operator.skip_step, item.id, step))

    def action_skip_task(self) -> None:
        if self.item is not None and self.item.kind == "task":
            self._dialog(partial(self.operator.skip_task, self.item.id, self.item.title))

    def action_done(self) -> None:
        if self.item is not None and self.item.kind == "task":
            self._dialog(partial(self.operator.finish_task, self.item))

    @on(CheckboxToggleRequested)
    def _toggle_checkbox(self, message: CheckboxToggleRequested) -> None:
        if message.checked:
            self.session.set_checkbox(message.key, True)
        else:
            self._dialog(partial(self.operator.untick, message.key))

    @on(ProbeAcceptRequested)
    def _accept_probe(self, message: ProbeAcceptRequested) -> None:
        probe = self.state.probes.get(message.key)
        if probe is None or probe.status != "pass":
            self.notify("no passing probe result for this checkbox", severity="warning")
            return
        self.session.set_checkbox(message.key, True, evidence=f"probe {probe.probe}: {probe.status} {probe.evidence}".strip())

    def action_rollback(self) -> None:
        item = self.item
        if item is None or item.task is None:
            return
        if self.task_view.rollback_mode:
            self._want(item.id, rollback=False)
            return
        rb = item.task.rollback
        if rb is None or not rb.applicable or not rb.steps:
            self.notify("this task has no runnable rollback", severity="warning")
            return
        if self.state.tasks.get(item.id) is not None and self.state.tasks[item.id].rollback_started:
            self._want(item.id, rollback=True)
            return

        async def flow() -> None:
            await self.operator.start_rollback(item.id)
            self._want(item.id, rollback=True)

        self._dialog(flow)

    def action_back(self) -> None:
        if not self.task_tree.has_focus:  # focusing it again repaints the whole tree
            self.task_tree.focus()

    def action_jump(self) -> None:
        self._pick_task()

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def _pick_task(self) -> None:
        from tui.widgets.modals import PickerEntry, TaskPickerModal

        entries = []
        for item in self.task_tree.items.values():
            status = self.state.task_status(item.id) if item.kind == "task" else ""
            name = display_name(item.id, self.task_tree.items)
            label = f"{name}  {item.title}" if item.kind != "section" else item.title
            entries.append(PickerEntry(item.id, label, f"{fmt.icon(status)}" if status else ""))
        chosen = await self.operator.ask(TaskPickerModal(entries))
        if chosen is not None:
            self.jump_to(chosen)

    # -- actions: output and layout --------------------------------------------------------
    def action_search(self) -> None:
        self._search()

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def _search(self) -> None:
        from tui.widgets.modals import SearchModal

        shown = self.output.active_host or "all hosts"
        query = await self.operator.ask(SearchModal(shown, self.output.query_text))
        if query is None:
            return
        found = self.output.search(query)
        if query:
            self.notify(f"{found} matching line(s) in {shown}" if found else f"no match for {query!r} in {shown}",
                        title="search", severity="information" if found else "warning", timeout=3)

    def action_next_match(self) -> None:
        self.output.next_match(1)

    def action_previous_match(self) -> None:
        self.output.next_match(-1)

    def action_toggle_wrap(self) -> None:
        wrap = self.output.toggle_wrap()
        self.notify("long lines wrap (↪ marks a continuation)" if wrap else "long lines are cut: scroll sideways",
                    title="output", timeout=3)

    def action_show_host(self, number: int) -> None:
        """``0``: the all-hosts view; ``1``-``9``: the n-th host's tab."""
        if self.output.show_host(number) is None:
            self.notify(f"no output tab {number}", severity="warning", timeout=3)

    def action_copy_output(self) -> None:
        self._copy_output()

    @work(group="copy", exclusive=True, exit_on_error=False)
    async def _copy_output(self) -> None:
        import os

        from tui.history import host_output

        selected = self.screen.get_selected_text()
        if selected:
            self.app.copy_to_clipboard(selected)
        host = self.output.active_host
        if host is None:
            self.notify("the selection was copied" if selected else "show one host's output first (1-9)",
                        title="copy", timeout=5)
            return
        self.session.sync()
        text = await host_output(self.session.journal.path, host)
        stamp = self.now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in host)
        path = self.session.dir / f"output-{safe}-{stamp}.txt"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            self.notify(f"{path}: {exc.strerror or exc}", title="copy failed", severity="error")
            return
        if not selected and len(text) <= 64 * 1024:
            self.app.copy_to_clipboard(text)  # OSC 52: terminals that allow it get it too
        self.notify(f"{len(text.splitlines())} lines of {host} written to {path}"
                    + (" · selection copied" if selected else ""), title="copy", timeout=8)

    def action_zoom_output(self) -> None:
        if self.maximized is not None:
            self.minimize()
        else:
            self.maximize(self.output, container=False)

    def action_toggle_tree(self) -> None:
        tree = self.task_tree
        tree.display = not tree.display
        if not tree.display and tree.has_focus:
            self._focus_detail()

    def action_tree_width(self, delta: int) -> None:
        tree = self.task_tree
        tree.display = True
        width = self._tree_width or tree.outer_size.width  # the layout lags behind quick presses
        new = self._tree_width = max(16, min(self.size.width - 30, width + delta))
        tree.styles.width = new
        tree.styles.min_width = 16  # the stylesheet's bounds are for the default width only
        tree.styles.max_width = self.size.width

    def action_help(self) -> None:
        from textual.app import App

        from tui.screens.help import HelpScreen
        from tui.widgets.step_view import StepView

        self.app.push_screen(HelpScreen([self.BINDINGS, TaskTree.BINDINGS, StepView.BINDINGS, CheckItem.BINDINGS,
                                         OutputPane.BINDINGS, type(self.app).BINDINGS, App.BINDINGS]))

    def jump_to(self, item_id: str) -> None:
        self.task_tree.select_item(item_id)
        self._want(item_id)

    def action_export(self) -> None:
        self._export()

    @work(group="export", exclusive=True, exit_on_error=False)
    async def _export(self) -> None:
        from sessions.engine.session import Session as LiveSession
        from tui.exporting import export_report

        if not isinstance(self.session, LiveSession):  # the watch screen refuses export before this
            self.notify("a watched session is exported with: runbook export SESSION", severity="warning")
            return
        try:
            path, signer = await export_report(self.session)
        except UserError as exc:
            self.notify(str(exc), title="export failed", severity="error")
            return
        self.notify(f"{path}\nsigned with {signer}" if signer else f"{path}\nunsigned (no usable $RUNBOOK_SIGNING_KEY)",
                    title="exported")

    def action_probes(self) -> None:
        item = self.item
        if item is None:
            return
        self._probes(item)

    @work(group="probes", exclusive=True, exit_on_error=False)
    async def _probes(self, item: Item) -> None:
        from tui.probing import run_probes

        count = await run_probes(self.session, self.engine, item.checkboxes)
        self.notify(f"{count} probe(s) run" if count else "no probes configured for this task", title="probes")

    def action_quit(self) -> None:
        self._quit()

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def _quit(self) -> None:
        if self.state.running():
            ok = await self.operator.confirm(
                "Quit while a step runs?",
                "The running step's outcome will be UNKNOWN until you resume and decide it "
                "(detached runs are re-attached).",
                yes="Quit", danger=True,
            )
            if not ok:
                return
        await cast("RunbookApp", self.app).close_session()
