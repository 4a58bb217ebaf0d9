"""The main screen, read-only: a session another process writes, followed live.

Everything that shows (tree, task, steps, checkboxes, guards, output per host, the
window clock) is the main screen's own; every action that would write (run, cancel,
input, note, skip, decide, done, rollback, tick, probes, export, copy to a file) says
"read-only: watching" instead.  Quitting only stops watching: nothing is journaled.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import on, work
from textual.binding import Binding

from sessions.journal import events as ev
from sessions.journal.journal import Record
from sessions.state.state import SessionState
from sessions.team.watch import READ_ONLY, WatchedSession
from tui.messages import CheckboxToggleRequested, ProbeAcceptRequested
from tui.screens.main import MainScreen

# the main screen's actions that write (the journal, or a file in the session directory)
WRITE_ACTIONS = {
    "run_step": "running a step", "run_task": "running the task", "run_on_host": "running on a host",
    "retarget": "choosing a target", "rerun": "re-running a step", "cancel": "cancelling a step",
    "send_input": "typing into a step", "note": "a note", "skip_step": "skipping a step",
    "skip_task": "skipping a task", "decide": "deciding an outcome", "done": "finishing a task",
    "probes": "running probes", "export": "exporting (a file in the session directory)",
    "copy_output": "copying the output to a file",
}


def _watch_bindings() -> list[Binding | tuple[str, str] | tuple[str, str, str]]:
    """The keys that would write stay (each says "read-only: watching") but leave the footer."""
    out: list[Binding | tuple[str, str] | tuple[str, str, str]] = [
        Binding(b.key, b.action, b.description, show=False, priority=b.priority, id=f"watch.{b.id}",
                tooltip=f"{READ_ONLY}: {WRITE_ACTIONS[b.action]} is for the operator", key_display=b.key_display)
        for b in MainScreen.BINDINGS if isinstance(b, Binding) and b.action in WRITE_ACTIONS
    ]
    out.append(Binding("b", "rollback", "Rollback", show=False, id="watch.rollback",
                       tooltip="Show the rollback the operator started"))
    out.append(Binding("q", "quit", "Stop watching", id="watch.quit", tooltip="Stop watching (nothing is written)"))
    return out


class WatchScreen(MainScreen):
    """:class:`MainScreen` over a :class:`~sessions.team.watch.WatchedSession`."""

    BINDINGS = _watch_bindings()

    session: WatchedSession  # (MainScreen's, narrowed: a watch screen is only ever on one)
    history_ready = False  # polling waits for the output history, so no line is shown twice

    def on_mount(self) -> None:
        self._history_upto = self.session.tail.seq
        self.history_ready = not self.state.runs
        # MainScreen.on_mount runs next (Textual calls every class's handler): it subscribes and draws
        self.notify("Watching: this view follows the journal and changes nothing.", title=READ_ONLY, timeout=8)

    def _read_only(self, what: str) -> None:
        self.notify(f"{what} is for the operator of this session; this view only follows it", title=READ_ONLY,
                    severity="warning", timeout=6)

    @work(group="history", exclusive=True, exit_on_error=False)
    async def _load_history(self) -> None:
        """Each host's output tail up to the record the screen opened at; then live output."""
        from tui.history import output_tails

        try:
            tails = await output_tails(self.session.journal.path, self.output.max_lines, upto=self._history_upto)
            latest: dict[str, str] = {}
            for run in sorted(self.state.runs.values(), key=lambda r: r.seq):
                for host in run.hosts.values():
                    latest[host.host] = host.status
            for name, lines in tails.items():
                self.output.preload(name, lines)
                if name in latest:
                    self.output.set_host_status(name, latest[name])
        finally:
            self.history_ready = True

    def _on_record(self, record: Record, state: SessionState) -> None:
        super()._on_record(record, state)
        event = record.event
        if isinstance(event, ev.SessionClosed):
            self.notify(f"the operator closed the session ({event.reason}); still watching (it may be resumed)",
                        title="session closed", timeout=15)
        elif isinstance(event, ev.SessionOpened) and event.resumed:
            self.notify(f"{event.operator or '?'} resumed the session", title="session", timeout=10)

    # -- every action that would write -----------------------------------------------------
    def action_rollback(self) -> None:
        item = self.item
        started = item is not None and (self.state.tasks.get(item.id) is not None
                                        and self.state.tasks[item.id].rollback_started)
        if self.task_view.rollback_mode or started:
            super().action_rollback()  # only shows the rollback the operator started
        else:
            self._read_only("starting a rollback")

    def action_quit(self) -> None:
        self.app.exit(0)

    @on(CheckboxToggleRequested)
    def _toggle_checkbox(self, message: CheckboxToggleRequested) -> None:
        message.prevent_default()
        self._read_only("ticking a checkbox")
        self._dirty = True  # the box shows the journal's state again

    @on(ProbeAcceptRequested)
    def _accept_probe(self, message: ProbeAcceptRequested) -> None:
        message.prevent_default()
        self._read_only("accepting a probe")


def _refusal(action: str, what: str) -> Callable[..., None]:
    def refuse(self: WatchScreen, *args: object) -> None:
        self._read_only(what)

    refuse.__name__ = f"action_{action}"
    refuse.__doc__ = f"Refused while watching: {what}."
    return refuse


for _action, _what in WRITE_ACTIONS.items():
    setattr(WatchScreen, f"action_{_action}", _refusal(_action, _what))
