"""End to end under tmux: the real ``runbook`` command, the embedded demo fleet, a SIGKILL.

1. ``runbook demo --session-dir D`` in a tmux pane; through the command palette,
   run DEMO-FLEET-002 step 2 on db-1 (a 20 s loop), passing its guards;
2. SIGKILL the runbook process mid-step (the fleet dies with it);
3. ``runbook demo --resume --session-dir D``: same fleet keys and addresses, the
   session reopened; the step shows as OUTCOME UNKNOWN;
4. decide it, finish the task, export; check the journal and the report.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tools import require

RUNBOOK = Path(sys.executable).with_name("runbook")
WIDTH, HEIGHT = 100, 32


class Tmux:
    """One detached tmux server (private socket) with one window per command."""

    def __init__(self, tmux: str, socket: Path) -> None:
        self.tmux = tmux
        self.socket = str(socket)

    def __call__(self, *args: str, check: bool = True) -> str:
        out = subprocess.run([self.tmux, "-S", self.socket, *args], capture_output=True, text=True, timeout=20)
        if check and out.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> int:
        """Run ``argv`` (exec'd: the pane's pid is the command's pid); returns that pid."""
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        # tmux may export COLUMNS/LINES of its default size (80x24) when started without a
        # terminal; they would override the real pane size for the app (shutil.get_terminal_size)
        command = f"exec env -u COLUMNS -u LINES {exports} {shlex.join(argv)}"
        self("new-session", "-d", "-s", name, "-x", str(WIDTH), "-y", str(HEIGHT), command)
        self("set-option", "-t", name, "remain-on-exit", "on")
        return int(self("list-panes", "-t", name, "-F", "#{pane_pid}").strip())

    def screen(self, name: str) -> str:
        return self("capture-pane", "-p", "-t", name)

    def keys(self, name: str, *keys: str, literal: bool = False) -> None:
        self("send-keys", "-t", name, *(["-l"] if literal else []), *keys)
        time.sleep(0.15)

    def type(self, name: str, text: str) -> None:
        self.keys(name, text, literal=True)

    def wait(self, name: str, *texts: str, timeout: float = 30.0) -> str:
        end = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < end:
            screen = self.screen(name)
            if all(t in screen for t in texts):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{texts} not on screen after {timeout}s:\n{screen}")

    def wait_dead(self, name: str, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self("list-panes", "-t", name, "-F", "#{pane_dead}").strip() == "1":
                return
            time.sleep(0.1)
        raise AssertionError(f"{name}: still running after {timeout}s:\n{self.screen(name)}")

    def kill_server(self) -> None:
        self("kill-server", check=False)


def journal(session_dir: Path) -> tuple[Path, list[dict]]:
    (path,) = [p for p in session_dir.glob("*/journal.jsonl")]
    lines = path.read_bytes().splitlines()
    return path, [json.loads(line)["event"] for line in lines if line.strip()]


def palette(tmux: Tmux, name: str, query: str) -> None:
    tmux.keys(name, "C-p")
    tmux.wait(name, "Search for commands")
    tmux.type(name, query)
    time.sleep(0.6)
    tmux.keys(name, "Enter")


@pytest.fixture
def tmux(tmp_path: Path):
    server = Tmux(require("tmux"), tmp_path / "tmux.sock")
    yield server
    server.kill_server()


def test_demo_step_killed_mid_run_is_resumed_as_outcome_unknown(tmux: Tmux, tmp_path: Path) -> None:
    require("ssh-keygen")
    sessions = tmp_path / "sessions"
    env = {"HOME": str(tmp_path), "USER": "carol", "TERM": "xterm-256color", "PATH": os.environ["PATH"],
           "LANG": "C.UTF-8"}

    # 1. the demo; run the 20-second step on db-1, through its guards
    pid = tmux.start("first", [str(RUNBOOK), "demo", "--session-dir", str(sessions)], env)
    tmux.wait("first", "DEMO-PREP-001", "Quit")
    palette(tmux, "first", "run demo-fleet-002 step 2")
    tmux.wait("first", "High-risk task")
    tmux.keys("first", "y")
    tmux.wait("first", "Dependencies unfinished")
    tmux.type("first", "prep done by hand for the e2e test")
    tmux.keys("first", "Enter")
    tmux.wait("first", "replica lag check 2/20", timeout=30)

    # 2. SIGKILL mid-step: no SessionClosed, no StepFinished
    os.kill(pid, signal.SIGKILL)
    tmux.wait_dead("first")
    _, events = journal(sessions)
    started = [e for e in events if e["type"] == "step_started"]
    assert [(e["task"], e["step"], e["targets"]) for e in started] == [("DEMO-FLEET-002", 2, ["db-1"])]
    run_id = started[0]["run_id"]
    assert not [e for e in events if e["type"] in ("step_finished", "session_closed")]
    assert any(e["type"] == "output" and "replica lag check 1/20" in e["data"] for e in events)

    # 3. resume: same fleet, the step is outcome unknown
    tmux.start("second", [str(RUNBOOK), "demo", "--resume", "--session-dir", str(sessions)], env)
    tmux.wait("second", "UNKNOWN", "DEMO-FLEET-002")
    tmux.wait("second", "replica lag check 2/20")  # the output history, from the journal
    _, events = journal(sessions)
    unknown = [e for e in events if e["type"] == "step_outcome_unknown"]
    assert [e["run_id"] for e in unknown] == [run_id]

    # 4. decide it, finish the task, export
    tmux.keys("second", "o")
    tmux.wait("second", "Outcome unknown")
    tmux.type("second", "checked replica status on db-1 by hand")
    tmux.keys("second", "Enter")  # to the Succeeded button
    tmux.keys("second", "Enter")
    tmux.wait("second", "decided succeeded")
    tmux.keys("second", "d")
    tmux.wait("second", "Finish DEMO-FLEET-002 anyway?")
    tmux.keys("second", "y")
    tmux.wait("second", "✔ DEMO-FLEET-002")
    tmux.keys("second", "e")
    session_dir = next(sessions.glob("2*"))
    report = session_dir / f"{session_dir.name}.md"
    deadline = time.monotonic() + 20
    while not report.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert report.exists(), tmux.screen("second")
    text = report.read_text()
    assert "DEMO-FLEET-002" in text and "checked replica status on db-1 by hand" in text
    tmux.keys("second", "q")
    tmux.wait_dead("second")

    path, events = journal(sessions)
    decided = [e for e in events if e["type"] == "outcome_decided"]
    assert [(e["run_id"], e["decision"], e["who"]) for e in decided] == [(run_id, "succeeded", "carol")]
    assert any(e["type"] == "task_completed" and e["task"] == "DEMO-FLEET-002" for e in events)
    assert events[-1]["type"] == "session_closed"
    opened = [e for e in events if e["type"] == "session_opened"]
    assert [e["resumed"] for e in opened] == [False, True]
    verify = subprocess.run([str(RUNBOOK), "journal", "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
