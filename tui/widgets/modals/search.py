"""Search the output (``/``): the text to find; ``]`` and ``[`` then move between matches."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class SearchModal(ModalScreen["str | None"]):
    """Dismisses the search text ("" clears the search), or None on Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="search.cancel", tooltip="Keep the current search")]

    def __init__(self, where: str, current: str = "") -> None:
        super().__init__()
        self.where = where
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-dialog"):
            yield Label(Text(f"Search the output of {self.where}"), classes="modal-title")
            yield Input(value=self.current, placeholder="text to find (case-insensitive)", id="search-input")
            yield Static(Text("Enter: search (empty clears) · Escape: cancel · then ] next, [ previous"),
                         classes="modal-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
