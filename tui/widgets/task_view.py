"""The selected task: description, prerequisites, steps, acceptance criteria, rollback, notes.

The children are built once per selected item (:meth:`TaskView.show`) and then only
updated from state (:meth:`TaskView.refresh_state`), so a journal record never
rebuilds the pane.
"""

from __future__ import annotations

from datetime import datetime

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Label, Static

from runbook.model import Runbook
from runbook.sanitize.terminal_text import visible
from sessions.planning.guards import blockers, step_diagnostics
from sessions.state.state import SessionState
from sessions.team.approval import ApprovalStatus
from sessions.team.approval import status_text as approval_status_text
from tui import format as fmt
from tui.items import Item
from tui.progress import FINISHED
from tui.widgets.checklist import Checklist
from tui.widgets.step_view import StepView, TargetDescriber, ValueKnown, _block

DONE_STEP = ("succeeded", "skipped")


def _markdown(text: str) -> RenderableType:
    """The runbook's own prose (rollback text, notes) rendered, never shown raw (``**Safe**:``);
    control, bidi and zero-width characters shown as escapes."""
    from rich.markdown import Markdown

    return Markdown(visible(text))


class TaskView(VerticalScroll):
    """Detail pane for one :class:`~tui.items.Item`."""

    # The pane itself focused (after the task picker, a click on its prose): Down/j and Up/k
    # step into its steps and checkboxes, as they move between them once one is focused.
    BINDINGS = [
        Binding("down,j", "enter_items(1)", "Next", show=False, id="task.first_item", tooltip="Focus the current step (or the first checkbox)"),
        Binding("up,k", "enter_items(-1)", "Previous", show=False, id="task.last_item", tooltip="Focus the last step or checkbox"),
    ]

    def __init__(self, runbook: Runbook, describe_targets: TargetDescriber, value_known: ValueKnown, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.runbook = runbook
        self.describe_targets = describe_targets
        self.value_known = value_known
        self.item: Item | None = None
        self.rollback_mode = False
        self.current_step: int | None = None
        self._pinned = False  # the operator chose the current step (focus), do not move it
        self._ready = False  # children built for self.item (False while rebuilding)
        self._target_choices: object = None  # the state's target choices the step views describe

    def action_enter_items(self, direction: int) -> None:
        items = [w for w in self.query("StepView, CheckItem") if w.focusable]
        if not items:
            self.scroll_relative(y=direction, animate=False)  # nothing to focus: scroll, as before
            return
        current = self.step_view() if direction > 0 else None
        (current if current is not None else items[0 if direction > 0 else -1]).focus()

    # -- building ---------------------------------------------------------------
    async def show(self, item: Item, state: SessionState, now: datetime, *, rollback_mode: bool = False) -> None:
        same = self.item is not None and self.item.id == item.id and self.rollback_mode == rollback_mode
        self.item = item
        self.rollback_mode = rollback_mode
        if not same:
            self.current_step = None
            self._pinned = False
        self._ready = False
        refocus = self.screen.focused is not None and self in self.screen.focused.ancestors
        await self.remove_children()
        await self.mount_all(list(self._compose_item(item)))
        self._ready = True
        self.refresh_state(state, now)
        if refocus and (view := self.step_view()) is not None:
            view.focus(scroll_visible=False)
        if not same:
            self.scroll_home(animate=False)

    def _compose_item(self, item: Item) -> ComposeResult:
        from rich.markdown import Markdown  # 30 ms to import: not before the first screen needs it

        yield Static(id="task-title", classes="task-title")
        yield Static(id="task-meta", classes="task-meta")
        if item.task is not None:
            task = item.task
            if task.description:
                yield Static(Markdown(visible(task.description)), classes="task-text")
            if task.prerequisites:
                yield Label("Prerequisites", classes="section-title")
                yield Checklist(task.prerequisites, id="prerequisites")
            yield from self._steps(item)
            if task.checklist:
                yield Label("Checklist", classes="section-title")
                yield Checklist(task.checklist, id="checklist")
            if task.acceptance:
                yield Label("Acceptance criteria", classes="section-title")
                yield Checklist(task.acceptance, id="acceptance")
            yield Label("Rollback", classes="section-title")
            yield from self._rollback(item)
            yield Label("Notes", classes="section-title")
            yield Static(id="notes", classes="task-text")
        elif item.gate is not None:
            gate = item.gate
            if gate.text:
                yield Static(Markdown(visible(gate.text)), classes="task-text")
            if gate.gate:
                yield Static(Text.assemble(("Gate: ", "bold"), fmt.safe(gate.gate)), classes="task-text gate-rule")
            yield from self._steps(item)
            if gate.checkboxes:
                yield Label("Checks", classes="section-title")
                yield Checklist(gate.checkboxes, id="acceptance")
        elif item.section is not None:
            if item.section.text:
                yield Static(Markdown(visible(item.section.text)), classes="task-text")
            if item.section.blocks:
                yield Static(Group(*(r for b in item.section.blocks for r in _block(b))), classes="task-text")
            if item.section.checkboxes:
                yield Checklist(item.section.checkboxes, id="acceptance")

    def _steps(self, item: Item) -> ComposeResult:
        if self.rollback_mode:
            return
        yield Label("Steps", classes="section-title")
        if not item.steps:
            yield Static("(no steps)", classes="task-text")
        for step in item.steps:
            yield StepView(item.id, step, rollback=False, targets=self.describe_targets(item.id, step, False),
                           value_known=self.value_known, diagnostics=step_diagnostics(self.runbook, step))

    def _rollback(self, item: Item) -> ComposeResult:
        rb = item.task.rollback if item.task else None
        if rb is None:
            yield Static("(none written)", classes="task-text")
            return
        if not self.rollback_mode:
            parts: list[RenderableType] = [_markdown(rb.text.strip())] if rb.text.strip() else []
            for block in rb.blocks:
                parts.extend(_block(block))
            if rb.applicable and rb.steps:
                parts.append(Text("   b: open the rollback and run its blocks as steps", "bold"))
            yield Static(Group(*parts), classes="task-text rollback-text")
            return
        yield Static(Text.assemble(("⟲ ROLLBACK MODE", "bold reverse"), "  steps below run as rollback (b: back to steps)"),
                     classes="rollback-banner")
        if rb.text.strip():
            yield Static(_markdown(rb.text.strip()), classes="task-text")
        for step in rb.steps:
            yield StepView(item.id, step, rollback=True, targets=self.describe_targets(item.id, step, True),
                           value_known=self.value_known, diagnostics=step_diagnostics(self.runbook, step))

    # -- state -> widgets -----------------------------------------------------------
    def refresh_state(self, state: SessionState, now: datetime) -> None:
        item = self.item
        if item is None or not self._ready:
            return
        self._refresh_head(item, state, now)
        views = list(self.query(StepView))
        before = self.current_step
        if not self._pinned or self.current_step not in {v.step.number for v in views}:
            self.current_step = self._next_step(state, views)
        if before is not None and self.current_step != before and (view := self.step_view()) is not None:
            self.call_after_refresh(view.scroll_visible, animate=False, top=True)
        choices = state.target_choices
        retarget = choices is not self._target_choices  # a target was chosen: say where steps run now
        self._target_choices = choices
        for view in views:
            if retarget and view.step.runnable:
                view.targets = self.describe_targets(view.item_id, view.step, view.rollback)
            view.refresh_state(state, view.step.number == self.current_step)
        for checklist in self.query(Checklist):
            checklist.refresh_state(state)
        if item.task is not None:
            notes = self.query("#notes")
            if notes:
                notes.first(Static).update(self._notes(item, state))

    def _next_step(self, state: SessionState, views: list[StepView]) -> int | None:
        if not views:
            return None
        for view in views:
            if state.step_status(view.item_id, view.step.number, view.rollback) not in DONE_STEP:
                return view.step.number
        return views[-1].step.number

    def pin_step(self, step: int) -> None:
        changed = step != self.current_step
        self.current_step = step
        self._pinned = True
        for view in self.query(StepView):
            view.set_class(view.step.number == step, "-current")
            if changed and view.step.number == step and not view.has_focus:
                self.call_after_refresh(view.scroll_visible, animate=False, top=True)

    def step_view(self, step: int | None = None) -> StepView | None:
        number = self.current_step if step is None else step
        for view in self.query(StepView):
            if view.step.number == number:
                return view
        return None

    def _refresh_head(self, item: Item, state: SessionState, now: datetime) -> None:
        title = Text.assemble(fmt.line(item.id if item.kind == "task" else item.kind.capitalize(), "bold reverse"), " ",
                              fmt.line(item.title, "bold"))
        self.query_one("#task-title", Static).update(title)
        meta = Text()
        if item.task is not None:
            task = item.task
            status = state.task_status(task.id)
            meta.append(f"{fmt.icon(status)} {fmt.word(status)}", fmt.style(status))
            meta.append("  risk ")
            meta.append(f" {fmt.RISK_BADGE[task.risk]} ", fmt.RISK_STYLE[task.risk])
            ts = state.tasks.get(task.id)
            actual = fmt.elapsed_minutes(ts.started if ts else None, ts.finished if ts else None, now)
            meta.append(f"  est {fmt.minutes(task.duration_minutes)} · actual {fmt.minutes(actual)}")
            if ts is not None and ts.skip_reason:
                meta.append(fmt.line(f"  skipped: {ts.skip_reason}", "dim"))
            if task.dependencies:
                meta.append("\ndepends on: ")
                for i, dep in enumerate(task.dependencies):
                    dstatus = state.task_status(dep)
                    meta.append(", " if i else "")
                    meta.append(fmt.line(f"{fmt.icon(dstatus)} {dep}", fmt.style(dstatus)))
            approval, said = approval_status_text(state, self.runbook, task.id)
            if said:
                style = {ApprovalStatus.GRANTED: "bold green", ApprovalStatus.REFUSED: "bold red"}.get(approval,
                                                                                                     "bold yellow")
                meta.append(fmt.safe(f"\n⚿ {said}", style))
            why = blockers(state, self.runbook, task.id) if status not in FINISHED else []
            if why:
                meta.append(fmt.safe(f"\n{fmt.BLOCKED_MARK} blocked: {'; '.join(why)} (running asks for an override with a reason)",
                                     "bold yellow"))
        elif item.phase is not None:
            meta.append(fmt.line(f"Phase {item.phase.number}: {item.phase.title}", "dim"))
            why = blockers(state, self.runbook, item.id) if item.kind == "gate" else []
            if why:
                meta.append(f"\n{fmt.BLOCKED_MARK} blocked: {'; '.join(why)}", "bold yellow")
        self.query_one("#task-meta", Static).update(meta)

    def _notes(self, item: Item, state: SessionState) -> RenderableType:
        text = Text()
        assert item.task is not None
        written = [_markdown("\n".join(f"- {note}" for note in item.task.notes))] if item.task.notes else []
        for note in state.notes:
            if note.task == item.id:
                text.append(fmt.safe(f"✎ {note.who or '?'}: {note.text}\n", "italic"))
        if not text.plain and not written:
            text.append("(none)", "dim")
        text.rstrip()
        return Group(*written, text) if written else text
