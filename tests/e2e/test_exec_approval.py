"""``runbook exec`` with a four-eyes approval, as operator and approver run it: real subprocesses,
keys made by ``ssh-keygen``, ``runbook approve`` signing, the journal read back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.tools import require

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).with_name("runbook")
RUNBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "runbook.cli"]

BOOK = """# Approval e2e

## Phase 1: Change

### CHG-1: Touch the marker
- **Risk Level**: **CRITICAL**

#### Steps
1. **Touch**
   <!-- runbook: target=local -->
   ```bash
   echo touched > {marker}
   echo done
   ```
"""


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    keygen = require("ssh-keygen")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    keys = {"operator": home / ".ssh" / "id_ed25519", "alice": tmp_path / "alice"}
    for name, path in keys.items():
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True, timeout=60)
    approvers = tmp_path / "approvers"
    approvers.write_text("".join(f"{name}@example {' '.join(Path(f'{p}.pub').read_text().split()[:2])}\n"
                                 for name, p in keys.items()))
    book = tmp_path / "book.md"
    book.write_text(BOOK.format(marker=tmp_path / "marker"))
    return {"home": home, "book": book, "approvers": approvers, "sessions": tmp_path / "sessions",
            "marker": tmp_path / "marker", **keys}


def env(world: dict[str, Path]) -> dict[str, str]:
    e = dict(os.environ)
    e["HOME"] = str(world["home"])
    for var in ("SSH_AUTH_SOCK", "RUNBOOK_SIGNING_KEY"):
        e.pop(var, None)
    return e


def start_exec(world: dict[str, Path], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        RUNBOOK + ["exec", str(world["book"]), "--task", "CHG-1", "--yes", "--session-dir", str(world["sessions"]),
                   "--approvers", str(world["approvers"]), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=ROOT, env=env(world), text=True)


def wait_for_request(proc: subprocess.Popen[str]) -> tuple[Path, Path, list[str]]:
    """Read exec's stderr up to the line naming the signature file it waits for."""
    seen: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        m = re.search(r"waiting for (\S+\.sig) ", line)
        if m:
            sig = Path(m.group(1))
            return Path(str(sig)[: -len(".sig")]), sig, seen
    raise AssertionError("exec never said what it waits for:\n" + "".join(seen))


def approve(world: dict[str, Path], request: Path, key: str = "alice", *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(RUNBOOK + ["approve", str(request), "--sign", str(world[key]), "--yes", *extra],
                          capture_output=True, text=True, cwd=ROOT, env=env(world), timeout=60,
                          stdin=subprocess.DEVNULL)


def resume_exec(world: dict[str, Path], sid: str, approval: str) -> subprocess.CompletedProcess[str]:
    """``exec --session ID --approval FILE``: the same session, an approval given as a file."""
    return subprocess.run(RUNBOOK + ["exec", str(world["book"]), "--task", "CHG-1", "--yes", "--session", sid,
                                     "--approval", approval],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, stdin=subprocess.DEVNULL,
                          env={**env(world), "RUNBOOK_SESSION_DIR": str(world["sessions"])})


def journal(world: dict[str, Path], sid: str) -> list[dict]:
    return [json.loads(line)["event"] for line in (world["sessions"] / sid / "journal.jsonl").read_text().splitlines()]


def test_exec_waits_for_the_approval_and_runs_when_it_appears(world: dict[str, Path]) -> None:
    proc = start_exec(world)
    try:
        request, _sig, seen = wait_for_request(proc)
        assert any(f"runbook approve {request}" in line for line in seen)
        time.sleep(1.0)
        assert not world["marker"].exists()  # nothing runs while it waits
        signer = threading.Thread(target=lambda: approve(world, request))  # the approver, elsewhere
        signer.start()
        out, err = proc.communicate(timeout=120)
        signer.join()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "CHG-1: approved by alice@example" in err and "[local] done" in out
    assert world["marker"].read_text() == "touched\n"
    sid = request.parent.name
    kinds = [e["type"] for e in journal(world, sid)]
    assert kinds.index("approvers_set") < kinds.index("approval_requested") < kinds.index("approval_granted") \
        < kinds.index("step_started")


def test_ctrl_c_stops_waiting_then_approval_file_runs_it_in_the_same_session(world: dict[str, Path]) -> None:
    proc = start_exec(world)
    try:
        request, sig, _ = wait_for_request(proc)
        proc.send_signal(2)  # Ctrl-C: stop waiting
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "stopped waiting for the approval; nothing run" in err
    assert not world["marker"].exists()
    sid = request.parent.name
    elsewhere = request.parent.parent.parent / "copy.sig"  # the approver signed a copy and mailed the signature
    done = approve(world, request, "alice", "-o", str(elsewhere))
    assert done.returncode == 0, done.stderr
    assert "step 1: Touch -- on 1 host(s) (parallel): local" in done.stdout and "echo touched" in done.stdout
    assert not sig.exists()
    run = resume_exec(world, sid, str(elsewhere))
    assert run.returncode == 0, run.stderr
    assert world["marker"].read_text() == "touched\n"
    [granted] = [e for e in journal(world, sid) if e["type"] == "approval_granted"]
    assert granted["principal"] == "alice@example" and granted["source"] == str(elsewhere)


def test_approval_signed_by_the_operators_own_key_is_refused(world: dict[str, Path], tmp_path: Path) -> None:
    proc = start_exec(world)
    try:
        request, _sig, _ = wait_for_request(proc)
        proc.send_signal(2)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    # runbook approve refuses to sign with a key the request names as the operator's
    done = approve(world, request, "operator", "-o", str(tmp_path / "own.sig"))
    assert done.returncode == 1 and "one of the operator's own keys" in done.stderr
    # signed anyway with the stock tool: runbook exec refuses it
    subprocess.run([require("ssh-keygen"), "-Y", "sign", "-f", str(world["operator"]), "-n", "runbook-approval",
                    str(request)], check=True, capture_output=True, timeout=60)
    sid = request.parent.name
    run = resume_exec(world, sid, f"{request}.sig")
    assert run.returncode == 1
    assert "refused: signed with the operator's own key" in run.stderr and "second person" in run.stderr
    assert "Traceback" not in run.stderr
    assert not world["marker"].exists()
    assert [e["type"] for e in journal(world, sid)].count("approval_refused") == 1


@pytest.fixture
def agents(tmp_path: Path):
    """Real ssh-agents on sockets of their own (``start(name, key)`` -> socket); killed by pid afterwards."""
    binary, add = require("ssh-agent"), require("ssh-add")
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, key: Path) -> str:
        sock = tmp_path / f"{name}.sock"
        proc = subprocess.Popen([binary, "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.02)
        done = subprocess.run([add, str(key)], env={**os.environ, "SSH_AUTH_SOCK": str(sock)},
                              capture_output=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
        return str(sock)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def test_agent_keys_sign_and_the_operators_agent_keys_are_refused(world: dict[str, Path], agents, tmp_path: Path) -> None:
    keygen = require("ssh-keygen")
    opagent = tmp_path / "opagent"  # a key only the operator's agent holds (not in ~/.ssh), yet an approver
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "opagent", "-f", str(opagent)], check=True,
                   timeout=60)
    with world["approvers"].open("a") as f:
        f.write(f"ops-shared@example {' '.join(Path(f'{opagent}.pub').read_text().split()[:2])}\n")
    operator_sock = agents("operator", opagent)
    approver_sock = agents("approver", world["alice"])
    proc = subprocess.Popen(
        RUNBOOK + ["exec", str(world["book"]), "--task", "CHG-1", "--yes", "--session-dir", str(world["sessions"]),
                   "--approvers", str(world["approvers"])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=ROOT, text=True,
        env={**env(world), "SSH_AUTH_SOCK": operator_sock})
    try:
        request, sig, _ = wait_for_request(proc)
        fp = subprocess.run([keygen, "-l", "-f", f"{opagent}.pub"], capture_output=True, text=True,
                            check=True).stdout.split()[1]
        assert fp in json.loads(request.read_text())["operator_keys"]  # the agent's key is the operator's
        # signed with the operator's agent key (the stock tool): refused while exec goes on waiting
        subprocess.run([keygen, "-Y", "sign", "-f", str(opagent), "-n", "runbook-approval", str(request)],
                       check=True, capture_output=True, timeout=60)
        events = lambda: journal(world, request.parent.name)  # noqa: E731
        deadline = time.monotonic() + 30
        while not any(e["type"] == "approval_refused" for e in events()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        assert not world["marker"].exists()
        sig.unlink()
        done = subprocess.run(RUNBOOK + ["approve", str(request), "--sign-agent", "--yes"], capture_output=True,
                              text=True, cwd=ROOT, timeout=60, stdin=subprocess.DEVNULL,
                              env={**env(world), "SSH_AUTH_SOCK": approver_sock})
        assert done.returncode == 0, done.stderr
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "refused: signed with the operator's own key" in err and "still waiting" in err
    assert "CHG-1: approved by alice@example" in err and world["marker"].exists()
