"""The engine: turns operator intents ("run step 3 of PROD-K8S-004") into journaled runs.

The TUI and ``runbook exec`` drive the same :class:`Engine`; everything happens on
one asyncio loop.  The engine plans a step (:mod:`sessions.planning.planning`), refuses
to run it while guards are unresolved (:mod:`sessions.planning.guards`), and runs it on
its hosts through executors (:mod:`sessions.engine.step_runner`), journaling every
byte through the :class:`~sessions.engine.session.Session`.

Executors: ``executors`` may map ``"local"`` / ``"ssh"`` to :class:`Executor`
instances (tests and benchmarks inject them); missing ones are created on first
use (:class:`~runbook.transport.local.LocalExecutor`,
:class:`~runbook.transport.ssh.SSHExecutor` with ``known_hosts``,
``accept_new_host_keys`` and ``connect_limit``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from runbook.errors import UserError
from runbook.model import Step, TargetSpec, TaskKey, is_secret_name
from runbook.transport.executor import Executor
from runbook.transport.open_files import raise_open_files_limit
from sessions.engine.engine_session import EngineSession
from sessions.engine.step_runner import OnPause, RunSummary, StepRun
from sessions.journal import events as ev
from sessions.planning.planning import PlannedStep, plan_step
from sessions.planning.secret_literals import runbook_literals

if TYPE_CHECKING:
    from runbook.targets.inventory import Inventory, Target

__all__ = ["Engine", "PlannedStep", "RunSummary"]

KEEP_SUMMARIES = 200


class Engine:
    """Runs a session's steps.

    :param session: the open :class:`~sessions.engine.session.Session` (journal + state + values)
    :param inventory: an :class:`~runbook.targets.inventory.Inventory` (None: only ``local``)
    :param known_hosts: known_hosts file for SSH (None: ``~/.ssh/known_hosts``)
    :param accept_new_host_keys: record unknown host keys instead of refusing them
    :param connect_limit: SSH connections being set up at once (sshd MaxStartups)
    :param executors: ``{"local": Executor, "ssh": Executor}``, created on demand when absent
    :param parallel_limit: hosts running at once in a parallel step
    :param detached: run every remote step detached (``--detached``)
    :param on_pause: ``async (host_done, next_host) -> bool`` between hosts of a ``pause`` step
    :param on_warning: ``fn(text)`` for a warning the operator must see now (also journaled
        as a note and logged), e.g. an open-file limit too low for the hosts
    """

    def __init__(
        self,
        session: EngineSession,
        inventory: Inventory | None = None,
        *,
        known_hosts: str | None = None,
        accept_new_host_keys: bool = False,
        connect_limit: int = 10,
        executors: Mapping[str, Executor] | None = None,
        parallel_limit: int = 10,
        detached: bool = False,
        on_pause: OnPause | None = None,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.session = session
        self.inventory = inventory
        self.known_hosts = known_hosts
        self.accept_new_host_keys = accept_new_host_keys
        self.connect_limit = connect_limit
        self.parallel_limit = parallel_limit
        self.detached = detached
        self.on_pause = on_pause
        self.on_warning = on_warning
        self._remote_hosts: set[str] = set()  # every host a step was started on over SSH: pooled connections
        self._open_files_warned = False
        self._executors: dict[str, Executor] = dict(executors or {})
        self._owned: set[str] = set()
        self._active: dict[str, StepRun] = {}
        self.summaries: dict[str, RunSummary] = {}
        self.last_summary: RunSummary | None = None
        self.write_error: Exception | None = None  # the journal failed: nothing more may run
        self._background: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks
        session.on_write_error(self._journal_failed)

    # -- executors ----------------------------------------------------------------
    def executor_for(self, target: Target) -> Executor:
        kind = "local" if target.local else "ssh"
        ex = self._executors.get(kind)
        if ex is None:
            ex = self._executors[kind] = self._make_executor(kind)
            self._owned.add(kind)
        return ex

    def _make_executor(self, kind: str) -> Executor:
        if kind == "local":
            from runbook.transport.local import LocalExecutor

            return LocalExecutor()
        from runbook.transport.ssh import SSHExecutor

        return SSHExecutor(known_hosts=self.known_hosts, accept_new_host_keys=self.accept_new_host_keys,
                           connect_limit=self.connect_limit, on_host_key_accepted=self._host_key_accepted)

    def _host_key_accepted(self, host: str, fingerprint: str) -> None:
        self.session.record(ev.HostKeyAccepted(host, fingerprint, self.session.operator))

    def _check_open_files(self, plan: PlannedStep) -> None:
        """Raise the open-file limit (once per process) and, once per engine, warn when it has
        no room for a socket to every host connected so far (the pool keeps them open)."""
        remote = {t.name for t in plan.targets if not t.local}
        if self._open_files_warned or remote <= self._remote_hosts:
            return
        self._remote_hosts |= remote
        limit = raise_open_files_limit()
        problem = limit.shortfall(len(self._remote_hosts))
        if problem is None:
            return
        self._open_files_warned = True
        self.session.log.warning("open-file limit too low", hosts=len(self._remote_hosts), soft=limit.soft,
                                 hard=limit.hard)
        self.session.record(ev.Note(problem, plan.task, self.session.operator))
        if self.on_warning is not None:
            self.on_warning(problem)

    # -- planning -----------------------------------------------------------------
    def secret_names(self, task: str) -> tuple[str, ...]:
        rb = self.session.runbook
        if rb is None:
            return ()
        names = list(rb.secrets)
        try:
            names.extend(rb.task(task).secrets)
        except KeyError:
            pass
        return tuple(names)

    def secret_values(self, task: str | None = None) -> dict[str, str]:
        """name -> value of every secret in memory (for masking scripts and output)."""
        values = self.session.values
        names = set(self.secret_names(task)) if task else set()
        out: dict[str, str] = {}
        state_ph = self.session.state.placeholders
        for name, value in values.items():
            rec = state_ph.get(name)
            if (rec is not None and rec.secret) or name in names or is_secret_name(name):
                out[name] = value
        return out

    def plan(self, task: str, step: int, *, rollback: bool = False, target: str | TargetSpec | None = None,
             only_host: str | None = None, now: datetime | None = None) -> PlannedStep:
        """What running ``task`` step ``step`` would do, with its unresolved guards.

        ``task`` is a task id (``gate:<phase>`` for a phase gate) or a ``Task``;
        ``step`` a step number or a ``Step``.
        """
        task, step = _ids(task, step)
        if self.session.runbook is None:
            raise UserError("the runbook of this session could not be loaded: steps cannot be planned or run")
        state = self.session.state
        return plan_step(
            self.session.runbook, self.inventory, task, step, rollback=rollback, target=target,
            only_host=only_host, values=self.session.values,
            secrets=self.secret_values(task), secret_names=self.secret_names(task), state=state,
            now=now or datetime.now(UTC), window_end=state.window_end, detached=self.detached,
        )

    def _secrets_list(self, task: str) -> list[str]:
        found = list(self.secret_values(task).values())
        if self.session.runbook is not None:  # `export DB_PASSWORD=hunter2` written in the runbook
            found.extend(v for v in runbook_literals(self.session.runbook) if v not in found)
        found.extend(v for v in self.session.secrets() if v not in found)
        return [v for v in found if v]

    # -- running ------------------------------------------------------------------
    async def run_step(self, task: str, step: int, *, rollback: bool = False,
                       target: str | TargetSpec | None = None, only_host: str | None = None,
                       on_pause: OnPause | None = None) -> str:
        """Run one step and return its outcome (``succeeded``, ``failed``, ...).

        Raises :class:`UserError` listing the unresolved guards (placeholders
        included) when there are any; nothing is journaled then.
        """
        summary = await self.run_step_summary(task, step, rollback=rollback, target=target,
                                              only_host=only_host, on_pause=on_pause)
        return summary.outcome

    async def run_step_summary(self, task: str, step: int, *, rollback: bool = False,
                               target: str | TargetSpec | None = None, only_host: str | None = None,
                               on_pause: OnPause | None = None, now: datetime | None = None) -> RunSummary:
        """Like :meth:`run_step`, returning the per-host details (results, checks, tails).
        ``now``: the front end's clock, the one its guards were answered against (the window's
        end is judged by it); the machine's clock by default."""
        task, step = _ids(task, step)
        plan = self.plan(task, step, rollback=rollback, target=target, only_host=only_host, now=now)
        if not plan.target_chosen:
            from sessions.planning.targeting import not_chosen_text

            raise UserError(f"{task} {'rollback ' if rollback else ''}step {step}: {not_chosen_text(plan.suggestions)}: "
                            "nothing runs until someone chooses where", 2)
        if plan.guards:
            listed = "; ".join(g.describe() for g in plan.guards)
            raise UserError(f"{task} step {step}: unresolved guards: {listed}")
        if not plan.runnable:
            raise UserError(f"{task} step {step} has nothing to run (no command or file block)")
        self.session.ensure_writable()  # a journal that failed records nothing more: nothing more runs
        self._check_open_files(plan)
        if any(r.plan.hosts and set(r.plan.hosts) & set(plan.hosts) for r in self._active.values()):
            busy = sorted({h for r in self._active.values() for h in r.plan.hosts} & set(plan.hosts))
            raise UserError(f"{task} step {step}: another step is still running on {', '.join(busy)}")
        run = StepRun(self.session, plan, self.executor_for, secrets=self._secrets_list(task),
                      parallel_limit=self.parallel_limit, on_pause=on_pause or self.on_pause,
                      scrub_env=tuple(dict.fromkeys([*self.secret_names(task), *self.secret_values(task)])))
        self._active[run.run_id] = run
        try:
            summary = await run.run()
        finally:
            self._active.pop(run.run_id, None)
        self.summaries[summary.run_id] = summary
        if summary.outcome == "succeeded" and not rollback:
            self._tick_checkbox(task, step, summary.run_id)
        while len(self.summaries) > KEEP_SUMMARIES:  # the journal has everything; these are for callers
            self.summaries.pop(next(iter(self.summaries)))
        self.last_summary = summary
        return summary

    def _tick_checkbox(self, task: str, number: int, run_id: str) -> None:
        """A step made from a checkbox carrying a command ticks that checkbox when it succeeds."""
        runbook = self.session.runbook
        try:
            key = runbook.task(task).step(number).checkbox if runbook is not None else None
        except KeyError:
            return
        if key is None:
            return
        saved = self.session.state.checkboxes.get(key)
        if saved is None or not saved.checked:
            self.session.set_checkbox(key, True, evidence=f"step {number} succeeded (run {run_id})")

    def running(self) -> list[str]:
        """Run ids of the steps running now."""
        return list(self._active)

    def hosts_running(self, run_id: str) -> list[str]:
        """Hosts where a command of run ``run_id`` is running now."""
        run = self._active.get(run_id)
        return run.hosts_running() if run is not None else []

    async def cancel(self, run_id: str | None = None) -> None:
        """Ctrl-C: SIGINT to every host of the run (all runs when None); again: TERM, then KILL."""
        runs = [self._active[run_id]] if run_id in self._active else (
            list(self._active.values()) if run_id is None else [])
        for run in runs:
            await run.cancel()

    def _journal_failed(self, exc: Exception) -> None:
        """A disk full or I/O error on the journal: stop every running step at once (what
        runs must not go on unrecorded); the journal stays valid to its last durable record."""
        self.write_error = exc
        if not self._active:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self.stop(f"stopped: the journal cannot be written ({exc})"))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def stop(self, reason: str) -> None:
        """Stop every running step for good (SIGTERM, SIGHUP): INT, then TERM, then KILL on
        every host, until nothing runs; the hosts end ``cancelled`` with ``reason``."""
        await asyncio.gather(*(run.stop(reason) for run in list(self._active.values())))

    async def send_input(self, run_id: str, host: str, data: bytes) -> None:
        """Operator input to the running command on ``host`` (PTY steps)."""
        run = self._active.get(run_id)
        if run is None:
            raise UserError(f"run {run_id} is not running")
        await run.send_input(host, data)

    # -- recovery -----------------------------------------------------------------
    async def recover(self) -> list[str]:
        """On resume: re-attach to detached runs whose end was not seen.

        Journals their missed output and real outcome (``HostFinished``, then
        ``StepFinished`` when all hosts are done).  A host that cannot be
        re-attached (no detached id, executor refuses, host unreachable) is marked
        outcome unknown.  Returns the run ids that were recovered.
        """
        from sessions.engine.recovery import recover_detached

        return await recover_detached(self)

    async def close(self) -> None:
        """Cancel nothing, close the executors this engine created."""
        for kind in list(self._owned):
            ex = self._executors.pop(kind, None)
            if ex is not None:
                try:
                    await ex.close()
                except (TimeoutError, OSError):
                    pass
        self._owned.clear()


def _ids(task: TaskKey, step: int | Step) -> tuple[str, int]:
    """Task id and step number from ids or model objects."""
    return (task if isinstance(task, str) else task.id), (step if isinstance(step, int) else step.number)
