"""Executors: where a step's script actually runs.

An :class:`Executor` runs one script on one :class:`~runbook.inventory.Target`
and streams its output through a callback.  Implementations:
:class:`~runbook.local_executor.LocalExecutor` (asyncio subprocess) and
:class:`~runbook.ssh_executor.SSHExecutor` (asyncssh, one pooled connection per
host).  Executors know nothing of journals: the engine in ``sessions`` turns
their callbacks and results into events.

The script always travels on stdin to ``bash -s`` (or ``sh -s``), never in argv,
so secret values substituted into it are invisible in the remote ``ps``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Literal

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
    pty: bool = False
    timeout: float | None = None
    detached: bool = False
    env: dict[str, str] = field(default_factory=dict)
    term_size: tuple[int, int] = (120, 40)


class Executor(abc.ABC):
    """Runs scripts on targets.  One executor serves many hosts and steps."""

    @abc.abstractmethod
    async def run(self, target: "Target", script: str, on_output: OnOutput, options: RunOptions) -> RunResult:  # noqa: F821
        """Run ``script`` on ``target``; call ``on_output`` for every chunk as it arrives."""

    async def write_stdin(self, host: str, data: bytes) -> None:
        """Send operator input to a running PTY step on ``host``."""
        raise NotImplementedError

    async def signal(self, host: str, name: str = "INT") -> None:
        """Send a signal (Ctrl-C -> ``INT``) to the running command on ``host``."""
        raise NotImplementedError

    async def upload(self, target: "Target", path: str, content: bytes, mode: int = 0o600) -> str:  # noqa: F821
        """Atomically write ``content`` to ``path`` on the target; return its sha256."""
        raise NotImplementedError

    async def reattach(self, target: "Target", detached_id: str, on_output: OnOutput, offset: int = 0) -> RunResult:  # noqa: F821
        """Reconnect to a detached run and learn its real outcome and missed output."""
        raise NotImplementedError

    async def close(self) -> None:
        """Close pooled connections."""


AsyncCallable = Callable[..., Awaitable[None]]
