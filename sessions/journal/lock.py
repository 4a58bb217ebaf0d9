"""One writer per session: an exclusive ``flock`` on the journal itself, and on ``<session dir>/lock``.

The lock that keeps a second writer out is the ``flock`` on the journal's own open
file (:func:`lock_journal`): anyone who can write the session directory can unlink
``lock``, but not take a lock away from an open file.  The ``lock`` file holds a
small JSON body naming the holder (pid, host, operator, since when) so that a
refused writer can say who has the session open, and tells a stale session from a
live one.  Both are opened with ``O_NOFOLLOW``.  The kernel drops a ``flock`` when
its holder dies, so:

* ``flock`` refused: another live process holds the session -> :class:`SessionLocked`
  naming the holder.
* ``flock`` granted but a body is left behind: the previous holder on this host
  died without closing; the lock is taken over and :attr:`SessionLock.stale`
  describes it (the journal records it as a ``recovered`` event).
* a body left by a process on *another* host (shared file system): runbook cannot
  tell whether that process still runs, so it refuses and says how to check that it
  has ended before clearing it.
* the journal's ``flock`` refused (the ``lock`` file was removed or replaced while a
  writer is live): :class:`SessionLocked` naming the pid that holds the journal.

A clean :meth:`SessionLock.release` empties the body before unlocking.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runbook.errors import UserError


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds (or held) a session lock."""

    pid: int
    host: str
    since: str  # RFC 3339, UTC
    operator: str = ""

    def describe(self) -> str:
        who = f" (operator {self.operator})" if self.operator else ""
        return f"pid {self.pid} on {self.host}{who} since {self.since}"

    def to_json(self) -> dict[str, object]:
        return {"pid": self.pid, "host": self.host, "since": self.since, "operator": self.operator}


class SessionLocked(UserError):
    """The session is open for writing elsewhere."""

    def __init__(self, message: str, holder: LockHolder | None) -> None:
        super().__init__(message, 1)
        self.holder = holder


def _parse_holder(raw: bytes) -> LockHolder | None:
    try:
        data = json.loads(raw)
        return LockHolder(int(data["pid"]), str(data["host"]), str(data["since"]), str(data.get("operator", "")))
    except (ValueError, KeyError, TypeError):
        return None


def _read_body(fd: int) -> bytes:
    try:
        return os.pread(fd, 4096, 0).strip()
    except OSError:
        return b""


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SessionLock:
    """An acquired session lock.  Use :meth:`acquire`; call :meth:`release` when done."""

    def __init__(self, path: Path, fd: int, holder: LockHolder, stale: LockHolder | None) -> None:
        self.path = path
        self.holder = holder
        #: the holder that died without releasing, when the lock was taken over
        self.stale = stale
        self._fd = fd

    @classmethod
    def acquire(cls, path: str | os.PathLike[str], *, operator: str = "", session: str = "") -> SessionLock:
        """Take the lock or raise :class:`SessionLocked` naming the holder.

        ``session`` names the session in messages (defaults to the directory).
        """
        from sessions.journal.session_dir import open_nofollow

        p = Path(path)
        what = session or str(p.parent)
        try:
            fd = open_nofollow(p, os.O_RDWR | os.O_CREAT, 0o600, "lock")
        except OSError as exc:
            raise UserError(f"{p}: cannot open the session lock: {exc.strerror or exc}", 1) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise UserError(f"{p}: cannot lock the session: {exc.strerror or exc}", 1) from None
            holder = None
            for _ in range(20):  # the holder writes its body right after locking
                holder = _parse_holder(_read_body(fd))
                if holder is not None:
                    break
                time.sleep(0.005)
            os.close(fd)
            who = holder.describe() if holder else "another process (no details recorded yet)"
            raise SessionLocked(
                f"session {what} is open for writing by {who}; close it there first "
                "(only one runbook process may write a session)",
                holder,
            ) from None
        try:
            previous = _parse_holder(_read_body(fd))
            here = socket.gethostname()
            if previous is not None and previous.host != here:
                raise SessionLocked(
                    f"session {what} was left open by {previous.describe()}; runbook cannot see processes "
                    f"on {previous.host}. Check there that it has ended (`ssh {previous.host} ps -p "
                    f"{previous.pid}` prints no process; a reboot since {previous.since} also ends it); "
                    f"only then remove {p} and retry. Removing it while that process runs lets two "
                    "writers break the journal for good",
                    previous,
                )
            me = LockHolder(os.getpid(), here, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), operator)
            body = json.dumps(me.to_json()).encode() + b"\n"
            os.ftruncate(fd, 0)
            os.pwrite(fd, body, 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(p, fd, me, previous)

    @property
    def stale_detail(self) -> str:
        """One line about the stale lock that was taken over ('' when none)."""
        if self.stale is None:
            return ""
        state = "no longer running" if not pid_alive(self.stale.pid) else "running but not holding the lock"
        return f"lock left by {self.stale.describe()} ({state}) taken over by pid {self.holder.pid}"

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def release(self) -> None:
        """Empty the body and unlock (idempotent)."""
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass  # a full or failing disk must not keep the lock: the flock goes with the fd
        finally:
            os.close(fd)


def _flock_pids(st: os.stat_result) -> list[int] | None:
    """Pids holding a flock on this inode, from /proc/locks (None: cannot tell)."""
    needle = f" {os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino} "
    pids: list[int] = []
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if " FLOCK " in line and needle in line and "->" not in line:
                    fields = line.split()
                    try:
                        pids.append(int(fields[4]))
                    except (IndexError, ValueError):
                        pids.append(0)
    except OSError:
        return None
    return pids


def _flock_held(st: os.stat_result) -> bool | None:
    """Whether some process holds a flock on this inode, from /proc/locks (None: cannot tell)."""
    pids = _flock_pids(st)
    return None if pids is None else bool(pids)


def lock_journal(fd: int, path: str | os.PathLike[str], lock_file: str | os.PathLike[str] | None = None) -> None:
    """Take an exclusive ``flock`` on the open journal ``fd`` or raise :class:`SessionLocked`.

    This is the lock that cannot be removed: it belongs to the journal's open file, not to a
    name in the directory.  ``lock_file`` (the session's ``lock``) names the holder when it
    still can.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise UserError(f"{path}: cannot lock the journal: {exc.strerror or exc}", 1) from None
    st = os.fstat(fd)
    pids = [p for p in (_flock_pids(st) or []) if p != os.getpid()]
    holder = None
    if lock_file is not None:
        try:
            with open(lock_file, "rb") as fh:
                holder = _parse_holder(fh.read(4096).strip())
        except OSError:
            holder = None
    if holder is not None and holder.pid == os.getpid() and holder.host == socket.gethostname():
        holder = None  # our own body, written into a lock file that replaced the holder's
    if holder is not None and (not pids or holder.pid in pids):
        who = holder.describe()
    elif pids:
        holder = LockHolder(pids[0], socket.gethostname(), "?")
        who = f"pid {pids[0]} on {holder.host}"
    else:
        who = "another process"
    raise SessionLocked(
        f"session {Path(path).parent} is open for writing by {who}, which holds a lock on the journal itself "
        f"(its lock file {lock_file or 'lock'} was removed or replaced); close it there first "
        "(only one runbook process may write a session)",
        holder,
    )


def journal_holder(journal: str | os.PathLike[str]) -> LockHolder | None:
    """The process holding the ``flock`` on a journal (from /proc/locks), when its ``lock``
    file cannot say (removed or replaced); None when nobody holds it or it cannot be told."""
    try:
        st = os.stat(journal)
    except OSError:
        return None
    pids = _flock_pids(st)
    if not pids:
        return None
    return LockHolder(pids[0], socket.gethostname(), "an unknown time (its lock file was removed)")


def current_holder(path: str | os.PathLike[str]) -> LockHolder | None:
    """The holder named in a lock file while the lock is held, without touching the lock.

    Returns None when the body is empty or the lock is not held (on Linux, read from
    /proc/locks; elsewhere: the body names a dead process on this host).  A holder on
    another host is returned as is (it cannot be checked).
    """
    try:
        with open(path, "rb") as fh:
            holder = _parse_holder(fh.read(4096).strip())
            st = os.fstat(fh.fileno())
    except OSError:
        return None
    if holder is None:
        return None
    if holder.host == socket.gethostname():
        held = _flock_held(st)
        if held is False or (held is None and not pid_alive(holder.pid)):
            return None
    return holder
