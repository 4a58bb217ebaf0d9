"""Re-attaching detached runs after a restart (``Engine.recover``).

A detached command keeps running on its host when runbook dies; its output and
exit code are spooled there (:mod:`runbook.transport.detached`).  On resume, for every
unfinished detached run, each host whose end was not journaled is re-attached
from the raw byte offsets already journaled (``OutputChunk.source_len`` counts
what a chunk stood for before redaction), so the missed output is journaled
exactly once, followed by the real ``HostFinished``; then ``StepFinished``.

A host that cannot be re-attached (no ``DetachedStarted`` journaled, the
executor has no spool for it, the host is unreachable) is marked outcome
unknown (``Session.mark_unknown``), never success.  When the interrupted block
was not the step's last, the blocks after it never ran: the host is marked
unknown too, so that the operator decides (re-run).

If secret values the step used were not supplied again after the restart, the
missed output cannot be redacted: it is not journaled (the host's ``error`` says
so); the outcome still is.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from runbook.errors import UserError
from runbook.model import Expectation
from runbook.transport.executor import RunResult
from sessions.engine.expectations import OutputWatch
from sessions.engine.session import seconds_between
from sessions.engine.step_runner import StepRun, _HostOutput
from sessions.journal import events as ev
from sessions.journal.journal import read_records, utc_now
from sessions.state.state import PENDING, RUNNING, worst

if TYPE_CHECKING:  # pragma: no cover
    from sessions.engine.engine import Engine
    from sessions.state.state import StepRun as RunState  # (StepRun here is the runner)


def _journaled(path: Any, run_id: str, times: dict[str, tuple[str, str]] | None = None,
               ) -> tuple[dict[str, ev.DetachedStarted], dict[tuple[str, str], int]]:
    """Last DetachedStarted per host and the raw bytes per (host, stream) journaled since it;
    ``times`` gets host -> (ts of its first DetachedStarted, ts of its last record)."""
    started: dict[str, ev.DetachedStarted] = {}
    offsets: dict[tuple[str, str], int] = {}
    times = times if times is not None else {}
    for rec in read_records(path):
        e = rec.event
        host = getattr(e, "host", None)
        if host is not None and getattr(e, "run_id", None) == run_id:
            first = times.get(host, (rec.ts if isinstance(e, ev.DetachedStarted) else "", ""))[0]
            times[host] = (first or (rec.ts if isinstance(e, ev.DetachedStarted) else ""), rec.ts)
        if isinstance(e, ev.DetachedStarted) and e.run_id == run_id:
            started[e.host] = e
            for key in [k for k in offsets if k[0] == e.host]:
                offsets[key] = 0
        elif isinstance(e, ev.OutputChunk) and e.run_id == run_id and e.host in started:
            key = (e.host, e.stream)
            offsets[key] = offsets.get(key, 0) + e.source_len
    return started, offsets


def _feed_journaled_output(path: Any, run_id: str, watch_by_host: dict[str, OutputWatch]) -> None:
    for rec in read_records(path):
        e = rec.event
        if isinstance(e, ev.OutputChunk) and e.run_id == run_id and e.host in watch_by_host:
            watch_by_host[e.host].feed(e.stream, e.raw)


async def recover_detached(engine: Engine) -> list[str]:
    session = engine.session
    state = session.state
    runs = [r for r in state.runs.values() if r.detached and not r.finished]
    recovered: list[str] = []
    for run in runs:
        await _recover_run(engine, run)
        recovered.append(run.run_id)
    return recovered


async def _recover_run(engine: Engine, run: RunState) -> None:
    session = engine.session
    path = session.journal.path
    times: dict[str, tuple[str, str]] = {}
    started, offsets = _journaled(path, run.run_id, times)
    now = utc_now()
    ran: list[float] = []  # seconds from the step's start to each host's known end
    hosts = [h for h in run.hosts.values() if h.status in (PENDING, RUNNING)]
    plan_expected: tuple[Expectation, ...] = ()
    secret_names: set[str] = set()
    missing_secrets: list[str] = []
    rb = session.runbook
    if rb is not None:
        try:
            from sessions.planning.guards import resolve_task

            step = resolve_task(rb, run.task).step(run.step, run.rollback)
            plan_expected = step.expected
            secret_names = {p.name for p in step.placeholders if p.secret or p.name in engine.secret_names(run.task)}
            from runbook.model import is_secret_name

            secret_names |= {p.name for p in step.placeholders if is_secret_name(p.name)}
        except KeyError:
            pass
    missing_secrets = sorted(n for n in secret_names if n not in session.values)
    watches = {h.host: OutputWatch(plan_expected) for h in hosts}
    _feed_journaled_output(path, run.run_id, watches)

    # a StepRun only for its journaling helpers (redaction, output coalescing)
    from runbook.model import TargetSpec
    from sessions.planning.planning import PlannedStep

    shell = PlannedStep(run.task, run.step, run.rollback, run.targets, TargetSpec(), "", (), (), ())
    runner = StepRun(session, shell, engine.executor_for, secrets=engine._secrets_list(run.task), run_id=run.run_id)
    for h in hosts:
        host = h.host
        ds = started.get(host)
        first, last = times.get(host, ("", ""))
        seen = seconds_between(first, last)  # what the journal saw of it: a lower bound
        if ds is None:
            session.mark_unknown(run.run_id, "runbook stopped before the detached command was started or its "
                                 "id was journaled; its end was not seen", host, seen)
            continue
        try:
            targets = engine.inventory.resolve(host) if engine.inventory is not None else None
        except UserError as exc:
            session.mark_unknown(run.run_id, f"cannot re-attach: {exc}", host, seen)
            continue
        if targets is None:
            from sessions.planning.planning import resolve_hosts

            targets = list(resolve_hosts(None, host))
        target = targets[0]
        out = _HostOutput(runner, host, watches[host], discard=bool(missing_secrets), nonce=ds.nonce)
        executor = engine.executor_for(target)
        t0 = time.monotonic()
        try:
            result = await executor.reattach(target, ds.detached_id, out.on_output,
                                             offsets.get((host, "stdout"), 0),
                                             err_offset=offsets.get((host, "stderr"), 0))
        except (NotImplementedError, TypeError):
            session.mark_unknown(run.run_id, "this executor cannot re-attach detached runs", host, seen)
            continue
        except (TimeoutError, UserError, OSError) as exc:
            result = RunResult(host, "unknown", error=f"cannot re-attach: {exc}")
        finally:
            out.end()
        error = runner.redact(result.error)
        if missing_secrets:
            error = (error + "; " if error else "") + (
                "output after the restart not journaled: secret values of "
                f"{', '.join(missing_secrets)} were not supplied again")
        outcome = result.outcome
        if outcome == "succeeded" and not ds.final:
            outcome = "unknown"
            error = (error + "; " if error else "") + (
                f"block {ds.block + 1} finished after the restart, but the blocks after it never ran")
        # its real duration: from its start to its end (the spool's rc, or now), never just
        # the time since the re-attach; outcome unknown: what the journal and the re-attach saw
        duration = round(time.monotonic() - t0, 3)
        if result.exit_status is not None or result.exit_signal is not None:
            duration = max(duration, result.duration_s)
            if result.duration_s <= time.monotonic() - t0 + 1:  # no spool time: it ran until now
                duration = max(duration, seconds_between(first, now) or 0.0)
        else:
            duration = max(duration, seen or 0.0)
        ran.append((seconds_between(run.started, first) or 0.0) + duration)
        session.record(ev.HostFinished(run.run_id, host, outcome, result.exit_status, result.exit_signal,
                                       round(duration, 3), error))
        if outcome == "unknown":
            session.mark_unknown(run.run_id, error or "the end of the detached command was not seen", host, duration)
        elif outcome in ("succeeded", "failed", "timeout"):
            for check in watches[host].results():
                session.record(ev.ExpectationChecked(run.run_id, host, check.index, check.passed, check.evidence))
        if result.outcome != "unknown" and not missing_secrets:  # journaled: the raw spool goes
            await executor.discard_detached(target, ds.detached_id)
    after = session.state.runs.get(run.run_id)
    outcomes = [x.status for x in after.hosts.values() if x.status not in (PENDING, RUNNING)] if after else []
    whole = max(ran, default=seconds_between(run.started, max((t[1] for t in times.values()), default="")) or 0.0)
    session.record(ev.StepFinished(run.run_id, worst(outcomes) if outcomes else "unknown", round(whole, 3)))
