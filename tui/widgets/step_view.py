"""One step: title, highlighted code blocks, target hosts, placeholders, expected results,
and the latest run's status per host."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text
from textual.binding import Binding
from textual.widgets import Static

from runbook.model import Block, Diagnostic, Placeholder, Step
from sessions.state.state import SessionState, StepRun
from tui import format as fmt
from tui.messages import StepFocused

DIAGNOSTIC_STYLE = {"error": ("✘", "bold red"), "warning": ("⚠", "bold yellow"), "info": ("ℹ", "cyan")}
LANGS = {"sh": "bash", "shell": "bash", "console": "bash", "yml": "yaml", "": "text"}

# (item id, step, rollback) -> "web-1, web-2 (parallel)" or an error to show
TargetDescriber = Callable[[str, Step, bool], str]
# placeholder name -> True when a value is known for this session (in memory)
ValueKnown = Callable[[str], bool]


class StepView(Static, can_focus=True):
    """A focusable step card; focus makes it the step the step actions apply to."""

    BINDINGS = [
        Binding("up,k", "app.focus_previous", "Previous", show=False, id="step.previous", tooltip="Previous step or checkbox"),
        Binding("down,j", "app.focus_next", "Next", show=False, id="step.next", tooltip="Next step or checkbox"),
    ]

    def __init__(self, item_id: str, step: Step, *, rollback: bool, targets: str, value_known: ValueKnown,
                 diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(classes="step-view -rollback" if rollback else "step-view")
        self.item_id = item_id
        self.step = step
        self.diagnostics = tuple(diagnostics)  # lint findings inside the step, shown beside it
        self.rollback = rollback
        self.targets = targets
        self.value_known = value_known
        self.status = "pending"
        self.current = False
        self._shown: tuple[object, ...] = ()  # what the card shows, to skip identical updates

    def on_focus(self) -> None:
        self.post_message(StepFocused(self.item_id, self.step.number, self.rollback))

    def refresh_state(self, state: SessionState, current: bool) -> None:
        self.current = current
        self.set_class(current, "-current")
        run = state.step_run(self.item_id, self.step.number, self.rollback)
        self.status = state.step_status(self.item_id, self.step.number, self.rollback)
        if run is not None and not run.finished and self.status == "pending":
            self.status = "running"
        parts = self._render_parts(state, run)
        # the code blocks come from the step alone: only the text parts can change
        key = tuple((p.plain, tuple(p.spans)) if isinstance(p, Text) else type(p).__name__ for p in parts)
        if key != self._shown:  # an update lays the screen out again: only when something changed
            self._shown = key
            self.update(Group(*parts))

    def _status_line(self, state: SessionState, run: StepRun | None) -> Text:
        """Status, skip reason, duration, and the last outcome of each host over every run."""
        step = self.step
        status = Text("   ")
        status.append(f"{fmt.icon(self.status)} {fmt.word(self.status)}", fmt.style(self.status))
        skip = state.step_skips.get((self.item_id, step.number)) if not self.rollback else None
        if skip:
            status.append(fmt.line(f" ({skip})", "dim"))
        if run is not None:
            if run.finished and run.duration_s:
                status.append(f" {run.duration_s:.1f}s", "dim")
            matrix = state.step_matrix(self.item_id, step.number, self.rollback)
            if matrix.runs > 1:
                status.append(f" · {matrix.runs} runs", "dim")
            for cell in matrix.hosts:  # the last outcome of each host over every run
                status.append(fmt.line(f"  {fmt.icon(cell.status)} {cell.host}", fmt.style(cell.status)))
                if cell.runs > 1:
                    status.append(f" ×{cell.runs}", "dim")
                hrun = state.runs[cell.run_id].hosts.get(cell.host) if cell.run_id in state.runs else None
                if hrun is None:
                    continue
                if hrun.decidable:
                    what = "failed (expectation)" if hrun.status == "succeeded" else "unknown"
                    status.append(f" {what}, decided {hrun.decided}" if hrun.decided else f" {what} (o: decide)",
                                  "bold")
                elif hrun.exit_status not in (None, 0):
                    status.append(f" exit {hrun.exit_status}", "red")
        return status

    def _render_parts(self, state: SessionState, run: StepRun | None) -> list[RenderableType]:
        step = self.step
        parts: list[RenderableType] = []
        head = Text()
        head.append("▶ " if self.current else "  ", "bold")
        head.append(f"{'Rollback ' if self.rollback else ''}{step.number}. ", "bold")
        head.append_text(fmt.inline_markdown(step.title, "bold"))
        if step.hint:
            head.append(fmt.line(f" {step.hint}", "dim"))
        parts.append(head)
        parts.append(self._status_line(state, run))
        if not step.runnable:
            parts.append(Text("   manual step (nothing to run): skip it or note what you did", "dim italic"))
        else:
            parts.append(Text.assemble("   on: ", fmt.safe(self.targets, "cyan")))
        for d in self.diagnostics:
            icon, style = DIAGNOSTIC_STYLE.get(d.severity, ("·", "dim"))
            parts.append(Text.assemble(("   ", ""), (f"{icon} lint", style), fmt.safe(f" line {d.line}: {d.message}")))
        if step.placeholders:
            line = Text("   needs: ")
            for i, ph in enumerate(_unique(step.placeholders)):
                known = self.value_known(ph.name)
                if i:
                    line.append(", ")
                line.append(fmt.line(f"<{ph.name}>", "bold"))
                line.append(" 🔒" if ph.secret else "")
                line.append(" ✔ set" if known else " ✘ missing", "green" if known else "yellow")
            parts.append(line)
        if step.text:
            parts.append(fmt.safe(_indent(step.text.strip()), "italic"))
        for block in step.blocks:
            parts.extend(_block(block))
        for i, exp in enumerate(step.expected):
            line = Text.assemble("   Expected: ", fmt.inline_markdown(exp.text))
            if run is not None:
                for host in run.targets:
                    result = run.expectations.get((host, i))
                    if result is not None:
                        ok, _evidence = result
                        line.append(fmt.line(f"  {'✔' if ok else '✘'} {host}", "green" if ok else "red"))
            parts.append(line)
        return parts


def _unique(placeholders: Iterable[Placeholder]) -> Iterator[Placeholder]:
    seen: set[str] = set()
    for ph in placeholders:
        if ph.name not in seen:
            seen.add(ph.name)
            yield ph


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())


def _block(block: Block) -> list[RenderableType]:
    if block.kind == "file":
        label = Text.assemble(("   ⇪ file ", "bold"), fmt.line(block.path or "?", "cyan"),
                              fmt.line(f" mode {block.target.mode}" if block.target and block.target.mode else "", "dim"))
    elif block.kind == "output":
        label = Text("   expected output:", "dim")
    elif block.kind == "text":
        label = Text("   (not run)", "dim")
    else:
        label = None
    code = block.code.rstrip("\n") or " "
    syntax = Syntax(
        fmt.safe(code).plain,  # bidi, zero-width and control characters shown as escapes (Trojan Source)
        LANGS.get(block.lang, block.lang) or "text",
        theme="ansi_dark",
        word_wrap=True,
        background_color="default",
        padding=(0, 0, 0, 3),
    )
    _mark_escapes(syntax, code)
    return [label, syntax] if label is not None else [syntax]


def _mark_escapes(syntax: Syntax, code: str) -> None:
    """Highlight the escapes :func:`fmt.safe` wrote for characters that are not shown as themselves."""
    for number, raw in enumerate(code.split("\n"), 1):
        col = 0
        for piece, escaped in fmt.segments(raw):
            if escaped:
                syntax.stylize_range(fmt.ESCAPE_STYLE, (number, col), (number, col + len(piece)))
            col += len(piece)
