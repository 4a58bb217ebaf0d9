"""The tree of phases and tasks: status icon, risk badge, estimated/actual time, blocked mark."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from runbook.model import Phase, Runbook
from sessions.planning.guards import blockers
from sessions.state.state import SessionState
from sessions.team.approval import ApprovalStatus
from sessions.team.approval import status as approval_status
from tui import format as fmt
from tui.items import Item, build_items, gate_id
from tui.messages import TaskSelected
from tui.progress import FINISHED

APPROVAL_MARK = "⚿"
APPROVAL_STYLE = {ApprovalStatus.REQUIRED: "bold yellow", ApprovalStatus.REQUESTED: "bold yellow",
                  ApprovalStatus.REFUSED: "bold red", ApprovalStatus.GRANTED: "bold green",
                  ApprovalStatus.NOT_REQUIRED: ""}


def _phase_name(phase: Phase) -> str:
    return f"Phase {phase.number}: {phase.title}" if phase.number else (phase.title or "Tasks")


def _relabel(node: TreeNode[str], label: Text) -> None:
    """A new label only when it differs: each one repaints its line, and the state is redrawn
    on every change of any step."""
    if node.label != label:
        node.set_label(label)


class TaskTree(Tree[str]):
    """Phases (expandable) with their tasks and gates; document checklists at the end.

    Labels are rebuilt from :class:`SessionState` by :meth:`refresh_state`; the tree
    never holds status of its own.
    """

    BINDINGS = [
        Binding("enter", "select_cursor", "Open", show=False, id="tree.open", tooltip="Show this task"),
    ]

    def __init__(self, runbook: Runbook, *, id: str | None = None) -> None:
        super().__init__(fmt.line(runbook.title or "runbook"), id=id)
        self.runbook = runbook
        self.items: dict[str, Item] = build_items(runbook)
        self._item_nodes: dict[str, TreeNode[str]] = {}
        self._phase_nodes: dict[str, TreeNode[str]] = {}
        self._add_nodes()
        self.show_root = False
        self.guide_depth = 2

    def _add_nodes(self) -> None:
        for phase in self.runbook.phases:
            node = self.root.add(fmt.line(_phase_name(phase)), data=f"phase:{phase.number}", expand=True)
            self._phase_nodes[phase.number] = node
            for task in phase.tasks:
                self._item_nodes[task.id] = node.add_leaf(fmt.line(task.id), data=task.id)
            if phase.gates:
                self._item_nodes[gate_id(phase)] = node.add_leaf(fmt.line(gate_id(phase)), data=gate_id(phase))
        sections = [i for i in self.items.values() if i.kind == "section" and i.checkboxes]
        if sections:
            node = self.root.add("Checklists", data="phase:checklists", expand=False)
            for item in sections:
                self._item_nodes[item.id] = node.add_leaf(fmt.line(item.title), data=item.id)
        reference = [i for i in self.items.values() if i.kind == "section" and not i.checkboxes]
        if reference:
            node = self.root.add("Reference", data="phase:reference", expand=False)
            for item in reference:
                self._item_nodes[item.id] = node.add_leaf(fmt.line(item.title), data=item.id)

    # -- state -> labels --------------------------------------------------------
    def refresh_state(self, state: SessionState, now: datetime) -> None:
        for item_id, node in self._item_nodes.items():
            _relabel(node, self._label(self.items[item_id], state, now))
        for phase in self.runbook.phases:
            done = sum(1 for t in phase.tasks if state.task_status(t.id) in FINISHED)
            if phase.number:
                label = Text.assemble(
                    fmt.line(f"Phase {phase.number}", "bold"), fmt.line(f": {phase.title} "), (f"{done}/{len(phase.tasks)}", "dim")
                )
            else:  # tasks outside any phase (inferred from sections, or written without one)
                label = Text.assemble(fmt.line(_phase_name(phase), "bold"), " ", (f"{done}/{len(phase.tasks)}", "dim"))
            _relabel(self._phase_nodes[phase.number], label)

    def _label(self, item: Item, state: SessionState, now: datetime) -> Text:
        if item.kind == "task":
            assert item.task is not None
            task = item.task
            status = state.item_status(task.id, (s.number for s in task.steps))
            ts = state.tasks.get(task.id)
            actual = fmt.elapsed_minutes(ts.started if ts else None, ts.finished if ts else None, now)
            text = Text.assemble(
                (fmt.icon(status), fmt.style(status)),
                " ",
                fmt.line(task.id, "bold" if status == "in_progress" else ""),
                " ",
                (fmt.RISK_BADGE[task.risk], fmt.RISK_STYLE[task.risk]),
            )
            approval, _event = approval_status(state, self.runbook, task.id)
            if approval is not ApprovalStatus.NOT_REQUIRED:  # four-eyes approval: ⚿, coloured by where it stands
                text.append(f" {APPROVAL_MARK}", APPROVAL_STYLE[approval])
            why = blockers(state, self.runbook, task.id) if status not in FINISHED else []
            if why:
                text.append(f" {fmt.BLOCKED_MARK}", "bold yellow")
            text.append(f" {fmt.minutes(task.duration_minutes)}/{fmt.minutes(actual)}", "dim")
            if why:
                text.append(f" {'; '.join(why)}", "yellow")
            return text
        if item.kind == "gate":
            status = state.item_status(item.id, (s.number for s in item.steps), gate=True)
            text = Text.assemble((fmt.icon(status), fmt.style(status)), " ", ("Gate", "bold"), " ", fmt.line(item.title))
            why = blockers(state, self.runbook, item.id) if status != "succeeded" else []
            if why:
                text.append(fmt.line(f" {fmt.BLOCKED_MARK} {'; '.join(why)}", "bold yellow"))
            return text
        boxes = item.checkboxes
        if not boxes:  # a prose section, shown as reference
            return Text.assemble(("≡", "dim"), fmt.line(f" {item.title}"))
        ticked = sum(1 for b in boxes if _checked(state, b.key, b.checked))
        status = "done" if ticked == len(boxes) else "pending"
        return Text.assemble((fmt.icon(status), fmt.style(status)), fmt.line(f" {item.title} "), (f"{ticked}/{len(boxes)}", "dim"))

    # -- navigation -------------------------------------------------------------
    def select_item(self, item_id: str) -> None:
        node = self._item_nodes.get(item_id)
        if node is None:
            return
        if node.parent is not None:
            node.parent.expand()
        self.move_cursor(node)
        self.scroll_to_node(node, animate=False)

    @property
    def current_item(self) -> str | None:
        node = self.cursor_node
        if node is None or node.data is None or node.data.startswith("phase:"):
            return None
        return node.data

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        event.stop()
        data = event.node.data
        if data and not data.startswith("phase:"):
            self.post_message(TaskSelected(data))

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        data = event.node.data
        if data and not data.startswith("phase:"):
            event.stop()
            self.post_message(TaskSelected(data, open=True))


def _checked(state: SessionState, key: str, default: bool) -> bool:
    box = state.checkboxes.get(key)
    return box.checked if box is not None else default


