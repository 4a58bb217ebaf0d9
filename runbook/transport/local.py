"""Run steps on the machine runbook runs on (asyncio subprocesses).

Same contract as the SSH executor: the script reaches ``bash`` (or ``sh``) on a pipe,
never in argv; stdout and stderr stay apart, or are merged by a PTY; timeouts and
cancellation stop the whole process group (each run gets its own session); detached
runs use the same spool protocol as remote ones (:mod:`runbook.transport.detached`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import os
import shlex
import signal as signal_module
import struct
import tempfile
import termios
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runbook.errors import UserError
from runbook.sanitize.redaction import Redactor
from runbook.transport import detached
from runbook.transport.child_env import child_environ
from runbook.transport.executor import (
    STDIN_SCRIPT_COMMAND,
    Executor,
    OnOutput,
    OutputSink,
    RunHandle,
    RunOptions,
    RunResult,
    abandon,
    classify,
    script_from_fd,
    script_payload,
)

if TYPE_CHECKING:
    from runbook.targets.inventory import Target

READ_SIZE = 65536
SHELL = "/bin/sh"


class _LocalHandle(RunHandle):
    def __init__(self, host: str, proc: asyncio.subprocess.Process, master: int | None = None) -> None:
        super().__init__(host, pty=master is not None)
        self.proc = proc
        self.master = master

    async def write(self, data: bytes) -> None:
        if self.master is None:
            await super().write(data)
            return
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master, view)
            except BlockingIOError:
                await asyncio.sleep(0.01)
                continue
            view = view[n:]

    async def send_signal(self, name: str) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, getattr(signal_module, "SIG" + name))

    async def abandon(self) -> None:
        await super().abandon()
        await self.send_signal("KILL")

    def group_alive(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    async def end_group(self, grace: float) -> None:
        """The shell is gone; what it started in the background is not (a non-interactive
        shell's ``&`` jobs ignore SIGINT): TERM the rest of its process group, then KILL."""
        for name in ("TERM", "KILL"):
            if not self.group_alive():
                return
            await self.send_signal(name)
            delay, waited = 0.01, 0.0
            while self.group_alive() and waited < grace:
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 0.1)


class _LocalTransport:
    """:class:`runbook.transport.detached.Transport` on this machine (secret variables scrubbed from
    the environment, :mod:`runbook.transport.child_env`)."""

    def __init__(self, scrub_env: tuple[str, ...] = ()) -> None:
        self.scrub_env = scrub_env

    async def exec(self, command: str, stdin: bytes = b"") -> tuple[int | None, bytes, bytes]:
        proc = await asyncio.create_subprocess_exec(
            SHELL, "-c", command, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=child_environ(self.scrub_env),
        )
        out, err = await proc.communicate(stdin)
        return proc.returncode, out, err

    async def stream(self, command: str, on_stdout: Callable[[bytes], None], on_stderr: Callable[[bytes], None]) -> int | None:
        proc = await asyncio.create_subprocess_exec(
            SHELL, "-c", command, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
            env=child_environ(self.scrub_env),
        )
        try:
            await asyncio.gather(_pump(proc.stdout, on_stdout), _pump(proc.stderr, on_stderr))
            return await proc.wait()
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal_module.SIGKILL)


def _signal_name(number: int) -> str:
    try:
        return signal_module.Signals(number).name.removeprefix("SIG")
    except ValueError:
        return str(number)


async def _exited(proc: asyncio.subprocess.Process) -> int:
    """The exit status as soon as the process exits.  (``Process.wait()`` also waits for
    its pipes to close, which a background child can hold open for ever.)"""
    delay = 0.005
    while proc.returncode is None:
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
    return proc.returncode


async def _pump(reader: asyncio.StreamReader | None, sink: Callable[[bytes], None]) -> None:
    if reader is None:
        return
    while True:
        data = await reader.read(READ_SIZE)
        if not data:
            return
        sink(data)


async def _write_fd(fd: int, data: bytes) -> None:
    """Write all of ``data`` to a non-blocking pipe without blocking the loop, then close it."""
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    try:
        while view:
            try:
                n = os.write(fd, view)
                view = view[n:]
            except BlockingIOError:
                ready = loop.create_future()
                loop.add_writer(fd, ready.set_result, None)
                try:
                    await ready
                finally:
                    loop.remove_writer(fd)
            except BrokenPipeError:
                return
    finally:
        os.close(fd)


class LocalExecutor(Executor):
    """Runs scripts here.

    :param spool_dir: where detached runs keep their spool (``~`` is ``$HOME``)
    :param drain: seconds to wait for output after the command exits (background
        children may hold its output open)
    """

    def __init__(self, *, spool_dir: str = detached.DEFAULT_SPOOL, drain: float = 2.0, kill_grace: float = 3.0) -> None:
        super().__init__()
        self.spool_dir = spool_dir
        self.drain = drain
        self.kill_grace = kill_grace
        self._transport = _LocalTransport()
        self._pruned = False

    # ------------------------------------------------------------------- run

    async def run(self, target: Target, script: str, on_output: OnOutput, options: RunOptions) -> RunResult:
        """Run ``script`` here; see :meth:`runbook.transport.executor.Executor.run`.

        Cancelling this coroutine stops watching and closes our pipe ends (asyncio then
        kills the shell itself; commands it started live on).  :meth:`cancel` stops the
        whole process group.
        """
        host = target.name
        payload = script_payload(script, options.env)
        sink = OutputSink(host, on_output, options.redactor)
        await self.prune_spools()
        if options.detached:
            return await self._run_detached(host, payload, sink, options)
        started = time.monotonic()
        try:
            if options.pty:
                handle, wait_output = await self._start_pty(host, payload, sink, options)
            else:
                handle, wait_output = await self._start_pipes(host, payload, sink, options)
        except OSError as exc:
            return RunResult(host, "failed", error=f"cannot start the shell: {exc.strerror or exc}")
        self._register(handle)
        try:
            await self._wait(handle, options.timeout)
            if handle.cancelled or handle.timed_out:  # stopped: nothing it started goes on
                await handle.end_group(self.kill_grace)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(wait_output), self.drain)
            if not wait_output.done():
                wait_output.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await wait_output
        except asyncio.CancelledError:
            abandon(wait_output)  # stop watching; the command is not killed (cancel() does that)
            raise
        finally:
            if handle.master is not None:
                with contextlib.suppress(OSError):
                    asyncio.get_running_loop().remove_reader(handle.master)
                    os.close(handle.master)
            # Close our ends of the pipes now: a background child may hold the other ends.
            transport = getattr(handle.proc, "_transport", None)
            if transport is not None:
                transport.close()
            self._unregister(handle)
        sink.flush()
        if sink.error is not None:
            raise sink.error
        code = handle.proc.returncode
        status, sig = (code, None) if code is None or code >= 0 else (None, _signal_name(-code))
        return classify(host, handle, status, sig, duration_s=time.monotonic() - started, timeout=options.timeout)

    async def _wait(self, handle: _LocalHandle, timeout: float | None) -> None:
        exited = asyncio.ensure_future(_exited(handle.proc))
        try:
            done, _ = await asyncio.wait({exited}, timeout=timeout)
            if not done:
                handle.timed_out = True
                stopper = asyncio.ensure_future(handle.stop("TERM", self.kill_grace))
                await exited
                handle.finished.set()
                await stopper
        finally:
            exited.cancel()

    async def _start_pipes(self, host: str, payload: bytes, sink: OutputSink,
                           options: RunOptions) -> tuple[_LocalHandle, asyncio.Future[Any]]:
        proc = await asyncio.create_subprocess_exec(
            SHELL, "-c", STDIN_SCRIPT_COMMAND, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
            env=child_environ(options.scrub_env),
        )
        stdin = proc.stdin
        assert stdin is not None

        async def feed() -> None:
            try:
                stdin.write(payload)
                await stdin.drain()
                stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass

        output = asyncio.gather(
            feed(),
            _pump(proc.stdout, lambda d: sink.emit("stdout", d)),
            _pump(proc.stderr, lambda d: sink.emit("stderr", d)),
        )
        return _LocalHandle(host, proc), output

    async def _start_pty(
        self, host: str, payload: bytes, sink: OutputSink, options: RunOptions
    ) -> tuple[_LocalHandle, asyncio.Future[Any]]:
        master, slave = os.openpty()
        cols, rows = options.term_size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        read_fd, write_fd = os.pipe()
        tty = os.ttyname(slave)
        # The script comes on stdin (a pipe) and moves to fd 3; the shell, a session leader
        # (start_new_session), then opens the tty by name, which makes it the controlling
        # terminal, so ^C typed into the PTY interrupts the foreground job.
        command = f"exec 3<&0 0<>{shlex.quote(tty)} 1>&0 2>&0; " + script_from_fd(3)
        env = child_environ(options.scrub_env, TERM=os.environ.get("TERM") or "xterm-256color")
        try:
            proc = await asyncio.create_subprocess_exec(
                SHELL, "-c", command, stdin=read_fd, stdout=slave, stderr=slave, start_new_session=True, env=env,
            )
        except BaseException:
            for fd in (master, read_fd, write_fd):
                os.close(fd)
            raise
        finally:
            os.close(slave)
        os.close(read_fd)
        os.set_blocking(write_fd, False)
        os.set_blocking(master, False)
        loop = asyncio.get_running_loop()
        eof = loop.create_future()

        def readable() -> None:
            try:
                data = os.read(master, READ_SIZE)
            except BlockingIOError:
                return
            except OSError as exc:  # EIO: every slave fd is closed
                data = b""
                if exc.errno != errno.EIO and not eof.done():
                    eof.set_exception(exc)
            if data:
                sink.emit("pty", data)
                return
            loop.remove_reader(master)
            if not eof.done():
                eof.set_result(None)

        loop.add_reader(master, readable)
        output = asyncio.gather(_write_fd(write_fd, payload), eof)
        return _LocalHandle(host, proc, master), output

    # -------------------------------------------------------------- detached

    async def _run_detached(self, host: str, payload: bytes, sink: OutputSink, options: RunOptions) -> RunResult:
        detached_id = detached.check_id(options.detached_id or detached.new_detached_id())
        started = time.monotonic()
        try:
            await detached.start(_LocalTransport(options.scrub_env), self.spool_dir, detached_id, payload)
        except RuntimeError as exc:
            return RunResult(host, "failed", error=str(exc), detached_id=detached_id)
        return await self._follow(host, detached_id, sink, {}, options.timeout, started)

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
        """Follow a detached run again from raw byte offsets of its stdout/stderr."""
        host = target.name
        sink = OutputSink(host, on_output, redactor)
        await self.prune_spools()
        offsets = {"stdout": offset, "stderr": err_offset}
        return await self._follow(host, detached.check_id(detached_id), sink, offsets, timeout, time.monotonic())

    async def _follow(
        self, host: str, detached_id: str, sink: OutputSink, offsets: dict[str, int], timeout: float | None, started: float
    ) -> RunResult:
        return await detached.supervise(
            self, host, self._transport, self.spool_dir, detached_id, sink, offsets,
            timeout=timeout, started=started, grace=self.kill_grace,
        )

    async def discard_detached(self, target: Target, detached_id: str) -> None:
        with contextlib.suppress(OSError, ValueError, detached.ConnectionLost):
            await detached.discard(self._transport, self.spool_dir, detached.check_id(detached_id))

    async def prune_spools(self) -> None:
        """Remove leftover spools here (once per executor: this machine's "connection")."""
        if self._pruned:
            return
        self._pruned = True
        with contextlib.suppress(OSError, detached.ConnectionLost):
            await detached.prune(self._transport, self.spool_dir)

    # ---------------------------------------------------------------- upload

    async def upload(self, target: Target, path: str, content: bytes, mode: int = 0o600) -> str:
        """Atomically write ``content`` to ``path`` here (temp file in the same directory,
        fsync, rename); return its sha256."""
        host = target.name
        full = os.path.abspath(os.path.expanduser(path))
        directory, name = os.path.split(full)
        try:
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".runbook-tmp")
        except FileNotFoundError:
            raise UserError(f"{host}: cannot write {path}: no such directory {directory}") from None
        except OSError as exc:
            raise UserError(f"{host}: cannot write {path}: {exc.strerror or exc}") from None
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fchmod(fh.fileno(), mode)
                os.fsync(fh.fileno())
            os.replace(tmp, full)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise UserError(f"{host}: cannot write {path}: {exc.strerror or exc}") from None
        with contextlib.suppress(OSError):
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return hashlib.sha256(content).hexdigest()
