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

### Phase 0 Smoke Test

```bash
echo smoke ok
```

**Gate**: the smoke test must pass before Phase 1.

## Phase 1: Later (1 hour)

**Risk Level**: LOW

### Task EXEC-101: After the gate

- **Duration**: 5 minutes
- **Dependencies**: None
- **Risk Level**: LOW

#### Steps

1. **Later**

```bash
echo later
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


def test_guards_need_a_terminal_or_yes_and_overrides_need_a_reason(book, tmp_path):
    sessions = tmp_path / "sessions"
    (tmp_path / "scratch").mkdir()
    r = run(["exec", book, "--task", "EXEC-002", "--session-dir", sessions])
    assert r.returncode == 1, r.stderr
    for kind in ("risk", "dependencies", "destructive", "--override"):
        assert kind in r.stderr
    assert (tmp_path / "scratch").exists() and not sessions.exists()
    # --yes answers confirmations only: the unfinished dependency still needs an override
    r = run(["exec", book, "--task", "EXEC-002", "--session-dir", sessions, "--yes"])
    assert r.returncode == 1, r.stderr
    assert "dependencies (EXEC-002): dependencies not finished: EXEC-001" in r.stderr and "--override" in r.stderr
    assert "Traceback" not in r.stderr and (tmp_path / "scratch").exists() and not sessions.exists()
    r = run(["exec", book, "--task", "EXEC-002", "--session-dir", sessions, "--yes",
             "--override", "EXEC-001 done by the day shift"])
    assert r.returncode == 0, r.stderr
    assert "[local] cleaned" in r.stdout and not (tmp_path / "scratch").exists()
    events = journal_events(sessions, session_of(r.stderr))
    passed = {e["guard"]: e for e in events if e["type"] == "guard_passed"}
    overridden = {e["guard"]: e for e in events if e["type"] == "guard_overridden"}
    assert passed["risk"]["detail"] == "--yes" and passed["destructive"]["detail"].endswith("--yes")
    assert overridden["dependencies"]["reason"] == "EXEC-001 done by the day shift"
    kinds = [e["type"] for e in events]
    assert kinds.index("guard_passed") < kinds.index("step_started")


def test_a_gate_that_never_ran_blocks_the_next_phase(book, tmp_path):
    sessions = tmp_path / "sessions"
    r = run(["exec", book, "--task", "EXEC-101", "--session-dir", sessions, "--yes"])
    assert r.returncode == 1, r.stderr
    assert "gate (EXEC-101): an earlier phase gate has not passed (Phase 0 gate step 1 never ran)" in r.stderr
    assert "[local] later" not in r.stdout and not sessions.exists()
    # the dry run names it too
    r = run(["exec", book, "--task", "EXEC-101", "--dry-run"])
    assert r.returncode == 0 and "guard: gate (EXEC-101)" in r.stdout
    # run the gate in a session; then the task runs in it without any override
    r = run(["exec", book, "--task", "gate:0", "--session-dir", sessions])
    assert r.returncode == 0, r.stderr
    sid = session_of(r.stderr)
    r = run(["exec", book, "--task", "EXEC-101", "--session", sid], env={"RUNBOOK_SESSION_DIR": str(sessions)})
    assert r.returncode == 0, r.stderr
    assert "[local] later" in r.stdout
    assert not [e for e in journal_events(sessions, sid) if e["type"] == "guard_overridden"]


def test_override_is_journaled_with_its_reason(book, tmp_path):
    sessions = tmp_path / "sessions"
    r = run(["exec", book, "--task", "EXEC-101", "--session-dir", sessions, "--override", "gate run by hand at 02:10"])
    assert r.returncode == 0, r.stderr
    events = journal_events(sessions, session_of(r.stderr))
    [o] = [e for e in events if e["type"] == "guard_overridden"]
    assert (o["guard"], o["task"], o["reason"]) == ("gate", "EXEC-101", "gate run by hand at 02:10")
    # an empty reason is no reason
    r = run(["exec", book, "--task", "EXEC-101", "--session-dir", tmp_path / "s2", "--override", "  "])
    assert r.returncode == 1 and "--override" in r.stderr and not (tmp_path / "s2").exists()


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
    # fleet steps (annotated target=web) redirected to this machine; confirmations answered with --yes,
    # the unfinished dependency and the gate that never ran overridden with a reason
    r = run(["exec", DEMO, "--task", "DEMO-FLEET-001", "--target", "local", "--yes", "--session-dir", sessions,
             "--override", "rehearsal on this machine"])
    assert r.returncode == 0, r.stderr
    assert "[local] restarted" in r.stdout
    events = journal_events(sessions, session_of(r.stderr))
    modes = [(e["targets"], e["mode"]) for e in events if e["type"] == "step_started"]
    assert modes == [(["local"], "parallel"), (["local"], "serial")]
    overridden = {e["guard"]: e["reason"] for e in events if e["type"] == "guard_overridden"}
    assert overridden == {"dependencies": "rehearsal on this machine", "gate": "rehearsal on this machine"}
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


def test_rerunning_a_step_that_succeeded_asks_first(book, tmp_path):
    sessions = tmp_path / "sessions"
    env = {"RUNBOOK_SESSION_DIR": str(sessions)}
    r = run(["exec", book, "--task", "EXEC-001", "--step", "1"], env=env)
    assert r.returncode == 0, r.stderr
    sid = session_of(r.stderr)
    r = run(["exec", book, "--task", "EXEC-001", "--step", "1", "--session", sid], env=env)
    assert r.returncode == 2 and "rerun (EXEC-001 step 1): step 1 already succeeded on local" in r.stderr
    r = run(["exec", book, "--task", "EXEC-001", "--step", "1", "--session", sid, "--yes"], env=env)
    assert r.returncode == 0, r.stderr
    events = journal_events(sessions, sid)
    first_run = next(e for e in events if e["type"] == "step_started")["run_id"]
    [g] = [e for e in events if e["type"] == "guard_passed"]
    assert (g["guard"], g["step"], g["detail"]) == ("rerun", 1, f"after={first_run}; --yes")
    assert [e["type"] for e in events].count("step_started") == 2


TRUTH_BOOK = """<!-- runbook: target=local -->
# Truth

## Phase 0: Only (1 hour)

### Task TR-001: Depends on an earlier window

- **Duration**: 5 minutes
- **Dependencies**: PROD-INFRA-004
- **Risk Level**: LOW

#### Steps

1. **Check the pod**

```bash
echo "web-0   0/1   Pending"
```

Expected: `Running`

2. **Join**

```bash
echo first ... last
```
"""


def test_external_dependency_unmet_expectation_and_lint_in_exec(tmp_path):
    book = tmp_path / "truth.md"
    book.write_text(TRUTH_BOOK)
    sessions = tmp_path / "sessions"
    # dry run: the guards and each step's lint diagnostics are printed
    r = run(["exec", book, "--task", "TR-001", "--dry-run"])
    assert r.returncode == 0, r.stderr
    assert "guard: external (TR-001): TR-001 depends on PROD-INFRA-004, which is not in this document" in r.stdout
    assert f"lint: {book}:25: warning: command in step 2 of TR-001 elides arguments" in r.stdout
    # no terminal: the confirmation needs --yes, the unrunnable block an override
    r = run(["exec", book, "--task", "TR-001", "--session-dir", sessions, "--yes"])
    assert r.returncode == 1 and "lint (TR-001 step 2): lint says this block cannot run as written" in r.stderr
    assert not sessions.exists()
    r = run(["exec", book, "--task", "TR-001", "--step", "1", "--session-dir", sessions, "--yes"])
    # the command exited 0 but its expectation was not met: failed (expectation), exit 1
    assert r.returncode == 1, r.stderr
    assert "TR-001 step 1 failed (expectation): Expected #1 not met: `Running` not found" in r.stderr
    assert r.stderr.rstrip().endswith("TR-001 step 1 failed (expectation)")
    sid = session_of(r.stderr)
    events = journal_events(sessions, sid)
    [g] = [e for e in events if e["type"] == "guard_passed"]
    assert (g["guard"], g["detail"]) == ("external", "dependency=PROD-INFRA-004; --yes")
    assert [e["outcome"] for e in events if e["type"] == "step_finished"] == ["expectation_failed"]
    show = run(["journal", "show", sid, "--session-dir", sessions])
    assert "#   TR-001 step 1: failed (expectation) (1 run): local failed (expectation)" in show.stdout
    report = run(["export", sid, "--session-dir", sessions, "--format", "md", "--out", tmp_path / "r.md"])
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "r.md").read_text()
    assert "#### Step 1: Check the pod \u2014 failed (expectation)" in text
    assert "not met on local; failed until the operator decides" in text  # a deviation
    # confirmed once for the session: a later step does not ask again
    r = run(["exec", book, "--task", "TR-001", "--step", "2", "--session", sid, "--override", "dots are literal"],
            env={"RUNBOOK_SESSION_DIR": str(sessions)})
    assert r.returncode == 0, r.stderr
    events = journal_events(sessions, sid)
    assert [e["guard"] for e in events if e["type"] == "guard_passed"] == ["external"]
    assert [(e["guard"], e["reason"]) for e in events if e["type"] == "guard_overridden"] == [("lint", "dots are literal")]
