"""A session: one walk through a runbook, recorded in its journal.

:class:`Session` is the only writer of a session's journal.  Every operator
intent (tick a box, decide an unknown outcome, skip a task, ...) journals exactly
one event *durably* before the state changes and subscribers (the TUI) hear of
it, so nothing is shown as done that is not on disk.  Output chunks are
group-committed (fsynced at most every 100 ms, and at the step's end, which is a
durable record).

If the journal cannot be written (disk full, I/O error), :meth:`Session.record`
raises :class:`~sessions.journal.journal.JournalWriteError`, the state is not updated,
and every later record raises too: no new step can start.

Resume (:meth:`Session.resume`) replays the journal, journals who opened it (a
handover when someone else did), a ``runbook_changed`` event when the runbook's
sha256 differs, and marks runs that were running when the previous process died
as *outcome unknown* (never success or failure) for the operator to decide.
Detached runs are left to the engine, which re-attaches them
(:meth:`Session.detached_unfinished`, :meth:`Session.mark_unknown`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets as _secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook import __version__
from runbook.errors import UserError
from runbook.sanitize.redaction import secret_value_problem
from sessions.engine.operator import Operator, current_operator
from sessions.journal import events as ev
from sessions.journal.format import FORMAT_VERSION
from sessions.journal.journal import Journal, JournalWriteError, Record, fsync_dir, make_private_dir
from sessions.session_log import add_secret_source, configure_logging, get_logger
from sessions.state.state import CANCELLED, RUNNING, UNKNOWN, Replayer, SessionState, StepRun, apply
from sessions.store import JOURNAL, find_session, new_session_id, session_root, write_head

if TYPE_CHECKING:
    from runbook.model import Runbook, TaskKey
    from sessions.journal.checkpoints import Checkpointer
    from sessions.planning.guards import Guard
    from sessions.signing import SigningKey

Subscriber = Callable[[Record, SessionState], None]
DECISIONS = ("succeeded", "failed", "rerun")
_SCRYPT = (2**14, 8, 1)  # n, r, p


def secret_digest(value: str, salt: str) -> str:
    """The salted, slow hash journaled for a secret: ``scrypt:n:r:p:<hex>``."""
    n, r, p = _SCRYPT
    digest = hashlib.scrypt(value.encode("utf-8"), salt=bytes.fromhex(salt), n=n, r=r, p=p, dklen=32)
    return f"scrypt:{n}:{r}:{p}:{digest.hex()}"


def same_secret(value: str, supplied: ev.PlaceholderSupplied) -> bool:
    """Whether ``value`` is the secret whose hash ``supplied`` journaled."""
    if supplied.value_hash.startswith("scrypt:"):
        try:
            _, n, r, p, want = supplied.value_hash.split(":")
            got = hashlib.scrypt(value.encode("utf-8"), salt=bytes.fromhex(supplied.salt), n=int(n), r=int(r),
                                 p=int(p), dklen=32).hex()
        except ValueError:
            return False
        return hmac.compare_digest(got, want)
    got = hashlib.sha256((supplied.salt + value).encode("utf-8")).hexdigest()
    return hmac.compare_digest(got, supplied.value_hash)


def _rfc3339(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    if value.tzinfo is None:
        value = value.astimezone()
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _task_id(task: TaskKey) -> str:
    return task if isinstance(task, str) else task.id


def _guard_kind(guard: Guard | str) -> str:
    return guard if isinstance(guard, str) else guard.kind


def _required(text: str, what: str) -> str:
    text = (text or "").strip()
    if not text:
        raise UserError(f"{what}: a reason is needed", 2)
    return text


def _check_is_journal(path: Path) -> None:
    """Refuse to open for writing a file that is not a session journal (a mistyped ``--session FILE``).

    Opening for writing truncates a torn tail and appends: never do that to someone else's file.
    A session's own ``journal.jsonl`` too must start with its ``session_opened`` record: an empty
    one (a crash at creation, or an attacker's truncation) is refused, or a new chain would
    silently replace the history (the chain itself is checked by ``Journal.open``).
    """
    try:
        with open(path, "rb") as fh:
            first = fh.readline(1 << 20)
        ok = b'"type":"session_opened"' in first.replace(b" ", b"") and first.endswith(b"\n")
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}", 2) from None
    if not ok and path.name == JOURNAL:
        what = "is empty" if not first else "does not start with its session_opened record"
        raise UserError(f"{path}:1: the journal {what}: the session's history cannot be known; refusing to "
                        "write to it (a new chain would replace the history). Start a new session", 1)
    if not ok:
        raise UserError(f"{path}:1: not a session journal (no session_opened record); "
                        "pass a session id or a session's journal.jsonl", 2)


def _start_logging(directory: Path) -> str:
    """Point logging at the session; a log that cannot be written is not fatal (the journal is)."""
    try:
        configure_logging(directory)
    except OSError as exc:
        return f"{directory}: cannot write runbook.log: {exc.strerror or exc}"
    return ""


def load_runbook(path: str) -> tuple[Any | None, str]:
    """Parse the runbook at ``path`` (the parser is imported lazily).

    Returns ``(runbook, "")`` or ``(None, why)`` when it is gone or unreadable.
    """
    if not path:
        return None, "the journal names no runbook file; continuing from the journal alone"
    if not os.path.exists(path):
        return None, f"runbook {path} is gone; continuing from the journal alone"
    try:
        from runbook.parse import parser
    except ImportError:
        return None, "the runbook parser is not available; continuing from the journal alone"
    try:
        return parser.parse_file(path), ""
    except UserError as exc:
        return None, f"cannot read runbook: {exc}; continuing from the journal alone"
    except Exception as exc:  # noqa: BLE001 - the parser must never take a resume down
        return None, f"cannot parse runbook {path}: {exc!r}; continuing from the journal alone"


class Session:
    """An open session (this process holds its lock).  Use :meth:`create` or :meth:`resume`."""

    def __init__(self, sid: str, directory: Path, journal: Journal, runbook: Runbook | None, state: SessionState,
                 who: Operator) -> None:
        self.id = sid
        self.dir = directory
        self.journal = journal
        self.runbook: Runbook | None = runbook
        self.state = state
        self.operator = who.name
        self.operator_info = who
        #: placeholder values, in memory only (secrets too); non-secret ones come back on resume
        self.values: dict[str, str] = {n: e.value for n, e in state.placeholders.items()
                                       if not e.secret and e.value is not None}
        #: things the operator should be told (runbook changed or gone, ...)
        self.warnings: list[str] = []
        self.log = get_logger("runbook.session", session=sid)
        self._secret_names = {n for n, e in state.placeholders.items() if e.secret}
        self._subscribers: tuple[Subscriber, ...] = ()
        self._write_error_listeners: tuple[Callable[[JournalWriteError], None], ...] = ()
        self._write_error_told = False
        self._flush_handle: asyncio.TimerHandle | None = None
        self._closed = False
        self.resumed = False  # opened by Session.resume (an existing journal), not Session.create
        self._last_seen: dict[str, str] = {}  # on resume: run id -> ts of its last record
        self._box_texts: tuple[Any, dict[str, str]] | None = None
        self._remove_secret_source = add_secret_source(self.secrets)
        self._checkpointer: Checkpointer | None = None

    @property
    def signing_key(self) -> SigningKey | None:
        """The key of ``$RUNBOOK_SIGNING_KEY`` (signs checkpoints and TUI exports), or None."""
        return self._checkpointer.key if self._checkpointer is not None else None

    def _start_checkpoints(self) -> None:
        """Sign the journal head every few minutes when ``$RUNBOOK_SIGNING_KEY`` names a key.

        A key that cannot be loaded does not stop the session: the operator is warned and
        the journal records that checkpoints are off, so an auditor sees it too.
        """
        if not os.environ.get("RUNBOOK_SIGNING_KEY"):  # sessions.journal.checkpoints.KEY_ENV; its import is costly
            return
        from sessions.journal.checkpoints import KEY_ENV, Checkpointer

        try:
            every = float(os.environ.get("RUNBOOK_CHECKPOINT_EVERY_S", "300"))
            self._checkpointer = Checkpointer.from_env(self, every_s=every)
        except Exception as exc:  # noqa: BLE001 - any key problem: warn, journal, carry on
            why = f"signed checkpoints are off: ${KEY_ENV}: {exc}"
            self.warnings.append(why)
            self.log.warning("checkpoints disabled", error=str(exc))
            self.record(ev.Note(why, who=self.operator))

    # -- opening ----------------------------------------------------------------
    @classmethod
    def create(cls, runbook: Runbook, *, root: str | os.PathLike[str] | None = None,
               inventory_path: str | os.PathLike[str] | None = None,
               window_end: datetime | str | None = None) -> Session:
        """Start a new session on ``runbook`` (a ``runbook.model.Runbook``)."""
        base = session_root(root)
        try:
            make_private_dir(base)
            for _ in range(20):
                sid = new_session_id()
                directory = base / sid
                try:
                    directory.mkdir(mode=0o700)
                except FileExistsError:
                    continue
                break
            else:  # pragma: no cover - 20 collisions of 16 random bits in one second
                raise UserError(f"{base}: cannot pick a new session id", 1)
            os.chmod(directory, 0o700)
            fsync_dir(base)
        except OSError as exc:
            raise UserError(f"{base}: cannot create the session directory: {exc.strerror or exc}", 2) from None
        who = current_operator()
        journal = Journal.create(directory / JOURNAL, operator=who.name)
        log_problem = _start_logging(directory)
        session = cls(sid, directory, journal, runbook, SessionState(), who)
        if log_problem:
            session.warnings.append(log_problem)
        digest = ""
        if inventory_path:
            try:
                digest = _file_sha256(inventory_path)
            except OSError as exc:
                session.warnings.append(f"{inventory_path}: cannot read the inventory for its digest: "
                                        f"{exc.strerror or exc}")
        try:
            session.record(session._opened_event(runbook, digest, _rfc3339(window_end), resumed=False))
        except BaseException:
            journal.close()
            raise
        session.log.info("session created", runbook=session.state.runbook_path, operator=who.describe())
        session._start_checkpoints()
        return session

    @classmethod
    def resume(cls, ref: str | os.PathLike[str] | None = None, *, root: str | os.PathLike[str] | None = None,
               runbook: Runbook | None = None, window_end: datetime | str | None = None,
               announce: Sequence[ev.Event] = ()) -> Session:
        """Reopen a session for writing (``ref``: id, prefix, directory or journal; None: latest unfinished).

        ``runbook`` defaults to parsing the file the journal names, if it is still there.
        ``window_end``: a new end of the change window, journaled in the ``session_opened``
        record (None keeps the one the session had).  ``announce``: events journaled right
        after the ``session_opened`` record (a handover from a mirror says where it came from).
        """
        path = find_session(ref, root)
        _check_is_journal(path)
        who = current_operator()
        replayer = Replayer()
        last_seen: dict[str, str] = {}  # run id -> ts of its last record (durations of unfinished runs)

        def each(rec: Record) -> None:
            replayer.feed_record(rec)
            run_id = getattr(rec.event, "run_id", None)
            if run_id is not None:
                last_seen[run_id] = rec.ts

        journal = Journal.open(path, operator=who.name, each=each)
        try:
            state = replayer.result()
            log_problem = _start_logging(path.parent)
            session = cls(state.session_id or path.parent.name, path.parent, journal, None, state, who)
            if log_problem:
                session.warnings.append(log_problem)
            session._last_seen = last_seen
            session._reopen(runbook, _rfc3339(window_end), announce)
            session._start_checkpoints()
        except BaseException:
            journal.close()
            raise
        return session

    def _opened_event(self, runbook: Runbook | None, inventory_digest: str, window_end: str | None, *, resumed: bool,
                      handover_from: str | None = None) -> ev.SessionOpened:
        who = self.operator_info
        st = self.state
        return ev.SessionOpened(
            session_id=self.id,
            runbook_path=os.path.abspath(runbook.path) if runbook is not None and runbook.path else st.runbook_path,
            runbook_sha256=runbook.sha256 if runbook is not None else st.runbook_sha256,
            runbook_title=runbook.title if runbook is not None else st.runbook_title,
            operator=who.name, origin=who.origin, jump_host=who.host, tool_version=__version__,
            inventory_digest=inventory_digest,
            task_ids=tuple(t.id for t in runbook.tasks) if runbook is not None else st.task_ids,
            window_end=window_end, resumed=resumed, handover_from=handover_from, pid=os.getpid(),
            format_version=FORMAT_VERSION,
        )

    def _reopen(self, runbook: Runbook | None, window_end: str | None = None,
                announce: Sequence[ev.Event] = ()) -> None:
        self.resumed = True
        for rec in self.journal.recovered:
            if isinstance(rec.event, ev.Recovered):
                self.warnings.append(f"recovered: {rec.event.what} {rec.event.detail}".strip())
        before = self.state
        last = before.opens[-1] if before.opens else None
        if runbook is None:
            runbook, why = load_runbook(before.runbook_path)
            if why:
                self.warnings.append(why)
        self.runbook = runbook
        previous = before.operator
        handover = previous if previous and previous != self.operator else None
        digest = last.inventory_digest if last else ""
        self.record(self._opened_event(runbook, digest, window_end, resumed=True, handover_from=handover))
        for event in announce:
            self.record(event)
        if handover:
            self.warnings.append(f"handover: {previous} had this session; now {self.operator}")
            self.log.info("handover", previous=previous, operator=self.operator_info.describe())
        if runbook is not None and before.runbook_sha256 and runbook.sha256 != before.runbook_sha256:
            new_ids = tuple(t.id for t in runbook.tasks)
            old_ids = before.task_ids
            added = tuple(t for t in new_ids if t not in set(old_ids))
            removed = tuple(t for t in old_ids if t not in set(new_ids))
            self.record(ev.RunbookChanged(before.runbook_sha256, runbook.sha256, added, removed))
            self.warnings.append(
                f"the runbook changed since the session opened (sha256 {before.runbook_sha256[:12]} -> "
                f"{runbook.sha256[:12]}); tasks are matched by id; added: {', '.join(added) or 'none'}; "
                f"removed: {', '.join(removed) or 'none'}")
        where = f"runbook (pid {last.pid} on {last.jump_host})" if last and last.pid else "the previous runbook process"
        why = f"{where} stopped while the step was running; its end was not seen"
        for run in before.running():
            if run.detached or not run.unfinished_hosts:
                continue
            seen = seconds_between(run.started, self._last_seen.get(run.run_id))
            if not run.hosts_tracked:  # an older journal: any unfinished host may have started
                self.record(ev.StepOutcomeUnknown(run.run_id, why, None, seen))
                continue
            started = [h.host for h in run.hosts.values() if h.status == RUNNING]
            for host in started:
                self.record(ev.StepOutcomeUnknown(run.run_id, why, host, seen))
            if self.state.runs[run.run_id].unfinished_hosts:  # hosts never started: not run
                self.record(ev.StepFinished(run.run_id, UNKNOWN if started else CANCELLED, seen or 0.0))
        self.log.info("session resumed", operator=self.operator_info.describe(), records=self.journal.count,
                      warnings=self.warnings)

    # -- recording --------------------------------------------------------------
    def ensure_writable(self) -> None:
        """Raise :class:`JournalWriteError` once the journal failed (call before starting a step)."""
        if self.journal.failed is not None:
            raise self.journal.failed
        if self._closed:
            raise UserError(f"session {self.id} is closed", 1)

    def record(self, event: ev.Event) -> Record:
        """Append ``event`` durably, then update the state and notify subscribers."""
        self.ensure_writable()
        try:
            rec = self.journal.append(event)
        except JournalWriteError as exc:
            self.log.error("journal write failed", error=str(exc))
            self._tell_write_error(exc)
            raise
        self._applied(rec)
        if self._checkpointer is not None and not isinstance(event, ev.Checkpoint):
            self._checkpointer.maybe_checkpoint()
        return rec

    def record_output(self, event: ev.OutputChunk) -> Record:
        """Append an output chunk (group-committed: durable within ~100 ms or at the step's end)."""
        self.ensure_writable()
        try:
            rec = self.journal.append_output(event)
        except JournalWriteError as exc:
            self.log.error("journal write failed", error=str(exc))
            self._tell_write_error(exc)
            raise
        if self.journal.dirty:
            self._schedule_flush()
        self._applied(rec)
        return rec

    def sync(self) -> None:
        """Make pending output durable now."""
        self.journal.sync()

    def _applied(self, rec: Record) -> None:
        self.state = state = apply(self.state, rec.event, rec.ts)
        for fn in self._subscribers:
            try:
                fn(rec, state)
            except Exception:  # a broken view must not break journaling
                self.log.exception("subscriber failed", subscriber=repr(fn))

    def _schedule_flush(self) -> None:
        if self._flush_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next append or sync() commits
        self._flush_handle = loop.call_later(self.journal.sync_due_in(), self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        try:
            self.journal.sync()
        except JournalWriteError as exc:  # the next record() raises it too
            self.log.error("journal fsync failed", error=str(exc))
            self._tell_write_error(exc)

    def on_write_error(self, fn: Callable[[JournalWriteError], None]) -> Callable[[], None]:
        """Call ``fn(error)`` at once when the journal first fails to write or fsync (disk
        full, I/O error), even from a background flush; returns the unsubscriber."""
        self._write_error_listeners = self._write_error_listeners + (fn,)

        def unsubscribe() -> None:
            self._write_error_listeners = tuple(f for f in self._write_error_listeners if f is not fn)

        return unsubscribe

    def _tell_write_error(self, exc: JournalWriteError) -> None:
        if self._write_error_told:
            return
        self._write_error_told = True
        for fn in self._write_error_listeners:
            try:
                fn(exc)
            except Exception:  # a broken listener must not hide the error
                self.log.exception("write error listener failed", listener=repr(fn))

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn(record, state)`` after every record; returns the unsubscriber."""
        self._subscribers = self._subscribers + (fn,)  # a tuple: safe to change while notifying

        def unsubscribe() -> None:
            if fn in self._subscribers:
                subs = list(self._subscribers)
                subs.remove(fn)
                self._subscribers = tuple(subs)

        return unsubscribe

    # -- operator intents: each journals one event, durably ------------------------
    def set_checkbox(self, key: str, checked: bool, evidence: str = "", reason: str = "") -> None:
        text = self._checkbox_text(key)
        if checked:
            self.record(ev.CheckboxSet(key, text, self.operator, evidence))
        else:
            self.record(ev.CheckboxCleared(key, text, self.operator, reason))

    def _checkbox_text(self, key: str) -> str:
        runbook = self.runbook
        if runbook is None:
            return ""
        if self._box_texts is None or self._box_texts[0] is not runbook:
            self._box_texts = (runbook, {b.key: b.text for b in runbook.checkboxes()})
        return self._box_texts[1].get(key, "")

    def note(self, text: str, task: TaskKey | None = None) -> None:
        if not (text or "").strip():
            raise UserError("an empty note", 2)
        self.record(ev.Note(text, _task_id(task) if task is not None else None, self.operator))

    def start_task(self, task: TaskKey) -> None:
        self.record(ev.TaskStarted(_task_id(task), self.operator))

    def complete_task(self, task: TaskKey) -> None:
        self.record(ev.TaskCompleted(_task_id(task), self.operator))

    def skip_task(self, task: TaskKey, reason: str) -> None:
        tid = _task_id(task)
        self.record(ev.TaskSkipped(tid, _required(reason, f"skipping {tid}"), self.operator))

    def skip_step(self, task: TaskKey, step: int, reason: str) -> None:
        tid = _task_id(task)
        self.record(ev.StepSkipped(tid, int(step), _required(reason, f"skipping {tid} step {step}"), self.operator))

    def start_rollback(self, task: TaskKey, reason: str = "") -> None:
        self.record(ev.RollbackStarted(_task_id(task), reason, self.operator))

    def decide(self, run_id: str, decision: str, reason: str = "", host: str | None = None) -> None:
        """The operator's verdict on an outcome-unknown run, or on hosts where an automatic
        expectation was not met (or on one host of it)."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
        run = self.state.runs.get(run_id)
        if run is None:
            raise UserError(f"no step run {run_id!r} in session {self.id}", 2)
        unknown = [h for h in run.hosts.values() if h.decidable and (host is None or h.host == host)]
        if not unknown:
            where = f" on {host}" if host else ""
            raise UserError(f"{run.task} step {run.step}{where}: no host to decide (outcome unknown or an "
                            "expectation not met)", 2)
        self.record(ev.OutcomeDecided(run_id, decision, reason, host, self.operator))

    def supply(self, name: str, value: str, secret: bool) -> bool | None:
        """Journal that placeholder ``name`` got a value; keep the value in memory.

        A secret's value never reaches the journal: only a salted scrypt hash, to
        notice a change.  Returns whether the value differs from the one supplied
        before (None when it was never supplied).
        """
        problem = secret_value_problem(value) if secret else None
        if problem:
            raise UserError(f"{name}: {problem}", 2)
        previous = self.state.placeholders.get(name)
        changed: bool | None = None
        if previous is not None:
            changed = not same_secret(value, previous) if previous.secret else previous.value != value
        if secret:
            salt = _secrets.token_hex(16)
            event = ev.PlaceholderSupplied(name, True, None, secret_digest(value, salt), salt, self.operator)
            self._secret_names.add(name)
        else:
            event = ev.PlaceholderSupplied(name, False, value, who=self.operator)
            self._secret_names.discard(name)
        self.values[name] = value
        try:
            self.record(event)
        except BaseException:
            if previous is None or previous.secret:
                self.values.pop(name, None)
            else:
                self.values[name] = previous.value or ""
            raise
        return changed

    def pass_guard(self, guard: Guard | str, task: TaskKey, step: int | None = None, detail: str = "") -> None:
        self.record(ev.GuardPassed(_guard_kind(guard), _task_id(task), step, detail, self.operator))

    def override_guard(self, guard: Guard | str, task: TaskKey, reason: str, step: int | None = None) -> None:
        kind = _guard_kind(guard)
        tid = _task_id(task)
        self.record(ev.GuardOverridden(kind, tid, _required(reason, f"overriding the {kind} guard of {tid}"), step,
                                       self.operator))

    def choose_target(self, task: TaskKey, pattern: str, *, step: int | None = None, rollback: bool = False,
                      hosts: tuple[str, ...] = (), save: bool = False) -> ev.TargetChosen:
        """Journal the operator's choice of where steps run (``step`` None: the task's, or its
        rollback's, steps without a target of their own, until changed).  ``save``: also bind it
        in the bindings file beside the runbook (the Markdown is never touched)."""
        from sessions.planning.targeting import binding_key

        tid = _task_id(task)
        pattern = pattern.strip()
        if not pattern:
            raise UserError(f"{tid}: an empty target is no choice", 2)
        saved_to = ""
        if save:
            from runbook.targets.bindings_write import save_target

            if self.runbook is None:
                raise UserError(f"session {self.id}: the runbook is not loaded; the target was not saved", 2)
            saved_to = save_target(self.runbook.path, binding_key(tid, step, rollback), pattern,
                                   note=f"chosen by {self.operator} in session {self.id}")
        event = ev.TargetChosen(tid, pattern, step, rollback, tuple(hosts), saved_to, self.operator)
        self.record(event)
        return event

    def detached_unfinished(self) -> list[StepRun]:
        """Detached runs that were not finished (the engine re-attaches them after resume)."""
        return self.state.detached_unfinished()

    def mark_unknown(self, run_id: str, why: str, host: str | None = None, duration_s: float | None = None) -> None:
        """The end of a run (or of one host of it) cannot be known: journal that (with how
        long it ran as far as anyone saw, when known)."""
        self.record(ev.StepOutcomeUnknown(run_id, why, host, duration_s))

    def secrets(self) -> list[str]:
        """Secret values in memory, for redaction."""
        return [v for n, v in self.values.items() if n in self._secret_names and v]

    # -- closing ----------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, reason: str = "quit", finished: bool = False) -> None:
        """Journal the close (when the journal still works), then release the session."""
        if self._closed:
            return
        try:
            if self.journal.failed is None:
                self.record(ev.SessionClosed(reason, finished))
                if self._checkpointer is not None:
                    self._checkpointer.checkpoint()
        except JournalWriteError:
            pass  # already reported; the journal stays valid up to its last durable record
        finally:
            self._closed = True
            if self._flush_handle is not None:
                self._flush_handle.cancel()
                self._flush_handle = None
            self._write_head()
            self.journal.close()
            self._remove_secret_source()
            self.log.info("session closed", reason=reason, finished=finished)

    def _write_head(self) -> None:
        """Leave the summary ``runbook sessions`` shows beside the journal (a cache it checks
        against the journal), while the lock is still held; never fails the close."""
        j = self.journal
        if j.failed is not None or j.closed or j.dirty or j.count == 0:
            return
        try:
            write_head(self.dir, j.size, j.count, j.head, self.state)
        except (OSError, UserError) as exc:
            self.log.warning("session head not written", error=str(exc))

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from one journal timestamp (RFC 3339, UTC) to another; None when unknown."""
    if not start or not end:
        return None
    try:
        t0 = datetime.fromisoformat(start.replace("Z", "+00:00"))
        t1 = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return round(max(0.0, (t1 - t0).total_seconds()), 3)
