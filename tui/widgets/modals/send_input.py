"""Type a line into a running PTY step (masked by default: it is often a password)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tui import format as fmt


class SendInputModal(ModalScreen["str | None"]):
    """Dismisses the typed line (without newline), or None on Escape.  Input is never journaled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="send_input.cancel", tooltip="Send nothing"),
        Binding("ctrl+r", "reveal", "Show/hide", id="send_input.reveal", tooltip="Show or mask what you type"),
    ]

    def __init__(self, host: str, task_id: str, step: int) -> None:
        super().__init__()
        self.host = host
        self.where = f"{task_id} step {step}"

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-dialog"):
            yield Label(fmt.line(f"Input for {self.host}"), classes="modal-title")
            yield Static(fmt.line(f"{self.where} · Enter sends the line · ctrl+r shows/masks it"), classes="modal-message")
            yield Input(password=True, id="pty-input")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_reveal(self) -> None:
        field = self.query_one(Input)
        field.password = not field.password

    def action_cancel(self) -> None:
        self.dismiss(None)
