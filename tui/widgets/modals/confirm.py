"""Yes/no confirmation (a HIGH or CRITICAL task is about to start, a task is finished early...)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui import format as fmt


class ConfirmModal(ModalScreen[bool]):
    """Ask a yes/no question.  ``y`` / Enter on *Yes* confirms; ``n`` / Escape declines."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes", tooltip="Confirm and go ahead"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no", tooltip="Decline; nothing happens"),
    ]

    def __init__(self, title: str, message: str, *, yes: str = "Yes", no: str = "No", danger: bool = False) -> None:
        super().__init__(classes="-danger" if danger else "")
        self.title_text = title
        self.message = message
        self.yes_label = yes
        self.no_label = no

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-dialog"):
            yield Label(fmt.line(self.title_text), classes="modal-title")
            yield Static(fmt.safe(self.message), classes="modal-message")
            with Horizontal(classes="modal-buttons"):
                yield Button(f"{self.yes_label} (y)", id="yes", variant="error" if self.has_class("-danger") else "primary")
                yield Button(f"{self.no_label} (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)
