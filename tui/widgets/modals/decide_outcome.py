"""Decide a step whose outcome is unknown, or whose automatic expectation was not met:
succeeded (checked by hand), failed, or re-run."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tui import format as fmt

DECISIONS = ("succeeded", "failed", "rerun")


class DecideOutcomeModal(ModalScreen["tuple[str, str] | None"]):
    """Dismisses ``(decision, reason)``; the reason is required.  Escape gives None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="decide.cancel", tooltip="Decide later")]

    def __init__(self, what: str, why: str, *, expectation: bool = False) -> None:
        super().__init__()
        self.what = what
        self.why = why
        self.expectation = expectation  # the command succeeded but an automatic Expected: was not met
        self.decision: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-dialog"):
            if self.expectation:
                yield Label("✘ Failed (expectation)", classes="modal-title")
                text = f"{self.what}\nThe command succeeded, but the expected output was not seen: {self.why}"
            else:
                yield Label("? Outcome unknown", classes="modal-title")
                text = f"{self.what}\nThe end of the command was not seen: {self.why}"
            yield Static(fmt.safe(text), classes="modal-message")
            yield Input(placeholder="what you checked (required, journaled)", id="reason-input")
            with Horizontal(classes="modal-buttons"):
                yield Button("✔ Succeeded", id="succeeded", variant="success")
                yield Button("✘ Failed", id="failed", variant="error")
                yield Button("↻ Re-run", id="rerun", variant="primary")
            yield Static("", id="error", classes="modal-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#succeeded", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        reason = self.query_one(Input).value.strip()
        if not reason:
            self.query_one("#error", Static).update("✘ say what you checked first (a reason is required)")
            self.query_one(Input).focus()
            return
        self.dismiss((str(event.button.id), reason))

    def action_cancel(self) -> None:
        self.dismiss(None)
