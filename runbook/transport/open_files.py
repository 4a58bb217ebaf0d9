"""The open-file limit (``RLIMIT_NOFILE``) for fanning out to many hosts.

Every pooled SSH connection holds one socket for the life of the session, so ``n``
hosts need ``n`` descriptors beyond the process's own (journal, logs, pipes,
asyncio's self-pipe, the interpreter's): :data:`RESERVE`.  Distributions start
processes with a soft limit of 1024 and a far higher hard limit, so, as OpenSSH's
``ssh-keyscan`` and ``sshd`` do, :func:`raise_open_files_limit` lifts the soft limit
to the hard one, once per process, when the first SSH executor is made.  When even
the hard limit leaves no room for the hosts, :meth:`OpenFilesLimit.shortfall` says
so in one line, to be journaled and logged before the step starts, instead of hosts
failing one by one with ``Too many open files``.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

RESERVE = 64  # descriptors the process needs besides one socket per host
_CAP = 1 << 20  # soft limit asked for when the hard limit is unlimited (Linux's default nr_open)


@dataclass(frozen=True, slots=True)
class OpenFilesLimit:
    """The soft and hard ``RLIMIT_NOFILE`` after :func:`raise_open_files_limit`
    (``before``: the soft limit it found)."""

    soft: int
    hard: int
    before: int

    @property
    def hosts(self) -> int:
        """How many hosts' connections fit under the soft limit."""
        return max(0, self.soft - RESERVE)

    def shortfall(self, hosts: int) -> str | None:
        """One line for the operator when ``hosts`` connections do not fit, else None."""
        if hosts <= self.hosts:
            return None
        hard = "unlimited" if self.hard == resource.RLIM_INFINITY else str(self.hard)
        return (f"open-file limit too low for {hosts} hosts: RLIMIT_NOFILE is {self.soft} (hard limit {hard}), "
                f"about {hosts + RESERVE} needed; hosts beyond ~{self.hosts} may fail with 'Too many open files': "
                f"raise the hard limit (ulimit -Hn, LimitNOFILE=, limits.conf) or target fewer hosts per step")


_raised: OpenFilesLimit | None = None


def _limit_value(value: int) -> int:
    return _CAP if value == resource.RLIM_INFINITY else value


def raise_open_files_limit() -> OpenFilesLimit:
    """Lift the soft ``RLIMIT_NOFILE`` to the hard limit (once per process; later calls
    return the first answer).  A refusal leaves the limit as it was."""
    global _raised
    if _raised is not None:
        return _raised
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    before = soft
    want = _limit_value(hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):  # e.g. an unlimited hard limit above fs.nr_open
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    _raised = OpenFilesLimit(soft=_limit_value(soft), hard=hard, before=_limit_value(before))
    return _raised
