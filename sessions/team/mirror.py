"""A journal that survives the jump host: ``--mirror DEST`` and ``resume --from DEST``.

:class:`JournalMirror` replicates a session's journal, as it is written, to
``DEST/<session id>/journal.jsonl`` on another host over SFTP (the SSH pool of
:mod:`runbook.transport.ssh_pool`: strict host keys, the user's SSH config and agent).  It
sends the journal file's own bytes (byte for byte what the local journal holds,
whole records only), appends them to the remote file (opened ``O_APPEND``: the
server never writes over what is there), then asks the server to fsync
(``fsync@openssh.com``); a record counts as *acknowledged* once that fsync
answered.

It never stops or slows the session: it runs as a background task on the
session's loop and only reads the journal file; the session's subscriber merely
wakes it.  Writes are batched: at most one write+fsync every ``flush_s``
(100 ms) unless ``batch_bytes`` (64 KB) are waiting; a record written after a
quiet spell goes out at once.  Every remote operation is bounded by a timeout.  A
failure (unreachable, refused, a write or fsync error, a timeout) marks the mirror
*lost*: the operator is told once (``on_change``), it is journaled once
(``mirror_changed state=lost``), and the mirror reconnects with backoff and
catches up from the remote file's size.

On each (re)connect the remote file is checked against the local journal: its
size must not exceed ours and its last bytes (at least one whole record, its hash
included) must equal ours at the same offsets, so the remote file is a prefix of
this journal and appending continues it.  Before each write the remote file's size
must still be what this process acknowledged: another writer (the session carried on
from the mirror elsewhere while this process still runs) makes it refuse.  A remote file that ends in a torn
record (the first jump host died in the middle of a write) that this journal
dropped on resume is set aside (renamed ``journal.jsonl.torn-<size>``, never
truncated) and the mirror starts again from the first record.  Anything else (a
longer or different file: another session's, or altered) is *refused*: it is
never written to, journaled as ``mirror_changed state=refused``, and mirroring
stops.

Acknowledgements are kept in memory (:attr:`JournalMirror.status`, shown in the
TUI's header), never journaled: an ack record would itself need mirroring and
acking, without end.  The journal holds only the mirror's state changes
(``started``, ``lost``, ``restored``, ``refused``), each with the acknowledged
seq at that moment.

:func:`fetch_from_mirror` is the other half (``runbook resume --from DEST/ID``
on another host): it downloads the mirrored journal into the local session
store, checks its whole chain (a torn last record is allowed: opening the
session drops it, as after a local crash), refuses a journal that does not
verify, and returns what the handover event needs.  The caller then resumes the
session as after any crash (:meth:`sessions.engine.session.Session.resume`: the lock,
outcome unknown for what was running) and journals a ``mirror_handover``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh

from runbook.errors import UserError
from runbook.targets.inventory import Target
from runbook.transport.ssh_pool import ConnectError, SSHPool
from sessions.journal import events as ev
from sessions.journal.checkpoints import SIDECAR_NAME
from sessions.journal.format import JournalReader, TamperedJournal
from sessions.journal.journal import fsync_dir, make_private_dir
from sessions.session_log import get_logger
from sessions.store import JOURNAL

if TYPE_CHECKING:  # pragma: no cover
    from sessions.engine.session import Session
    from sessions.journal.journal import Record
    from sessions.state.state import SessionState

FLUSH_S = 0.1  # at most one write+fsync this often ...
BATCH_BYTES = 64 * 1024  # ... unless this much is waiting
WRITE_MAX = 256 * 1024  # bytes per write (then fsync, then ack)
OP_TIMEOUT_S = 10.0  # one remote operation (connect excluded: the pool bounds it) ...
MIN_RATE = 64 * 1024  # ... plus a second per 64 KB written: a slow link is slow, not lost
RETRY_MIN_S, RETRY_MAX_S = 0.5, 5.0
FINISH_GRACE_S = 5.0
_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_URL = re.compile(r"ssh://(?P<auth>[^/]+)(?P<path>/.*)")


class MirrorState(StrEnum):
    """Where the mirror is (also the ``state`` of a ``mirror_changed`` record)."""

    CONNECTING = "connecting"  # not yet connected (never journaled)
    STARTED = "started"  # connected and following
    LOST = "lost"  # reconnecting
    RESTORED = "restored"  # connected again and following
    REFUSED = "refused"  # the remote file is not ours: stopped, never written to
    STOPPED = "stopped"  # finished with the session (never journaled)

    @property
    def following(self) -> bool:
        return self in (MirrorState.STARTED, MirrorState.RESTORED)


@dataclass(frozen=True, slots=True)
class MirrorDest:
    """``[user@]host:path`` (scp's form) or ``ssh://[user@]host[:port]/path``."""

    text: str
    target: Target
    path: str

    @classmethod
    def parse(cls, text: str, where: str = "--mirror") -> MirrorDest:
        raw = text.strip()
        bad = UserError(f"{where} {text!r}: expected HOST:PATH (e.g. backup-jump:/var/lib/runbook/mirror) "
                        "or ssh://[USER@]HOST[:PORT]/PATH", 2)
        m = _URL.fullmatch(raw)
        if m is not None:
            auth, path = m["auth"], m["path"]
        elif "]" in raw:  # [user@][v6 address]:path
            close = raw.index("]") + 1
            auth, path = raw[:close], raw[close + 1:] if raw[close:close + 1] == ":" else ""
        else:
            auth, _, path = raw.partition(":")
        if not auth or not path or any(c in raw for c in "\n\r\x00"):
            raise bad
        try:
            target = Target.ssh_destination(auth)
        except ValueError as exc:
            raise UserError(f"{where} {text!r}: {exc}", 2) from None
        return cls(raw, target, path.rstrip("/") or "/")

    def session_path(self, session_id: str) -> str:
        return f"{self.path}/{session_id}"

    def shown(self, session_id: str | None = None) -> str:
        return self.text.rstrip("/") + (f"/{session_id}" if session_id else "")


@dataclass(frozen=True, slots=True)
class MirrorStatus:
    """What the header shows: the mirror's state and head (acknowledged records and bytes)."""

    dest: str
    state: MirrorState
    acked_seq: int = 0
    acked_bytes: int = 0
    local_seq: int = 0
    error: str = ""

    @property
    def lag(self) -> int:
        """Records written here that the mirror has not acknowledged."""
        return max(0, self.local_seq - self.acked_seq)

    def text(self) -> str:
        """One short line: ``mirror ✔ 1240`` / ``mirror ⚠ 1234 (6 behind)`` / ``mirror ✘ lost``."""
        if self.state.following:
            return f"mirror ✔ {self.acked_seq}" if not self.lag else f"mirror ⚠ {self.acked_seq} ({self.lag} behind)"
        if self.state is MirrorState.CONNECTING:
            return "mirror … connecting"
        if self.state is MirrorState.STOPPED:
            return f"mirror ■ {self.acked_seq}" + (f" ({self.lag} not acknowledged)" if self.lag else "")
        return f"mirror ✘ {self.state} at {self.acked_seq} ({self.lag} behind)"


def change_text(status: MirrorStatus) -> str:
    """What the operator is told when the mirror changes state (stderr line, TUI notice)."""
    where = status.dest
    if status.state is MirrorState.STARTED:
        had = f" (it holds records 1-{status.acked_seq} already)" if status.acked_seq else ""
        return f"mirror {where}: following the journal{had}"
    if status.state is MirrorState.LOST:
        return (f"warning: mirror {where} lost: {status.error}; the session goes on, {status.lag} record(s) not "
                "mirrored yet; reconnecting")
    if status.state is MirrorState.RESTORED:
        return f"mirror {where}: restored, catching up from record {status.acked_seq + 1}"
    if status.state is MirrorState.REFUSED:
        return f"warning: mirror refused: {status.error}; the session goes on without a mirror"
    if status.state is MirrorState.STOPPED:
        if status.lag:
            has = f"records 1-{status.acked_seq}" if status.acked_seq else "none of them"
            return (f"warning: mirror {where}: {status.lag} record(s) not acknowledged when the session closed "
                    f"(the mirror has {has})")
        return f"mirror {where}: all {status.acked_seq} records acknowledged"
    return f"mirror {where}: {status.state}"


class _Refused(Exception):
    """The remote file is not a prefix of this journal."""


class _Torn(Exception):
    """The remote file is this journal up to ``keep`` bytes, then a record this journal dropped."""

    def __init__(self, keep: int) -> None:
        super().__init__(keep)
        self.keep = keep


_REMOTE_ERRORS = (ConnectError, asyncssh.Error, asyncssh.SFTPError, OSError, TimeoutError, EOFError)

OnChange = Callable[[MirrorStatus], None]


class _Replica:
    """One local append-only file of the session directory and its copy on the mirror: what the
    mirror acknowledged of it (``acked`` bytes) and the remote file open for appending."""

    def __init__(self, local: Path, remote: str, shown: str) -> None:
        self.local = local
        self.remote = remote
        self.shown = shown  # HOST:PATH/<id>/<name>, for messages
        self.fd = -1
        self.acked = 0
        self.file: asyncssh.SFTPClientFile | None = None
        self._complete = (-1, 0)  # (file size, bytes up to its last newline) last computed

    def local_fd(self) -> int:
        """The local file, read-only (-1 while it does not exist)."""
        if self.fd < 0:
            try:
                self.fd = os.open(self.local, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            except FileNotFoundError:
                return -1
        return self.fd

    def complete_size(self) -> int:
        """Bytes of the local file up to its last newline (whole lines only)."""
        fd = self.local_fd()
        if fd < 0:
            return 0
        size = os.fstat(fd).st_size
        if size == self._complete[0]:
            return self._complete[1]
        self._complete = (size, self._last_newline(fd, size))
        return self._complete[1]

    @staticmethod
    def _last_newline(fd: int, size: int) -> int:
        window = 1 << 16
        while size > 0:
            start = max(0, size - window)
            nl = os.pread(fd, size - start, start).rfind(b"\n")
            if nl >= 0:
                return start + nl + 1
            if start == 0:
                return 0
            window *= 4
        return 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    async def open(self, sftp: asyncssh.SFTPClient, local_size: int) -> tuple[int, str]:
        """Check the remote file against the local one and open it for appending: ``(its size,
        what was done about a torn last line)``; :class:`_Refused` when it is not ours."""
        try:
            size = (await sftp.stat(self.remote)).size or 0
        except asyncssh.SFTPNoSuchFile:
            size = 0
        detail = ""
        try:
            await self._check_prefix(sftp, size, local_size)
        except _Torn as torn:
            aside = f"{self.remote}.torn-{size}"
            await sftp.rename(self.remote, aside)  # fails when taken: never overwritten
            name = self.local.name
            detail = (f"the mirror's {name} ended in a torn record ({size - torn.keep} bytes) this session does not "
                      f"have; set aside as {aside.rsplit('/', 1)[-1]}, mirroring {name} again from its start")
            size = 0
        self.file = await sftp.open(self.remote, "ab", asyncssh.SFTPAttrs(permissions=0o600), max_requests=1)
        self.acked = size
        return size, detail

    async def _check_prefix(self, sftp: asyncssh.SFTPClient, size: int, local_size: int) -> None:
        """Raise :class:`_Refused` unless the remote file's ``size`` bytes are the local file's
        first bytes (:class:`_Torn` when they are, but for a torn last record)."""
        if size == 0:
            return
        if size > local_size:
            raise _Refused(f"{self.shown} holds {size} bytes, more than the {local_size} here: it is not this "
                           "session's file as written here (another writer, or altered); it is left as it is")
        fd = self.local_fd()
        window = min(size, 1 << 16)
        async with sftp.open(self.remote, "rb") as fh:
            while True:
                start = size - window
                theirs = _bytes(await fh.read(window, start))
                ours = os.pread(fd, window, start)
                nl = theirs.rfind(b"\n")
                if theirs == ours:
                    # enough when a whole record (its hash chains to all before it) is in the window
                    if window == size or ours.count(b"\n", 0, len(ours) - 1) >= 1:
                        return
                elif nl >= 0 and theirs[:nl + 1] == ours[:nl + 1]:
                    raise _Torn(start + nl + 1)  # ours up to a record's end, then a record we do not have
                elif nl >= 0 or window == size:
                    break
                window = min(size, window * 4)
        raise _Refused(f"{self.shown} differs from this session's before byte {size}: it is not this session's "
                       "file as written here (another writer, or altered); it is left as it is")

    async def append(self, end: int, timeout: float, acked: Callable[[bytes], None]) -> bool:
        """Append the local bytes up to ``end`` (whole lines), fsync, then ``acked(data)`` for each
        write.  False when there was nothing complete to send."""
        assert self.file is not None
        fd = self.local_fd()
        at = start = self.acked
        while at < end and fd >= 0:
            data = os.pread(fd, min(WRITE_MAX, end - at), at)
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # one record over WRITE_MAX: all of it
                data = os.pread(fd, end - at, at)
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    break
            data = data[:cut]
            async with asyncio.timeout(timeout + len(data) / MIN_RATE):
                size = (await self.file.stat()).size
                if size != at:  # someone else appended (or cut it): never write after another writer
                    raise _Refused(f"{self.shown} is {size} bytes, not the {at} this process mirrored: another "
                                   "writer changed it (is this session carried on elsewhere too?); it is left as it is")
                await self.file.write(data, at)
                try:
                    await self.file.fsync()
                except asyncssh.SFTPOpUnsupported:
                    raise _Refused(f"{self.shown}: the mirror's SFTP server cannot fsync (no fsync@openssh.com "
                                   "extension): nothing it holds could be acknowledged as on its disk") from None
            at += len(data)
            self.acked = at
            acked(data)
        return at > start

    async def close_remote(self) -> None:
        file, self.file = self.file, None
        if file is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    await file.close()


class JournalMirror:
    """Replicates ``session``'s journal to ``dest`` (see the module docstring).

    :meth:`start` on the session's running loop; :meth:`finish` after the session is
    closed (its last records are sent, bounded by a grace period)."""

    def __init__(self, session: Session, dest: MirrorDest, *, known_hosts: str | None = None,
                 ssh_config: str | None = None, accept_new_host_keys: bool = False, on_change: OnChange | None = None,
                 flush_s: float = FLUSH_S, batch_bytes: int = BATCH_BYTES, op_timeout: float = OP_TIMEOUT_S,
                 retry_min: float = RETRY_MIN_S, retry_max: float = RETRY_MAX_S) -> None:
        self.session = session
        self.dest = dest
        self.on_change = on_change
        self.flush_s = flush_s
        self.batch_bytes = batch_bytes
        self.op_timeout = op_timeout
        self.retry_min, self.retry_max = retry_min, retry_max
        self.pool = SSHPool(known_hosts=known_hosts, ssh_config=ssh_config, connect_timeout=op_timeout,
                            accept_new_host_keys=accept_new_host_keys, on_host_key_accepted=self._host_key_accepted)
        self.remote_dir = dest.session_path(session.id)
        self.remote_path = f"{self.remote_dir}/{JOURNAL}"
        shown = dest.shown(session.id)
        self._jfile = _Replica(session.journal.path, self.remote_path, f"{shown}/{JOURNAL}")
        #: the signed checkpoints' sidecar (sessions.journal.checkpoints), mirrored beside the journal
        self._side = _Replica(session.dir / SIDECAR_NAME, f"{self.remote_dir}/{SIDECAR_NAME}", f"{shown}/{SIDECAR_NAME}")
        self.log = get_logger("runbook.mirror", session=session.id, dest=dest.text)
        self._status = MirrorStatus(dest.shown(session.id), MirrorState.CONNECTING, local_seq=session.journal.count)
        self._lost_told = False
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._last_flush = 0.0
        self.writes = 0  # write+fsync round trips (for benchmarks)

    # -- status ----------------------------------------------------------------------
    @property
    def status(self) -> MirrorStatus:
        j = self.session.journal
        return replace(self._status, local_seq=j.count)

    def _set(self, state: MirrorState | None = None, *, acked_bytes: int | None = None,
             acked_seq: int | None = None, error: str | None = None) -> None:
        st = self._status
        before = st.state
        self._status = MirrorStatus(
            st.dest, state if state is not None else st.state,
            acked_seq if acked_seq is not None else st.acked_seq,
            acked_bytes if acked_bytes is not None else st.acked_bytes,
            st.local_seq, error if error is not None else st.error)
        if state is not None and state != before and self.on_change is not None:
            try:
                self.on_change(self.status)
            except Exception:  # a broken view must not stop the mirror
                self.log.exception("mirror listener failed")

    def _journal(self, state: MirrorState, detail: str = "") -> None:
        """Journal a state change (sparingly: never an acknowledgement); a closed or failed journal
        only loses this record."""
        if self.session.closed:
            return
        try:
            self.session.record(ev.MirrorChanged(self.dest.text, str(state), self._status.acked_seq, detail))
        except Exception as exc:  # noqa: BLE001 - the journal's own failure is reported by the session
            self.log.warning("mirror state not journaled", error=str(exc), state=str(state))

    def _host_key_accepted(self, host: str, fingerprint: str) -> None:
        """``--accept-new-host-keys`` recorded the mirror host's key: journaled as for any host."""
        if not self.session.closed:
            try:
                self.session.record(ev.HostKeyAccepted(host, fingerprint, self.session.operator))
            except Exception as exc:  # noqa: BLE001 - the journal's own failure is reported by the session
                self.log.warning("host key acceptance not journaled", error=str(exc))

    # -- life cycle --------------------------------------------------------------------
    def start(self) -> None:
        """Start following the journal (needs the running loop)."""
        if self._task is not None:
            return
        self._jfile.local_fd()
        self._unsubscribe = self.session.subscribe(self._on_record)
        self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    def _on_record(self, _rec: Record, _state: SessionState) -> None:
        self._wake.set()

    async def finish(self, grace: float = FINISH_GRACE_S) -> MirrorStatus:
        """Send what the journal holds (its last records: call after the session closed),
        waiting up to ``grace`` seconds, then stop.  Returns the final status."""
        if self._task is None:
            return self.status
        self._stopping = True
        self._wake.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        await self._disconnect()
        await self.pool.close()
        self._jfile.close()
        self._side.close()
        if self._status.state is not MirrorState.REFUSED:
            self._set(MirrorState.STOPPED)
        return self.status

    # -- the loop ------------------------------------------------------------------------
    async def _run(self) -> None:
        delay = self.retry_min
        while True:
            try:
                await self._connect()
                delay = self.retry_min
                await self._follow()
                return  # stopping, and everything sent
            except _Refused as exc:
                self._set(MirrorState.REFUSED, error=str(exc))
                self.log.error("mirror refused", error=str(exc))
                self._journal(MirrorState.REFUSED, str(exc))
                await self._disconnect()
                return
            except Exception as exc:  # the mirror never takes the session down: lost, retried
                why = _describe(exc)
                if isinstance(exc, _REMOTE_ERRORS):
                    self.log.warning("mirror lost", error=why)
                else:  # not a remote failure we know: keep its traceback in the log
                    self.log.exception("mirror lost (unexpected error)", error=why)
                await self._disconnect()
                if not self._lost_told:
                    self._lost_told = True
                    self._set(MirrorState.LOST, error=why)
                    self._journal(MirrorState.LOST, why)
                else:
                    self._set(error=why)
                if self._stopping:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)

    async def _connect(self) -> None:
        self._conn = conn = await self.pool.get(self.dest.target)
        async with asyncio.timeout(self.op_timeout):
            self._sftp = sftp = await conn.start_sftp_client()
            await sftp.makedirs(self.remote_dir, attrs=asyncssh.SFTPAttrs(permissions=0o700), exist_ok=True)
            size, detail = await self._jfile.open(sftp, self.session.journal.size)
            _, side_detail = await self._side.open(sftp, self._side.complete_size())
        acked_seq = (self._status.acked_seq if size == self._status.acked_bytes
                     else await asyncio.to_thread(self._count_records, size))  # a long journal: off the loop
        self._set(acked_bytes=size, acked_seq=acked_seq, error="")
        self._lost_told = False
        state = MirrorState.RESTORED if self._status.state is MirrorState.LOST else MirrorState.STARTED
        if state is MirrorState.STARTED and size and not detail:
            detail = f"the mirror holds records 1-{acked_seq} already; appending after them"
        detail = "; ".join(d for d in (detail, side_detail) if d)
        self._set(state)
        self.log.info("mirror connected", state=str(state), acked_seq=acked_seq)
        self._journal(state, detail)

    def _count_records(self, size: int) -> int:
        fd = self._jfile.local_fd()
        count, at = 0, 0
        while at < size:
            block = os.pread(fd, min(1 << 20, size - at), at)
            if not block:
                break
            count += block.count(b"\n")
            at += len(block)
        return count

    async def _follow(self) -> None:
        while True:
            end = self.session.journal.size
            if self._status.acked_bytes >= end:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            waited = time.monotonic() - self._last_flush
            if end - self._status.acked_bytes < self.batch_bytes and waited < self.flush_s and not self._stopping:
                await asyncio.sleep(self.flush_s - waited)
                continue
            if not await self._send(self.session.journal.size):
                # nothing complete to read up to the journal's size (the file was cut back after a
                # failed fsync): wait for a new record instead of spinning
                self._wake.clear()
                if self._stopping:
                    return
                await self._wake.wait()

    async def _send(self, end: int) -> bool:
        """Append the journal's bytes up to ``end`` (whole records), fsync, acknowledge; then the
        checkpoint sidecar's new lines.  False when the journal had nothing complete to send."""
        def acked(data: bytes) -> None:
            self.writes += 1
            self._set(acked_bytes=self._jfile.acked, acked_seq=self._status.acked_seq + data.count(b"\n"))

        sent = await self._jfile.append(end, self.op_timeout, acked)
        side_end = self._side.complete_size()
        if side_end > self._side.acked:  # a checkpoint was signed (its sidecar line comes first)
            await self._side.append(side_end, self.op_timeout, lambda _data: None)
        self._last_flush = time.monotonic()
        return sent

    async def _disconnect(self) -> None:
        sftp, conn = self._sftp, self._conn
        self._sftp = self._conn = None
        await self._jfile.close_remote()
        await self._side.close_remote()
        if sftp is not None:
            sftp.exit()
        if conn is not None:
            self.pool.forget(self.dest.target, conn)


def _bytes(data: bytes | str) -> bytes:
    """What a file opened in binary mode reads (asyncssh types it as either)."""
    return data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer from the mirror (timed out)"
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
    return f"{type(exc).__name__}: {reason}" if not isinstance(exc, ConnectError) else str(exc)


# --- resume --from -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fetched:
    """A mirrored journal copied into the local store, its chain checked."""

    journal: Path
    session_id: str
    source: str  # DEST/<session id>
    records: int
    torn_bytes: int
    previous_operator: str
    previous_host: str

    def handover(self, operator: str, host: str) -> ev.MirrorHandover:
        return ev.MirrorHandover(self.source, self.records, self.previous_operator, self.previous_host, operator,
                                 host, self.torn_bytes)


def split_from(text: str, session: str | None) -> tuple[MirrorDest, str]:
    """``--from DEST/<id>``, or ``--from DEST`` and the session id: the mirror and the id."""
    dest = MirrorDest.parse(text, "--from")
    if session:
        sid = session
    else:
        parent, sep, sid = dest.path.rpartition("/")
        text = dest.text.rstrip("/")[:-len(sid)].rstrip("/") if sid else dest.text
        dest = replace(dest, path=(parent or "/") if sep else ".", text=text + ("." if text.endswith(":") else ""))
    if not _SESSION_ID.fullmatch(sid or "") or sid in (".", ".."):
        raise UserError(f"--from {text!r}: name the session: --from HOST:DIR/<session id> (or give the session id)", 2)
    return dest, sid


async def fetch_from_mirror(dest: MirrorDest, session_id: str, root: Path, *, known_hosts: str | None = None,
                            ssh_config: str | None = None, timeout: float = 60.0) -> Fetched:
    """Copy ``DEST/<session_id>/journal.jsonl`` into ``root/<session_id>/`` and check its chain.

    Raises :class:`UserError`: the session exists here already (exit 2), the mirror cannot be
    read (1), or its chain does not verify (1: nothing is left in the store)."""
    source = dest.shown(session_id)
    final = root / session_id
    if final.exists():
        raise UserError(f"session {session_id} exists already in {root}: resume it there (runbook resume "
                        f"{session_id}), or give --session-dir for another session store", 2)
    try:
        make_private_dir(root)
    except OSError as exc:
        raise UserError(f"{root}: cannot create the session directory: {exc.strerror or exc}", 2) from None
    tmp = root / f".{session_id}.from-mirror-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o700)
    try:
        await _download(dest, dest.session_path(session_id), tmp, source, known_hosts=known_hosts,
                        ssh_config=ssh_config, timeout=timeout)
        reader = JournalReader(tmp / JOURNAL)
        previous: ev.SessionOpened | None = None
        first_id: str | None = None
        try:
            for rec in reader:
                if isinstance(rec.event, ev.SessionOpened):
                    previous = rec.event
                    if first_id is None:
                        first_id = rec.event.session_id
        except TamperedJournal as exc:
            raise UserError(f"{source}: the mirrored journal does not verify ({exc.reason}, record {exc.seq}, "
                            f"line {exc.line}); refusing to resume from it", 1) from None
        if reader.count == 0 or previous is None:
            raise UserError(f"{source}: the mirrored journal has no complete first record; refusing to resume from it", 1)
        if first_id != session_id:
            raise UserError(f"{source}: the mirrored journal is of session {first_id!r}, not {session_id!r}; "
                            "refusing to resume from it", 1)
        # the chain is not keyed: whoever can write on the mirror host can re-chain records, so
        # every journaled approval is checked again with ssh-keygen before a step relies on it
        from sessions.team.approval import verify_journaled

        approvals_ok, why = verify_journaled(JournalReader(tmp / JOURNAL))
        if not approvals_ok:
            raise UserError(f"{source}: a journaled approval does not verify ({why}); refusing to resume from it", 1)
        os.rename(tmp, final)
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Fetched(final / JOURNAL, session_id, source, reader.count, reader.torn, previous.operator,
                   previous.jump_host)


async def _download(dest: MirrorDest, remote_dir: str, local_dir: Path, source: str, *, known_hosts: str | None,
                    ssh_config: str | None, timeout: float) -> None:
    """The journal (required) and the checkpoint sidecar (when there is one) of ``remote_dir``."""
    pool = SSHPool(known_hosts=known_hosts, ssh_config=ssh_config, connect_timeout=min(timeout, 20.0))
    try:
        conn = await pool.get(dest.target)
        async with asyncio.timeout(timeout), conn.start_sftp_client() as sftp:
            for name in (JOURNAL, SIDECAR_NAME):
                try:
                    fh = await sftp.open(f"{remote_dir}/{name}", "rb")
                except asyncssh.SFTPNoSuchFile:
                    if name == JOURNAL:
                        raise UserError(f"{source}: no mirrored journal there ({remote_dir}/{name} not found)",
                                        2) from None
                    continue
                fd = os.open(local_dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                try:
                    async with fh:
                        at = 0
                        while True:
                            block = _bytes(await fh.read(1 << 20, at))
                            if not block:
                                break
                            os.write(fd, block)
                            at += len(block)
                    os.fsync(fd)
                finally:
                    os.close(fd)
    except TimeoutError:
        raise UserError(f"{source}: copying the mirrored journal timed out after {timeout:g} s", 1) from None
    except ConnectError as exc:
        raise UserError(f"{source}: {exc}", 1) from None
    except (asyncssh.Error, OSError) as exc:
        raise UserError(f"{source}: cannot copy the mirrored journal: {_describe(exc)}", 1) from None
    finally:
        await pool.close()
