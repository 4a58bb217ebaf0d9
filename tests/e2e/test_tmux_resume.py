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
import re
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

    def start(self, name: str, argv: list[str], env: dict[str, str], size: tuple[int, int] = (WIDTH, HEIGHT)) -> int:
        """Run ``argv`` (exec'd: the pane's pid is the command's pid); returns that pid."""
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        # tmux may export COLUMNS/LINES of its default size (80x24) when started without a
        # terminal; they would override the real pane size for the app (shutil.get_terminal_size)
        command = f"exec env -u COLUMNS -u LINES {exports} {shlex.join(argv)}"
        self("new-session", "-d", "-s", name, "-x", str(size[0]), "-y", str(size[1]), command)
        self("set-option", "-t", name, "remain-on-exit", "on")
        return int(self("list-panes", "-t", name, "-F", "#{pane_pid}").strip())

    def screen(self, name: str) -> str:
        return self("capture-pane", "-p", "-t", name)

    def history(self, name: str) -> str:
        """Everything the pane printed (scrollback too), soft-wrapped lines joined."""
        return self("capture-pane", "-p", "-J", "-S", "-", "-t", name)

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
        """Until the pane's command has ended and tmux has recorded how (exit status or signal)."""
        end = time.monotonic() + timeout
        how = ""
        while time.monotonic() < end:
            how = self("list-panes", "-t", name, "-F", "#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}").strip()
            dead, status, signal_name = how.split(":")
            if dead == "1" and (status or signal_name):
                return
            if dead == "1":
                self.reap()
            time.sleep(0.1)
        raise AssertionError(f"{name}: not ended after {timeout}s ({how}):\n{self.screen(name)}")

    def reap(self) -> None:
        """tmux here sometimes misses a pane's SIGCHLD: the command stays a zombie and its status
        unrecorded until another child ends (seen under load). A SIGCHLD sent by hand makes the
        server reap it; to tmux it is only a prompt to call waitpid."""
        pid = self("display-message", "-p", "#{pid}", check=False).strip()
        if pid.isdigit():
            os.kill(int(pid), signal.SIGCHLD)

    def exit_status(self, name: str) -> int:
        self.wait_dead(name)
        return int(self("list-panes", "-t", name, "-F", "#{pane_dead_status}").strip())

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
    tmux.wait("first", "Phase gate not passed")  # the Phase 1 gate never ran
    tmux.type("first", "gate checked by hand for the e2e test")
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
    tmux.wait("second", "Finish DEMO-FLEET-002 anyway?")  # step 1 never ran, boxes unticked: a reason
    tmux.type("second", "step 1 done by hand before the window")
    tmux.keys("second", "Enter")
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


# -- runbook run / resume on a local runbook, at 80x24 ------------------------------------------

SMALL = (80, 24)
LOCAL_BOOK = """<!-- runbook: target=local -->
# E2E Resume

## Phase 1: Work

### Task E2E-001: Say hello

#### Steps

1. **Hello**

```bash
echo hello
```

### Task E2E-002: Hold the lock

#### Steps

1. **Hold it for two minutes**

```bash
for i in $(seq 1 120); do echo "tick $i/120"; sleep 1; done
```

2. **Release it**

```bash
echo released
```
"""
HINT = re.compile(r"^runbook: session (\S+) is resumable: (runbook resume .+)$", re.MULTILINE)


def local_env(tmp_path: Path) -> dict[str, str]:
    # ``runbook`` on PATH is this checkout's, so the printed command can be run as printed
    return {"HOME": str(tmp_path), "USER": "carol", "TERM": "xterm-256color", "LANG": "C.UTF-8",
            "PATH": f"{RUNBOOK.parent}{os.pathsep}{os.environ['PATH']}"}


def quit_hint(tmux: Tmux, name: str) -> tuple[str, str]:
    """Press ``q``; the session id and the command of the hint printed on stderr."""
    tmux.keys(name, "q")
    tmux.wait_dead(name)
    assert tmux.exit_status(name) == 0, tmux.history(name)
    output = tmux.history(name)
    found = HINT.findall(output)
    assert len(found) == 1, output
    return found[0]


def test_quit_prints_the_resume_command_and_running_it_reopens_the_session(tmux: Tmux, tmp_path: Path) -> None:
    book = tmp_path / "book.md"
    book.write_text(LOCAL_BOOK)
    sessions = tmp_path / "sessions"
    env = local_env(tmp_path)

    tmux.start("first", [str(RUNBOOK), "run", str(book), "--session-dir", str(sessions)], env, size=SMALL)
    tmux.wait("first", "E2E-001", "Quit")
    session_id, command = quit_hint(tmux, "first")
    (session_dir,) = [p.parent for p in sessions.glob("*/journal.jsonl")]
    assert session_id == session_dir.name
    assert command == shlex.join(["runbook", "resume", session_id, "--session-dir", str(sessions)])

    # exactly the printed command, through a shell
    tmux.start("again", ["sh", "-c", command], env, size=SMALL)
    tmux.wait("again", session_id, "E2E-001", "Quit")
    again_id, again_command = quit_hint(tmux, "again")
    assert (again_id, again_command) == (session_id, command)
    _, events = journal(sessions)
    assert [e["resumed"] for e in events if e["type"] == "session_opened"] == [False, True]


def test_local_step_killed_mid_run_resumes_on_the_unknown_step_and_the_hint_reopens_it(
        tmux: Tmux, tmp_path: Path) -> None:
    book = tmp_path / "book.md"
    book.write_text(LOCAL_BOOK)
    sessions = tmp_path / "sessions"
    env = local_env(tmp_path)

    # 1. run E2E-002 step 1 (two minutes of ticks) and SIGKILL the runbook process mid-step
    pid = tmux.start("first", [str(RUNBOOK), "run", str(book), "--session-dir", str(sessions)], env, size=SMALL)
    tmux.wait("first", "E2E-001 Say hello", "Quit")
    tmux.keys("first", "g")
    tmux.wait("first", "Jump to a task")
    tmux.type("first", "E2E-002")
    tmux.wait("first", "Hold the lock")
    tmux.keys("first", "Enter")
    tmux.wait("first", "▕ E2E-002 Hold the lock", "Hold it for two minutes")
    tmux.keys("first", "r")
    tmux.wait("first", "tick 3/120", timeout=60)
    os.kill(pid, signal.SIGKILL)
    tmux.wait_dead("first")
    _, events = journal(sessions)
    started = [e for e in events if e["type"] == "step_started"]
    assert [(e["task"], e["step"], e["targets"]) for e in started] == [("E2E-002", 1, ["local"])]
    run_id = started[0]["run_id"]
    assert not [e for e in events if e["type"] in ("step_finished", "session_closed")]
    assert not HINT.search(tmux.history("first"))  # killed: nothing printed

    # 2. resume: the screen opens on E2E-002 (not the first task), its step 1 outcome unknown
    tmux.start("second", [str(RUNBOOK), "resume", "--session-dir", str(sessions)], env, size=SMALL)
    screen = tmux.wait("second", "OUTCOME UNKNOWN", "tick 3/120", timeout=60)
    rows = screen.splitlines()
    assert any("▕ E2E-002 Hold the lock" in row for row in rows), screen
    (pinned,) = [i for i, row in enumerate(rows) if "▶ " in row]
    # (at 80x24 the resume toasts may cover the right of the task view for a while)
    assert "▶ 1. Hold" in rows[pinned], screen
    assert "? OUTCO" in rows[pinned + 1], screen
    assert "? E2E-002" in screen, screen  # the tree marks the task unknown too
    _, events = journal(sessions)
    assert [e["run_id"] for e in events if e["type"] == "step_outcome_unknown"] == [run_id]

    # 3. decide it: failed, with what was checked
    tmux.keys("second", "o")
    tmux.wait("second", "Outcome unknown", "what you checked")
    tmux.type("second", "lock still held, released by hand")
    # (Enter in the field moves the focus later, a key typed right after may beat it: Tab is in order)
    tmux.keys("second", "Tab")  # to Succeeded
    tmux.keys("second", "Tab")  # to Failed
    tmux.keys("second", "Enter")
    screen = tmux.wait("second", "decided failed", timeout=60)
    assert "OUTCOME UNKNOWN" not in screen.split("▔")[0], screen

    # 4. quit: the hint names the session of the journal directory
    session_id, command = quit_hint(tmux, "second")
    (session_dir,) = [p.parent for p in sessions.glob("*/journal.jsonl")]
    assert session_id == session_dir.name
    assert command == shlex.join(["runbook", "resume", session_id, "--session-dir", str(sessions)])
    _, events = journal(sessions)
    decided = [e for e in events if e["type"] == "outcome_decided"]
    assert [(e["run_id"], e["decision"], e["who"]) for e in decided] == [(run_id, "failed", "carol")]
    assert events[-1]["type"] == "session_closed"

    # 5. exactly the printed command reopens that session, the decision kept
    tmux.start("third", ["sh", "-c", command], env, size=SMALL)
    screen = tmux.wait("third", session_id, "✘ E2E-002", "tick 3/120", "Quit", timeout=60)
    assert "unknown" not in screen.splitlines()[0], screen  # the header counts no unknown outcome
    assert quit_hint(tmux, "third") == (session_id, command)
    path, events = journal(sessions)
    assert [e["resumed"] for e in events if e["type"] == "session_opened"] == [False, True, True]
    verify = subprocess.run([str(RUNBOOK), "journal", "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
