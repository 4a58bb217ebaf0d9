"""`runbook exec --notify URL` as the operator runs it: a real subprocess posts to a real
HTTP server on 127.0.0.1; the secret in the failing command's output never reaches it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.webhook import Webhook

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).parent / "runbook"
RUNBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "runbook.cli"]
SECRET = "Nq7-webhook-never-sees-9921"

BOOK = """---
title: Notify Exec Book
notify:
  - {front_url}
---
<!-- runbook: target=local -->

## Phase 0: Checks (1 hour)

### Task N-1: Fail loudly

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Steps

1. **Leak and fail**

```bash
echo "db password is <DB_PASSWORD>"
echo "giving up"
exit 4
```
"""


def _exec(tmp_path: Path, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    var_file = tmp_path / "vars"
    var_file.write_text(f"DB_PASSWORD={SECRET}\n")
    os.chmod(var_file, 0o600)
    return subprocess.run(
        [*RUNBOOK, "exec", str(tmp_path / "book.md"), "--task", "N-1", "--var-file", str(var_file),
         "--session-dir", str(tmp_path / "sessions"), "--yes", *extra],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=tmp_path)


def _journal(tmp_path: Path) -> list[dict]:
    (journal,) = (tmp_path / "sessions").glob("*/journal.jsonl")
    return [json.loads(line) for line in journal.read_text().splitlines()]


def test_exec_notifies_both_urls_and_never_sends_the_secret(tmp_path):
    with Webhook() as front, Webhook() as flag:
        (tmp_path / "book.md").write_text(BOOK.format(front_url=front.url))
        proc = _exec(tmp_path, "--notify", flag.url)
        assert proc.returncode == 1, proc.stderr
        assert "notifications to http://127.0.0.1:" in proc.stderr
        assert front.path not in proc.stderr  # the webhook's token is never printed
        for hook in (front, flag):
            assert hook.events() == ["step_failed", "session_closed"]
            text = hook.posts[0]["json"]["text"]
            assert "N-1 step 1 (Leak and fail) failed on local\nlocal: failed (" in text, text
            assert "giving up" in text
            assert all(SECRET.encode() not in body for body in hook.raw)
    records = _journal(tmp_path)
    sent = [r["event"] for r in records if r["event"]["type"] == "notification_sent"]
    assert sorted(e["trigger"] for e in sent) == ["session_closed", "session_closed", "step_failed", "step_failed"]
    assert front.path.encode() not in (tmp_path / "sessions").joinpath(records[0]["event"]["session_id"],
                                                                     "journal.jsonl").read_bytes()
    assert records[-1]["event"]["type"] == "session_closed"  # deliveries are journaled before the close


def test_a_hanging_webhook_does_not_hold_the_step(tmp_path):
    with Webhook("hang") as hook:
        (tmp_path / "book.md").write_text(BOOK.format(front_url=hook.url))
        proc = _exec(tmp_path)  # a hang would end in subprocess.TimeoutExpired (60 s), a failure
        assert proc.returncode == 1, proc.stderr
    records = _journal(tmp_path)
    types = [r["event"]["type"] for r in records]
    failed = [r["event"] for r in records if r["event"]["type"] == "notification_failed"]
    assert {e["trigger"] for e in failed} == {"step_failed", "session_closed"}
    finished = next(r["event"] for r in records if r["event"]["type"] == "step_finished")
    assert finished["outcome"] == "failed"
    # the step never waited for the webhook: it finished before any delivery gave up, and the
    # close gave up on what was still queued instead of waiting for the retries
    assert types.index("step_finished") < types.index("notification_failed")
    assert any("not delivered before the session closed" in e["error"] for e in failed), failed


def test_a_bad_notify_url_is_refused_before_anything_runs(tmp_path):
    (tmp_path / "book.md").write_text(BOOK.format(front_url="http://127.0.0.1:9/x"))
    proc = _exec(tmp_path, "--notify", "ftp://127.0.0.1/x")
    assert proc.returncode == 2
    assert "--notify: ?://127.0.0.1/… #" in proc.stderr and "http:// or https:// URLs only" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "sessions").glob("*/journal.jsonl"))
