"""A step fails when a command in it fails, and says which line: `runbook exec` and every report."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).parent / "runbook"
RUNBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "runbook.cli"]

BOOK = """# Shell Book

## Phase 0: Checks (1 hour)

### Task SH-001: Fails in the middle

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Steps

1. **Middle**

```bash
echo first
false
echo after
```

### Task SH-002: Tolerated failures

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Steps

1. **Or true**

```bash
false || true
if false; then echo never; fi
grep -q nothing /dev/null && echo never
echo survived
```

2. **As written**

<!-- runbook: errexit=off -->
```bash
false | cat
false
echo as written
```
"""


def cli(tmp: Path, *args: object) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOME=str(tmp), RUNBOOK_SESSION_DIR=str(tmp / "sessions"))
    return subprocess.run(RUNBOOK + [str(a) for a in args], capture_output=True, text=True, cwd=tmp, env=env,
                          stdin=subprocess.DEVNULL, timeout=120)


def errors_in(value: object) -> list[str]:
    """Every ``error`` of a host result anywhere in a JSON report."""
    if isinstance(value, list):
        return [x for v in value for x in errors_in(v)]
    if isinstance(value, dict):
        own = [value["error"]] if "host" in value and isinstance(value.get("error"), str) else []
        return own + [x for v in value.values() for x in errors_in(v)]
    return []


def test_a_failing_line_fails_the_step_and_is_named_in_exec_journal_and_reports(tmp_path):
    book = tmp_path / "book.md"
    book.write_text(BOOK)
    line = BOOK.splitlines().index("false") + 1
    r = cli(tmp_path, "exec", "book.md", "--task", "SH-001", "--target", "local")
    assert r.returncode == 1, r.stderr
    assert "[local] first" in r.stdout and "after" not in r.stdout
    message = f"failed at line 2 of the block (book.md:{line}): `false`, exit 1"
    assert f"local: SH-001 step 1 failed: {message}" in r.stderr
    assert "all steps succeeded" not in r.stderr and "Traceback" not in r.stderr
    sid = re.search(r"runbook: session (\S+) \(", r.stderr).group(1)
    journal = [json.loads(x)["event"] for x in (tmp_path / "sessions" / sid / "journal.jsonl").read_text().splitlines()]
    [fin] = [e for e in journal if e["type"] == "host_finished"]
    assert (fin["outcome"], fin["exit_status"], fin["failed_line"], fin["failed_block_line"], fin["failed_command"]) \
        == ("failed", 1, line, 2, "false")
    assert "\x1e" not in json.dumps(journal, ensure_ascii=False)  # the side channel is not output
    for fmt in ("md", "json", "html"):
        out = tmp_path / f"report.{fmt}"
        e = cli(tmp_path, "export", sid, "--format", fmt, "--out", out)
        assert e.returncode == 0, e.stderr
        text = out.read_text()
        if fmt == "json":
            assert message in errors_in(json.loads(text))
        elif fmt == "html":
            assert html.escape(message) in text or message in text, fmt
        else:
            assert message in text.replace("\\`", "`").replace("\\(", "(").replace("\\)", ")"), fmt


def test_tolerated_failures_succeed_and_errexit_off_runs_as_written(tmp_path):
    (tmp_path / "book.md").write_text(BOOK)
    r = cli(tmp_path, "exec", "book.md", "--task", "SH-002", "--target", "local")
    assert r.returncode == 0, r.stderr
    assert "[local] survived" in r.stdout and "[local] as written" in r.stdout and "never" not in r.stdout
