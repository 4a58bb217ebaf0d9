"""A value for a ``<PLACEHOLDER>``; masked for secrets, which stay in memory only."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from runbook.sanitize.redaction import secret_value_problem
from tui import format as fmt


class PlaceholderModal(ModalScreen["str | None"]):
    """Dismisses the value (never empty), or None on Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="placeholder.cancel", tooltip="Do not run the step")]

    def __init__(self, name: str, *, secret: bool, where: str = "") -> None:
        super().__init__()
        self.placeholder_name = name
        self.secret = secret
        self.where = where

    def compose(self) -> ComposeResult:
        kind = "🔒 secret (kept in memory only, asked again on resume)" if self.secret else "value (journaled)"
        with Vertical(classes="modal-dialog"):
            yield Label(fmt.line(f"Value for <{self.placeholder_name}>"), classes="modal-title")
            yield Static(fmt.line(f"{kind}{' · ' + self.where if self.where else ''}"), classes="modal-message")
            yield Input(password=self.secret, placeholder=fmt.visible(self.placeholder_name, multiline=False), id="value-input")
            yield Static("Enter: confirm · Escape: cancel", classes="modal-hint")
            yield Static("", id="error", classes="modal-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value:
            self.query_one("#error", Static).update("✘ a value is required")
            return
        problem = secret_value_problem(event.value) if self.secret else None
        if problem:
            self.query_one("#error", Static).update(f"✘ {problem}")
            return
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
