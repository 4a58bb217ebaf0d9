"""`runbook exec` as the operator runs it: a real subprocess, real journal, local target."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "checklists" / "demo.md"
_SCRIPT = Path(sys.executable).parent / "runbook"  # the installed console script
RUNBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "runbook.cli"]
SECRET = "Zq8-not-in-journal-4471"

# Deliberately a document default: every step here runs on this machine.
BOOK = """<!-- runbook: target=local -->
# Exec Test Book

## Phase 0: Checks (1 hour)

**Purpose**: exercise runbook exec
**Risk Level**: LOW

### Task EXEC-001: Hello

- **Category**: Test
- **Duration**: 5 minutes
- **Dependencies**: None
- **Risk Level**: LOW

#### Steps

1. **Greet**

```bash
echo "hello from $RUNBOOK_HOST"
echo "to stderr" >&2
```

Expected: `hello from local`

2. **Credentials**

```bash
ps -eo args > {ps_file}
echo "user=<DB_USER> pass=$DB_PASS"
```

3. **Fail**

```bash
echo about to fail
exit 4
```

4. **Never reached**

```bash
echo "must not run" > {never}
```

### Task EXEC-002: Risky cleanup

- **Category**: Test
- **Duration**: 5 minutes
- **Dependencies**: EXEC-001
- **Risk Level**: HIGH

#### Steps

1. **Clean up**

```bash
rm -rf {scratch}
echo cleaned
```
"""


def run(args, *, env=None, input=None, timeout=60):
    full_env = dict(os.environ)
    full_env.pop("DB_PASS", None)
    full_env.update(env or {})
    return subprocess.run(RUNBOOK + [str(a) for a in args], capture_output=True, text=True, cwd=ROOT,
                          env=full_env, input=input, timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "book.md"
    path.write_text(BOOK.format(ps_file=tmp_path / "ps.txt", never=tmp_path / "never", scratch=tmp_path / "scratch"))
    return path


def session_of(stderr: str) -> str:
    m = re.search(r"runbook: session (\S+) \(", stderr)
    assert m, stderr
    return m.group(1)


def journal_events(sessions: Path, sid: str) -> list[dict]:
    lines = (sessions / sid / "journal.jsonl").read_text().splitlines()
    return [json.loads(line)["event"] for line in lines]


def test_runs_steps_streams_by_host_and_stops_at_the_first_failure(book, tmp_path):
    sessions = tmp_path / "sessions"
    r = run(["exec", book, "--task", "EXEC-001", "--session-dir", sessions, "--var", "DB_USER=alice"],
            env={"DB_PASS": SECRET})
    assert r.returncode == 1, r.stderr
    assert "[local] hello from local\n" in r.stdout and "[local] about to fail\n" in r.stdout
    assert "[local] to stderr\n" in r.stderr and "to stderr" not in r.stdout
    assert "[local] user=alice pass=***\n" in r.stdout
    assert "EXEC-001 step 3 failed: exit status 4" in r.stderr
    assert not (tmp_path / "never").exists()
    sid = session_of(r.stderr)
    assert r.stderr.rstrip().splitlines()[-1].startswith(f"runbook: session {sid}:")  # id at start and end
    raw = (sessions / sid / "journal.jsonl").read_text()
    assert SECRET not in raw
    assert SECRET not in (tmp_path / "ps.txt").read_text()
    events = journal_events(sessions, sid)
    types = [e["type"] for e in events]
    assert types.count("step_started") == 3 and types.count("step_finished") == 3
    checks = [e for e in events if e["type"] == "expectation_checked"]
    assert checks and checks[0]["passed"] and checks[0]["evidence"] == "hello from local"
    supplied = {e["name"]: e for e in events if e["type"] == "placeholder_supplied"}
    assert supplied["DB_USER"]["value"] == "alice" and supplied["DB_PASS"]["value"] is None
    assert run(["journal", "verify", sid, "--session-dir", sessions]).returncode == 0


def test_dry_run_prints_filled_masked_scripts_and_creates_nothing(book, tmp_path):
    sessions = tmp_path / "sessions"
    r = run(["exec", book, "--task", "EXEC-001", "--dry-run", "--session-dir", sessions, "--var", "DB_USER=bob",
             "--var", f"DB_PASS={SECRET}"])
    assert r.returncode == 0, r.stderr
    assert 'user=bob pass=$DB_PASS' in r.stdout and "DB_PASS='<redacted:DB_PASS>'" in r.stdout
    assert SECRET not in r.stdout + r.stderr
    assert "on 1 host(s): local" in r.stdout
    assert not sessions.exists() and not (tmp_path / "ps.txt").exists()


def test_missing_values_without_a_terminal_are_named(book, tmp_path):
    r = run(["exec", book, "--task", "EXEC-001", "--session-dir", tmp_path / "s"])
    assert r.returncode == 2
    assert "DB_USER" in r.stderr and "DB_PASS" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "s").exists()


def test_guards_need_a_terminal_or_yes(book, tmp_path):
    sessions = tmp_path / "sessions"
    (tmp_path / "scratch").mkdir()
    r = run(["exec", book, "--task", "EXEC-002", "--session-dir", sessions])
    assert r.returncode == 2
    for kind in ("risk", "dependencies", "destructive"):
        assert kind in r.stderr
    assert (tmp_path / "scratch").exists() and not sessions.exists()
    r = run(["exec", book, "--task", "EXEC-002", "--session-dir", sessions, "--yes"])
    assert r.returncode == 0, r.stderr
    assert "[local] cleaned" in r.stdout and not (tmp_path / "scratch").exists()
    events = journal_events(sessions, session_of(r.stderr))
    passed = {e["guard"]: e for e in events if e["type"] == "guard_passed"}
    overridden = {e["guard"]: e for e in events if e["type"] == "guard_overridden"}
    assert passed["risk"]["detail"] == "--yes" and passed["destructive"]["detail"].endswith("--yes")
    assert overridden["dependencies"]["reason"] == "--yes given on the command line"
    kinds = [e["type"] for e in events]
    assert kinds.index("guard_passed") < kinds.index("step_started")


def test_unknown_task_is_a_clear_error(book, tmp_path):
    r = run(["exec", book, "--task", "NOPE-1", "--session-dir", tmp_path / "s"])
    assert r.returncode == 2 and "no task 'NOPE-1'" in r.stderr and "Traceback" not in r.stderr


def _pty_run(args, answers, tmp_path, timeout=60):
    """Run runbook under a pseudo-terminal, answering prompts as they appear."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.chdir(ROOT)
        os.execvpe(RUNBOOK[0], RUNBOOK + [str(a) for a in args], dict(os.environ))
    out = b""
    deadline = time.monotonic() + timeout
    pending = list(answers)
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
        if pending and re.search(pending[0][0], out.decode(errors="replace").split("\x00")[-1]):
            os.write(fd, pending.pop(0)[1].encode() + b"\r")
            out += b"\x00"  # mark: answered up to here
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_on_a_terminal_guards_and_secrets_are_asked(book, tmp_path):
    sessions = tmp_path / "sessions"
    (tmp_path / "scratch").mkdir()
    code, out = _pty_run(
        ["exec", book, "--task", "EXEC-002", "--session-dir", sessions],
        [(r"start it\? \[y/N\]", "y"), (r"reason \(empty to stop\)", "EXEC-001 verified by hand"),
         (r"type the host name 'local'", "local")], tmp_path)
    assert code == 0, out
    assert "cleaned" in out
    sid = re.search(r"session (\S+) \(", out).group(1)
    events = journal_events(sessions, sid)
    assert any(e["type"] == "guard_overridden" and e["reason"] == "EXEC-001 verified by hand" for e in events)
    assert any(e["type"] == "guard_passed" and e["guard"] == "destructive" and "typed 'local'" in e["detail"]
               for e in events)
    # a secret is read without echo and never journaled
    code, out = _pty_run(
        ["exec", book, "--task", "EXEC-001", "--step", "2", "--session-dir", sessions, "--var", "DB_USER=carol"],
        [(r"DB_PASS \(secret\):", SECRET)], tmp_path)
    assert code == 0, out
    assert SECRET not in out and "user=carol pass=***" in out
    sid = re.findall(r"session (\S+) \(", out)[0]
    assert SECRET not in (sessions / sid / "journal.jsonl").read_text()


def test_demo_runbook_runs_locally_with_a_target_override(tmp_path):
    sessions = tmp_path / "sessions"
    # a read-only task, whole
    r = run(["exec", DEMO, "--task", "DEMO-PREP-001", "--target", "local", "--session-dir", sessions])
    assert r.returncode == 0, r.stderr
    assert "[local] Linux" in r.stdout and "[local] 20000\n" in r.stdout
    events = journal_events(sessions, session_of(r.stderr))
    started = [e for e in events if e["type"] == "step_started"]
    assert [e["step"] for e in started] == [1, 2, 3]
    assert all(e["targets"] == ["local"] for e in started)
    checks = [e for e in events if e["type"] == "expectation_checked"]
    assert checks and all(c["passed"] for c in checks), checks
    # fleet steps (annotated target=web) redirected to this machine; guards accepted with --yes
    r = run(["exec", DEMO, "--task", "DEMO-FLEET-001", "--target", "local", "--yes", "--session-dir", sessions])
    assert r.returncode == 0, r.stderr
    assert "[local] restarted" in r.stdout
    events = journal_events(sessions, session_of(r.stderr))
    modes = [(e["targets"], e["mode"]) for e in events if e["type"] == "step_started"]
    assert modes == [(["local"], "parallel"), (["local"], "serial")]
    assert any(e["type"] == "guard_overridden" and e["guard"] == "dependencies" for e in events)
    # dry run of the task with a secret: filled, masked, nothing created
    r = run(["exec", DEMO, "--task", "DEMO-PREP-002", "--dry-run", "--var", "GREETING=hej",
             "--var", f"DEMO_TOKEN={SECRET}", "--session-dir", tmp_path / "dry"])
    assert r.returncode == 0, r.stderr
    assert "greeting = hej" in r.stdout and "<redacted:DEMO_TOKEN>" in r.stdout and SECRET not in r.stdout
    assert not (tmp_path / "dry").exists()


def test_session_option_appends_to_an_existing_session(book, tmp_path):
    sessions = tmp_path / "sessions"
    env = {"RUNBOOK_SESSION_DIR": str(sessions)}
    r = run(["exec", book, "--task", "EXEC-001", "--step", "1"], env=env)
    assert r.returncode == 0, r.stderr
    sid = session_of(r.stderr)
    r = run(["exec", book, "--task", "EXEC-001", "--session", sid, "--var", "DB_USER=dora"],
            env={**env, "DB_PASS": SECRET})
    assert r.returncode == 1  # step 3 fails
    assert session_of(r.stderr) == sid
    assert "EXEC-001 step 1: already succeeded in this session; skipped" in r.stderr
    events = journal_events(sessions, sid)
    opened = [e for e in events if e["type"] == "session_opened"]
    assert [e["resumed"] for e in opened] == [False, True]
    assert [e["step"] for e in events if e["type"] == "step_started"] == [1, 2, 3]
    assert SECRET not in (sessions / sid / "journal.jsonl").read_text()
    assert run(["journal", "verify", sid], env=env).returncode == 0


def test_ctrl_c_interrupts_the_running_step_and_exits_130(tmp_path):
    book = tmp_path / "slow.md"
    book.write_text(BOOK.split("### Task EXEC-001")[0] + """### Task SLOW-001: Slow

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Steps

1. **Wait**

```bash
echo started
sleep 30
echo "not interrupted"
```
""")
    sessions = tmp_path / "sessions"
    proc = subprocess.Popen(RUNBOOK + ["exec", str(book), "--task", "SLOW-001", "--session-dir", str(sessions)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=ROOT)
    try:
        assert proc.stdout.readline() == b"[local] started\n"
        proc.send_signal(2)  # SIGINT, as Ctrl-C does
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert b"not interrupted" not in out
    events = journal_events(sessions, session_of(err.decode()))
    [fin] = [e for e in events if e["type"] == "host_finished"]
    assert fin["outcome"] == "cancelled"
    assert [e["outcome"] for e in events if e["type"] == "step_finished"] == ["cancelled"]
    assert events[-1]["type"] == "session_closed"
