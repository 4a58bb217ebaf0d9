"""A journal that cannot be written while a step runs (disk full, I/O error) stops that step
at once and says so at once (exec stderr, a TUI dialog); exit non-zero; the journal stays
valid to its last durable record (issue 10, item 8).

The disk fills through ``RLIMIT_FSIZE`` (``SIGXFSZ`` ignored: a write past the limit fails
with EFBIG), set in the runbook process only by a ``sh`` wrapper: the step's output goes
through pipes, which the limit does not touch.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from sessions.journal.journal import verify
from tests.e2e.test_tmux_resume import RUNBOOK, Tmux
from tests.tools import require

LIMIT_BLOCKS = 600  # ulimit -f counts 512-byte blocks: about 300 KB of journal

BOOK = """# Chatty Book

## Phase 0: P (1 hour)

### Task LOUD-001: Loud

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Steps

1. **Loud, then long**

<!-- runbook: target=local {options} -->
```bash
echo $$ > {pids}/shell
i=0
while [ $i -lt 4000 ]; do
  echo "line $i of a chatty command, long enough to fill a small disk quickly .........."
  i=$((i+1))
done
sleep 300
```
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def limited(argv: list[str]) -> list[str]:
    return ["sh", "-c", f"trap '' XFSZ; ulimit -f {LIMIT_BLOCKS}; exec {shlex.join(argv)}"]


def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


@pytest.mark.parametrize("options", ["", "pty"])
def test_exec_stops_the_step_when_the_journal_fills(tmp_path, options):
    pids = tmp_path / "pids"
    pids.mkdir()
    (tmp_path / "book.md").write_text(BOOK.format(pids=pids, options=options))
    env = dict(os.environ, HOME=str(tmp_path), RUNBOOK_SESSION_DIR=str(tmp_path / "sessions"))
    started = time.monotonic()
    try:
        r = subprocess.run(limited([str(RUNBOOK), "exec", "book.md", "--task", "LOUD-001", "--yes"]), cwd=tmp_path,
                           env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    finally:
        shell = int((pids / "shell").read_text()) if (pids / "shell").exists() else None
        if shell is not None and alive(shell):
            os.killpg(shell, 9)  # the step ran on: do not leave it behind
    assert r.returncode == 1, r.stderr
    assert shell is not None and gone(shell), "the step kept running"
    assert "File too large (EFBIG)" in r.stderr and "the journal cannot be written; stopping the running step" in r.stderr
    assert "Traceback" not in r.stderr
    assert time.monotonic() - started < 100  # it did not wait for the 300 s sleep
    sid = re.search(r"runbook: session (\S+) \(", r.stderr).group(1)
    v = verify(tmp_path / "sessions" / sid / "journal.jsonl")
    assert v.ok and v.count > 3, v.message


@pytest.fixture
def tmux(tmp_path: Path):
    server = Tmux(require("tmux"), tmp_path / "tmux.sock")
    yield server
    server.kill_server()


def test_tui_shows_a_dialog_and_stops_the_step_when_the_journal_fills(tmux, tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    book = tmp_path / "book.md"
    book.write_text(BOOK.format(pids=pids, options=""))
    sessions = tmp_path / "sessions"
    env = {"HOME": str(tmp_path), "USER": "carol", "TERM": "xterm-256color", "PATH": os.environ["PATH"],
           "LANG": "C.UTF-8"}
    pid = tmux.start("tui", limited([str(RUNBOOK), "run", str(book), "--session-dir", str(sessions)]), env)
    try:
        tmux.wait("tui", "LOUD-001", "Quit")
        tmux.keys("tui", "r")
        screen = tmux.wait("tui", "The journal cannot be written", timeout=60)
        assert "File too large" in screen
        shell = int((pids / "shell").read_text())
        assert gone(shell), "the step kept running"
        tmux.keys("tui", "y")  # Quit
        tmux.wait_dead("tui")
        assert tmux("list-panes", "-t", "tui", "-F", "#{pane_dead_status}").strip() == "1"
    finally:
        if (pids / "shell").exists() and alive(int((pids / "shell").read_text())):
            os.killpg(int((pids / "shell").read_text()), 9)
        if alive(pid):
            os.kill(pid, 9)
    [journal] = sessions.glob("*/journal.jsonl")
    v = verify(journal)
    assert v.ok and v.count > 3, v.message
