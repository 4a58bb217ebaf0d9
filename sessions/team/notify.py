"""Notifications: tell the team's chat (a webhook) what happens in a session.

:class:`Notifier` subscribes to a :class:`~sessions.engine.session.Session` and reads the
journal's records as they are written: a step that failed, a phase gate that passed
or failed, a guard overridden, a four-eyes approval requested, granted or refused, the
change window turning amber or red, the session closing.  For each it POSTs a small JSON document with a Slack-compatible ``text``
to every ``--notify`` URL.

Delivery never touches the step: the subscriber only queues a message; one asyncio
task per URL sends them in order, each attempt bounded by a timeout, retried with
backoff a bounded number of times (5xx, 408, 429, timeouts, refused connections), and
each delivery or final failure is journaled (``notification_sent`` /
``notification_failed``) with the URL masked (:func:`runbook.notify_config.mask_url`).
A queue that grows past its bound drops its oldest message, journaled too.

Secrets never go out: every text of a message goes through the export's redactor
with the session's secret values and the secret literals of the runbook, and output
lines are only ever taken from the journal, which the engine already redacted.

The window clock has no record of its own: while notifications are on, a timer
compares the window with the remaining critical path (:mod:`sessions.state.window`) and
journals a ``window_alert`` when it gets worse; the alert is then notified like any
other record.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from runbook import __version__
from runbook.errors import UserError
from runbook.notify_config import mask_url, notify_url_problem
from sessions.journal import events as ev
from sessions.journal.journal import Record
from sessions.planning.secret_literals import runbook_literals
from sessions.report.redact import Redactor
from sessions.session_log import get_logger
from sessions.state.state import CANCELLED, SKIPPED, SUCCEEDED, SessionState
from sessions.state.window import WindowLevel, window_clock

if TYPE_CHECKING:  # pragma: no cover
    from runbook.model import Runbook
    from sessions.engine.session import Session
    from sessions.state.state import StepRun

TIMEOUT_S = 5.0  # one attempt (connect, send, status line)
RETRIES = 3  # attempts after the first
BACKOFF_S = 0.5  # before the first retry; doubles each time
QUEUE_LIMIT = 100  # messages waiting per URL
WINDOW_EVERY_S = 15.0  # how often the window clock is looked at
TAIL_LINES = 5  # output lines of a failed host in a message
LINE_CHARS = 200


class Trigger(StrEnum):
    """What a notification is about."""

    STEP_FAILED = "step_failed"
    GATE_PASSED = "gate_passed"
    GATE_FAILED = "gate_failed"
    GUARD_OVERRIDDEN = "guard_overridden"
    WINDOW_AMBER = "window_amber"
    WINDOW_RED = "window_red"
    SESSION_CLOSED = "session_closed"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_GRANTED = "approval_granted"
    APPROVAL_REFUSED = "approval_refused"


_FAILED = ("failed", "timeout", "unknown", "expectation_failed")


@dataclass(frozen=True, slots=True)
class Message:
    """One notification: ``payload`` is the JSON document (its ``text`` included)."""

    trigger: Trigger
    payload: dict[str, Any]
    about_seq: int | None = None


@dataclass(slots=True)
class _Target:
    url: str
    shown: str
    queue: deque[Message] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    sending: Message | None = None
    task: asyncio.Task[None] | None = None


class DeliveryError(Exception):
    """One attempt failed; ``retry`` says whether another attempt may help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def check_urls(urls: Iterable[str], where: str = "--notify") -> list[str]:
    """The URLs, deduplicated; a bad one is a :class:`UserError` (exit 2)."""
    out: list[str] = []
    for url in urls:
        problem = notify_url_problem(url)
        if problem:
            raise UserError(f"{where}: {problem}", 2)
        if url.strip() not in out:
            out.append(url.strip())
    return out


def slack_escape(text: str) -> str:
    """Text as Slack reads it literally (``&``, ``<`` and ``>`` are its markup)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def post_json(url: str, body: bytes, *, timeout: float = TIMEOUT_S) -> int:
    """POST ``body`` (JSON) to ``url``; return the HTTP status (2xx) or raise :class:`DeliveryError`.

    Plain asyncio streams: no proxy from the environment, no redirect followed, the
    whole attempt (connect, TLS, request, status line) bounded by ``timeout``.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = f"[{host}]" if ":" in host else host
    if parts.port:
        host_header += f":{parts.port}"
    headers = [
        f"POST {target} HTTP/1.1",
        f"Host: {host_header}",
        f"User-Agent: runbook/{__version__}",
        "Content-Type: application/json; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if parts.username is not None:
        cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers.append(f"Authorization: Basic {base64.b64encode(cred).decode('ascii')}")
    request = ("\r\n".join(headers) + "\r\n\r\n").encode("utf-8") + body
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=ssl.create_default_context() if https else None,
                server_hostname=host if https else None)
            writer.write(request)
            await writer.drain()
            line = await reader.readline()
    except TimeoutError:
        raise DeliveryError(f"no answer within {timeout:g} s", retry=True) from None
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc.strerror or exc}" if isinstance(exc, OSError) and
                            exc.strerror else f"{type(exc).__name__}: {exc}", retry=True) from None
    finally:
        if writer is not None:
            writer.close()
    fields = line.decode("latin-1").split()
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        raise DeliveryError("not an HTTP answer" if line else "the connection closed without an answer", retry=True)
    status = int(fields[1])
    if 200 <= status < 300:
        return status
    raise DeliveryError(f"HTTP {status}", retry=status >= 500 or status in (408, 429))


class Notifier:
    """Sends a session's notifications to ``urls`` (checked with :func:`check_urls`).

    :meth:`start` (on the session's running loop) subscribes and starts the senders;
    :meth:`finish` sends the closing message and waits (bounded) for the queues to
    empty, journaling what could not be sent, before the caller closes the session.
    """

    def __init__(self, session: Session, urls: Iterable[str], *, timeout: float = TIMEOUT_S,
                 retries: int = RETRIES, backoff: float = BACKOFF_S, queue_limit: int = QUEUE_LIMIT,
                 window_every: float = WINDOW_EVERY_S,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.session = session
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.queue_limit = max(1, queue_limit)
        self.window_every = window_every
        self.clock = clock
        self.targets = [_Target(u, mask_url(u)) for u in check_urls(urls)]
        self.log = get_logger("runbook.notify", session=session.id)
        self._unsubscribe: Callable[[], None] | None = None
        self._window_task: asyncio.Task[None] | None = None
        self._window_level = WindowLevel.OK
        self._tails: dict[tuple[str, str], deque[str]] = {}
        self._gates_passed: set[str] = set()
        self._runs_told: set[str] = set()  # finished runs already looked at
        self._closing = False

    # -- life cycle -----------------------------------------------------------------
    def start(self) -> None:
        """Subscribe to the session and start the senders (needs a running event loop)."""
        if not self.targets or self._unsubscribe is not None:
            return
        state = self.session.state
        runbook = self.session.runbook
        if runbook is not None:
            self._gates_passed = {gid for gid in _gate_ids(runbook) if _gate_passed(state, runbook, gid)}
        self._runs_told = {rid for rid, run in state.runs.items() if run.finished}
        for alert in state.window_alerts:  # a resumed session: the alerts already journaled are not repeated
            try:
                level = WindowLevel(alert.level)
            except ValueError:
                continue
            if level.rank > self._window_level.rank:
                self._window_level = level
        for target in self.targets:
            target.task = asyncio.get_running_loop().create_task(self._sender(target))
        self._unsubscribe = self.session.subscribe(self._on_record)
        if self.window_every > 0:
            self._window_task = asyncio.get_running_loop().create_task(self._watch_window())

    async def finish(self, reason: str = "quit", finished: bool = False, *, grace: float | None = None) -> None:
        """Queue the ``session_closed`` message, then wait up to ``grace`` seconds (default:
        one attempt's timeout) for every queue to empty; what is still waiting or being
        sent then is journaled as not delivered.  Call before ``session.close``."""
        if self._unsubscribe is None or self._closing:
            return
        self._closing = True
        if self._window_task is not None:
            self._window_task.cancel()
        state = self.session.state
        runbook = self.session.runbook
        if runbook is not None and runbook.tasks:
            done, total = state.progress(tuple(t.id for t in runbook.tasks))
            finished = finished or done == total
        verb = "finished" if finished else f"closed ({reason})"
        self._queue(Message(Trigger.SESSION_CLOSED, self._payload(
            Trigger.SESSION_CLOSED, f"session {verb}: {_progress_text(state, self.session.runbook)}",
            {"reason": reason, "finished": finished}), None))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if grace is None else grace)
        while any(t.queue or t.sending for t in self.targets) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        self._unsubscribe()
        for target in self.targets:
            if target.task is not None:
                target.task.cancel()
        for target in self.targets:
            if target.task is not None:
                try:
                    await target.task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - a sender's end is journaled below
                    pass
            left = ([target.sending] if target.sending else []) + list(target.queue)
            target.queue.clear()
            target.sending = None
            for message in left:
                self._journal(ev.NotificationFailed(message.trigger, target.shown,
                                                    "not delivered before the session closed", 0,
                                                    message.about_seq))

    # -- reading the journal ------------------------------------------------------------
    def _on_record(self, rec: Record, state: SessionState) -> None:
        """A subscriber: only builds and queues messages (never waits, never raises)."""
        if self._closing:
            return
        try:
            for message in self._messages(rec, state):
                self._queue(message)
        except Exception:  # a notification problem must never break journaling
            self.log.exception("notification not built", seq=rec.seq)

    def _messages(self, rec: Record, state: SessionState) -> list[Message]:
        e = rec.event
        if isinstance(e, ev.OutputChunk):
            self._keep_tail(e)
            return []
        runbook = self.session.runbook
        out: list[Message] = []
        run_id = getattr(e, "run_id", None)
        if isinstance(e, (ev.StepFinished, ev.StepOutcomeUnknown)) and run_id is not None:
            run = state.runs.get(run_id)
            if run is not None and run.finished and run_id not in self._runs_told:
                self._runs_told.add(run_id)
                out.extend(self._step_messages(run, state, rec))
                for host in run.hosts:
                    self._tails.pop((run_id, host), None)
        elif isinstance(e, ev.GuardOverridden):
            where = f"{_label(e.task)}" + (f" step {e.step}" if e.step is not None else "")
            out.append(Message(Trigger.GUARD_OVERRIDDEN, self._payload(
                Trigger.GUARD_OVERRIDDEN, f"{e.guard} guard overridden on {where} by {e.who or '?'}: {e.reason}",
                {"guard": e.guard, "task": e.task, "step": e.step, "reason": e.reason, "who": e.who}, rec), rec.seq))
        elif isinstance(e, ev.ApprovalRequested):
            title = self._task_title(e.task)
            out.append(Message(Trigger.APPROVAL_REQUESTED, self._payload(
                Trigger.APPROVAL_REQUESTED,
                f"approval requested for {_label(e.task)}{f' ({title})' if title else ''} by {e.who or '?'}: "
                f"an approver runs `runbook approve {e.path} --sign KEY`",
                {"task": e.task, "request_id": e.request_id, "request": e.path, "plan_sha256": e.plan_sha256,
                 "who": e.who}, rec), rec.seq))
        elif isinstance(e, ev.ApprovalGranted):
            out.append(Message(Trigger.APPROVAL_GRANTED, self._payload(
                Trigger.APPROVAL_GRANTED, f"{_label(e.task)} approved by {e.principal} ({e.key_fingerprint})",
                {"task": e.task, "request_id": e.request_id, "principal": e.principal,
                 "key_fingerprint": e.key_fingerprint}, rec), rec.seq))
        elif isinstance(e, ev.ApprovalRefused):
            out.append(Message(Trigger.APPROVAL_REFUSED, self._payload(
                Trigger.APPROVAL_REFUSED, f"approval of {_label(e.task)} refused: {e.reason}",
                {"task": e.task, "request_id": e.request_id, "reason": e.reason,
                 "key_fingerprint": e.key_fingerprint}, rec), rec.seq))
        elif isinstance(e, ev.WindowAlert):
            trigger = Trigger.WINDOW_RED if e.level == WindowLevel.RED else Trigger.WINDOW_AMBER
            if e.left_s <= 0:
                what = f"the change window ended {_minutes(-e.left_s)} ago"
            elif e.level == WindowLevel.RED:
                what = (f"the remaining critical path ({_minutes(e.critical_s)}) no longer fits in the "
                        f"{_minutes(e.left_s)} left in the change window")
            else:
                what = (f"the change window is tight: {_minutes(e.left_s)} left for a critical path of "
                        f"{_minutes(e.critical_s)}")
            out.append(Message(trigger, self._payload(trigger, what, {
                "level": e.level, "left_s": round(e.left_s), "critical_s": round(e.critical_s),
                "window_end": state.window_end}, rec), rec.seq))
        if runbook is not None and isinstance(e, (ev.StepFinished, ev.StepOutcomeUnknown, ev.OutcomeDecided,
                                                   ev.CheckboxSet, ev.CheckboxCleared)):
            out.extend(self._gate_messages(state, runbook, rec))
        return out

    def _keep_tail(self, e: ev.OutputChunk) -> None:
        tail = self._tails.get((e.run_id, e.host))
        if tail is None:
            tail = self._tails[(e.run_id, e.host)] = deque(maxlen=TAIL_LINES + 1)
        text = e.raw.decode("utf-8", "replace")
        lines = text.split("\n")
        if tail and not tail[-1].endswith("\n"):
            tail[-1] = (tail[-1] + lines.pop(0))[-4 * LINE_CHARS:]
        for i, line in enumerate(lines):
            last = i == len(lines) - 1
            if last and not line:
                break
            tail.append(line[-4 * LINE_CHARS:] + ("" if last else "\n"))

    def _step_messages(self, run: StepRun, state: SessionState, rec: Record) -> list[Message]:
        status = run.status
        if status not in _FAILED:
            return []
        gate = run.task.startswith("gate:")
        trigger = Trigger.GATE_FAILED if gate else Trigger.STEP_FAILED
        title = self._step_title(run.task, run.step, run.rollback)
        hosts: dict[str, Any] = {}
        lines: list[str] = []
        for name, h in run.hosts.items():
            outcome = h.effective
            if outcome in (SUCCEEDED, SKIPPED, CANCELLED):
                continue
            tail = [ln.rstrip("\n")[:LINE_CHARS] for ln in self._tails.get((run.run_id, name), ())][-TAIL_LINES:]
            why = h.error or (f"exit status {h.exit_status}" if h.exit_status is not None else "")
            hosts[name] = {"outcome": str(outcome), "exit_status": h.exit_status, "error": h.error,
                           "output_tail": tail}
            lines.append(f"{name}: {outcome}" + (f" ({why})" if why else ""))
            lines.extend(f"    {ln}" for ln in tail)
        which = f"{_label(run.task)} {'rollback ' if run.rollback else ''}step {run.step}"
        head = f"{which}{f' ({title})' if title else ''} {_OUTCOME_WORDS.get(status, status)}"
        text = head + (" on " + ", ".join(hosts) if hosts else "") + ("\n" + "\n".join(lines) if lines else "")
        details = {"task": run.task, "step": run.step, "rollback": run.rollback, "title": title, "run_id": run.run_id,
                   "outcome": str(status), "hosts": hosts}
        return [Message(trigger, self._payload(trigger, text, details, rec), rec.seq)]

    def _gate_messages(self, state: SessionState, runbook: Runbook, rec: Record) -> list[Message]:
        out: list[Message] = []
        for gid in _gate_ids(runbook):
            passed = _gate_passed(state, runbook, gid)
            if passed and gid not in self._gates_passed:
                self._gates_passed.add(gid)
                out.append(Message(Trigger.GATE_PASSED, self._payload(
                    Trigger.GATE_PASSED, f"{_label(gid)} passed", {"task": gid}, rec), rec.seq))
            elif not passed:
                self._gates_passed.discard(gid)
        return out

    def _task_title(self, task: str) -> str:
        runbook = self.session.runbook
        if runbook is None:
            return ""
        try:
            return runbook.task(task).title
        except KeyError:
            return ""

    def _step_title(self, task: str, step: int, rollback: bool) -> str:
        runbook = self.session.runbook
        if runbook is None:
            return ""
        from sessions.planning.guards import resolve_task

        try:
            return resolve_task(runbook, task).step(step, rollback).title
        except (KeyError, UserError):
            return ""

    # -- the window clock -------------------------------------------------------------------
    async def _watch_window(self) -> None:
        while True:
            self.check_window()
            await asyncio.sleep(self.window_every)

    def check_window(self) -> None:
        """Journal a ``window_alert`` when the window clock got worse since the last one."""
        if self._closing or self.session.closed:
            return
        try:
            clock = window_clock(self.session.runbook, self.session.state, self.clock())
        except Exception:  # the clock must never stop the session
            self.log.exception("window clock failed")
            return
        if clock.level.rank > self._window_level.rank:
            self._window_level = clock.level
            self._journal(ev.WindowAlert(str(clock.level), round(clock.left_s, 1), round(clock.critical_s, 1)))

    # -- messages and delivery ----------------------------------------------------------------
    def _payload(self, trigger: Trigger, what: str, details: dict[str, Any], rec: Record | None = None) -> dict[str, Any]:
        session = self.session
        state = session.state
        title = state.runbook_title or (session.runbook.title if session.runbook is not None else "")
        redactor = self._redactor()
        text = f"[runbook] {title} · session {session.id}: {what}"
        payload: dict[str, Any] = {
            "text": slack_escape(redactor.command(redactor.text(text))),
            "event": str(trigger),
            "session": session.id,
            "runbook": title,
            "operator": state.operator,
            "jump_host": state.opens[-1].jump_host if state.opens else "",
            "ts": rec.ts if rec is not None else _now_ts(self.clock()),
            "seq": rec.seq if rec is not None else None,
            "details": details,
        }
        scrubbed: dict[str, Any] = _scrub(payload, redactor)
        return scrubbed

    def _redactor(self) -> Redactor:
        values = list(self.session.secrets())
        if self.session.runbook is not None:
            values.extend(runbook_literals(self.session.runbook))
        return Redactor(values)

    def _queue(self, message: Message) -> None:
        for target in self.targets:
            if len(target.queue) >= self.queue_limit:
                dropped = target.queue.popleft()
                self._journal(ev.NotificationFailed(dropped.trigger, target.shown,
                                                    f"dropped: more than {self.queue_limit} notifications waiting",
                                                    0, dropped.about_seq))
            target.queue.append(message)
            target.wake.set()

    async def _sender(self, target: _Target) -> None:
        while True:
            if not target.queue:
                target.wake.clear()
                await target.wake.wait()
                continue
            message = target.queue.popleft()
            target.sending = message
            body = json.dumps(message.payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            attempts = 0
            delay = self.backoff
            while True:
                attempts += 1
                try:
                    status = await post_json(target.url, body, timeout=self.timeout)
                except DeliveryError as exc:
                    if exc.retry and attempts <= self.retries:
                        await asyncio.sleep(delay)
                        delay *= 2
                        continue
                    target.sending = None
                    self.log.warning("notification failed", url=target.shown, trigger=str(message.trigger),
                                     error=str(exc), attempts=attempts)
                    self._journal(ev.NotificationFailed(message.trigger, target.shown, str(exc), attempts,
                                                        message.about_seq))
                    break
                target.sending = None
                self._journal(ev.NotificationSent(message.trigger, target.shown, status, attempts,
                                                  message.about_seq))
                break

    def _journal(self, event: ev.Event) -> None:
        """Journal a delivery (or an alert); a closed or failed journal only loses that record."""
        if self.session.closed:
            return
        try:
            self.session.record(event)
        except Exception as exc:  # noqa: BLE001 - the journal's own failure is reported by the session
            self.log.warning("notification not journaled", error=str(exc), type=event.TYPE)


_OUTCOME_WORDS = {"failed": "failed", "timeout": "timed out", "unknown": "outcome UNKNOWN",
                  "expectation_failed": "failed (expectation not met)"}


def _scrub(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.command(redactor.text(value))
    if isinstance(value, dict):
        return {k: _scrub(v, redactor) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, redactor) for v in value]
    return value


def _label(task: str) -> str:
    return f"Phase {task[5:]} gate" if task.startswith("gate:") else task


def _minutes(seconds: float) -> str:
    m = round(seconds / 60)
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min"


def _now_ts(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _progress_text(state: SessionState, runbook: Runbook | None) -> str:
    done, total = state.progress(tuple(t.id for t in runbook.tasks) if runbook is not None else None)
    failed = sum(1 for run in state.runs.values() if run.finished and run.status in _FAILED)
    return f"{done}/{total} tasks done" + (f", {failed} step run(s) failed" if failed else "")


def _gate_ids(runbook: Runbook) -> list[str]:
    from sessions.planning.guards import gate_id

    return [gate_id(p) for p in runbook.phases if p.gates]


def _gate_passed(state: SessionState, runbook: Runbook, gid: str) -> bool:
    from sessions.planning.guards import gate_id, gate_problems

    for index, phase in enumerate(runbook.phases):
        if phase.gates and gate_id(phase) == gid:
            ran = (any(state.step_runs.get((gid, s.number, False)) for g in phase.gates for s in g.steps)
                   or any(b.key in state.checkboxes for g in phase.gates for b in g.checkboxes))
            return ran and not _own_gate_problems(state, runbook, index, gate_problems)
    return False


def _own_gate_problems(state: SessionState, runbook: Runbook, index: int, gate_problems: Any) -> list[str]:
    """The problems of phase ``index``'s gate alone (those before it are another gate's)."""
    before = set(gate_problems(state, runbook, index))
    return [p for p in gate_problems(state, runbook, index + 1) if p not in before]
