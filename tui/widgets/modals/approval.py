"""Waiting for a four-eyes approval: the request to give an approver, polling for the signature,
or the path of a signature file typed in.  The step does not run until this dismisses True."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tui import format as fmt

#: ``check(path or None)`` -> (granted, what to say): None polls the request's own ``.sig``
Check = Callable[["str | None"], "tuple[bool | None, str]"]


class ApprovalModal(ModalScreen[bool]):
    """Dismisses True once an approval is granted, False on Escape (nothing runs)."""

    BINDINGS = [Binding("escape", "cancel", "Stop waiting", id="approval.cancel",
                        tooltip="Stop waiting for the approval; nothing runs (the request stays valid)")]

    def __init__(self, task: str, message: str, request_path: str, signature_path: str, check: Check,
                 *, poll: float = 0.5) -> None:
        super().__init__()
        self.task_id = task
        self.message = message
        self.request_path = request_path
        self.signature_path = signature_path
        self.check = check
        self.poll = poll

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-dialog", id="approval-dialog"):
            yield Label(fmt.line(f"⚿ Four-eyes approval: {self.task_id}"), classes="modal-title")
            yield Static(fmt.safe(self.message), classes="modal-message")
            body = Text()
            body.append("Give an approver the request:\n  ")
            body.append(fmt.line(self.request_path, "bold"))
            body.append("\nThey run:\n  ")
            body.append(fmt.line(f"runbook approve {self.request_path} --sign KEY", "bold"))
            body.append("   (or --sign-agent)\nWaiting for ")
            body.append(fmt.line(self.signature_path, "bold"))
            body.append(" … or type the path of a signature file they sent:")
            yield Static(body, id="approval-how")
            yield Input(placeholder="signature file (Enter to check)", id="approval-input")
            yield Static("Enter: check the file · Escape: stop waiting (nothing runs)", classes="modal-hint")
            yield Static("", id="approval-status", classes="modal-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self.set_interval(self.poll, self._poll)

    def _poll(self) -> None:
        self._verdict(*self.check(None))

    def _verdict(self, granted: bool | None, text: str) -> None:
        if granted:
            self.dismiss(True)
        elif text:
            self.query_one("#approval-status", Static).update(fmt.safe(text))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path = event.value.strip()
        if not path:
            self.query_one("#approval-status", Static).update("✘ give the path of a signature file")
            return
        self._verdict(*self.check(path))

    def action_cancel(self) -> None:
        self.dismiss(False)
