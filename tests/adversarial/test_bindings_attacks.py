"""A bad bindings file ``NAME.targets.yaml``: every problem once, at its line, and refused.

The attack is the quiet one: a bindings file (shared, reviewed less than the runbook)
says ``serial: "yes please"``, which was read as *parallel* without a word; a negative
timeout and a misspelt key were warnings repeated once per step, all "at line 1"; and
``mode: 0644`` (YAML reads it as the octal number 420) uploaded files with mode 0420.
Now lint, show and exec refuse the file with exit 2 and one ``file:line`` line per problem.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = [sys.executable, "-m", "runbook.cli"]

BOOK = """<!-- runbook: target=local -->
# Bound

## Phase 1: Checks (10 minutes)

### Task T-001: Two steps

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Steps

1. **One**
   ```bash
   echo one
   ```

2. **Two**
   ```bash
   echo two
   ```

3. **A file**
   ```ini
   # /tmp/runbook-bindings-test.ini
   a = 1
   ```
"""

BAD = """\
T-001:
  serial: "yes please"
  timeout: -5
  tiemout: 30
T-001.2: {target: local, pty: maybe}
T-001.1: [local]
T-001.2: local
"""
EXPECTED = [
    "bound.targets.yaml:2: T-001: serial must be true or false, not 'yes please'",
    "bound.targets.yaml:3: T-001: timeout must be a positive number of seconds, not -5",
    "bound.targets.yaml:4: T-001: unknown key 'tiemout' (expected ",
    "bound.targets.yaml:5: T-001.2: pty must be true or false, not 'maybe'",
    "bound.targets.yaml:6: T-001.1: expected a host pattern or a mapping of options, not a list",
    "bound.targets.yaml:7: T-001.2: bound twice (first at line 5)",
]


def runbook(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RUNBOOK_INVENTORY", "KUBECONFIG", "SSH_AUTH_SOCK")}
    env["RUNBOOK_SESSION_DIR"] = str(cwd / "sessions")
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([*RUNBOOK, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def book(tmp_path: Path) -> Path:
    (tmp_path / "bound.md").write_text(BOOK)
    return tmp_path


@pytest.mark.parametrize("command", [["lint"], ["show"], ["exec", "--task", "T-001", "--dry-run"],
                                     ["exec", "--task", "T-001", "--yes"]])
def test_bad_values_are_refused_each_once_at_its_line(book: Path, command: list[str]) -> None:
    (book / "bound.targets.yaml").write_text(BAD)
    done = runbook(book, command[0], "bound.md", *command[1:])
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().removeprefix("runbook: ").splitlines()
    assert len(lines) == len(EXPECTED), done.stderr
    for line, expected in zip(lines, EXPECTED, strict=True):
        assert line.startswith(expected), (line, expected)
    assert not (book / "sessions").exists() or not any((book / "sessions").iterdir()), "exec journaled a session"


def test_an_unused_binding_is_one_warning_at_its_line(book: Path) -> None:
    (book / "bound.targets.yaml").write_text("# bindings\nT-001: {serial: true}\nT-009.1: local\n")
    done = runbook(book, "lint", "bound.md")
    assert done.returncode == 0, done.stderr
    warnings = [ln for ln in done.stdout.splitlines() if "bound.targets.yaml" in ln]
    assert warnings == ["bound.targets.yaml:3: warning: binding 'T-009.1' matches no task, step or criterion"]


def test_good_values_are_read_as_written(book: Path) -> None:
    """``mode: 0644`` is the mode 0644 (not 0420, the octal number YAML reads), ``30s`` is 30 s."""
    (book / "bound.targets.yaml").write_text(
        "T-001: {serial: yes, timeout: 30s}\nT-001.3: {mode: 0644}\nT-001.2: {pty: 'on', timeout: 2.5}\n")
    done = runbook(book, "show", "bound.md", "--format", "json")
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)["phases"][0]["tasks"][0]["steps"]
    targets = [s["target"] for s in steps]
    assert [(t["serial"], t["timeout"]) for t in targets] == [(True, 30.0), (True, 2.5), (True, 30.0)]
    assert targets[1]["pty"] is True
    assert targets[2]["mode"] == "0644"
