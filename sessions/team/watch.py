"""Watching a session another process writes: read-only, following its journal.

:class:`WatchedSession` looks like a :class:`~sessions.engine.session.Session` to a view (``id``,
``dir``, ``runbook``, ``state``, ``subscribe``, ``journal.path``) but never writes: it
opens the journal read-only, never takes (or touches) the session's lock, and every
operator intent raises :class:`ReadOnlyError` ("read-only: watching").  :meth:`poll`
reads the records appended since the last call, checks the hash chain as ``journal
show --follow`` does, folds them into the state with the same fold a resume uses, and
tells the subscribers, exactly as a live session tells them of its own records.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from runbook.errors import UserError
from sessions.engine.session import load_runbook
from sessions.journal.format import Record, TamperedJournal
from sessions.journal.journal import JournalTail, JournalWriteError
from sessions.session_log import get_logger
from sessions.state.state import Replayer, SessionState, apply
from sessions.store import find_session

if TYPE_CHECKING:
    from runbook.model import Runbook, TaskKey
    from sessions.journal import events as ev
    from sessions.planning.guards import Guard

READ_ONLY = "read-only: watching"
Subscriber = Callable[[Record, SessionState], None]


class ReadOnlyError(UserError):
    """An intent that would write, refused while watching."""

    def __init__(self, what: str = "") -> None:
        super().__init__(f"{READ_ONLY}{f' ({what} is for the operator)' if what else ''}", 1)


class _JournalView:
    """What a view reads of the journal: its path (the TUI reads output history from it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.failed: Exception | None = None

    @property
    def count(self) -> int:
        return 0


class WatchedSession:
    """A session opened to watch: follows the journal, never writes.  Use :meth:`open`."""

    def __init__(self, path: Path, runbook: Runbook | None, records: list[Record], tail: JournalTail) -> None:
        replayer = Replayer()
        for rec in records:
            replayer.feed_record(rec)
        self.state: SessionState = replayer.result()
        self.id = self.state.session_id or path.parent.name
        self.dir = path.parent
        self.journal = _JournalView(path)
        self.runbook: Runbook | None = runbook
        self.tail = tail
        self.values: dict[str, str] = {n: e.value for n, e in self.state.placeholders.items()
                                       if not e.secret and e.value is not None}
        self.warnings: list[str] = []
        self.error: str = ""  # why following stopped ("" while it goes on)
        self._subscribers: tuple[Subscriber, ...] = ()
        self._closed = False
        self.log = get_logger("runbook.watch", session=self.id)

    @classmethod
    def open(cls, ref: str | os.PathLike[str] | None, *, root: str | os.PathLike[str] | None = None,
             runbook: Runbook | None = None) -> WatchedSession:
        """Open session ``ref`` (id, prefix, directory or journal; None: the latest unfinished) to watch.

        :raises UserError: no such session, a journal that is not one, or its runbook cannot be read
        """
        path = find_session(ref, root)
        tail = JournalTail(path)
        try:
            records = tail.read_all()
        except TamperedJournal as exc:
            raise UserError(f"{exc}", 1) from None
        except OSError as exc:
            raise UserError(f"{path}: cannot read: {exc.strerror or exc}", 2) from None
        if not records:
            raise UserError(f"{path}: an empty journal: nothing to watch yet", 1)
        session = cls(path, None, records, tail)
        if runbook is None:
            runbook, why = load_runbook(session.state.runbook_path)
            if runbook is None:
                raise UserError(f"session {session.id}: {why.split(';')[0]}: cannot show it "
                                f"(runbook journal show {session.id} --follow prints the journal)", 1)
        session.runbook = runbook
        if runbook.sha256 != session.state.runbook_sha256:
            session.warnings.append(f"the runbook file changed since the session opened (sha256 "
                                    f"{session.state.runbook_sha256[:12]} -> {runbook.sha256[:12]}); tasks are "
                                    "matched by id")
        return session

    # -- following ----------------------------------------------------------------------
    @property
    def operator(self) -> str:
        """Who writes the session (the header shows it, with the fact that this is a watch)."""
        return f"{self.state.operator or '?'} · {READ_ONLY}"

    @property
    def closed(self) -> bool:
        return self._closed

    def poll(self) -> int:
        """Fold the records appended since the last poll and tell the subscribers; returns how
        many.  A broken chain or a shrunk file stops following (``error`` says why)."""
        if self._closed or self.error:
            return 0
        try:
            records = self.tail.read_new()
        except TamperedJournal as exc:
            self.error = f"stopped following: {exc}"
            return 0
        except OSError as exc:
            self.error = f"stopped following: {self.journal.path}: {exc.strerror or exc}"
            return 0
        for rec in records:
            self.state = state = apply(self.state, rec.event, rec.ts)
            for fn in self._subscribers:
                fn(rec, state)
        return len(records)

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn(record, state)`` after every record followed; returns the unsubscriber."""
        self._subscribers = (*self._subscribers, fn)

        def unsubscribe() -> None:
            self._subscribers = tuple(f for f in self._subscribers if f is not fn)

        return unsubscribe

    def secrets(self) -> list[str]:
        return []  # a watcher never knows the operator's secret values

    def sync(self) -> None:
        """Nothing to make durable: a watcher writes nothing."""

    def close(self, reason: str = "quit", finished: bool = False) -> None:
        """Stop following (nothing is journaled)."""
        self._closed = True

    # -- every intent that would write ------------------------------------------------------
    def _refuse(self, what: str) -> NoReturn:
        raise ReadOnlyError(what)

    def ensure_writable(self) -> None:
        self._refuse("running a step")

    def on_write_error(self, fn: Callable[[JournalWriteError], None]) -> Callable[[], None]:
        """A watcher writes nothing: there is no write error to tell."""
        return lambda: None

    def record(self, event: ev.Event) -> Record:
        raise ReadOnlyError("journaling")

    def record_output(self, event: ev.OutputChunk) -> Record:
        raise ReadOnlyError("journaling")

    def set_checkbox(self, key: str, checked: bool, evidence: str = "", reason: str = "") -> None:
        self._refuse("ticking a checkbox")

    def note(self, text: str, task: TaskKey | None = None) -> None:
        self._refuse("a note")

    def start_task(self, task: TaskKey) -> None:
        self._refuse("starting a task")

    def complete_task(self, task: TaskKey) -> None:
        self._refuse("finishing a task")

    def skip_task(self, task: TaskKey, reason: str) -> None:
        self._refuse("skipping a task")

    def skip_step(self, task: TaskKey, step: int, reason: str) -> None:
        self._refuse("skipping a step")

    def start_rollback(self, task: TaskKey, reason: str = "") -> None:
        self._refuse("a rollback")

    def decide(self, run_id: str, decision: str, reason: str = "", host: str | None = None) -> None:
        self._refuse("deciding an outcome")

    def supply(self, name: str, value: str, secret: bool) -> bool | None:
        self._refuse("a placeholder value")
        return None

    def pass_guard(self, guard: Guard | str, task: TaskKey, step: int | None = None, detail: str = "") -> None:
        self._refuse("answering a guard")

    def override_guard(self, guard: Guard | str, task: TaskKey, reason: str, step: int | None = None) -> None:
        self._refuse("overriding a guard")

    def choose_target(self, task: TaskKey, pattern: str, **kw: Any) -> NoReturn:
        self._refuse("choosing a target")

    def mark_unknown(self, run_id: str, why: str, host: str | None = None, duration_s: float | None = None) -> None:
        self._refuse("marking an outcome unknown")

    def detached_unfinished(self) -> list[Any]:
        return []  # re-attaching is the operator's process's work
