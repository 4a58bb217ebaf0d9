"""The real ``runbook`` command in a subprocess, stdout and stderr as raw bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

_SCRIPT = Path(sys.executable).parent / "runbook"  # the installed console script
RUNBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "runbook.cli"]


def run_cli(args: Sequence[object], *, cwd: Path | None = None, timeout: float = 120,
            env: dict[str, str] | None = None, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([*RUNBOOK, *map(os.fsdecode, args)], capture_output=True, timeout=timeout,
                          cwd=cwd, env=full_env, input=input, stdin=None if input is not None else subprocess.DEVNULL)


def run_cli_on_a_terminal(args: Sequence[object], *, timeout: float = 120) -> tuple[int, bytes]:
    """``runbook`` with stdout on a pseudo-terminal (as an operator runs it): (exit code, what the
    terminal received)."""
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen([*RUNBOOK, *map(os.fsdecode, args)], stdout=slave, stderr=slave,
                            stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"})
    os.close(slave)
    got = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                proc.kill()
                raise TimeoutError(f"runbook {args} printed nothing for {timeout} s")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            got += data
    finally:
        os.close(master)
    return proc.wait(timeout), got.replace(b"\r\n", b"\n")  # the terminal's own line ends (onlcr)
