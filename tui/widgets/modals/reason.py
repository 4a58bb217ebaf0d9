"""A required reason: overriding a guard, skipping a step or task, unticking a box, rollback."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tui import format as fmt


class ReasonModal(ModalScreen["str | None"]):
    """Dismisses the reason text (never empty), or None on Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="reason.cancel", tooltip="Go back; nothing is recorded")]

    def __init__(self, title: str, message: str, *, placeholder: str = "reason (required, journaled)") -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-dialog"):
            yield Label(fmt.line(self.title_text), classes="modal-title")
            yield Static(fmt.safe(self.message), classes="modal-message")
            yield Input(placeholder=self.placeholder, id="reason-input")
            yield Static("Enter: confirm · Escape: cancel", classes="modal-hint")
            yield Static("", id="error", classes="modal-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            self.query_one("#error", Static).update("✘ a reason is required")
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
