"""Jump to a task (``g``): type part of an id or a title, Enter jumps.  It never runs anything."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.fuzzy import Matcher
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option


@dataclass(frozen=True, slots=True)
class PickerEntry:
    """One line of the picker: ``item_id`` is what the picker dismisses with."""

    item_id: str
    label: str  # "PROD-K8S-001  Initialize first control plane" or "Phase 1 gate: Smoke test"
    status: str = ""  # e.g. "✔ done"


def ranked(entries: Sequence[PickerEntry], query: str) -> list[PickerEntry]:
    """``entries`` that match ``query`` (fuzzy, case-insensitive), best first; all of them
    in document order for an empty query."""
    query = query.strip()
    if not query:
        return list(entries)
    matcher = Matcher(query)
    scored = [(matcher.match(e.label), i, e) for i, e in enumerate(entries)]
    return [e for score, _, e in sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))]


class TaskPickerModal(ModalScreen["str | None"]):
    """Dismisses the chosen item id, or None on Escape."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="task_picker.cancel", tooltip="Stay where you are"),
        Binding("down", "move(1)", "Next", show=False, id="task_picker.next", tooltip="Next match"),
        Binding("up", "move(-1)", "Previous", show=False, id="task_picker.previous", tooltip="Previous match"),
    ]

    def __init__(self, entries: Sequence[PickerEntry]) -> None:
        super().__init__(id="task-picker")
        self.entries = list(entries)
        self.shown: list[PickerEntry] = list(entries)

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-dialog"):
            yield Label(Text("Jump to a task (Enter jumps, Escape stays)"), classes="modal-title")
            yield Input(placeholder="part of an id or a title", id="picker-query")
            yield OptionList(id="picker-options")

    def on_mount(self) -> None:
        self._fill()
        self.query_one(Input).focus()

    def _fill(self) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options(
            Option(Text.assemble((e.status + " ") if e.status else "", e.label), id=str(i))
            for i, e in enumerate(self.shown)
        )
        if self.shown:
            options.highlighted = 0

    @on(Input.Changed, "#picker-query")
    def _query_changed(self, event: Input.Changed) -> None:
        self.shown = ranked(self.entries, event.value)
        self._fill()

    @on(Input.Submitted, "#picker-query")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        index = self.query_one(OptionList).highlighted
        if self.shown:
            self.dismiss(self.shown[index or 0].item_id)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.shown[event.option_index].item_id)

    def action_move(self, delta: int) -> None:
        options = self.query_one(OptionList)
        if not self.shown:
            return
        current = options.highlighted if options.highlighted is not None else 0
        options.highlighted = max(0, min(len(self.shown) - 1, current + delta))

    def action_cancel(self) -> None:
        self.dismiss(None)
