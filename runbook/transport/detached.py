"""Detached runs: a command that outlives its connection (and runbook itself).

A remote command normally dies with its SSH session.  In detached mode the script
runs under ``setsid -f`` with its output, pid and exit code in a spool directory
on the host (``~/.runbook/spool/<id>/{out,err,pid,rc}``, mode 0700)::

    start   upload the script (stdin) to the spool, start the runner, wait for ``pid``
    follow  stream ``out``/``err`` from byte offsets until the runner is gone
    status  ``rc N`` | ``running`` | ``gone`` (ended without an rc: killed, reboot) | ``missing``
    kill    signal the run's process group (the runner survives INT/TERM to write ``rc``)

The script file is unlinked as soon as the runner has opened it, so secret values
do not stay on the host's disk.  ``out``/``err`` hold the raw output (secrets
included) only until it is journaled: the engine removes the spool
(:func:`discard`) as soon as the run's output and outcome are in the journal, and
every new connection to a host removes leftovers (:func:`prune`: spools whose run
is over, after :data:`KEEP_HOURS`, so that a session interrupted meanwhile can
still re-attach; a stale ``script`` at once).  Spools are 0700, their files 0600.

The shell text here is the same for local and SSH runs: executors provide two
primitives (:class:`Transport`): run a command with some stdin and collect its
output, and stream a command's stdout/stderr.  Nothing secret is ever in argv:
the spool path and id are the only variable parts.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from runbook.transport.executor import Executor, OutputSink, RunHandle, RunResult, classify

DEFAULT_SPOOL = "~/.runbook/spool"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
KEEP_HOURS = 24  # a finished run's spool left behind (runbook died first) is pruned after this
STALE_SCRIPT_MINUTES = 2  # a script the runner never opened (the start failed)


class ConnectionLost(Exception):
    """The transport broke before the command's end was seen."""


class Transport(Protocol):
    async def exec(self, command: str, stdin: bytes = b"") -> tuple[int | None, bytes, bytes]:
        """Run ``command`` with ``stdin``; return (exit status, stdout, stderr).  Raises ConnectionLost."""

    async def stream(
        self, command: str, on_stdout: Callable[[bytes], None], on_stderr: Callable[[bytes], None]
    ) -> int | None:
        """Run ``command``, passing its output on as it arrives; return its exit status
        (None when the end was not seen)."""


def new_detached_id() -> str:
    """A fresh spool id: sortable by time, unguessable."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(6)


def check_id(detached_id: str) -> str:
    if not _ID.match(detached_id or ""):
        raise ValueError(f"bad detached id {detached_id!r}: letters, digits, '.', '_', '-' only")
    return detached_id


def spool_shell_path(spool_dir: str, detached_id: str) -> str:
    """Shell text for the spool directory of ``detached_id`` (``~`` becomes ``$HOME``)."""
    check_id(detached_id)
    base = spool_dir.rstrip("/") or "/"
    if base == "~" or base.startswith("~/"):
        rest = base[2:]
        return '"$HOME"/' + (shlex.quote(rest + "/" + detached_id) if rest else shlex.quote(detached_id))
    return shlex.quote(base + "/" + detached_id)


# The runner: `sh -c RUNNER runbook-detached DIR`, started by setsid -f, so its pid is
# the process group of everything the script starts.  It ignores nothing (a trapped
# signal is reset to default in children) but survives INT/TERM itself to record rc.
RUNNER = (
    'D=$1; trap ":" INT TERM HUP; '
    'exec 3<"$D/script" || exit 1; rm -f "$D/script"; '
    'echo $$ > "$D/pid.tmp" && mv -f "$D/pid.tmp" "$D/pid"; '
    'cd "$HOME" 2>/dev/null || cd /; '
    "if command -v bash >/dev/null 2>&1; then s=bash; else s=sh; fi; "
    '"$s" /dev/fd/3 </dev/null >>"$D/out" 2>>"$D/err"; rc=$?; '
    'echo "$rc" > "$D/rc.tmp" && mv -f "$D/rc.tmp" "$D/rc"'
)


def start_command(spool_dir: str, detached_id: str) -> str:
    """Shell text: read the script from stdin into a fresh spool, start it detached, print its pid."""
    d = spool_shell_path(spool_dir, detached_id)
    return (
        f"umask 077; D={d}; "
        'mkdir -p "$D" || exit 90; chmod 700 "$D" "$D/.." 2>/dev/null; '
        'if [ -e "$D/pid" ] || [ -e "$D/script" ]; then echo "spool $D is already in use" >&2; exit 91; fi; '
        'cat > "$D/script" || { rm -f "$D/script"; exit 92; }; : > "$D/out"; : > "$D/err"; '
        'chmod 600 "$D/script" "$D/out" "$D/err" || exit 92; '
        f"R={shlex.quote(RUNNER)}; "
        'if setsid -f true </dev/null >/dev/null 2>&1; then '
        'setsid -f sh -c "$R" runbook-detached "$D" </dev/null >/dev/null 2>&1 || exit 93; '
        'else (setsid sh -c "$R" runbook-detached "$D" </dev/null >/dev/null 2>&1 &) || exit 93; fi; '
        "i=0; while [ ! -s \"$D/pid\" ] && [ ! -e \"$D/rc\" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; "
        '[ -s "$D/pid" ] || { rm -f "$D/script"; echo "the detached command did not start" >&2; exit 94; }; '
        'cat "$D/pid"'
    )


# `alive PID`: running and not a zombie (an init that reaps slowly leaves zombies around).
ALIVE = (
    'alive() { kill -0 "$1" 2>/dev/null || return 1; [ -r "/proc/$1/stat" ] || return 0; '
    'case "$(sed "s/.*) //" "/proc/$1/stat" 2>/dev/null)" in Z*) return 1;; esac; return 0; }; '
)


def follow_command(
    spool_dir: str, detached_id: str, out_offset: int = 0, err_offset: int = 0, use_tail: bool = True
) -> str:
    """Shell text: stream ``out`` (stdout) and ``err`` (stderr) from the given byte offsets
    until the run is over (``rc`` written, or the runner gone).  GNU ``tail -F --pid``
    (bound to a watcher of the rc file) when available, else a poll loop."""
    d = spool_shell_path(spool_dir, detached_id)
    o, e = int(out_offset), int(err_offset)
    return (
        f"D={d}; " + ALIVE +
        '[ -d "$D" ] || exit 95; '
        "i=0; while [ ! -s \"$D/pid\" ] && [ ! -e \"$D/rc\" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; "
        'pid=$(cat "$D/pid" 2>/dev/null); '
        'running() { [ ! -e "$D/rc" ] && [ -n "$pid" ] && alive "$pid"; }; '
        f'if {"" if use_tail else "false && "}running && tail --pid="$$" -c +1 /dev/null >/dev/null 2>&1; then '
        "(while running; do sleep 0.2; done) & w=$!; "
        f'tail -c +{o + 1} -s 0.2 --pid="$w" -F "$D/out" 2>/dev/null & a=$!; '
        f'tail -c +{e + 1} -s 0.2 --pid="$w" -F "$D/err" 3>&2 >&3 2>/dev/null & b=$!; '
        'wait "$a" "$b"; '
        "else "
        f"o={o}; e={e}; "
        "while :; do "
        "more=0; running && more=1; "
        's=$(wc -c < "$D/out"); if [ "$s" -gt "$o" ]; then tail -c +$((o+1)) "$D/out" | head -c $((s-o)); o=$s; fi; '
        's=$(wc -c < "$D/err"); if [ "$s" -gt "$e" ]; then tail -c +$((e+1)) "$D/err" | head -c $((s-e)) >&2; e=$s; fi; '
        '[ "$more" = 1 ] || break; sleep 0.2; '
        "done; fi"
    )


def status_command(spool_dir: str, detached_id: str) -> str:
    """Shell text printing ``rc N SECONDS`` (how long it ran, from the spool's pid and rc
    files; 0 when unknown), ``running``, ``gone`` or ``missing``."""
    d = spool_shell_path(spool_dir, detached_id)
    rc = ('echo "rc $(cat "$D/rc") $(( $(stat -c %Y "$D/rc" 2>/dev/null || echo 0) '
          '- $(stat -c %Y "$D/pid" 2>/dev/null || echo 0) ))"; ')
    return (
        f"D={d}; " + ALIVE +
        'if [ -s "$D/rc" ]; then ' + rc +
        'elif [ -s "$D/pid" ] && alive "$(cat "$D/pid")"; then echo running; '
        'elif [ -s "$D/rc" ]; then ' + rc +
        'elif [ -d "$D" ]; then echo gone; else echo missing; fi'
    )


def discard_command(spool_dir: str, detached_id: str) -> str:
    """Shell text removing the spool of ``detached_id`` unless its run is still going."""
    d = spool_shell_path(spool_dir, detached_id)
    return (
        f"D={d}; " + ALIVE +
        '[ -d "$D" ] || exit 0; '
        'pid=$(cat "$D/pid" 2>/dev/null); '
        'if [ ! -e "$D/rc" ] && [ -n "$pid" ] && alive "$pid"; then echo running; exit 0; fi; '
        'rm -rf -- "$D"'
    )


def prune_command(spool_dir: str) -> str:
    """Shell text removing leftover spools: a ``script`` never opened (older than
    :data:`STALE_SCRIPT_MINUTES`) at once, and spools whose run is over (``rc`` written,
    or the runner gone) older than :data:`KEEP_HOURS`; and keeping the spool private."""
    base = spool_dir.rstrip("/") or "/"
    if base == "~" or base.startswith("~/"):
        rest = base[2:]
        b = '"$HOME"' + ("/" + shlex.quote(rest) if rest else "")
    else:
        b = shlex.quote(base)
    return (
        f"B={b}; " + ALIVE +
        '[ -d "$B" ] || exit 0; chmod 700 "$B" 2>/dev/null; '
        f'find "$B" -mindepth 2 -maxdepth 2 -name script -type f -mmin +{STALE_SCRIPT_MINUTES} '
        "-exec rm -f {} + 2>/dev/null; "
        f'find "$B" -mindepth 1 -maxdepth 1 -type d -mmin +{KEEP_HOURS * 60} 2>/dev/null | '
        'while IFS= read -r D; do '
        'pid=$(cat "$D/pid" 2>/dev/null); '
        'if [ ! -e "$D/rc" ] && [ -n "$pid" ] && alive "$pid"; then continue; fi; '
        'rm -rf -- "$D"; done; '
        'find "$B" -mindepth 1 -maxdepth 1 -type d ! -perm 700 -exec chmod 700 {} + 2>/dev/null; '
        'find "$B" -mindepth 2 -maxdepth 2 -type f ! -perm 600 -exec chmod 600 {} + 2>/dev/null; exit 0'
    )


def kill_command(spool_dir: str, detached_id: str, signal: str) -> str:
    """Shell text sending ``signal`` to the run's process group."""
    d = spool_shell_path(spool_dir, detached_id)
    sig = re.sub(r"[^A-Z0-9]", "", signal.upper().removeprefix("SIG")) or "TERM"
    return f'D={d}; pid=$(cat "$D/pid" 2>/dev/null) && [ -n "$pid" ] && kill -{sig} -"$pid" 2>/dev/null'


@dataclass(slots=True)
class Status:
    """What the spool says: ``state`` is ``rc``, ``running``, ``gone`` or ``missing``."""

    state: str
    rc: int | None = None
    elapsed: float | None = None  # seconds from the run's start to its rc, when the spool says


def parse_status(text: bytes) -> Status:
    words = text.decode("utf-8", "replace").split()
    if len(words) in (2, 3) and words[0] == "rc" and words[1].lstrip("-").isdigit():
        elapsed = float(words[2]) if len(words) == 3 and words[2].isdigit() and int(words[2]) > 0 else None
        return Status("rc", int(words[1]), elapsed)
    if words and words[0] in ("running", "gone", "missing"):
        return Status(words[0])
    return Status("gone")


async def start(transport: Transport, spool_dir: str, detached_id: str, payload: bytes) -> int:
    """Start a detached run; return the runner's pid.  Raises RuntimeError (with the reason) or ConnectionLost."""
    status, out, err = await transport.exec(start_command(spool_dir, detached_id), payload)
    if status != 0:
        reason = err.decode("utf-8", "replace").strip() or f"exit status {status}"
        raise RuntimeError(f"cannot start the detached command: {reason}")
    try:
        return int(out.split()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"cannot start the detached command: unexpected answer {out[:80]!r}") from None


async def status(transport: Transport, spool_dir: str, detached_id: str) -> Status:
    rc, out, _ = await transport.exec(status_command(spool_dir, detached_id))
    if rc is None:
        raise ConnectionLost("status not received")
    return parse_status(out)


async def discard(transport: Transport, spool_dir: str, detached_id: str) -> None:
    """Remove the spool of a run that is over (its output and outcome are journaled)."""
    await transport.exec(discard_command(spool_dir, detached_id))


async def prune(transport: Transport, spool_dir: str) -> None:
    """Remove leftover spools (see :func:`prune_command`)."""
    await transport.exec(prune_command(spool_dir))


async def kill(transport: Transport, spool_dir: str, detached_id: str, signal: str) -> None:
    await transport.exec(kill_command(spool_dir, detached_id, signal))


async def follow(
    transport: Transport,
    spool_dir: str,
    detached_id: str,
    offsets: dict[str, int],
    emit: Callable[[Literal["stdout", "stderr"], bytes], None],
    sleep: Callable[[float], Awaitable[None]],
) -> Status:
    """Stream output from ``offsets`` (updated in place: ``stdout``/``stderr`` raw bytes)
    until the run is over; return its final :class:`Status`.  Raises ConnectionLost."""
    while True:

        def on_out(data: bytes) -> None:
            offsets["stdout"] = offsets.get("stdout", 0) + len(data)
            emit("stdout", data)

        def on_err(data: bytes) -> None:
            offsets["stderr"] = offsets.get("stderr", 0) + len(data)
            emit("stderr", data)

        rc = await transport.stream(
            follow_command(spool_dir, detached_id, offsets.get("stdout", 0), offsets.get("stderr", 0)), on_out, on_err
        )
        if rc is None:
            raise ConnectionLost("the output stream ended without an exit status")
        if rc == 95:
            return Status("missing")
        state = await status(transport, spool_dir, detached_id)
        if state.state != "running":
            return state
        await sleep(0.5)  # the follower ended early (tail restarted?): follow again


class DetachedHandle(RunHandle):
    """Signals for a detached run go to its process group through the spool's pid."""

    def __init__(self, host: str, transport: Transport, spool_dir: str, detached_id: str) -> None:
        super().__init__(host, pty=False)
        self.transport = transport
        self.spool_dir = spool_dir
        self.detached_id = detached_id
        self.follower: asyncio.Future[Any] | None = None

    async def send_signal(self, name: str) -> None:
        await kill(self.transport, self.spool_dir, self.detached_id, name)

    async def abandon(self) -> None:
        await super().abandon()
        if self.follower is not None:
            self.follower.cancel()

    async def end_group(self, grace: float) -> None:
        """After a stop: TERM, then KILL, what the script left running in the run's process
        group (background jobs ignore the SIGINT that ended the script)."""
        try:
            for name in ("TERM", "KILL"):
                if not await self._group_alive():
                    return
                await self.send_signal(name)
                waited = 0.0
                while waited < grace and await self._group_alive():
                    await asyncio.sleep(0.1)
                    waited += 0.1
        except ConnectionLost:
            return

    async def _group_alive(self) -> bool:
        rc, _, _ = await self.transport.exec(kill_command(self.spool_dir, self.detached_id, "0"))
        return rc == 0


def result_of(
    host: str, handle: RunHandle, state: Status | None, detached_id: str, duration_s: float,
    timeout: float | None, spool_dir: str, lost: str = "",
) -> RunResult:
    """The :class:`RunResult` of a detached run from its final spool status (None: not learnt)."""
    if state is not None and state.state == "rc":
        if state.elapsed is not None:  # a re-attach: the run started long before we followed it
            duration_s = max(duration_s, state.elapsed)
        return classify(host, handle, state.rc, None, duration_s=duration_s, timeout=timeout, detached_id=detached_id)
    if state is None:
        reason = lost or (
            f"connection lost before the command finished; detached run {detached_id} may still be running "
            "on the host: re-attach to learn its outcome"
        )
    elif state.state == "missing":
        reason = f"no spool for detached run {detached_id} under {spool_dir} on {host} (removed, or another machine)"
    else:
        reason = f"detached run {detached_id} ended without recording an exit status (killed, or the host rebooted)"
    return classify(host, handle, None, None, duration_s=duration_s, timeout=timeout, lost_reason=reason,
                    detached_id=detached_id)


async def supervise(
    executor: Executor,
    host: str,
    transport: Transport,
    spool_dir: str,
    detached_id: str,
    sink: OutputSink,
    offsets: dict[str, int],
    *,
    timeout: float | None,
    started: float,
    grace: float,
    on_lost: Callable[[int], Awaitable[bool]] | None = None,
) -> RunResult:
    """Follow a detached run to its end as a registered run of ``executor`` (so ``signal``
    and ``cancel`` reach it), with a timeout; ``on_lost(attempt)`` says whether to try
    again after a lost connection (it may wait and reconnect)."""
    handle = DetachedHandle(host, transport, spool_dir, detached_id)

    async def follow_to_end() -> Status | None:
        attempt = 0
        while True:
            try:
                return await follow(transport, spool_dir, detached_id, offsets, sink.emit, asyncio.sleep)
            except ConnectionLost:
                attempt += 1
                if on_lost is None or handle.cancelled or handle.timed_out or not await on_lost(attempt):
                    return None

    executor._register(handle)
    follower = handle.follower = asyncio.ensure_future(follow_to_end())
    try:
        done, _ = await asyncio.wait({follower}, timeout=timeout)
        if not done:
            handle.timed_out = True
            stopper = asyncio.ensure_future(handle.stop("TERM", grace))
            await asyncio.wait({follower})
            handle.finished.set()
            await stopper
    except asyncio.CancelledError:
        follower.cancel()
        raise
    finally:
        executor._unregister(handle)
    if handle.cancelled or handle.timed_out:
        await handle.end_group(grace)
    state = None if follower.cancelled() else follower.result()
    sink.flush()
    if sink.error is not None:
        raise sink.error
    return result_of(host, handle, state, detached_id, time.monotonic() - started, timeout, spool_dir)
