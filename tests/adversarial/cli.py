"""The real ``runbook`` command in a subprocess, stdout and stderr as raw bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

_SCRIPT = Path(sys.executable).parent / "runbook"  # the installed console script
RUNBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "runbook.cli"]


def run_cli(args: Sequence[object], *, cwd: Path | None = None, timeout: float = 120,
            env: dict[str, str] | None = None, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run([*RUNBOOK, *map(os.fsdecode, args)], capture_output=True, timeout=timeout,
                          cwd=cwd, env=full_env, input=input, stdin=None if input is not None else subprocess.DEVNULL)
