"""Run steps over SSH with asyncssh (one pooled connection per host).

The script reaches the remote shell on the channel's stdin, never in argv; the
remote command line is the same fixed text for every step
(:data:`runbook.transport.executor.STDIN_SCRIPT_COMMAND`).  With a PTY the channel's stdin is
the terminal, so the script is first written to a private temporary file over a
separate channel (``umask 077``), which the PTY command opens and unlinks before
running it.  Should the PTY command never start (the connection drops in between),
the executor removes the file if it still can, and a reaper the upload left behind
removes it after :data:`PTY_SCRIPT_TTL` seconds anyway: a script holding secret
values must not stay on the host.

Output arrives as bytes (``encoding=None``) chunk by chunk, stdout and stderr
apart (``pty`` when merged by a terminal).  The end of a command is its exit
status or exit signal; when the connection drops first, asyncssh reports neither
and the outcome is ``unknown``.

Targets with ``local=True`` are passed to a :class:`~runbook.transport.local.LocalExecutor`,
so one executor serves a whole step.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import posixpath
import secrets
import shlex
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import asyncssh

from runbook.errors import UserError
from runbook.sanitize.redaction import Redactor
from runbook.transport import detached
from runbook.transport.executor import (
    STDIN_SCRIPT_COMMAND,
    Executor,
    OnOutput,
    OutputSink,
    RunHandle,
    RunOptions,
    RunResult,
    classify,
    script_from_fd,
    script_payload,
)
from runbook.transport.local import LocalExecutor
from runbook.transport.open_files import OpenFilesLimit, raise_open_files_limit
from runbook.transport.ssh_pool import ConnectError, HostKeyError, OnHostKeyAccepted, SSHPool

if TYPE_CHECKING:
    from runbook.targets.inventory import Target

__all__ = ["ConnectError", "HostKeyError", "SSHExecutor"]

READ_SIZE = 65536
TERM_TYPE = "xterm-256color"
CHANNEL_ERRORS = (asyncssh.Error, OSError, EOFError)

# The remote shell first reports its pid (= its process group: sshd starts each session
# with setsid) in a frame on stderr, which the executor removes from the output.  Signals
# then go through `kill -SIG -- -PID` on another channel: sshd refuses "signal" channel
# requests when it runs without privilege separation, which is the case for root logins.
PID_MARK = b"\x1eRUNBOOK-PID:"
PID_FRAME = "printf '\\036RUNBOOK-PID:%s\\036' \"$$\" >&2; "
REMOTE_COMMAND = PID_FRAME + STDIN_SCRIPT_COMMAND

# Seconds after which an uploaded PTY script is deleted even if no command opened it.
PTY_SCRIPT_TTL = 120


def pty_upload_command(ttl: int | None = None) -> str:
    """Writes stdin to a fresh private temporary file, leaves a detached reaper that
    deletes it after ``ttl`` s (default :data:`PTY_SCRIPT_TTL`), prints its name."""
    ttl = PTY_SCRIPT_TTL if ttl is None else int(ttl)
    return (
        'umask 077; f=$(mktemp "${TMPDIR:-/tmp}/runbook.XXXXXXXXXX") || exit 1; '
        'cat > "$f" || { rm -f "$f"; exit 1; }; '
        f'(sleep {ttl}; rm -f "$f") </dev/null >/dev/null 2>&1 & '
        'printf "%s\\n" "$f"'
    )



def _raw(data: bytes | str | None) -> bytes:
    """Output of a ``conn.run(..., encoding=None)``: bytes (asyncssh types it as either)."""
    if data is None:
        return b""
    return data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")

class _PidFilter:
    """Takes the pid frame out of the first bytes of a stream; passes everything else on."""

    LIMIT = 8192

    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self.emit = emit
        self.pid: int | None = None
        self._buf = b""
        self._done = False

    def feed(self, data: bytes) -> None:
        if self._done:
            self.emit(data)
            return
        self._buf += data
        start = self._buf.find(PID_MARK)
        if start >= 0:
            end = self._buf.find(b"\x1e", start + len(PID_MARK))
            if end >= 0:
                number = self._buf[start + len(PID_MARK) : end]
                self.pid = int(number) if number.isdigit() else None
                self._release(self._buf[:start] + self._buf[end + 1 :])
                return
        if len(self._buf) > self.LIMIT:
            self._release(self._buf)

    def flush(self) -> None:
        if not self._done:
            self._release(self._buf)

    def _release(self, data: bytes) -> None:
        self._done, self._buf = True, b""
        if data:
            self.emit(data)


class _SSHHandle(RunHandle):
    def __init__(self, host: str, conn: asyncssh.SSHClientConnection, proc: asyncssh.SSHClientProcess[bytes],
                 pty: bool, pid_filter: _PidFilter) -> None:
        super().__init__(host, pty=pty)
        self.conn = conn
        self.proc = proc
        self.pid_filter = pid_filter

    async def write(self, data: bytes) -> None:
        if not self.pty:
            await super().write(data)
            return
        self.proc.stdin.write(data)

    async def send_signal(self, name: str) -> None:
        pid = self.pid_filter.pid
        if pid is not None and not self.conn.is_closed():
            try:
                await asyncio.wait_for(
                    self.conn.run(f"kill -{name} -{pid}", request_pty=False, term_type=None), 10
                )
                return
            except (TimeoutError, *CHANNEL_ERRORS):
                pass
        self.proc.send_signal(name)

    async def abandon(self) -> None:
        await super().abandon()
        self.proc.close()


class _SSHTransport:
    """:class:`runbook.transport.detached.Transport` over the pooled connection to one target."""

    def __init__(self, pool: SSHPool, target: Target) -> None:
        self.pool = pool
        self.target = target

    async def _conn(self) -> asyncssh.SSHClientConnection:
        try:
            return await self.pool.get(self.target)
        except ConnectError as exc:
            raise detached.ConnectionLost(str(exc)) from None

    async def exec(self, command: str, stdin: bytes = b"") -> tuple[int | None, bytes, bytes]:
        conn = await self._conn()
        try:
            result = await conn.run(command, input=stdin, encoding=None, request_pty=False, term_type=None)
        except CHANNEL_ERRORS as exc:
            raise detached.ConnectionLost(str(exc)) from None
        if result.exit_status is None and result.exit_signal is None:
            raise detached.ConnectionLost("no exit status")
        return result.exit_status, _raw(result.stdout), _raw(result.stderr)

    async def stream(self, command: str, on_stdout: Callable[[bytes], None], on_stderr: Callable[[bytes], None]) -> int | None:
        conn = await self._conn()
        try:
            proc = await conn.create_process(command, encoding=None, request_pty=False, term_type=None)
        except CHANNEL_ERRORS as exc:
            raise detached.ConnectionLost(str(exc)) from None
        try:
            proc.stdin.write_eof()
            await asyncio.gather(_pump(proc.stdout, on_stdout), _pump(proc.stderr, on_stderr))
            await proc.wait_closed()
        finally:
            proc.close()
        return proc.exit_status if proc.exit_signal is None else None


async def _pump(reader: asyncssh.SSHReader[bytes], sink: Callable[[bytes], None]) -> None:
    try:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                return
            sink(data)
    except CHANNEL_ERRORS:
        return


class SSHExecutor(Executor):
    """Runs scripts on SSH targets (and on ``local`` ones through a :class:`LocalExecutor`).

    :param known_hosts: known_hosts file(s) (default ``~/.ssh/known_hosts`` and the global one)
    :param accept_new_host_keys: record unknown host keys (``--accept-new-host-keys``)
    :param on_host_key_accepted: ``fn(host_name, fingerprint)`` for the engine's HostKeyAccepted
    :param connect_limit: concurrent SSH handshakes
    :param ssh_config: OpenSSH client config file(s) (default ``~/.ssh/config``)
    :param spool_dir: remote spool of detached runs (``~`` is the remote ``$HOME``)
    :param reconnect_attempts: detached runs: reconnects after a lost connection
    :param drain: seconds to wait for output after the exit status arrives
    """

    def __init__(
        self,
        *,
        known_hosts: str | Sequence[str] | None = None,
        accept_new_host_keys: bool = False,
        on_host_key_accepted: OnHostKeyAccepted | None = None,
        connect_limit: int = 10,
        ssh_config: str | Sequence[str] | None = None,
        connect_timeout: float = 20.0,
        keepalive_interval: float = 15,
        keepalive_count_max: int = 3,
        spool_dir: str = detached.DEFAULT_SPOOL,
        reconnect_attempts: int = 3,
        drain: float = 2.0,
        kill_grace: float = 3.0,
        local: LocalExecutor | None = None,
    ) -> None:
        super().__init__()
        # one socket per pooled host: lift the soft open-file limit to the hard one, as OpenSSH does
        self.open_files: OpenFilesLimit = raise_open_files_limit()
        self.pool = SSHPool(
            known_hosts=known_hosts,
            accept_new_host_keys=accept_new_host_keys,
            on_host_key_accepted=on_host_key_accepted,
            connect_limit=connect_limit,
            ssh_config=ssh_config,
            connect_timeout=connect_timeout,
            keepalive_interval=keepalive_interval,
            keepalive_count_max=keepalive_count_max,
            on_connect=self._prune,
        )
        self.spool_dir = spool_dir
        self._prunes: set[asyncio.Future[Any]] = set()
        self.reconnect_attempts = reconnect_attempts
        self.drain = drain
        self.kill_grace = kill_grace
        self.local = local or LocalExecutor(drain=drain, kill_grace=kill_grace)

    async def connect(self, target: Target) -> asyncssh.SSHClientConnection:
        """Connect now (or reuse the pooled connection), e.g. to check host keys before a step.

        :raises HostKeyError: unknown or changed host key (host and fingerprint named)
        :raises ConnectError: unreachable, refused, authentication failed
        """
        return await self.pool.get(target)

    # ------------------------------------------------------------------- run

    async def run(self, target: Target, script: str, on_output: OnOutput, options: RunOptions) -> RunResult:
        """Run ``script`` on ``target``; see :meth:`runbook.transport.executor.Executor.run`.

        A host that cannot be reached gives outcome ``failed`` with the reason in
        ``error`` (the command was not started); an unverifiable host key likewise.
        Cancelling this coroutine closes the channel without killing the command, as
        when an ``ssh`` client dies (use :meth:`cancel` to stop it).
        """
        if target.local:
            return await self.local.run(target, script, on_output, options)
        host = target.name
        payload = script_payload(script, options.env)
        sink = OutputSink(host, on_output, options.redactor)
        started = time.monotonic()
        if options.detached:
            return await self._run_detached(target, payload, sink, options, started)
        try:
            conn, proc = await self._start(target, payload, options)
        except UserError as exc:  # ConnectError, HostKeyError, PTY hand-over refused
            return RunResult(host, "failed", duration_s=time.monotonic() - started, error=str(exc))
        except (detached.ConnectionLost, *CHANNEL_ERRORS) as exc:
            return RunResult(host, "failed", duration_s=time.monotonic() - started,
                             error=f"{host}: cannot start the command: {exc}")
        out: Callable[[bytes], None]
        if options.pty:
            pid_filter = _PidFilter(lambda d: sink.emit("pty", d))
            out, err = pid_filter.feed, pid_filter.feed
        else:
            pid_filter = _PidFilter(lambda d: sink.emit("stderr", d))
            out, err = (lambda d: sink.emit("stdout", d)), pid_filter.feed
        handle = _SSHHandle(host, conn, proc, options.pty, pid_filter)
        pumps = asyncio.gather(_pump(proc.stdout, out), _pump(proc.stderr, err))
        self._register(handle)
        try:
            await self._wait(handle, options.timeout)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(pumps), self.drain)
        finally:
            self._unregister(handle)
            proc.close()
            pumps.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pumps
        pid_filter.flush()
        sink.flush()
        if sink.error is not None:
            raise sink.error
        signal = proc.exit_signal[0] if proc.exit_signal else None
        status = None if signal else proc.exit_status
        return classify(host, handle, status, signal, duration_s=time.monotonic() - started, timeout=options.timeout)

    async def _start(
        self, target: Target, payload: bytes, options: RunOptions
    ) -> tuple[asyncssh.SSHClientConnection, asyncssh.SSHClientProcess[bytes]]:
        """Open the channel and start the command; reconnect once if the pooled connection was dead."""
        for attempt in range(2):
            conn = await self.pool.get(target)
            try:
                if options.pty:
                    return conn, await self._start_pty(conn, target.name, payload, options)
                proc = await conn.create_process(REMOTE_COMMAND, encoding=None, request_pty=False, term_type=None)
                proc.stdin.write(payload)
                proc.stdin.write_eof()
                return conn, proc
            except CHANNEL_ERRORS:
                if attempt == 0 and conn.is_closed():
                    self.pool.forget(target, conn)
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _start_pty(
        self, conn: asyncssh.SSHClientConnection, host: str, payload: bytes, options: RunOptions
    ) -> asyncssh.SSHClientProcess[bytes]:
        upload = await conn.run(pty_upload_command(), input=payload, encoding=None, request_pty=False, term_type=None)
        path = _raw(upload.stdout).decode("utf-8", "replace").strip()
        if upload.exit_status != 0 or not path.startswith("/") or "\n" in path:
            reason = _raw(upload.stderr).decode("utf-8", "replace").strip() or f"exit status {upload.exit_status}"
            raise UserError(f"{host}: cannot hand the script to the terminal: {reason}")
        command = PID_FRAME + f"f={shlex.quote(path)}; exec 3<\"$f\" || exit 127; rm -f \"$f\"; " + script_from_fd(3)
        try:
            return await conn.create_process(
                command, encoding=None, request_pty="force", term_type=TERM_TYPE, term_size=tuple(options.term_size)
            )
        except BaseException:
            with contextlib.suppress(Exception):  # best effort; the reaper deletes it otherwise
                await asyncio.wait_for(conn.run(f"rm -f {shlex.quote(path)}", request_pty=False, term_type=None), 5)
            raise

    async def _wait(self, handle: _SSHHandle, timeout: float | None) -> None:
        """Until the channel closes, or the exit status arrived and output had ``drain`` s to end."""
        proc = handle.proc
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        closed = asyncio.ensure_future(proc.wait_closed())
        abandoned = asyncio.ensure_future(handle.abandoned.wait())
        stopper: asyncio.Future[Any] | None = None
        try:
            while not closed.done():
                done, _ = await asyncio.wait({closed, abandoned}, timeout=0.25)
                if done:
                    break
                if proc.exit_status is not None or proc.exit_signal is not None:
                    handle.finished.set()
                    await asyncio.wait({closed}, timeout=self.drain)  # background jobs may hold the output open
                    break
                if deadline is not None and stopper is None and loop.time() >= deadline:
                    handle.timed_out = True
                    stopper = asyncio.ensure_future(handle.stop("TERM", self.kill_grace))
        finally:
            handle.finished.set()
            closed.cancel()
            abandoned.cancel()
            if stopper is not None:
                await stopper

    # -------------------------------------------------------------- detached

    async def _run_detached(
        self, target: Target, payload: bytes, sink: OutputSink, options: RunOptions, started: float
    ) -> RunResult:
        host = target.name
        detached_id = detached.check_id(options.detached_id or detached.new_detached_id())
        transport = _SSHTransport(self.pool, target)
        try:
            await self.pool.get(target)
        except UserError as exc:
            return RunResult(host, "failed", error=str(exc), detached_id=detached_id)
        try:
            await detached.start(transport, self.spool_dir, detached_id, payload)
        except RuntimeError as exc:
            return RunResult(host, "failed", error=f"{host}: {exc}", detached_id=detached_id)
        except detached.ConnectionLost as exc:
            # The start command may or may not have run: a status check tells later.
            return RunResult(host, "unknown", error=f"{host}: connection lost while starting the detached "
                             f"command ({exc}); re-attach to learn whether it runs", detached_id=detached_id)
        return await self._supervise(target, transport, detached_id, sink, {}, options.timeout, started)

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
        """Reconnect to detached run ``detached_id`` on ``target``: deliver the output after
        the raw byte offsets ``offset`` (stdout) and ``err_offset`` (stderr), follow it to
        its end and return its real outcome (``unknown`` if its end cannot be learnt)."""
        if target.local:
            return await self.local.reattach(target, detached_id, on_output, offset, err_offset=err_offset,
                                             redactor=redactor, timeout=timeout)
        sink = OutputSink(target.name, on_output, redactor)
        offsets = {"stdout": offset, "stderr": err_offset}
        transport = _SSHTransport(self.pool, target)
        return await self._supervise(target, transport, detached.check_id(detached_id), sink, offsets, timeout,
                                     time.monotonic())

    async def _supervise(
        self, target: Target, transport: _SSHTransport, detached_id: str, sink: OutputSink,
        offsets: dict[str, int], timeout: float | None, started: float,
    ) -> RunResult:
        async def on_lost(attempt: int) -> bool:
            self.pool.forget(target)
            if attempt > self.reconnect_attempts:
                return False
            await asyncio.sleep(min(2 ** (attempt - 1), 8))
            return True

        return await detached.supervise(
            self, target.name, transport, self.spool_dir, detached_id, sink, offsets,
            timeout=timeout, started=started, grace=self.kill_grace, on_lost=on_lost,
        )

    async def discard_detached(self, target: Target, detached_id: str) -> None:
        if target.local:
            await self.local.discard_detached(target, detached_id)
            return
        with contextlib.suppress(detached.ConnectionLost, ValueError, asyncio.TimeoutError):
            await asyncio.wait_for(
                detached.discard(_SSHTransport(self.pool, target), self.spool_dir, detached.check_id(detached_id)), 30)

    async def _prune(self, target: Target, conn: asyncssh.SSHClientConnection) -> None:
        """Every new connection: remove leftover spools on the host (:func:`runbook.transport.detached.prune`),
        beside the first command rather than before it; :meth:`close` waits for it."""
        if not target.in_inventory and "(jump host)" in target.name:
            return  # a jump host: runbook runs nothing there

        async def prune() -> None:
            with contextlib.suppress(asyncio.TimeoutError, *CHANNEL_ERRORS):
                await asyncio.wait_for(conn.run(detached.prune_command(self.spool_dir), request_pty=False,
                                                term_type=None), 10)

        task = asyncio.ensure_future(prune())
        self._prunes.add(task)
        task.add_done_callback(self._prunes.discard)

    # ---------------------------------------------------------------- upload

    async def upload(self, target: Target, path: str, content: bytes, mode: int = 0o600) -> str:
        """Atomically write ``content`` to ``path`` over SFTP: a temporary name in the same
        directory, ``fsync@openssh.com`` when offered, ``posix-rename@openssh.com``.
        ``~/`` (or a relative path) is the remote home.  Returns the content's sha256.

        :raises UserError: naming host and path (no such directory, permission denied, ...)
        """
        if target.local:
            return await self.local.upload(target, path, content, mode)
        host = target.name
        remote = path[2:] if path.startswith("~/") else path
        directory, name = posixpath.split(remote)
        if not name:
            raise UserError(f"{host}: cannot write {path}: not a file name")
        tmp = posixpath.join(directory, f".{name}.{secrets.token_hex(4)}.runbook-tmp")
        conn = await self.pool.get(target)
        try:
            async with conn.start_sftp_client() as sftp:
                try:
                    async with sftp.open(tmp, "xb", asyncssh.SFTPAttrs(permissions=mode)) as fh:
                        await fh.write(content)
                        with contextlib.suppress(asyncssh.SFTPOpUnsupported):
                            await fh.fsync()
                    await sftp.chmod(tmp, mode)
                    await sftp.posix_rename(tmp, remote)
                except BaseException:
                    with contextlib.suppress(Exception):
                        await sftp.remove(tmp)
                    raise
        except asyncssh.SFTPNoSuchFile:
            raise UserError(f"{host}: cannot write {path}: no such directory {directory or '~'}") from None
        except asyncssh.SFTPError as exc:
            raise UserError(f"{host}: cannot write {path}: {exc.reason}") from None
        except CHANNEL_ERRORS as exc:
            raise UserError(f"{host}: cannot write {path}: {exc}") from None
        return hashlib.sha256(content).hexdigest()

    # ----------------------------------------------------------- by host name

    async def write_stdin(self, host: str, data: bytes) -> None:
        if host in self.local.running_hosts():
            await self.local.write_stdin(host, data)
        else:
            await super().write_stdin(host, data)

    async def signal(self, host: str, name: str = "INT") -> None:
        await self.local.signal(host, name)
        await super().signal(host, name)

    async def cancel(self, host: str | None = None, grace: float | None = None) -> None:
        await asyncio.gather(self.local.cancel(host, grace), super().cancel(host, grace))

    async def resize(self, host: str, cols: int, rows: int) -> None:
        """Tell running PTY steps on ``host`` the terminal's new size."""
        for handle in self._run_handles.get(host, []):
            if isinstance(handle, _SSHHandle) and handle.pty:
                with contextlib.suppress(Exception):
                    handle.proc.change_terminal_size(cols, rows)

    async def close(self) -> None:
        """Close every pooled connection (after the spool pruning still under way)."""
        if self._prunes:
            await asyncio.wait(set(self._prunes), timeout=10)
        await self.pool.close()
        await self.local.close()
