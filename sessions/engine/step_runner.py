"""Running one planned step on its hosts: the journaling half of the engine.

A :class:`StepRun` takes a :class:`~sessions.planning.planning.PlannedStep` whose guards
are resolved and drives the executors:

* ``parallel`` (default): every host at once, at most ``parallel_limit`` at a time;
* ``serial``: one host after the other, stopping at the first host that fails
  (non-zero exit, timeout, unknown outcome, or a failed ``Expected:`` check); the
  hosts not run are *skipped*.  With ``pause`` the ``on_pause(host_done,
  next_host)`` coroutine decides whether to go on.

Output goes through a per-host, per-stream :class:`~runbook.sanitize.redaction.Redactor`
before anything else sees it, is coalesced into chunks (at most
``CHUNK_BYTES``, at least every ``FLUSH_S``), journaled as ``OutputChunk`` via
``Session.record_output`` and followed by an :class:`OutputWatch` (bounded
memory) for the step's ``Expected:`` literals.

Journal order for one run: ``StepStarted``, then per host ``HostStarted``, ``DetachedStarted`` /
``FileUploaded`` / ``OutputChunk``..., ``HostFinished`` (+ ``StepOutcomeUnknown``
when the end was not seen), ``ExpectationChecked``...; finally ``StepFinished``
with the worst outcome.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from runbook.errors import UserError
from runbook.sanitize.redaction import Redactor
from runbook.shell import errexit
from runbook.transport.executor import Executor, RunOptions, RunResult
from sessions.engine.engine_session import EngineSession
from sessions.engine.expectations import CheckResult, OutputWatch
from sessions.journal import events as ev
from sessions.journal.journal import JournalWriteError
from sessions.planning.planning import PlannedStep, Segment
from sessions.planning.substitution import redact_values
from sessions.state.state import worst

if TYPE_CHECKING:
    from runbook.targets.inventory import Target

CHUNK_BYTES = 128 * 1024
FLUSH_S = 0.05

OnPause = Callable[[str, str], Awaitable[bool]]


def new_run_id() -> str:
    return time.strftime("%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


@dataclass
class HostOutcome:
    """What happened on one host (kept by the engine for callers such as ``runbook exec``)."""

    host: str
    result: RunResult
    checks: list[CheckResult] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result.outcome == "succeeded" and all(c.passed for c in self.checks)

    @property
    def outcome(self) -> str:
        """The host's result: a command that succeeded but whose automatic ``Expected:`` was
        not met is ``expectation_failed``, never succeeded."""
        if self.result.outcome == "succeeded" and not all(c.passed for c in self.checks):
            return "expectation_failed"
        return self.result.outcome


@dataclass
class RunSummary:
    run_id: str
    task: str
    step: int
    outcome: str = "running"
    hosts: dict[str, HostOutcome] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    stopped: str = ""  # why a serial run stopped early
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "succeeded" and all(h.ok for h in self.hosts.values()) and not self.skipped

@dataclass(frozen=True)
class FailedAt:
    """Where a failed script stopped, in runbook terms."""

    message: str  # "failed at line 2 of the block (runbook.md:214): `false`, exit 1"
    line: int | None  # source line in the runbook
    block_line: int | None  # 1-based line in the block
    command: str  # that line as written


def failed_at(document: str, seg: Segment, stop: errexit.Stop, result: RunResult) -> FailedAt | None:
    """Say where a script that failed (``result``) stopped (None: unknown)."""
    located = seg.locate(stop)
    if located is None:
        return None
    block, index = located
    status = result.exit_status if result.exit_status is not None else stop.status
    where = document or "runbook"
    if index is None:  # exit N, errexit=off, sh: the block is known, not the line
        how = result.error or f"exit status {status}"
        return FailedAt(f"{how} (in the block at {where}:{block.line})", None, None, "")
    text = block.code.splitlines()[index].strip()
    if len(text) > 160:
        text = text[:157] + "..."
    line = block.code_line(index)
    return FailedAt(f"failed at line {index + 1} of the block ({where}:{line}): `{text}`, exit {status}",
                    line, index + 1, text)


class _HostOutput:
    """Redact, coalesce and journal one host's output; feed its watch.

    The buffer holds one stream at a time (a chunk of another stream flushes it),
    so the interleaving of stdout and stderr is kept.  ``raw_len`` is recorded on a
    chunk when redaction changed its length, so that offsets into the command's
    real output can be computed from the journal (re-attaching detached runs).
    The script's failure frames (:mod:`runbook.shell.errexit`) are taken out first.
    """

    def __init__(self, run: StepRun, host: str, watch: OutputWatch, discard: bool = False,
                 nonce: str | None = None) -> None:
        self.run = run
        self.host = host
        self.watch = watch
        self.discard = discard  # re-attach without the secrets to redact: journal nothing
        self.frames = errexit.FrameFilter(nonce or run.nonce)
        self.redactors: dict[str, Redactor] = {}
        self.raw_in: dict[str, int] = {}
        self.raw_out: dict[str, int] = {}
        self.stream: str | None = None
        self.buffer = bytearray()
        self.timer: asyncio.TimerHandle | None = None

    def on_output(self, host: str, stream: str, data: bytes) -> None:
        if not data:
            return
        raw = len(data)
        data = self.frames.feed(stream, data)
        if self.discard:
            return
        self.raw_in[stream] = self.raw_in.get(stream, 0) + raw
        self._redact(stream, data)

    def _redact(self, stream: str, data: bytes) -> None:
        red = self.redactors.get(stream)
        if red is None:
            red = self.redactors[stream] = self.run.redactor.new_stream()
        self._add(stream, red.feed(data))

    def _add(self, stream: str, data: bytes) -> None:
        if not data:
            return
        if self.stream is not None and stream != self.stream:
            self.flush()
        self.stream = stream
        self.buffer += data
        if len(self.buffer) >= CHUNK_BYTES:
            self.flush()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        stream = self.stream
        if not self.buffer or stream is None:
            return
        data, self.buffer = bytes(self.buffer), bytearray()
        red = self.redactors.get(stream)
        represented = (self.raw_in.get(stream, 0) - (red.pending if red is not None else 0)
                       - self.frames.pending(stream))
        raw_len = represented - self.raw_out.get(stream, 0)
        self.raw_out[stream] = represented
        self.watch.feed(stream, data)
        self.run.journal_output(ev.OutputChunk.from_bytes(self.run.run_id, self.host, stream, data, raw_len))

    def end(self) -> None:
        """End of a command: release what the frame filter and the redactors held back, then flush."""
        for stream in self.frames.streams():
            rest = self.frames.flush(stream)
            if rest and not self.discard:
                self._redact(stream, rest)
        for stream, red in list(self.redactors.items()):
            rest = red.flush()
            if rest:
                self._add(stream, rest)
        self.flush()
        self.redactors.clear()


class StepRun:
    """One execution of one planned step.  Use :meth:`run` once."""

    def __init__(
        self,
        session: EngineSession,
        plan: PlannedStep,
        executor_for: Callable[[Target], Executor],
        *,
        secrets: list[str],
        parallel_limit: int = 10,
        on_pause: OnPause | None = None,
        run_id: str | None = None,
        scrub_env: tuple[str, ...] = (),
    ) -> None:
        self.session = session
        self.scrub_env = scrub_env  # secret names kept out of the commands' environment
        self.plan = plan
        self.executor_for = executor_for
        self.run_id = run_id or new_run_id()
        self.nonce = errexit.new_nonce()  # of the scripts' failure frames
        self.redactor = Redactor(secrets)
        self._secrets = [v for v in secrets if v]
        self.parallel_limit = max(1, parallel_limit)
        self.on_pause = on_pause
        self.summary = RunSummary(self.run_id, plan.task, plan.step)
        self.cancelled = False
        self.stop_reason = ""  # why stop() was called ("runbook received SIGTERM")
        self._cancels = 0
        self._running: dict[str, Any] = {}  # host -> target, while a command runs there
        self._journal_error: Exception | None = None

    # -- journaling ---------------------------------------------------------------
    def record(self, event: ev.Event) -> None:
        if self._journal_error is not None:
            return  # the journal failed: the run is being stopped; the error is raised at its end
        try:
            self.session.record(event)
        except (JournalWriteError, OSError) as exc:
            self._journal_error = exc

    def journal_output(self, chunk: ev.OutputChunk) -> None:
        if self._journal_error is not None:
            return
        try:
            self.session.record_output(chunk)
        except Exception as exc:  # noqa: BLE001 - the journal failed: the engine stops the run, raised at its end
            self._journal_error = exc

    def redact(self, text: str) -> str:
        """Secrets out of a text to journal, in one pass (masks already in it are kept)."""
        return redact_values(text, {}, self._secrets) if text else text

    # -- control ------------------------------------------------------------------
    async def cancel(self) -> None:
        """Ctrl-C: no new host starts; running commands get SIGINT.  Again: the executor
        stops them (INT, TERM, KILL a few seconds apart)."""
        self.cancelled = True
        self._cancels += 1
        for host, target in list(self._running.items()):
            executor = self.executor_for(target)
            try:
                if self._cancels == 1:
                    await executor.signal(host, "INT")
                else:
                    await executor.cancel(host)
            except (NotImplementedError, OSError, UserError, ValueError):
                pass

    async def stop(self, reason: str) -> None:
        """Stop the run for good (runbook got SIGTERM or SIGHUP): no new host starts, every
        running command gets INT, then TERM, then KILL, until none runs."""
        self.cancelled = True
        self.stop_reason = reason
        self._cancels = max(self._cancels, 1)
        while self._running:  # again and again: a host may still be connecting
            await asyncio.gather(*(self._stop_host(h, t) for h, t in list(self._running.items())))
            await asyncio.sleep(0.05)

    async def _stop_host(self, host: str, target: Target) -> None:
        try:
            await self.executor_for(target).cancel(host)
        except (NotImplementedError, OSError, UserError, ValueError):
            pass

    def hosts_running(self) -> list[str]:
        return list(self._running)

    async def send_input(self, host: str, data: bytes) -> None:
        target = self._running.get(host)
        if target is None:
            raise UserError(f"{host}: no command of run {self.run_id} is running there")
        await self.executor_for(target).write_stdin(host, data)

    # -- running ------------------------------------------------------------------
    async def run(self) -> RunSummary:
        plan = self.plan
        who = self.session.operator
        started = time.monotonic()
        self.record(ev.StepStarted(
            self.run_id, plan.task, plan.step, plan.hosts, self.redact(plan.script_redacted), plan.mode,
            plan.rollback, plan.detached, plan.pty, who,
        ))
        if self._journal_error is not None:  # nothing runs unrecorded
            raise self._journal_error
        self.session.log.info("step started", run_id=self.run_id, task=plan.task, step=plan.step, hosts=list(plan.hosts),
                     mode=plan.mode, pty=plan.pty, detached=plan.detached, rollback=plan.rollback)
        try:
            if plan.spec.serial:
                await self._serial()
            else:
                await self._parallel()
        finally:
            outcomes = [h.outcome for h in self.summary.hosts.values()]
            if self.cancelled and "cancelled" not in outcomes and (self.summary.skipped or not outcomes):
                outcomes.append("cancelled")
            outcome = worst(outcomes) if outcomes else "cancelled"
            if outcome == "pending":
                outcome = "cancelled"
            self.summary.outcome = outcome
            self.summary.duration_s = round(time.monotonic() - started, 3)
            self.record(ev.StepFinished(self.run_id, outcome, self.summary.duration_s))
            self.session.log.info("step finished", run_id=self.run_id, outcome=outcome,
                                  duration_s=self.summary.duration_s, skipped=self.summary.skipped,
                                  stopped=self.summary.stopped)
        if self._journal_error is not None:
            raise self._journal_error
        return self.summary

    async def _parallel(self) -> None:
        sem = asyncio.Semaphore(self.parallel_limit)

        async def one(index: int, target: Target) -> None:
            async with sem:
                if self.cancelled:
                    self.summary.skipped.append(target.name)
                    return
                await self._host(index, target)

        await asyncio.gather(*(one(i, t) for i, t in enumerate(self.plan.targets)))

    async def _serial(self) -> None:
        targets = list(self.plan.targets)
        for i, target in enumerate(targets):
            if self.cancelled:
                self.summary.skipped.extend(t.name for t in targets[i:])
                self.summary.stopped = "cancelled"
                return
            done = await self._host(i, target)
            rest = targets[i + 1 :]
            if not rest:
                return
            if not done.ok:
                why = done.result.outcome if done.result.outcome != "succeeded" else "an expectation failed"
                self.summary.stopped = f"{target.name}: {why}; {len(rest)} host(s) not run"
                self.summary.skipped.extend(t.name for t in rest)
                return
            if self.plan.spec.pause and self.on_pause is not None and not await self.on_pause(target.name, rest[0].name):
                self.cancelled = True
                self.summary.stopped = f"stopped by the operator after {target.name}"
                self.summary.skipped.extend(t.name for t in rest)
                return

    async def _host(self, index: int, target: Target) -> HostOutcome:
        host = target.name
        plan = self.plan
        watch = OutputWatch(plan.expected)
        out = _HostOutput(self, host, watch)
        executor = self.executor_for(target)
        started = time.monotonic()
        deadline = started + plan.spec.timeout if plan.spec.timeout else None
        result = RunResult(host, "succeeded", 0)
        where: FailedAt | None = None
        command_segments = [i for i, s in enumerate(plan.segments) if s.kind == "command"]
        block = 0
        self.record(ev.HostStarted(self.run_id, host))
        spools: list[str] = []  # detached runs that are over: removed once journaled
        for seg in plan.segments:
            if self.cancelled or self._journal_error is not None:
                result = RunResult(host, "cancelled", error="cancelled before this block started")
                break
            if seg.kind == "file":
                result = await self._upload(executor, target, seg)
                if result.outcome != "succeeded":
                    break
                continue
            remaining = None if deadline is None else max(0.1, deadline - time.monotonic())
            options = RunOptions(pty=plan.pty, timeout=remaining, detached=plan.detached, env={
                "RUNBOOK_HOST": host, "RUNBOOK_TASK": plan.task, "RUNBOOK_STEP": str(plan.step),
                "RUNBOOK_RUN_ID": self.run_id}, scrub_env=self.scrub_env)
            if plan.detached:
                options.detached_id = f"rb-{self.run_id}-{index}-{block}"
                self.record(ev.DetachedStarted(self.run_id, host, options.detached_id, block,
                                               final=block == len(command_segments) - 1, nonce=self.nonce))
            self._running[host] = target
            try:
                result = await executor.run(target, errexit.with_nonce(seg.text, self.nonce), out.on_output, options)
            except UserError as exc:  # refused before it ran: host key, auth, unreachable
                result = RunResult(host, "failed", error=str(exc))
            except (TimeoutError, OSError) as exc:
                result = RunResult(host, "unknown", error=f"{type(exc).__name__}: {exc}")
            finally:
                self._running.pop(host, None)
                out.end()
            if plan.detached and options.detached_id and result.outcome != "unknown":
                spools.append(options.detached_id)
            block += 1
            stop = out.frames.take()
            if self.cancelled and result.outcome == "failed":
                result = RunResult(host, "cancelled", result.exit_status, result.exit_signal, result.duration_s,
                                   result.error or "cancelled by the operator", result.detached_id)
            if self.stop_reason and result.outcome == "cancelled":
                why = result.error.replace("cancelled by the operator", "").strip(" ;")
                result = replace(result, error=self.stop_reason + (f" ({why})" if why else ""))
            if result.outcome == "failed" and stop is not None and not result.exit_signal:
                where = failed_at(self.plan.document, seg, stop, result)
                if where is not None:
                    result = replace(result, error=where.message)
            if result.outcome != "succeeded":
                break
        duration = round(time.monotonic() - started, 3)
        error = self.redact(result.error)
        self.record(ev.HostFinished(
            self.run_id, host, result.outcome, result.exit_status, result.exit_signal, duration, error,
            where.line if where else None, where.block_line if where else None,
            self.redact(where.command) if where else ""))
        if result.outcome == "unknown":
            self.record(ev.StepOutcomeUnknown(self.run_id, error or "the end of the command was not seen", host))
        done = HostOutcome(host, RunResult(host, result.outcome, result.exit_status, result.exit_signal, duration,
                                           error, result.detached_id))
        if block and result.outcome in ("succeeded", "failed", "timeout"):  # a command ran: check its output
            done.checks = watch.results()
            for check in done.checks:
                self.record(ev.ExpectationChecked(self.run_id, host, check.index, check.passed, check.evidence))
        done.tail = list(watch.tail)
        for detached_id in spools:  # output and outcome are journaled (durably): the raw spool goes
            await executor.discard_detached(target, detached_id)
        self.summary.hosts[host] = done
        return done

    async def _upload(self, executor: Executor, target: Target, seg: Any) -> RunResult:
        host = target.name
        t0 = time.monotonic()
        try:
            digest = await executor.upload(target, seg.path, seg.text.encode("utf-8"), seg.mode)
        except UserError as exc:
            return RunResult(host, "failed", error=f"upload of {seg.path} failed: {exc}")
        except (TimeoutError, OSError) as exc:
            return RunResult(host, "failed", error=f"upload of {seg.path} failed: {type(exc).__name__}: {exc}")
        shown = self.redact(seg.text)
        masked = shown != seg.text
        if masked:  # never journal a hash of secret values: hash what the journal may show instead
            digest = hashlib.sha256(shown.encode("utf-8")).hexdigest()
        self.record(ev.FileUploaded(self.run_id, host, seg.path, digest, seg.mode_text, masked))
        return RunResult(host, "succeeded", 0, duration_s=time.monotonic() - t0)
