"""Add a note to the session journal (for the selected task)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tui import format as fmt


class NoteModal(ModalScreen["str | None"]):
    """Dismisses the note text, or None on Escape or when empty."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="note.cancel", tooltip="Discard the note")]

    def __init__(self, task_id: str | None) -> None:
        super().__init__()
        self.task_id = task_id

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-dialog"):
            yield Label(fmt.line(f"Note{' on ' + self.task_id if self.task_id else ''}"), classes="modal-title")
            yield Input(placeholder="what happened, who was told, ticket number...", id="note-input")
            yield Static("Enter: confirm · Escape: cancel", classes="modal-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
