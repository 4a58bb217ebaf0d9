"""Every custom Textual message of the TUI, declared in one place (Harlequin style).

Widgets post these upward; :class:`tui.screens.main.MainScreen` handles them and
turns them into session intents.  No message is ever posted per output line:
output goes through :class:`tui.widgets.output.OutputPane`'s buffer, flushed on a timer.
"""

from __future__ import annotations

from textual.message import Message


class TaskSelected(Message):
    """The tree cursor moved to a task (``task_id``), a phase gate (``gate:<n>``) or a
    checklist section (``section:<n>``).  ``open``: the operator pressed Enter on it."""

    def __init__(self, task_id: str, open: bool = False) -> None:
        super().__init__()
        self.task_id = task_id
        self.open = open


class StepFocused(Message):
    """The operator moved to a step of the shown task (a rollback step when ``rollback``)."""

    def __init__(self, task_id: str, step: int, rollback: bool = False) -> None:
        super().__init__()
        self.task_id = task_id
        self.step = step
        self.rollback = rollback


class CheckboxToggleRequested(Message):
    """Tick (``checked`` True) or untick a checkbox.  The journal decides; the widget only asks."""

    def __init__(self, key: str, checked: bool) -> None:
        super().__init__()
        self.key = key
        self.checked = checked


class ProbeAcceptRequested(Message):
    """Accept the passing probe result of a checkbox: tick it with the probe as evidence."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


class StateRefreshed(Message):
    """Posted once per flush tick (never per event) after new journal records arrived."""
