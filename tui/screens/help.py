"""The help screen (``?`` / F1): every key binding, grouped by purpose, and the guards.

Built from the bindings the widgets really declare (their ``id`` and ``tooltip``), so
a binding added anywhere shows up here without a second list to keep in step; the
grouping only names where each kind of action belongs ("other" catches the rest).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Run", ("run_step", "run_task", "run_on_host", "rerun", "cancel", "send_input", "retarget", "choose_target")),
    ("Decide and record", ("note", "skip_step", "skip_task", "decide", "done", "toggle_box", "accept_probe", "probes")),
    ("Rollback and report", ("rollback", "export")),
    ("Output", ("search", "next_match", "previous_match", "toggle_wrap", "copy_output", "show_host", "follow",
                "zoom_output")),
    ("Move around and layout", ("jump", "back", "select_cursor", "focus_previous", "focus_next", "enter_items", "command_palette",
                                "toggle_tree", "tree_width", "help", "quit")),
)

GUARDS = (
    ("HIGH / CRITICAL task", "asks for confirmation before its first step runs, naming the hosts."),
    ("destructive command", "rm -rf, kubeadm reset, kubectl delete, ...: type the host name to go ahead."),
    ("unfinished dependency", "a task whose dependencies are not done needs an override with a reason."),
    ("phase gate", "a later phase waits for the earlier phase's gate; overriding needs a reason."),
    ("end of the window", "running after the window's end needs an override with a reason."),
    ("outcome unknown", "a command whose end was not seen is never success: press o to decide it."),
    ("four-eyes approval", "a task marked approval=required (or CRITICAL, with --approvers) waits for an "
                           "approver's signature of its plan: runbook approve REQUEST --sign KEY."),
)


def _action_name(action: str) -> str:
    """``app.focus_next`` -> ``focus_next``; ``choose('resume')`` -> ``choose``."""
    return action.rsplit(".", 1)[-1].split("(", 1)[0]


def _group_of(action: str) -> str:
    name = _action_name(action)
    for group, actions in GROUPS:
        if name in actions:
            return group
    return "Other"


def _keys(binding: Binding) -> str:
    return " / ".join(k.strip() for k in binding.key.split(",") if k.strip())


def binding_rows(sources: Iterable[Iterable[BindingType]]) -> dict[str, list[tuple[str, str, str]]]:
    """``{group: [(keys, description, tooltip), ...]}`` from the ``BINDINGS`` of ``sources``,
    each binding id once, groups in :data:`GROUPS` order then "Other"."""
    seen: set[str] = set()
    rows: dict[str, list[tuple[str, str, str]]] = {group: [] for group, _ in GROUPS}
    rows["Other"] = []
    for bindings in sources:
        for b in bindings:
            if not isinstance(b, Binding) or not b.description:
                continue  # an undescribed binding is one more key of a row already listed (2-9 of "1-9")
            ident = b.id or f"{b.key}:{b.action}"
            if ident in seen:
                continue
            seen.add(ident)
            rows[_group_of(b.action)].append((_keys(b), b.description or _action_name(b.action), b.tooltip or ""))
    return {group: items for group, items in rows.items() if items}


class HelpScreen(ModalScreen[None]):
    """Dismissed with Escape, ``q``, ``?`` or F1."""

    BINDINGS = [
        Binding("escape,q,question_mark,f1", "close", "Close", id="help.close", tooltip="Close the help"),
    ]

    def __init__(self, sources: Iterable[Iterable[BindingType]]) -> None:
        super().__init__(id="help")
        self.rows = binding_rows(sources)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body", classes="modal-dialog"):
            yield Label(Text("Keys (Escape closes)"), classes="modal-title")
            for group, items in self.rows.items():
                table = Table(title=Text(group, style="bold"), title_justify="left", show_header=False,
                              box=None, expand=True, padding=(0, 1))
                table.add_column("keys", no_wrap=True, style="bold")
                table.add_column("action", no_wrap=True)
                table.add_column("what it does", ratio=1)
                for keys, description, tooltip in items:
                    table.add_row(Text(keys), Text(description), Text(tooltip))
                yield Static(table, classes="help-group")
            guards = Table(title=Text("Guards (each answer is journaled)", style="bold"), title_justify="left",
                           show_header=False, box=None, expand=True, padding=(0, 1))
            guards.add_column("guard", no_wrap=True, style="bold")
            guards.add_column("what happens", ratio=1)
            for name, what in GUARDS:
                guards.add_row(Text(name), Text(what))
            yield Static(guards, classes="help-group")

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    def action_close(self) -> None:
        self.dismiss(None)
