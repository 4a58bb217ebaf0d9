"""An empty or blank ``--target`` is an error (exit 2), never "every host" (issue 10, item 9)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.errors import UserError
from runbook.parse.parser import parse
from runbook.targets.inventory import Inventory
from sessions.planning.planning import plan_step

_SCRIPT = Path(sys.executable).parent / "runbook"
RUNBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "runbook.cli"]

BOOK = """# Fleet

## Phase 0: P (1 hour)

### Task T-001: Touch

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Steps

1. **Touch**

<!-- runbook: target=local -->
```bash
touch {mark}
```
"""


@pytest.mark.parametrize("target", ["", " ", "\t \t"])
@pytest.mark.parametrize("dry_run", [False, True])
def test_exec_refuses_a_blank_target(tmp_path, target, dry_run):
    mark = tmp_path / "ran"
    (tmp_path / "book.md").write_text(BOOK.format(mark=mark))
    args = ["exec", "book.md", "--task", "T-001", "--target", target, "--yes"] + (["--dry-run"] if dry_run else [])
    r = subprocess.run(RUNBOOK + args, capture_output=True, text=True, cwd=tmp_path, stdin=subprocess.DEVNULL,
                       env=dict(os.environ, HOME=str(tmp_path), RUNBOOK_SESSION_DIR=str(tmp_path / "sessions")),
                       timeout=60)
    assert r.returncode == 2, r.stderr
    assert f"runbook: --target {target!r} is empty: give a host pattern" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert not mark.exists() and not (tmp_path / "sessions").exists()


@pytest.mark.parametrize("target", ["", "  "])
def test_planning_refuses_a_blank_operator_pattern(target):
    rb = parse(BOOK.format(mark="/nonexistent"), "book.md")
    inventory = Inventory.from_text("all:\n  hosts:\n    a: {ansible_connection: local}\n    b: {}\n")
    with pytest.raises(UserError, match="is empty") as info:
        plan_step(rb, inventory, "T-001", 1, target=target)
    assert info.value.exit_code == 2
    assert plan_step(rb, inventory, "T-001", 1, target=None).hosts != ("a", "b")
