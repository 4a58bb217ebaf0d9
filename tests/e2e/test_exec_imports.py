"""Start-up stays lean (issue #15): a command imports only what the run uses.

``runbook exec`` of a local step never loads asyncssh, the journal mirror, the notifier or
Textual; ``runbook lint`` never loads the session layer.  Each case runs the real CLI in a
fresh interpreter and reads ``sys.modules`` once the command has returned; the cases with
``--notify``/``--mirror`` show the check can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BOOK = """# Imports

## Phase 0: Checks (1 hour)

### Task LOC-001: local

- **Duration**: 1 minute
- **Risk Level**: LOW

#### Steps

1. **true**

<!-- runbook: target=local -->
```bash
true
```
"""

#: never needed by a local step without --mirror / --notify
NOT_FOR_LOCAL_EXEC = ("asyncssh", "sessions.team.mirror", "sessions.team.notify", "textual", "tui.app",
                      "runbook.transport.ssh", "runbook.transport.ssh_pool")


def _modules_after(tmp_path: Path, *argv: str) -> set[str]:
    """Run ``runbook ARGV`` in a fresh interpreter; the modules loaded when it returned."""
    out = tmp_path / "modules.json"
    code = ("import json, sys\nfrom runbook.cli import main\ncode = main(sys.argv[2:])\n"
            "open(sys.argv[1], 'w').write(json.dumps({'code': code, 'modules': sorted(sys.modules)}))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(out), *argv], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["code"] == 0, proc.stderr
    return set(result["modules"])


def _loaded(modules: set[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


def _book(tmp_path: Path) -> str:
    book = tmp_path / "book.md"
    book.write_text(BOOK)
    return str(book)


def test_exec_of_a_local_step_imports_no_ssh_mirror_notifier_or_tui(tmp_path):
    modules = _modules_after(tmp_path, "exec", _book(tmp_path), "--task", "LOC-001",
                             "--session-dir", str(tmp_path / "sessions"))
    assert "sessions.engine.engine" in modules  # it did run the step
    assert [name for name in NOT_FOR_LOCAL_EXEC if _loaded(modules, name)] == []


def test_the_check_can_fail_notify_and_mirror_are_imported_when_asked_for(tmp_path):
    modules = _modules_after(tmp_path, "exec", _book(tmp_path), "--task", "LOC-001", "--dry-run",
                             "--notify", "http://127.0.0.1:9/hook", "--mirror", "127.0.0.1:/tmp/mirror")
    assert _loaded(modules, "sessions.team.notify")
    assert _loaded(modules, "sessions.team.mirror")
    assert _loaded(modules, "asyncssh")


def test_lint_imports_no_session_layer_ssh_or_tui(tmp_path):
    modules = _modules_after(tmp_path, "lint", _book(tmp_path))
    assert "runbook.lint.lint" in modules
    assert [name for name in ("sessions", "tui", "textual", "asyncssh", "structlog", "asyncio") if _loaded(modules, name)] == []
