"""SIGTERM and SIGHUP to the TUI (the real ``runbook run`` under tmux): the running step is
stopped as Ctrl-C does, the outcome and the signal are journaled, the lock is released,
the exit status is 128+n and no local child outlives it (issue 10, item 7)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.test_tmux_resume import RUNBOOK, Tmux, journal
from tests.tools import require

BOOK = """# Long Book

## Phase 0: P (1 hour)

### Task LONG-001: Long

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Steps

1. **Long**

<!-- runbook: target=local -->
```bash
echo $$ > {pids}/shell
sleep 300 &
echo $! > {pids}/child
echo started
wait
```
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.fixture
def tmux(tmp_path: Path):
    server = Tmux(require("tmux"), tmp_path / "tmux.sock")
    yield server
    server.kill_server()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_tui_stops_the_running_step_on_a_signal(tmux: Tmux, tmp_path: Path, signum: int) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    book = tmp_path / "book.md"
    book.write_text(BOOK.format(pids=pids))
    sessions = tmp_path / "sessions"
    env = {"HOME": str(tmp_path), "USER": "carol", "TERM": "xterm-256color", "PATH": os.environ["PATH"],
           "LANG": "C.UTF-8"}
    # A shell in the pane runs runbook in the foreground and writes its exit status: tmux
    # records a pane's status only once it reaps it, which under load took more than 30 s.
    wrapper = '"$@"; echo $? > "$0.status"'
    shell_pid = tmux.start("tui", ["sh", "-c", wrapper, str(tmp_path / "status-marker"), str(RUNBOOK), "run", str(book),
                                   "--session-dir", str(sessions)], env)
    tmux.wait("tui", "LONG-001", "Quit")
    pid = int(Path(f"/proc/{shell_pid}/task/{shell_pid}/children").read_text().split()[0])
    status_file = tmp_path / "status-marker.status"
    tmux.keys("tui", "r")
    deadline = time.monotonic() + 30
    while not ((pids / "child").exists() and (pids / "shell").exists()):
        assert time.monotonic() < deadline, tmux.screen("tui")
        time.sleep(0.05)
    time.sleep(0.3)
    shell, child = int((pids / "shell").read_text()), int((pids / "child").read_text())
    assert alive(shell) and alive(child)
    os.kill(pid, signum)
    deadline = time.monotonic() + 30
    while not status_file.exists() or not status_file.read_text().strip():
        assert time.monotonic() < deadline, tmux.screen("tui")
        time.sleep(0.05)
    assert status_file.read_text().strip() == str(128 + signum), tmux.screen("tui")
    for p in (shell, child):
        deadline = time.monotonic() + 5
        while alive(p) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(p), f"pid {p} outlived runbook"
    path, events = journal(sessions)
    name = signal.Signals(signum).name
    types = [e["type"] for e in events]
    [got] = [e for e in events if e["type"] == "signal_received"]
    assert got["signal"] == name and got["pid"] == pid
    [fin] = [e for e in events if e["type"] == "host_finished"]
    assert fin["outcome"] == "cancelled" and name in fin["error"]
    assert types.index("signal_received") < types.index("host_finished") < types.index("step_finished")
    [closed] = [e for e in events if e["type"] == "session_closed"]
    assert closed["reason"] == f"stopped by {name}"
    assert (path.parent / "lock").read_bytes().strip() == b""  # released cleanly
    assert json.dumps(events)  # the journal reads back whole
