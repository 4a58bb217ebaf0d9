"""The Textual app: opens the session (or asks to resume), then shows the main screen.

Kept small: the screens, widgets and operator flows do the work.  Everything runs
on the app's asyncio loop; the engine's coroutines run in workers.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

from textual.app import App
from textual.binding import Binding

from runbook.errors import UserError
from runbook.sanitize.terminal_text import visible
from tui.launch import Launch

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

    from sessions.engine.engine import Engine
    from sessions.engine.session import Session
    from sessions.engine.stop_signals import StopSignals
    from sessions.team.mirror import JournalMirror, MirrorStatus
    from sessions.team.notify import Notifier
    from sessions.team.watch import WatchedSession


def _commands_provider() -> type:
    from tui.palette import RunbookCommands  # textual.command is imported when the palette opens

    return RunbookCommands


class RunbookApp(App[int]):
    """``runbook run`` / ``resume`` / ``demo``.  The exit code is the app's return value."""

    CSS_PATH = "app.tcss"
    TITLE = "runbook"
    COMMANDS = App.COMMANDS | {_commands_provider}
    BINDINGS = [
        Binding("ctrl+p", "command_palette", "Palette", show=False, id="app.palette",
                tooltip="Every action, jump to a task, run a given step"),
    ]
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, launch: Launch, *, session: Session | WatchedSession | None = None,
                 engine: Engine | None = None) -> None:
        super().__init__()
        self.launch = launch
        self.session = session  # opened by the app, or a read-only WatchedSession (tui.watching)
        self.engine = engine
        self.error: UserError | None = None
        self._session_closed = False
        self._stop_signals: StopSignals | None = None
        self.notifier: Notifier | None = None  # when notifications are on
        self.mirror: JournalMirror | None = None  # --mirror DEST

    def on_mount(self) -> None:
        from sessions.engine.stop_signals import StopSignals

        # SIGTERM/SIGHUP: stop the running commands as Ctrl-C does, journal it, exit 128+n
        self._stop_signals = StopSignals(lambda: self.session, lambda: self.engine, self._stopped_by_signal)
        self._stop_signals.install()
        if self.session is not None:
            self._show_main()
        elif self.launch.mode == "offer" and self.launch.offer_summary is not None:
            from tui.screens.resume import ResumeScreen

            self.push_screen(ResumeScreen(self.launch.offer_summary), self._on_resume_choice)
        else:
            self._open("resume" if self.launch.mode == "resume" else "new")

    def _on_resume_choice(self, choice: str | None) -> None:
        if choice in ("resume", "new"):
            self._open(choice)
        else:
            self.exit(0)

    def _open(self, choice: str) -> None:
        try:
            self.session = self.launch.open_session(choice)
            self.engine = self.launch.engine_for(self.session)
            self.launch.set_approvers(self.session)
        except UserError as exc:
            self.error = exc
            self.exit(exc.exit_code)
            return
        self._show_main()

    def _show_main(self) -> None:
        from sessions.engine.session import Session
        from tui.screens.main import MainScreen

        session, engine = self.session, self.engine
        assert isinstance(session, Session) and engine is not None, "the main screen needs an open session"
        try:
            self.notifier = self.launch.notifier_for(session)
        except UserError as exc:  # a bad notify: URL in the runbook; the session goes on without
            self.notify(f"notifications are off: {exc}", title="notify", severity="warning", timeout=30)
        self.push_screen(MainScreen(session, engine, clock=self.launch.clock))
        try:
            self.mirror = self.launch.mirror_for(session, self._mirror_changed)
        except UserError as exc:  # a bad mirror: in the runbook; the session goes on without
            self.notify(f"the journal mirror is off: {exc}", title="mirror", severity="warning", timeout=30)
        if self.mirror is not None:
            self.set_interval(0.5, self._show_mirror)
        # What start-up built (modules, the runbook, the screen's widgets) lives as long as the
        # app: out of the collector's reach, a full collection while a step floods output scans
        # only what the session made since, instead of stalling keys for tens of milliseconds.
        self.call_after_refresh(gc.freeze)
        session.on_write_error(self._journal_failed)
        if session.resumed:  # re-attach detached runs whose end was not seen (the rest were marked unknown)
            self.run_worker(engine.recover(), group="recover", exclusive=True, exit_on_error=False)

    def _mirror_changed(self, status: MirrorStatus) -> None:
        """Lost, restored, refused: a notice (the session goes on whatever the mirror does)."""
        from sessions.team.mirror import MirrorState, change_text

        if status.state is not MirrorState.STOPPED:
            bad = status.state in (MirrorState.LOST, MirrorState.REFUSED)
            self.notify(change_text(status), title="mirror", severity="warning" if bad else "information",
                        timeout=30 if bad else 5)
        self._show_mirror()

    def _show_mirror(self) -> None:
        from tui.widgets.header import RunbookHeader

        if self.mirror is None:
            return
        for screen in self.screen_stack:  # the main screen's header, under a modal too
            for header in screen.query(RunbookHeader):
                header.show_mirror(self.mirror.status)

    def _journal_failed(self, exc: Exception) -> None:
        """Disk full or I/O error on the journal: the engine stops the running step; say so now."""
        from tui.widgets.modals.confirm import ConfirmModal

        message = (f"{exc}\n\nThe running step is being stopped (INT, then TERM, then KILL): nothing more "
                   "can be recorded. The journal is valid up to its last durable record; free some space, "
                   "then resume the session (its outcome will be unknown, never success).")
        modal = ConfirmModal("The journal cannot be written", message, yes="Quit", no="Stay", danger=True)
        self.call_later(self.push_screen, modal, self._after_journal_failed)

    def _after_journal_failed(self, quit_now: bool | None) -> None:
        if quit_now:
            self.run_worker(self._quit_after_failure(), exit_on_error=False)

    async def _quit_after_failure(self) -> None:
        await self._close("journal write failed")
        self.exit(1)

    def on_unmount(self) -> None:
        if self._stop_signals is not None:
            self._stop_signals.remove()

    async def _stopped_by_signal(self, code: int) -> None:
        name = self._stop_signals.name if self._stop_signals is not None else "a signal"  # installed: the one that called
        await self._close(f"stopped by {name}")
        self.exit(code)

    async def close_session(self, reason: str = "quit") -> None:
        """Close the engine and the session (stays resumable), then exit."""
        await self._close(reason)
        self.exit(0)

    async def shutdown(self, reason: str = "quit") -> None:
        """Idempotent close, also called by the CLI after the app returned (crash or ctrl+q)."""
        await self._close(reason)

    async def _close(self, reason: str) -> None:
        if self._session_closed:
            return
        self._session_closed = True
        if self.engine is not None:
            await self.engine.close()
        if self.notifier is not None:  # the closing message, and what is still waiting (bounded)
            await self.notifier.finish(reason)
        if self.session is not None:
            self.session.close(reason)
        if self.mirror is not None:  # the last records (session_closed), bounded
            await self.mirror.finish()

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Every toast is plain text: messages quote documents, hosts and errors (never markup,
        never control characters)."""
        super().notify(visible(message), title=visible(title, multiline=False), severity=severity,
                       timeout=timeout, markup=False)

    async def action_quit(self) -> None:
        await self.close_session()
