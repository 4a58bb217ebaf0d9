"""Attacks on the destructive-command guard: commands that slipped past a line regex.

Every attack deletes a real directory when it gets through.  The guard must stop it
(`runbook exec` without a terminal refuses, exit 2, nothing run), on the terminal it
must show the command exactly as it will run, and so must the TUI's dialog.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tui.conftest import make_app, operator_env, session_root, workdir  # noqa: F401  (fixtures)
from tests.tui.test_actions import modal, run_finished, type_text
from tests.tui.test_actions import select as select_item

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "runbook.cli"]

BOOK = """<!-- runbook: target=local -->
# Guard attacks

## Phase 0: Checks (1 hour)

**Purpose**: attack the guard
**Risk Level**: LOW

### Task DEL-001: Clean up

- **Category**: Test
- **Duration**: 5 minutes
- **Dependencies**: None
- **Risk Level**: LOW

#### Steps

1. **Clean up**

```bash
{command}
```
"""

# (name, command as written in the runbook); {d} is the directory the attack deletes
BYPASSES = [
    ("quoted hash taken for a comment", 'echo "a #"; rm -rf {d}'),
    ("escaped letter", "r\\m -rf {d}"),
    ("line continuation", "rm \\\n-rf {d}"),
    ("long force flag", "rm -r --force {d}"),
    ("quoted program name", "'rm' -rf {d}"),
    ("abbreviated long flags", "rm --rec --forc {d}"),
    ("split flags", "rm -r -v -f {d}"),
    ("IFS as a blank", "rm${{IFS}}-rf${{IFS}}{d}"),
    ("inside sh -c", "sh -c 'rm -r --force {d}'"),
    ("inside a command substitution", 'echo "$(rm -r --force {d})"'),
    ("here-document fed to a shell", "sh <<'EOF'\nrm -r --force {d}\nEOF"),
    ("hash inside a word", "echo a#b; rm -rf {d}"),
]


def _victim(tmp_path: Path) -> Path:
    d = tmp_path / "precious"
    d.mkdir()
    (d / "data.txt").write_text("do not delete\n")
    return d


def _book(tmp_path: Path, command: str) -> Path:
    path = tmp_path / "book.md"
    path.write_text(BOOK.format(command=command))
    return path


def cli(args: list, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, timeout=timeout)


@pytest.mark.parametrize("name,template", BYPASSES, ids=[b[0] for b in BYPASSES])
def test_bypass_is_caught_and_nothing_runs(tmp_path, name, template):
    """Attack: each command deletes a directory; the old line regex saw no `rm -rf` in it,
    so `runbook exec` (no terminal, no --yes) ran it without asking."""
    victim = _victim(tmp_path)
    book = _book(tmp_path, template.format(d=victim))
    r = cli(["exec", book, "--task", "DEL-001", "--target", "local", "--session-dir", tmp_path / "sessions"])
    assert r.returncode == 2, (name, r.stdout, r.stderr)
    assert "destructive command (rm -rf)" in r.stderr
    assert (victim / "data.txt").exists(), f"{name}: the directory was deleted"
    lint = cli(["lint", book])
    assert "destructive command (rm -rf)" in lint.stdout, (name, lint.stdout)


def test_a_comment_is_still_not_a_command(tmp_path):
    """The reading is shell-aware, not paranoid about comments: `# rm -rf` and
    `echo ok # rm -rf` are comments and need no guard."""
    victim = _victim(tmp_path)
    book = _book(tmp_path, f"# rm -rf {victim}\necho ok # rm -rf {victim}")
    r = cli(["exec", book, "--task", "DEL-001", "--target", "local", "--session-dir", tmp_path / "sessions"])
    assert r.returncode == 0, r.stderr
    assert (victim / "data.txt").exists()


def _read_until(fd: int, pattern: str, timeout: float = 30) -> str:
    buf = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            if re.search(pattern, buf.decode("utf-8", "replace")):
                return buf.decode("utf-8", "replace")
    raise AssertionError(f"{pattern!r} not seen; got {buf.decode('utf-8', 'replace')!r}")


def test_exec_prompt_shows_the_exact_command(tmp_path):
    """On a terminal, the question 'type the host name' comes with the command exactly as
    it will run (`r\\m -rf`, the continuation, the quoted `#`), so what the operator
    confirms is what runs; a wrong answer runs nothing."""
    victim = _victim(tmp_path)
    command = f'echo "a #"; r\\m \\\n-rf {victim}'
    book = _book(tmp_path, command)
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="dumb")
    proc = subprocess.Popen(CLI + ["exec", str(book), "--task", "DEL-001", "--target", "local",
                                   "--session-dir", str(tmp_path / "sessions")],
                            stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env, start_new_session=True)
    os.close(slave)
    try:
        seen = _read_until(master, r"type the host name")
        shown = seen.replace("\r\n", "\n")
        assert '| echo "a #"; r\\m \\\n' in shown, shown
        assert f"| -rf {victim}" in shown, shown
        for _ in range(3):
            os.write(master, b"not-the-host\n")
            time.sleep(0.2)
        assert proc.wait(timeout=30) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert (victim / "data.txt").exists()


async def test_tui_dialog_shows_the_exact_command(make_app, workdir, tmp_path):
    """The TUI's 'type the host name' dialog names the exact command (the quoted `#` and
    the escaped `r\\m` as written), and typing the host name runs it."""
    from tui.widgets.modals import TypeHostModal

    (workdir / "scratch").mkdir()
    book = _book(tmp_path, 'echo "a #"; r\\m -rf scratch')
    app = make_app(book)
    async with app.run_test(size=(100, 32)) as pilot:
        await select_item(pilot, "DEL-001")
        await pilot.press("r")
        host = await modal(pilot, TypeHostModal)
        shown = str(host.query_one("#destructive-commands").render())
        assert 'echo "a #"; r\\m -rf scratch' in shown
        assert "rm -rf" in host.message
        await type_text(pilot, "local")
        await pilot.press("enter")
        run = await run_finished(pilot, app, "DEL-001", 1)
        assert run.outcome == "succeeded"
    assert not (workdir / "scratch").exists()
