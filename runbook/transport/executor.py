"""Executors: where a step's script actually runs.

An :class:`Executor` runs one script on one :class:`~runbook.targets.inventory.Target`
and streams its output through a callback.  Implementations:
:class:`~runbook.transport.local.LocalExecutor` (asyncio subprocess) and
:class:`~runbook.transport.ssh.SSHExecutor` (asyncssh, one pooled connection per
host).  Executors know nothing of journals: the engine in ``sessions`` turns
their callbacks and results into events.

The script always travels on the command's stdin, never in argv, so secret values
substituted into it (and ``RunOptions.env``, exported at its top) are invisible in
the remote ``ps``.  The fixed command line (:data:`STDIN_SCRIPT_COMMAND`) moves it to
fd 3 and runs ``bash /dev/fd/3`` (``sh`` where bash is absent) with stdin from
``/dev/null``, so a command in the script that reads stdin (``ssh``, ``apt``,
``cat``) cannot swallow the rest of the script as it would under ``bash -s``.
With a PTY, stdin is the terminal: operator input goes there (``write_stdin``).

Results: ``RunResult``; a step's own failure never raises.  Helpers for the engine:
:func:`needs_pty`/:func:`pty_reason` (``-it``, prompting ``sudo``, ``read -p``), from
:mod:`runbook.shell.interactive`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from runbook.shell.interactive import needs_pty as needs_pty  # re-exported for the executors' callers
from runbook.shell.interactive import pty_reason as pty_reason

if TYPE_CHECKING:  # pragma: no cover
    from runbook.sanitize.redaction import Redactor
    from runbook.targets.inventory import Target

Stream = Literal["stdout", "stderr", "pty"]
OnOutput = Callable[[str, Stream, bytes], None]  # (host, stream, data)


@dataclass(frozen=True, slots=True)
class RunResult:
    """The end of one script on one host.

    ``outcome``: ``succeeded`` (exit 0), ``failed`` (non-zero exit or signal),
    ``timeout``, ``cancelled``, or ``unknown`` when the end was not seen (the
    connection dropped: asyncssh then reports ``exit_status`` None and
    ``exit_signal`` None).  ``error`` says why, for the operator.
    """

    host: str
    outcome: str
    exit_status: int | None = None
    exit_signal: str | None = None
    duration_s: float = 0.0
    error: str = ""
    detached_id: str | None = None  # spool id of a detached run, to re-attach


@dataclass(slots=True)
class RunOptions:
    """How to run a script.  ``detached`` wins over ``pty`` (a detached run has no terminal).
    ``term_size`` is (columns, rows)."""

    pty: bool = False
    timeout: float | None = None
    detached: bool = False
    env: dict[str, str] = field(default_factory=dict)
    term_size: tuple[int, int] = (120, 40)
    # detached: the spool id to use, chosen (and journaled) by the engine before the
    # run starts so that a crash cannot lose it; None lets the executor choose one
    detached_id: str | None = None
    # redacts secret values from output before ``on_output`` sees it (one stream copy
    # per host and stream is made with ``Redactor.new_stream``); None: raw output
    redactor: Redactor | None = None
    # names marked secret by the runbook: removed from the command's environment like
    # every secret-named variable (runbook.transport.child_env)
    scrub_env: tuple[str, ...] = ()


class RunHandle:
    """A script running on one host, as the executor's ``write_stdin``/``signal``/``cancel`` see it.

    Implementations override :meth:`write`, :meth:`send_signal` and :meth:`abandon`.
    ``finished`` is set when the run's result is known.
    """

    def __init__(self, host: str, pty: bool = False) -> None:
        self.host = host
        self.pty = pty
        self.cancelled = False  # cancel() was called
        self.interrupted = False  # a signal was sent (Ctrl-C)
        self.timed_out = False
        self.finished = asyncio.Event()
        self.abandoned = asyncio.Event()  # stop() gave up waiting for the end

    async def write(self, data: bytes) -> None:
        from runbook.errors import UserError

        raise UserError(f"{self.host}: the running step has no terminal; input goes to PTY steps only")

    async def send_signal(self, name: str) -> None:
        """Deliver signal ``name`` (``INT``, ``TERM``, ``KILL``, ...) to the command's process group."""

    async def abandon(self) -> None:
        """Stop waiting: close the channel or pipes (the end may then stay unconfirmed)."""
        self.abandoned.set()

    async def interrupt(self, name: str) -> None:
        """Signal ``name``; with a terminal, ``INT`` is typed as ``^C`` instead (as a real
        terminal does: the tty makes it SIGINT for the foreground job, and a program in
        raw mode, an editor say, reads it as a key), so a trap on INT runs once."""
        if name == "INT" and self.pty:
            await self.write(b"\x03")
        else:
            await self.send_signal(name)

    async def stop(self, first: str = "INT", grace: float = 3.0) -> None:
        """Escalate ``first`` -> ``TERM`` -> ``KILL`` until the command ends, then give up waiting."""
        for name in dict.fromkeys((first, "TERM", "KILL")):
            if self.finished.is_set():
                return
            with contextlib.suppress(Exception):
                await self.interrupt(name)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.finished.wait(), grace)
        if not self.finished.is_set():
            await self.abandon()


SIGNAL_NAMES = ("ABRT", "ALRM", "FPE", "HUP", "ILL", "INT", "KILL", "PIPE", "QUIT", "SEGV", "TERM", "USR1", "USR2")


class Executor(abc.ABC):
    """Runs scripts on targets.  One executor serves many hosts and steps.

    Running scripts are registered per host name, so the engine can send operator
    input (``write_stdin``), signals (``signal``) and cancellation (``cancel``) by
    host.  When several steps run on one host at once, input goes to the latest
    PTY step and signals to all of them.
    """

    kill_grace: float = 3.0  # seconds between INT, TERM and KILL when stopping a run

    @abc.abstractmethod
    async def run(self, target: Target, script: str, on_output: OnOutput, options: RunOptions) -> RunResult:
        """Run ``script`` on ``target``; call ``on_output`` for every chunk as it arrives.

        Never raises for a failure of the step or its connection: the result says what
        happened (``failed`` with ``error`` when the command could not be started).
        """

    def __init__(self) -> None:
        self._run_handles: dict[str, list[RunHandle]] = {}  # host -> its scripts running now

    def _register(self, handle: RunHandle) -> None:
        self._run_handles.setdefault(handle.host, []).append(handle)

    def _unregister(self, handle: RunHandle) -> None:
        handle.finished.set()
        running = self._run_handles.get(handle.host, [])
        if handle in running:
            running.remove(handle)
        if not running:
            self._run_handles.pop(handle.host, None)

    def running_hosts(self) -> list[str]:
        """Hosts with a script running now."""
        return [h for h, hs in self._run_handles.items() if hs]

    async def write_stdin(self, host: str, data: bytes) -> None:
        """Send operator input to a running PTY step on ``host``.

        :raises UserError: nothing runs on ``host`` with a terminal
        """
        from runbook.errors import UserError

        running = [h for h in self._run_handles.get(host, []) if h.pty]
        if not running:
            raise UserError(f"{host}: no step with a terminal (PTY) is running there; input not sent")
        await running[-1].write(data)

    async def signal(self, host: str, name: str = "INT") -> None:
        """Send a signal (Ctrl-C -> ``INT``) to the running command on ``host``.

        With a PTY, ``INT`` is typed as ``^C`` (see :meth:`RunHandle.interrupt`).  A run
        that then ends unsuccessfully has outcome ``cancelled``.
        """
        name = name.upper().removeprefix("SIG")
        if name not in SIGNAL_NAMES:
            raise ValueError(f"unsupported signal {name!r}")
        for handle in list(self._run_handles.get(host, [])):
            handle.interrupted = True
            with contextlib.suppress(Exception):
                await handle.interrupt(name)

    async def cancel(self, host: str | None = None, grace: float | None = None) -> None:
        """Cancel what runs on ``host`` (every host when None): INT, then TERM, then KILL
        ``grace`` seconds apart.  The runs end with outcome ``cancelled``."""
        hosts = [host] if host is not None else list(self._run_handles)
        handles = [h for name in hosts for h in self._run_handles.get(name, [])]
        for handle in handles:
            handle.cancelled = True
        await asyncio.gather(*(h.stop("INT", self.kill_grace if grace is None else grace) for h in handles))

    async def upload(self, target: Target, path: str, content: bytes, mode: int = 0o600) -> str:
        """Atomically write ``content`` to ``path`` on the target; return its sha256."""
        raise NotImplementedError

    async def reattach(
        self,
        target: Target,
        detached_id: str,
        on_output: OnOutput,
        offset: int = 0,
        *,
        err_offset: int = 0,
        redactor: Redactor | None = None,
        timeout: float | None = None,
    ) -> RunResult:
        """Reconnect to a detached run and learn its real outcome and missed output.

        ``offset``/``err_offset``: raw (pre-redaction) bytes of stdout/stderr already seen.
        """
        raise NotImplementedError

    async def discard_detached(self, target: Target, detached_id: str) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Remove the spool of detached run ``detached_id`` (raw output, secrets included)
        once its output and outcome are journaled; a run still going is left alone.
        Best effort: a host that cannot be reached prunes it on a later connection."""

    async def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Close pooled connections."""


def abandon(future: asyncio.Future[object]) -> None:
    """Cancel ``future`` without awaiting it, and mark its outcome as seen.

    A cancelled ``asyncio.gather`` finishes with a ``CancelledError`` that nobody
    retrieves; asyncio then logs "exception was never retrieved" (with a formatted
    traceback) whenever the garbage collector gets to it.
    """
    future.cancel()
    future.add_done_callback(_retrieve)


def _retrieve(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()


def classify(
    host: str,
    handle: RunHandle | None,
    exit_status: int | None,
    exit_signal: str | None,
    *,
    duration_s: float = 0.0,
    timeout: float | None = None,
    lost_reason: str = "connection lost before the command finished",
    detached_id: str | None = None,
) -> RunResult:
    """Turn what was seen of a command's end into a :class:`RunResult`.

    No exit status and no exit signal means the end was not seen: ``unknown`` (unless
    the executor itself timed out or cancelled the run, which it then reports).
    """
    seen = exit_status is not None or exit_signal is not None
    how = f"killed by signal {exit_signal}" if exit_signal else f"exit status {exit_status}"
    if handle is not None and handle.timed_out:
        error = f"timed out after {timeout:g} s; stopped" if timeout is not None else "timed out; stopped"
        outcome, error = "timeout", error + ("" if seen else " (its end was not confirmed)")
    elif handle is not None and handle.cancelled:
        outcome, error = "cancelled", "cancelled by the operator" + ("" if seen else " (its end was not confirmed)")
    elif not seen:
        outcome, error = "unknown", lost_reason
    elif handle is not None and handle.interrupted and (exit_status != 0 or exit_signal):
        outcome, error = "cancelled", f"interrupted by the operator ({how})"
    elif exit_status == 0 and not exit_signal:
        outcome, error = "succeeded", ""
    else:
        outcome, error = "failed", how
    return RunResult(
        host=host,
        outcome=outcome,
        exit_status=exit_status if exit_status is None or exit_status >= 0 else None,
        exit_signal=exit_signal,
        duration_s=duration_s,
        error=error,
        detached_id=detached_id,
    )


# --- scripts -------------------------------------------------------------------------

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The remote (or local) command line.  The script arrives on stdin; the shell moves it
# to fd 3 and gives the script /dev/null as stdin, so a command in the script that
# reads stdin (ssh, apt, cat) cannot swallow the rest of the script.  bash when
# present, else sh.  Nothing secret is ever in this text: it is the same for every step.
STDIN_SCRIPT_COMMAND = (
    "exec 3<&0 0</dev/null; "
    "if command -v bash >/dev/null 2>&1; then s=bash; else s=sh; fi; "
    'if [ -e /dev/fd/3 ]; then exec "$s" /dev/fd/3; else exec "$s" -s <&3; fi'
)


def script_from_fd(fd: int = 3) -> str:
    """Shell text running the script readable on ``fd`` with bash (else sh); stdin untouched."""
    return (
        "if command -v bash >/dev/null 2>&1; then s=bash; else s=sh; fi; "
        f'if [ -e /dev/fd/{fd} ]; then exec "$s" /dev/fd/{fd}; else exec "$s" -s <&{fd}; fi'
    )


def script_payload(script: str, env: dict[str, str] | None = None) -> bytes:
    """What goes on the script's input: fd 3 closed for the script, ``env`` exported, the script.

    Values in ``env`` (secrets too) travel only here, never in argv.
    """
    lines = ["exec 3<&-"]
    for name, value in (env or {}).items():
        if not _ENV_NAME.match(name):
            raise ValueError(f"not a valid environment variable name: {name!r}")
        lines.append(f"export {name}={shlex.quote(value)}")
    text = "\n".join(lines) + "\n" + script
    if not text.endswith("\n"):
        text += "\n"
    return text.encode("utf-8")


class OutputSink:
    """Calls ``on_output`` for one host, redacting each stream separately."""

    def __init__(self, host: str, on_output: OnOutput, redactor: Redactor | None = None) -> None:
        self.host = host
        self.on_output = on_output
        self._redactor = redactor if redactor else None
        self._streams: dict[str, Redactor] = {}
        self.raw_bytes: dict[str, int] = {}  # bytes seen per stream, before redaction
        self.error: BaseException | None = None

    def emit(self, stream: Stream, data: bytes) -> None:
        if not data:
            return
        self.raw_bytes[stream] = self.raw_bytes.get(stream, 0) + len(data)
        if self._redactor is not None:
            red = self._streams.get(stream)
            if red is None:
                red = self._streams[stream] = self._redactor.new_stream()
            data = red.feed(data)
        self._deliver(stream, data)

    def flush(self) -> None:
        for stream, red in self._streams.items():
            self._deliver(stream, red.flush())  # type: ignore[arg-type]

    def _deliver(self, stream: Stream, data: bytes) -> None:
        if not data:
            return
        try:
            self.on_output(self.host, stream, data)
        except Exception as exc:  # noqa: BLE001 - keep draining; run() re-raises the first one
            if self.error is None:
                self.error = exc


AsyncCallable = Callable[..., Awaitable[None]]
