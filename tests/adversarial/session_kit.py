"""Sessions to attack: a small local runbook, ``run`` (the installed console script,
text mode) and fixtures ``book``, ``sessions`` and ``session`` (a session directory made by
``runbook exec``).  Test modules import the fixtures they use from here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).parent / "runbook"  # the installed console script
RUNBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "runbook.cli"]

# Deliberately a document default: every step here runs on this machine.
BOOK = """<!-- runbook: target=local -->
# Adversarial Book

## Phase 1: Checks (1 hour)

**Purpose**: exercise the session files
**Risk Level**: LOW

### Task ADV-001: Say hello

- **Category**: Test
- **Duration**: 5 minutes
- **Dependencies**: None
- **Risk Level**: LOW

#### Steps

1. **Greet**

```bash
echo hello from adversarial
```

#### Acceptance Criteria
- [ ] nodes ready
  <!-- probe: k8s.nodes_ready(min=1) -->

### Task ADV-002: Wait for a release

- **Category**: Test
- **Duration**: 5 minutes
- **Dependencies**: None
- **Risk Level**: LOW

#### Steps

1. **Wait**

```bash
echo waiting
while [ ! -e {release} ]; do sleep 0.05; done
echo released
```
"""


def run(args, *, env=None, timeout=60, cwd=None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.pop("RUNBOOK_SIGNING_KEY", None)
    full_env.update(env or {})
    return subprocess.run(RUNBOOK + [str(a) for a in args], capture_output=True, text=True, cwd=cwd or ROOT,
                          env=full_env, timeout=timeout, stdin=subprocess.DEVNULL)


def popen(args, *, env=None, cwd=None) -> subprocess.Popen:
    full_env = dict(os.environ)
    full_env.pop("RUNBOOK_SIGNING_KEY", None)
    full_env.update(env or {})
    return subprocess.Popen(RUNBOOK + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, cwd=cwd or ROOT, env=full_env)


def session_of(stderr: str) -> str:
    m = re.search(r"runbook: session (\S+) \(", stderr)
    assert m, stderr
    return m.group(1)


def events(journal: Path) -> list[dict]:
    return [json.loads(line)["event"] for line in journal.read_text().splitlines()]


def assert_clean_refusal(r: subprocess.CompletedProcess, code: int = 2) -> None:
    """One line on stderr, the expected exit code, never a traceback."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    assert r.stderr.startswith("runbook: "), r.stderr


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "book.md"
    path.write_text(BOOK.format(release=tmp_path / "release"))
    return path


@pytest.fixture
def sessions(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def session(book: Path, sessions: Path, tmp_path: Path) -> Path:
    """A session directory holding a journal of one finished step."""
    r = run(["exec", book, "--task", "ADV-001", "--session-dir", sessions])
    assert r.returncode == 0, r.stderr
    return sessions / session_of(r.stderr)
