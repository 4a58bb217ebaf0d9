"""Which hosts a re-run (``R``) goes to: all of the step's hosts, the failed ones, or one."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList

ALL = "all"
FAILED = "failed"


def _names(hosts: Sequence[str], limit: int = 4) -> str:
    return ", ".join(hosts[:limit]) + (f", +{len(hosts) - limit} more" if len(hosts) > limit else "")


class RerunHostsModal(ModalScreen["tuple[str, tuple[str, ...]] | None"]):
    """Dismisses ``("all", hosts)``, ``("failed", failed_hosts)`` or ``("host", (name,))``; None on Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="rerun_hosts.cancel", tooltip="Do not run again")]

    def __init__(self, title: str, hosts: Sequence[str], failed: Sequence[str]) -> None:
        super().__init__()
        self.title_text = title
        self.choices: list[tuple[str, tuple[str, ...]]] = [(ALL, tuple(hosts))]
        labels = [Text(f"all {len(hosts)} host(s): {_names(hosts)}")]
        if failed:
            self.choices.append((FAILED, tuple(failed)))
            labels.append(Text(f"the failed ones ({len(failed)}): {_names(failed)}"))
        for host in hosts:
            self.choices.append(("host", (host,)))
            labels.append(Text(f"only {host}"))
        self.labels = labels

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-dialog"):
            yield Label(Text(self.title_text), classes="modal-title")
            yield OptionList(*self.labels, id="rerun-hosts")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.choices[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)
