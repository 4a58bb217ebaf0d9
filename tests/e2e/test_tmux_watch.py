"""End to end under tmux: ``runbook watch`` in a terminal follows ``runbook exec`` running
in another process; keys that would write are refused; quitting writes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_tmux_resume import Tmux
from tests.tools import require

RUNBOOK = Path(sys.executable).with_name("runbook")

BOOK = """<!-- runbook: target=local -->
# Watched Change

## Phase 1: Work (1 hour)

### Task WT-1: Slow work

- **Duration**: 10 minutes
- **Risk Level**: LOW

#### Steps

1. **Slow output**

```bash
echo watch-first-line
sleep 2
echo watch-second-line
```

2. **Hold**

```bash
sleep 4
echo watch-held
```
"""


def _files(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file of a session directory: inode, mtime and content."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(directory.iterdir())}


@pytest.fixture
def tmux(tmp_path: Path):
    server = Tmux(require("tmux"), tmp_path / "tmux.sock")
    yield server
    server.kill_server()


def test_watch_in_a_terminal_follows_exec_in_another_process(tmux: Tmux, tmp_path: Path) -> None:
    book = tmp_path / "book.md"
    book.write_text(BOOK)
    sessions = tmp_path / "sessions"
    env = {"HOME": str(tmp_path), "USER": "dave", "TERM": "xterm-256color", "PATH": os.environ["PATH"],
           "LANG": "C.UTF-8"}
    writer = subprocess.Popen([str(RUNBOOK), "exec", str(book), "--task", "WT-1", "--session-dir", str(sessions),
                               "--yes"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              cwd=tmp_path, env={**os.environ, "USER": "erin"})
    try:
        journal = None
        for _ in range(300):
            found = list(sessions.glob("*/journal.jsonl"))
            if found and b'"step_started"' in found[0].read_bytes():
                journal = found[0]
                break
            time.sleep(0.05)
        assert journal is not None, writer.communicate(timeout=30)
        sid = journal.parent.name
        tmux.start("watch", [str(RUNBOOK), "watch", sid[:17], "--session-dir", str(sessions)], env)
        tmux.wait("watch", "read-only: watching", "erin", timeout=30)
        tmux.wait("watch", "watch-second-line", timeout=30)  # live output, followed from the journal
        tmux.keys("watch", "r")
        tmux.wait("watch", "running a step is for the operator", timeout=10)
        assert writer.wait(timeout=60) == 0, writer.stderr.read() if writer.stderr else ""
        tmux.wait("watch", "session closed", timeout=10)  # the operator's close, told to the watcher
        before = _files(journal.parent)
        tmux.keys("watch", "q")
        tmux.wait_dead("watch", timeout=20)
        status = ""
        for _ in range(50):  # tmux may mark the pane dead a moment before it records how
            status = tmux("list-panes", "-t", "watch", "-F", "#{pane_dead_status}/#{pane_dead_signal}").strip()
            if status != "/":
                break
            time.sleep(0.1)
        assert status == "0/", f"{status}\n{tmux.history('watch')}"
        assert _files(journal.parent) == before  # the watch wrote nothing there, even when quitting
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
