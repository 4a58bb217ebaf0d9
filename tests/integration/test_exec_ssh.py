"""`runbook exec` and the engine over a real OpenSSH fleet on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from runbook.model import Block, Phase, Risk, Runbook, Step, TargetSpec, Task
from runbook.targets.inventory import Inventory
from sessions.engine.engine import Engine
from sessions.engine.session import Session
from sessions.journal import events as ev
from sessions.journal.journal import read_records

pytestmark = pytest.mark.sshd

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).parent / "runbook"
RUNBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "runbook.cli"]
SECRET = "ssh-Secret-9f3e-never-logged"

BOOK = """# Fleet Book

## Phase 0: Fleet (1 hour)

**Risk Level**: LOW

### Task FLEET-001: Parallel hello

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Steps

1. **Who is there**

<!-- runbook: target=web -->
```bash
echo "hello from $RUNBOOK_HOST ($(hostname))"
echo "err from $RUNBOOK_HOST" >&2
touch {marks}/par-$RUNBOOK_HOST
```

Expected: `hello from`

### Task FLEET-002: Serial with a failure

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Steps

1. **One by one**

<!-- runbook: target=web serial -->
```bash
touch {marks}/ser-$RUNBOOK_HOST
echo "serial on $RUNBOOK_HOST"
[ "$RUNBOOK_HOST" != node-2 ] || exit 5
```

### Task FLEET-003: Secret

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Steps

1. **Use the secret**

<!-- runbook: target=node-1 -->
```bash
ps -eo args > {marks}/ps-remote.txt
echo "secret is $API_TOKEN"
sleep 1.5
echo "done"
```
"""


def runbook_cli(args, env=None, timeout=120):
    full = dict(os.environ)
    full.pop("API_TOKEN", None)
    full.update(env or {})
    return subprocess.run(RUNBOOK + [str(a) for a in args], capture_output=True, text=True, cwd=ROOT, env=full,
                          stdin=subprocess.DEVNULL, timeout=timeout)


@pytest.fixture
def setup(ssh_fleet, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    book = tmp_path / "fleet.md"
    book.write_text(BOOK.format(marks=marks))
    inv = ssh_fleet.write_inventory(tmp_path / "inventory.yaml", {"web": ["node-1", "node-2", "node-3"]})
    base = ["--inventory", inv, "--known-hosts", ssh_fleet.known_hosts, "--session-dir", tmp_path / "sessions"]
    return book, marks, base, tmp_path / "sessions"


def events_in(sessions: Path, stderr: str) -> list[dict]:
    sid = re.search(r"runbook: session (\S+) \(", stderr).group(1)
    return [json.loads(line)["event"] for line in (sessions / sid / "journal.jsonl").read_text().splitlines()]


def test_parallel_on_three_hosts(setup):
    book, marks, base, sessions = setup
    r = runbook_cli(["exec", book, "--task", "FLEET-001", *base])
    assert r.returncode == 0, r.stderr
    for host in ("node-1", "node-2", "node-3"):
        assert re.search(rf"^\[{host}\] hello from {host} \(", r.stdout, re.M), r.stdout
        assert f"[{host}] err from {host}" in r.stderr
        assert (marks / f"par-{host}").exists()
    events = events_in(sessions, r.stderr)
    [started] = [e for e in events if e["type"] == "step_started"]
    assert started["targets"] == ["node-1", "node-2", "node-3"] and started["mode"] == "parallel"
    fins = {e["host"]: e["outcome"] for e in events if e["type"] == "host_finished"}
    assert fins == {"node-1": "succeeded", "node-2": "succeeded", "node-3": "succeeded"}
    checks = [e for e in events if e["type"] == "expectation_checked"]
    assert len(checks) == 3 and all(c["passed"] for c in checks)


def test_serial_stops_at_the_first_failure(setup):
    book, marks, base, sessions = setup
    r = runbook_cli(["exec", book, "--task", "FLEET-002", *base])
    assert r.returncode == 1
    assert "[node-1] serial on node-1" in r.stdout and "[node-2] serial on node-2" in r.stdout
    assert "node-3" not in r.stdout and not (marks / "ser-node-3").exists()
    assert "node-2: FLEET-002 step 1 failed: exit status 5" in r.stderr
    assert "not run on node-3" in r.stderr
    events = events_in(sessions, r.stderr)
    fins = [(e["host"], e["outcome"]) for e in events if e["type"] == "host_finished"]
    assert fins == [("node-1", "succeeded"), ("node-2", "failed")]
    assert [e["outcome"] for e in events if e["type"] == "step_finished"] == ["failed"]
    # the target given on the command line wins over the annotation
    r = runbook_cli(["exec", book, "--task", "FLEET-002", "--target", "node-3", *base])
    assert r.returncode == 0, r.stderr
    assert (marks / "ser-node-3").exists()


def test_secret_never_in_journal_nor_in_any_process_argv(setup):
    book, marks, base, sessions = setup
    seen: list[str] = []
    stop = threading.Event()

    def watch_ps() -> None:  # every process on this machine, local and "remote" alike
        while not stop.is_set():
            seen.append(subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout)
            time.sleep(0.1)

    t = threading.Thread(target=watch_ps)
    t.start()
    try:
        r = runbook_cli(["exec", book, "--task", "FLEET-003", *base], env={"API_TOKEN": SECRET})
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stderr
    assert "[node-1] secret is ***" in r.stdout and SECRET not in r.stdout + r.stderr
    assert len(seen) > 5 and not any(SECRET in snapshot for snapshot in seen)
    assert SECRET not in (marks / "ps-remote.txt").read_text()
    for journal in sessions.glob("*/journal.jsonl"):
        assert SECRET.encode() not in journal.read_bytes()
    for log in sessions.glob("*/runbook.log"):
        assert SECRET.encode() not in log.read_bytes()


def test_unknown_host_key_names_host_and_step(setup, tmp_path):
    book, _marks, base, sessions = setup
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    args = ["exec", book, "--task", "FLEET-003", "--var", "API_TOKEN=xxxx-token", *base, "--known-hosts", empty]
    r = runbook_cli(args)
    assert r.returncode == 1
    assert re.search(r"node-1: FLEET-003 step 1 failed: .*host key", r.stderr, re.I), r.stderr
    assert "Traceback" not in r.stderr
    r = runbook_cli(args + ["--accept-new-host-keys"])
    assert r.returncode == 0, r.stderr
    events = events_in(sessions, r.stderr)
    assert any(e["type"] == "host_key_accepted" and e["host"] == "node-1" for e in events)


def _book(code: str, spec: TargetSpec) -> Runbook:
    step = Step(1, "drop", 10, blocks=(Block("command", "bash", code, 11),), target=spec)
    task = Task("T-1", "t", 5, phase="0", risk=Risk.LOW, steps=(step,))
    return Runbook("B", "/nonexistent/b.md", "b" * 64, phases=(Phase("0", "P", 1, tasks=(task,)),))


async def test_dropped_connection_is_outcome_unknown_never_success(ssh_fleet, tmp_path):
    inventory = Inventory.from_text(ssh_fleet.inventory_yaml())
    pidfile = tmp_path / "remote.pid"
    book = _book(f"echo $$ > {pidfile}; echo started; exec sleep 20\n", TargetSpec("node-2", source="annotation"))
    session = Session.create(book, root=tmp_path / "sessions")
    engine = Engine(session, inventory, known_hosts=str(ssh_fleet.known_hosts))

    def on_record(rec, state):
        if isinstance(rec.event, ev.OutputChunk) and "started" in rec.event.data:
            asyncio.get_running_loop().call_soon(ssh_fleet.kill_session_processes, "node-2")

    session.subscribe(on_record)
    try:
        outcome = await asyncio.wait_for(engine.run_step("T-1", 1), 60)
        assert outcome == "unknown"
        session.sync()
        events = [r.event for r in read_records(session.journal.path)]
        [fin] = [e for e in events if isinstance(e, ev.HostFinished)]
        assert fin.outcome == "unknown" and fin.exit_status is None
        assert any(isinstance(e, ev.StepOutcomeUnknown) and e.host == "node-2" for e in events)
        assert session.state.step_status("T-1", 1) == "unknown"
        assert session.state.unresolved_unknowns()
    finally:
        await engine.close()
        session.close()
        try:  # the orphaned remote command, by its pid
            os.kill(int(pidfile.read_text()), 9)
        except (OSError, ValueError):
            pass


async def test_detached_run_survives_a_dropped_connection(ssh_fleet, tmp_path):
    inventory = Inventory.from_text(ssh_fleet.inventory_yaml())
    book = _book("echo one; sleep 1; echo two; exit 3\n", TargetSpec("node-3", detached=True, source="annotation"))
    session = Session.create(book, root=tmp_path / "sessions")
    engine = Engine(session, inventory, known_hosts=str(ssh_fleet.known_hosts))
    dropped = []

    def on_record(rec, state):
        if isinstance(rec.event, ev.OutputChunk) and "one" in rec.event.data and not dropped:
            dropped.append(True)
            asyncio.get_running_loop().call_soon(ssh_fleet.kill_session_processes, "node-3")

    session.subscribe(on_record)
    try:
        outcome = await asyncio.wait_for(engine.run_step("T-1", 1), 90)
        session.sync()
        events = [r.event for r in read_records(session.journal.path)]
        assert any(isinstance(e, ev.DetachedStarted) for e in events)
        [fin] = [e for e in events if isinstance(e, ev.HostFinished)]
        assert (outcome, fin.outcome, fin.exit_status) == ("failed", "failed", 3)
        out = "".join(e.data for e in events if isinstance(e, ev.OutputChunk))
        assert out == "one\ntwo\n"
    finally:
        await engine.close()
        session.close()
