"""SIGTERM and SIGHUP to `runbook exec`: the running commands are stopped as Ctrl-C does
(INT, then TERM, then KILL), the outcome and the signal are journaled, the lock is
released and the exit code is 128+n; no local child outlives runbook (issue 10, item 7)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

_SCRIPT = Path(sys.executable).parent / "runbook"
RUNBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "runbook.cli"]

BOOK = """# Long Book

## Phase 0: P (1 hour)

### Task LONG-001: Long

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Steps

1. **Long**

<!-- runbook: target=local {options} -->
```bash
{traps}
echo $$ > {pids}/shell
sleep 300 &
echo $! > {pids}/child
echo started
wait
echo never
```

2. **Next**

<!-- runbook: target=local -->
```bash
touch {pids}/next-ran
```
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent to reap it is gone for our purpose
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.parametrize("signum, traps, options", [
    (signal.SIGTERM, "", ""),
    (signal.SIGHUP, "trap '' INT TERM", ""),  # deaf to INT and TERM: KILL ends it
    (signal.SIGTERM, "", "pty"),
    (signal.SIGTERM, "", "detached"),
])
def test_a_signal_stops_the_step_journals_it_and_exits_128_plus_n(tmp_path, signum, traps, options):
    pids = tmp_path / "pids"
    pids.mkdir()
    (tmp_path / "book.md").write_text(BOOK.format(pids=pids, traps=traps, options=options))
    env = dict(os.environ, HOME=str(tmp_path), RUNBOOK_SESSION_DIR=str(tmp_path / "sessions"))
    proc = subprocess.Popen(RUNBOOK + ["exec", "book.md", "--task", "LONG-001", "--yes"], cwd=tmp_path, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (pids / "child").exists() or not (pids / "shell").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        time.sleep(0.3)  # "started" is on its way
        shell, child = int((pids / "shell").read_text()), int((pids / "child").read_text())
        assert alive(shell) and alive(child)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum, err
    for pid in (shell, child):  # nothing it started outlives it
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid), f"pid {pid} survived"
    assert not (pids / "next-ran").exists() and "never" not in out
    name = signal.Signals(signum).name
    assert f"stopped by {name}" in err and "Traceback" not in err
    sid = re.search(r"runbook: session (\S+) \(", err).group(1)
    session_dir = tmp_path / "sessions" / sid
    events = [json.loads(line)["event"] for line in (session_dir / "journal.jsonl").read_text().splitlines()]
    types = [e["type"] for e in events]
    [got] = [e for e in events if e["type"] == "signal_received"]
    assert got["signal"] == name and got["pid"] == proc.pid and len(got["running"]) == 1
    [fin] = [e for e in events if e["type"] == "host_finished"]
    assert fin["outcome"] == "cancelled" and name in fin["error"]
    assert types.index("signal_received") < types.index("host_finished")
    assert types[-3:] == ["host_finished", "step_finished", "session_closed"] or \
        types[-4:-1] == ["host_finished", "step_finished", "session_closed"]  # (+ a checkpoint)
    [closed] = [e for e in events if e["type"] == "session_closed"]
    assert name in closed["reason"]
    assert (session_dir / "lock").read_bytes().strip() == b""  # released cleanly
    assert subprocess.run(RUNBOOK + ["journal", "verify", sid], env=env, capture_output=True).returncode == 0
