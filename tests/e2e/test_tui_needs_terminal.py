"""The TUI commands without a terminal (a pipe, cron, ``ssh HOST runbook watch`` without ``-t``):
one clear line and exit 2, at once -- not escape sequences written into the pipe and a wait for
keys that never come."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BOOK = """# Tiny

### T-001: One

#### Steps
1. **Say**
   <!-- runbook: target=local -->
   ```bash
   echo hi
   ```
"""


def runbook(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "import sys; from runbook.cli import main; sys.exit(main())", *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, cwd=tmp_path)


@pytest.mark.parametrize("command", ["run", "watch", "resume"])
def test_a_tui_command_without_a_terminal_says_so_and_exits_2(tmp_path: Path, command: str) -> None:
    book = tmp_path / "tiny.md"
    book.write_text(BOOK)
    store = tmp_path / "sessions"
    done = runbook(tmp_path, "exec", str(book), "--task", "T-001", "--session-dir", str(store))
    assert done.returncode == 0, done.stderr
    sid = next(store.iterdir()).name
    args = {"run": ["run", str(book)], "watch": ["watch", sid], "resume": ["resume", sid]}[command]
    p = runbook(tmp_path, *args, "--session-dir", str(store))
    assert p.returncode == 2, p.stderr
    assert "\x1b" not in p.stdout and "\x1b" not in p.stderr, p.stdout[:200]
    assert "Traceback" not in p.stderr
    assert f"the TUI (runbook {command}) needs a terminal" in p.stderr and "ssh -t HOST" in p.stderr, p.stderr
    if command == "watch":
        assert f"runbook journal show {sid} --follow" in p.stderr
