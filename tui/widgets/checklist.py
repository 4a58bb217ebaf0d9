"""Checkboxes (prerequisites, acceptance criteria, document checklists) with probe results.

A row never changes its own tick: it asks (:class:`CheckboxToggleRequested`), the
session journals the decision and the next state refresh shows it.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from runbook.model import Checkbox
from sessions.state.state import SessionState
from tui import format as fmt
from tui.messages import CheckboxToggleRequested, ProbeAcceptRequested

PROBE_ICON = {"pass": "✔", "fail": "✘", "error": "!", "not_configured": "–"}


class CheckItem(Static, can_focus=True):
    """One checkbox row: ``[x] text`` plus who ticked it and the probe result, if any."""

    BINDINGS = [
        Binding("space,x", "toggle_box", "Tick/untick", id="checkbox.toggle", tooltip="Tick or untick this checkbox (journaled)"),
        Binding("p", "accept_probe", "Accept probe", id="checkbox.accept_probe",
                tooltip="Tick this checkbox with its passing probe result as evidence"),
        Binding("up,k", "app.focus_previous", "Previous", show=False, id="checkbox.previous",
                tooltip="Previous step or checkbox"),
        Binding("down,j", "app.focus_next", "Next", show=False, id="checkbox.next", tooltip="Next step or checkbox"),
    ]

    def __init__(self, box: Checkbox, depth: int = 0) -> None:
        super().__init__(classes="check-item")
        self.box = box
        self.depth = depth  # nested under another checkbox: indented
        self.checked = box.checked
        self.probe_status: str | None = None
        self._state_seen: SessionState | None = None  # to redraw the focus mark
        self._marked = False  # focused: drawn with a mark

    def refresh_state(self, state: SessionState) -> None:
        self._state_seen = state
        saved = state.checkboxes.get(self.box.key)
        self.checked = saved.checked if saved is not None else self.box.checked
        probe = state.probes.get(self.box.key)
        self.probe_status = probe.status if probe is not None else None
        text = Text("▶ " if self._marked else "  ", "bold")  # focus is a mark, not only a colour
        text.append("  " * self.depth)
        text.append("[x] " if self.checked else "[ ] ", "bold green" if self.checked else "bold")
        text.append_text(fmt.inline_markdown(self.box.text))
        if saved is not None and saved.checked and saved.who:
            text.append(fmt.line(f"  ✔ {saved.who}", "dim"))
            if saved.evidence:
                text.append(fmt.safe(f" ({saved.evidence})", "dim"))
        if probe is not None:
            style = "green" if probe.status == "pass" else "red"
            text.append(f"\n    {PROBE_ICON.get(probe.status, '?')} probe {probe.status}", style)
            if probe.evidence:
                text.append(fmt.safe(f": {probe.evidence}", "dim"))
            if probe.status == "pass" and not self.checked:
                text.append("  [p] accept", "bold")
        elif self.box.probe:
            text.append(fmt.safe(f"\n    probe: {self.box.probe}", "dim"))
        self.set_class(self.checked, "-checked")
        self.update(text)

    def on_focus(self) -> None:
        self._marked = True
        if self._state_seen is not None:
            self.refresh_state(self._state_seen)

    def on_blur(self) -> None:
        self._marked = False
        if self._state_seen is not None:
            self.refresh_state(self._state_seen)

    def action_toggle_box(self) -> None:
        self.post_message(CheckboxToggleRequested(self.box.key, not self.checked))

    def action_accept_probe(self) -> None:
        self.post_message(ProbeAcceptRequested(self.box.key))


class Checklist(Vertical):
    """A titled group of :class:`CheckItem` rows."""

    def __init__(self, boxes: tuple[Checkbox, ...], *, id: str | None = None) -> None:
        depth: dict[str, int] = {}
        for b in boxes:  # a parent comes before its children
            depth[b.key] = depth[b.parent] + 1 if b.parent in depth else 0
        super().__init__(*(CheckItem(b, depth[b.key]) for b in boxes), id=id, classes="checklist")

    def refresh_state(self, state: SessionState) -> None:
        for item in self.query(CheckItem):
            item.refresh_state(state)
