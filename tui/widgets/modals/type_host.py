"""Destructive-command guard: the operator types the target host name to go ahead."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from runbook.sanitize.terminal_text import visible
from tui import format as fmt


class TypeHostModal(ModalScreen[bool]):
    """Dismisses True only when the typed text equals ``expected``; Escape gives False."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="type_host.cancel", tooltip="Do not run the command")]

    def __init__(self, message: str, expected: str, commands: tuple[str, ...] = ()) -> None:
        super().__init__(classes="-danger")
        self.message = message
        self.expected = expected
        self.commands = commands  # exactly as they will run (secrets masked)

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-dialog"):
            yield Label("⚠ Destructive command", classes="modal-title")
            yield Static(fmt.safe(self.message), classes="modal-message")
            if self.commands:
                yield Label("It runs exactly:")
                yield Static(Text("\n".join(visible(c) for c in self.commands)), id="destructive-commands",
                             classes="modal-message")
            yield Label(fmt.line(f"Type the host name ({self.expected}) to run it:"))
            yield Input(placeholder=fmt.visible(self.expected, multiline=False), id="host-input")
            yield Static("Enter: confirm · Escape: cancel", classes="modal-hint")
            yield Static("", id="error", classes="modal-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip() == self.expected:
            self.dismiss(True)
        else:
            self.query_one("#error", Static).update(fmt.line(f"✘ '{event.value}' is not '{self.expected}'"))

    def action_cancel(self) -> None:
        self.dismiss(False)
