"""The target picker: where a step runs when nobody chose, or retargeting a step before it runs.

A host pattern field with a live preview of the hosts it matches (name, address,
user); below it the candidates: the suggestions first (from the document; for a
rollback the hosts where the task failed), then every inventory host and group,
then ``local``, offered as "this machine (HOSTNAME)" and never preselected.
Everything shown is :class:`rich.text.Text`: host names and document text are
data, never markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Label, OptionList, Static

from runbook.errors import UserError

if TYPE_CHECKING:
    from runbook.targets.inventory import Target
    from runbook.targets.suggest import Suggestion

PREVIEW_ROWS = 8


@dataclass(frozen=True)
class TargetChoice:
    """What the operator chose: ``pattern`` and the ``hosts`` it matched; ``all_untargeted``: also
    for the task's other steps without a target; ``save``: bind it in the bindings file too."""

    pattern: str
    hosts: tuple[str, ...]
    all_untargeted: bool = False
    save: bool = False


@dataclass(frozen=True)
class Candidate:
    pattern: str
    label: Text


def _is_local(pattern: str) -> bool:
    return any(p.strip() in ("local", "localhost") for p in pattern.split(","))


class ChooseTargetModal(ModalScreen["TargetChoice | None"]):
    """Dismisses a :class:`TargetChoice`, or None on Escape (nothing is journaled then)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="choose_target.cancel", tooltip="Do not choose; nothing runs")]

    def __init__(
        self,
        title: str,
        context: str,
        *,
        suggestions: Sequence[Suggestion],
        hosts: Sequence[Target],
        groups: dict[str, tuple[str, ...]] | None = None,
        resolve: Callable[[str], Sequence[Target]],
        local_name: str,
        current: str = "",
        all_untargeted: bool | None = None,
        save_to: str = "",
    ) -> None:
        super().__init__()
        self.title_text = title
        self.context = context
        self.resolve = resolve
        self.local_name = local_name
        self.all_untargeted = all_untargeted
        self.save_to = save_to
        self.candidates = self._candidates(suggestions, hosts, groups or {}, local_name)
        first = next((s.pattern for s in suggestions if not _is_local(s.pattern)), "")
        if suggestions and _is_local(suggestions[0].pattern):
            first = ""  # the first suggestion is this machine: never preselected
        self.initial = current if current and not _is_local(current) else first

    @staticmethod
    def _candidates(suggestions: Sequence[Suggestion], hosts: Sequence[Target], groups: dict[str, tuple[str, ...]],
                    local_name: str) -> list[Candidate]:
        out: list[Candidate] = []
        seen: set[str] = set()
        for s in suggestions:
            label = Text.assemble(("★ suggested  ", "bold yellow"), (s.pattern, "bold"), ("  " + s.why, "dim"))
            if _is_local(s.pattern):
                label.append(f"  (this machine: {local_name})", "yellow")
            out.append(Candidate(s.pattern, label))
            seen.add(s.pattern)
        for h in hosts:
            if h.name in seen:
                continue
            address = h.host + (f":{h.port}" if h.port else "")
            out.append(Candidate(h.name, Text.assemble((h.name, "bold"), ("  " + address, "cyan"),
                                                       ("  " + (h.user or ""), "dim"))))
            seen.add(h.name)
        for name, members in groups.items():
            if name == "all" or name in seen or not members:
                continue
            shown = ", ".join(members[:3]) + (", ..." if len(members) > 3 else "")
            out.append(Candidate(name, Text.assemble((name, "bold"), (f"  group of {len(members)}: {shown}", "dim"))))
            seen.add(name)
        if "local" not in seen:
            out.append(Candidate("local", Text.assemble(("local", "bold"), (f"  this machine ({local_name})", ""))))
        return out

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-dialog", id="target-dialog"):
            yield Label(Text(self.title_text), classes="modal-title")
            yield Static(Text(self.context), classes="modal-message")
            yield Input(value=self.initial, placeholder="host pattern: masters[0], web-1,web-2, db*, local",
                        id="target-pattern")
            yield Static(Text(""), id="target-preview")
            yield OptionList(*(c.label for c in self.candidates), id="target-candidates")
            if self.all_untargeted is not None:
                yield Checkbox(Text("also for the task's other steps without a target"), self.all_untargeted,
                               id="target-all")
            if self.save_to:
                yield Checkbox(Text(f"save to {self.save_to} (the Markdown is not touched)"), False, id="target-save")
            yield Static("Enter: choose · Tab: the list (Enter there copies a candidate) · Escape: cancel",
                         classes="modal-hint")
            yield Static("", id="error", classes="modal-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self._preview(self.initial)

    # -- preview ---------------------------------------------------------------------
    def _matched(self, pattern: str) -> tuple[list[Target], str]:
        if not pattern.strip():
            return [], "type a host pattern, or pick a candidate below"
        try:
            return list(self.resolve(pattern)), ""
        except UserError as exc:
            return [], str(exc)

    def _preview(self, pattern: str) -> None:
        hosts, problem = self._matched(pattern)
        text = Text()
        if problem:
            text.append(problem, "yellow")
        else:
            text.append(f"runs on {len(hosts)} host{'s' if len(hosts) != 1 else ''}:\n", "bold")
            for h in hosts[:PREVIEW_ROWS]:
                if h.local and not h.in_inventory:
                    address, user = f"this machine ({self.local_name})", ""
                else:
                    address = h.host + (f":{h.port}" if h.port else "")
                    user = (h.user or "") + ("  (local connection)" if h.local else "")
                text.append(f"  {h.name:<24}", "bold")
                text.append(f" {address:<24}", "cyan")
                text.append(f" {user}\n", "dim")
            if len(hosts) > PREVIEW_ROWS:
                text.append(f"  ... and {len(hosts) - PREVIEW_ROWS} more\n", "dim")
        self.query_one("#target-preview", Static).update(text)

    @property
    def pattern(self) -> str:
        return self.query_one(Input).value.strip()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one("#error", Static).update("")
        self._preview(event.value)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        field = self.query_one(Input)
        field.value = self.candidates[event.option_index].pattern
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        pattern = event.value.strip()
        hosts, problem = self._matched(pattern)
        if problem or not hosts:
            self.query_one("#error", Static).update(Text(f"✘ {problem or 'no host matches'}"))
            return
        everywhere = self.query("#target-all")
        save = self.query("#target-save")
        self.dismiss(TargetChoice(
            pattern, tuple(h.name for h in hosts),
            all_untargeted=bool(everywhere and everywhere.first(Checkbox).value),
            save=bool(save and save.first(Checkbox).value),
        ))

    def action_cancel(self) -> None:
        self.dismiss(None)
