"""What the engine, a step run and recovery use of a session: :class:`EngineSession`.

A :class:`sessions.engine.session.Session` is one; so is the read-only
:class:`sessions.team.watch.WatchedSession` behind ``runbook watch`` (its engine only plans,
every write is refused).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from runbook.model import Runbook, TaskKey
    from sessions.journal import events as ev
    from sessions.journal.format import Record
    from sessions.journal.journal import JournalWriteError
    from sessions.state.state import SessionState


class JournalFile(Protocol):
    @property
    def path(self) -> Path: ...


class EngineSession(Protocol):
    @property
    def runbook(self) -> Runbook | None: ...

    @property
    def journal(self) -> JournalFile: ...

    @property
    def state(self) -> SessionState: ...

    @property
    def values(self) -> Mapping[str, str]:
        """Placeholder values in memory (secrets too)."""
        ...

    @property
    def operator(self) -> str: ...

    @property
    def log(self) -> Any:
        """The session's structlog logger."""
        ...

    def record(self, event: ev.Event) -> Record: ...

    def record_output(self, event: ev.OutputChunk) -> Record: ...

    def set_checkbox(self, key: str, checked: bool, evidence: str = "", reason: str = "") -> None: ...

    def start_task(self, task: TaskKey) -> None: ...

    def mark_unknown(self, run_id: str, why: str, host: str | None = None, duration_s: float | None = None) -> None: ...

    def secrets(self) -> list[str]:
        """Secret values known to the session (for redaction)."""
        ...

    def ensure_writable(self) -> None:
        """Raise when the journal failed (nothing more may run unrecorded)."""
        ...

    def on_write_error(self, fn: Callable[[JournalWriteError], None]) -> Callable[[], None]:
        """Call ``fn`` when the journal cannot be written; returns an unsubscribe."""
        ...
