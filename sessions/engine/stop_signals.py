"""SIGTERM and SIGHUP: stop the running commands as Ctrl-C would, journal it, exit 128+n.

``runbook exec`` and the TUI install a :class:`StopSignals` on their asyncio loop.
On the first SIGTERM or SIGHUP it journals :class:`~sessions.journal.events.SignalReceived`,
asks the engine to stop every running step (INT, then TERM, then KILL to each
command, until none runs; each host's outcome is journaled, ``cancelled``, with the
signal named) and then calls ``on_stopped(code)`` with ``code`` = 128 + the signal
number; the caller then closes its session (releasing the lock) and exits with it.
A second signal while stopping changes nothing: the escalation is under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from sessions.journal import events as ev

if TYPE_CHECKING:
    from sessions.engine.engine import Engine


class StoppableSession(Protocol):
    """What a stop needs of a session: a live ``Session`` or a read-only watched one."""

    @property
    def closed(self) -> bool: ...

    def record(self, event: ev.Event) -> object: ...

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """Handlers for :data:`STOP_SIGNALS`.  ``session_of``/``engine_of`` return the current
    session and engine (None before they exist)."""

    def __init__(self, session_of: Callable[[], StoppableSession | None], engine_of: Callable[[], Engine | None],
                 on_stopped: Callable[[int], Awaitable[None] | None]) -> None:
        self.session_of = session_of
        self.engine_of = engine_of
        self.on_stopped = on_stopped
        self.signum: int | None = None
        self.running: tuple[str, ...] = ()  # run ids running when the signal came
        self.task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def code(self) -> int:
        return 128 + self.signum if self.signum is not None else 0

    @property
    def reason(self) -> str:
        return f"stopped: runbook received {self.name}"

    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> bool:
        """Handle the signals on ``loop`` (the running one by default); False where impossible."""
        self._loop = loop or asyncio.get_running_loop()
        try:
            for signum in STOP_SIGNALS:
                self._loop.add_signal_handler(signum, self._on_signal, signum)
        except (NotImplementedError, RuntimeError, ValueError):
            return False
        return True

    def remove(self) -> None:
        if self._loop is None:
            return
        for signum in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.remove_signal_handler(signum)
        self._loop = None

    def _on_signal(self, signum: int) -> None:
        if self.signum is not None:
            return
        self.signum = signum
        engine = self.engine_of()
        self.running = tuple(engine.running()) if engine is not None else ()
        session = self.session_of()
        if session is not None and not session.closed:
            with contextlib.suppress(Exception):  # a broken journal must not stop the stopping
                session.record(ev.SignalReceived(self.name, os.getpid(), self.running))
        loop = self._loop or asyncio.get_running_loop()
        self.task = loop.create_task(self._stop(engine))

    async def _stop(self, engine: Engine | None) -> None:
        try:
            if engine is not None:
                await engine.stop(self.reason)
        finally:
            result = self.on_stopped(self.code)
            if asyncio.iscoroutine(result):
                await result
