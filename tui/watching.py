"""``runbook watch SESSION``: the TUI, read-only, on a session another process writes.

The app polls the journal (:meth:`sessions.team.watch.WatchedSession.poll`, every 0.2 s by
default) and the screen renders what the fold says, as it does for the operator.  It
never takes the session's lock, never writes the journal or any file of the session,
and installs no signal handlers that would journal (a watcher's Ctrl-C or SIGTERM just
ends the watch).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import TYPE_CHECKING

from textual import events

from runbook.errors import UserError
from tui.app import RunbookApp
from tui.commands import need_terminal
from tui.launch import SIDECAR, Launch

if TYPE_CHECKING:
    from sessions.engine.engine import Engine
    from sessions.team.watch import WatchedSession

POLL_S = 0.2


class WatchApp(RunbookApp):
    """The app over a :class:`~sessions.team.watch.WatchedSession` (and an engine that only plans)."""

    def __init__(self, launch: Launch, *, session: WatchedSession, engine: Engine, poll_s: float = POLL_S) -> None:
        super().__init__(launch, session=session, engine=engine)
        self.watched = session
        self.poll_s = poll_s
        self._told_error = False

    def on_mount(self, event: events.Mount | None = None) -> None:
        from tui.screens.watch import WatchScreen

        if event is not None:
            event.prevent_default()  # not RunbookApp's: no signal handlers that journal, no main screen

        self.sub_title = "read-only: watching"
        assert self.engine is not None
        self.push_screen(WatchScreen(self.watched, self.engine, clock=self.launch.clock))
        self.set_interval(self.poll_s, self.poll, name="watch-poll")

    def poll(self) -> None:
        """Follow the journal (once the output history is on screen)."""
        screen = self.screen
        if not getattr(screen, "history_ready", True):
            return
        self.watched.poll()
        if self.watched.error and not self._told_error:
            self._told_error = True
            self.notify(self.watched.error, title="watch", severity="error", timeout=60)

    async def close_session(self, reason: str = "quit") -> None:
        await self._close(reason)
        self.exit(0)

    async def _close(self, reason: str) -> None:
        if self._session_closed:
            return
        self._session_closed = True
        self.watched.close(reason)  # stops following; journals nothing
        if self.engine is not None:
            await self.engine.close()


def _engine(session: WatchedSession) -> Engine:
    """An engine that only plans (the inventory the operator used, from the session's
    sidecar, read-only), so the steps show the hosts they run on."""
    from runbook.targets.inventory import Inventory
    from sessions.engine.engine import Engine

    inventory_path = None
    try:
        inventory_path = json.loads((session.dir / SIDECAR).read_text()).get("inventory")
    except (OSError, ValueError, AttributeError):
        pass
    try:
        inventory = Inventory.load(inventory_path)
    except UserError:
        inventory = Inventory.from_text("")
    return Engine(session, inventory)


def watch_cmd(args: argparse.Namespace) -> int:
    """Handler of ``runbook watch [SESSION]``."""
    from sessions.store import session_root
    from sessions.team.watch import WatchedSession

    poll_s = getattr(args, "poll", None) or POLL_S
    if not 0.01 <= poll_s <= 60:
        raise UserError(f"--poll must be between 0.01 and 60 seconds (got {poll_s:g})", 2)
    root = session_root(args.session_dir)
    session = WatchedSession.open(args.session, root=root)
    need_terminal("watch", f"without one: runbook journal show {session.id} --follow")
    launch = Launch(runbook=session.runbook, root=root, mode="watch")

    async def run() -> int:
        app = WatchApp(launch, session=session, engine=_engine(session), poll_s=poll_s)
        try:
            code = await app.run_async()
        finally:
            await app.shutdown("watch ended")
        return int(code or 0)

    return asyncio.run(run())
