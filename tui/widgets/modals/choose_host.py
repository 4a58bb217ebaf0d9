"""Choose one host to run a step on (``h``): the step's targets first, then every inventory host."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList

from tui import format as fmt


class ChooseHostModal(ModalScreen["str | None"]):
    """Dismisses the chosen host name, or None on Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="choose_host.cancel", tooltip="Do not run")]

    def __init__(self, title: str, hosts: list[str], labels: list[str] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.hosts = hosts
        self.labels = labels or hosts

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-dialog"):
            yield Label(fmt.line(self.title_text), classes="modal-title")
            yield OptionList(*(fmt.line(label) for label in self.labels), id="hosts")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.hosts[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)
