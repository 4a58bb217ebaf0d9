"""The resume prompt: ``runbook run FILE`` found an unfinished session of this runbook."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Label, Static

from tui import format as fmt

if TYPE_CHECKING:
    from sessions.store import SessionSummary


def _when(ts: str) -> str:
    """``2026-11-27T02:10:00.123Z`` -> ``2026-11-27 02:10:00 UTC``."""
    return f"{ts[:10]} {ts[11:19]} UTC" if ts and len(ts) >= 19 else ts


def describe(summary: SessionSummary) -> Text:
    """A few lines about a session summary."""
    text = Text()
    rows = [
        ("session", summary.id),
        ("runbook", summary.runbook_title),
        ("file", Path(summary.runbook_path).name if summary.runbook_path else ""),
        ("operators", ", ".join(summary.operators)),
        ("started", _when(summary.started or "")),
        ("last activity", _when(summary.last_activity or "")),
        ("progress", summary.progress),
        ("status", summary.status),
    ]
    for label, value in rows:
        if value:
            text.append(f"{label:>14}: ", "bold")
            text.append(fmt.line(value))
            text.append("\n")
    text.rstrip()
    return text


class ResumeScreen(Screen[str]):
    """Dismisses ``"resume"``, ``"new"`` or ``"quit"``."""

    BINDINGS = [
        Binding("r", "choose('resume')", "Resume", id="resume.resume", tooltip="Reopen this session where it stopped"),
        Binding("n", "choose('new')", "New session", id="resume.new", tooltip="Start a new session; the old one stays on disk"),
        Binding("q,escape", "choose('quit')", "Quit", id="resume.quit", tooltip="Quit without opening a session"),
    ]

    def __init__(self, summary: SessionSummary) -> None:
        super().__init__(id="resume")
        self.summary = summary

    def compose(self) -> ComposeResult:
        with Vertical(id="resume-box"):
            yield Label("An unfinished session of this runbook exists", classes="modal-title")
            yield Static(describe(self.summary), id="resume-details")
            with Horizontal(classes="modal-buttons"):
                yield Button("Resume (r)", id="resume-btn", variant="primary")
                yield Button("New session (n)", id="new-btn")
                yield Button("Quit (q)", id="quit-btn")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#resume-btn", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(str(event.button.id).removesuffix("-btn"))

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
