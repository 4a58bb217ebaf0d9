"""Bad and odd input for every command, as a tired operator types it at 02:00.

Each case runs the real command in a subprocess and checks the standard: a user
error is one line on stderr naming the file and line (or what was tried), a
non-zero exit code (2 usage/unreadable input, 1 check failed, 130 interrupted),
and never a traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tools import require

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "checklists" / "demo.md"
RUNBOOK = [sys.executable, "-m", "runbook.cli"]

# Deliberately a document default: every step here runs on this machine.
TINY = """<!-- runbook: target=local -->
# Tiny

## Phase 1: Checks (5 minutes)

### Task T-001: Hello

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Steps

1. **Greet**
   ```bash
   echo {word}
   ```
"""

PROBED = TINY.format(word="hi") + """
#### Acceptance Criteria
- [ ] nodes ready
  <!-- probe: k8s.nodes_ready(min=1) -->
"""


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SSH_AUTH_SOCK", "RUNBOOK_INVENTORY", "KUBECONFIG", "RUNBOOK_SESSION_DIR")}
    env["RUNBOOK_SESSION_DIR"] = str(home / "s")
    env["PYTHONPATH"] = str(ROOT)
    return env


def run(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RUNBOOK, *args], cwd=home, env=_env(home), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory full of bad files, and two real sessions in ``s/``."""
    h = tmp_path_factory.mktemp("qa")
    (h / "empty.md").write_text("")
    (h / "bin.md").write_bytes(b"abc\x00def\n")
    (h / "latin.md").write_bytes(b"# T\n\xff\xfe\n")
    (h / "dir.md").mkdir()
    (h / "notadir").write_text("a file where a directory should be\n")
    (h / "tiny.md").write_text(TINY.format(word="hello"))
    (h / "sleepy.md").write_text(TINY.format(word="start; sleep 30"))
    (h / "probed.md").write_text(PROBED)
    (h / "demo.md").write_text(DEMO.read_text())
    (h / "badinv.yaml").write_text("all:\n  hosts: [a\n")
    (h / "listinv.yaml").write_text("- a\n- b\n")
    (h / "bininv.yaml").write_bytes(b"all:\n\x00\n")
    (h / "kc.bad").write_text("apiVersion: v1\nclusters: [\n")
    (h / "garbage.jsonl").write_text("garbage\n")
    for name, text in (("badyaml", "T-001: {target: [\n"), ("binyaml", "T-001: \x00\n"), ("listyaml", "- a\n")):
        (h / name).mkdir()
        (h / name / "tiny.md").write_text(TINY.format(word="hi"))
        (h / name / "tiny.targets.yaml").write_text(text)
    (h / "emptys").mkdir()
    for _ in range(2):
        done = run(h, "exec", "tiny.md", "--task", "T-001")
        assert done.returncode == 0, done.stderr
    keygen = require("ssh-keygen")
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(h / "k")], check=True)
    session = sorted(os.listdir(h / "s"))[0]
    (h / "session").write_text(session)
    signed = run(h, "export", session, "--out", "rep.md", "--sign", "k")
    assert signed.returncode == 0, signed.stderr
    (h / "garbage_signers").write_text("garbage\n")
    return h


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


S = "{session}"  # replaced by the id of a real session

USAGE_ERRORS = [
    # unreadable runbooks, every document command and `run` (before the TUI starts)
    (["lint", "missing.md"], "runbook: missing.md: no such file"),
    (["show", "empty.md"], "empty.md: file is empty"),
    (["plan", "bin.md"], "bin.md: binary file"),
    (["lint", "latin.md"], "latin.md:2: not valid UTF-8"),
    (["probe", "dir.md"], "dir.md: is a directory"),
    (["exec", "missing.md", "--task", "T-001"], "missing.md: no such file"),
    (["run", "missing.md"], "missing.md: no such file"),
    (["run", "empty.md"], "empty.md: file is empty"),
    # inventories
    (["show", "demo.md", "--inventory", "badinv.yaml"], "badinv.yaml:2: invalid inventory YAML"),
    (["show", "demo.md", "--inventory", "listinv.yaml"], "listinv.yaml:1: inventory must be a YAML mapping"),
    (["show", "demo.md", "--inventory", "bininv.yaml"], "bininv.yaml:2: invalid inventory YAML: unacceptable character"),
    (["show", "demo.md", "--inventory", "missing.yaml"], "missing.yaml: no such inventory file"),
    (["exec", "tiny.md", "--task", "T-001", "--inventory", "badinv.yaml"], "badinv.yaml:2:"),
    (["run", "demo.md", "--inventory", "badinv.yaml"], "badinv.yaml:2: invalid inventory YAML"),
    (["run", "demo.md", "--inventory", "missing.yaml"], "missing.yaml: no such inventory file"),
    # bindings beside the runbook
    (["lint", "badyaml/tiny.md"], "badyaml/tiny.targets.yaml:2: bindings file is not valid YAML"),
    (["plan", "binyaml/tiny.md"], "binyaml/tiny.targets.yaml:1: bindings file is not valid YAML: unacceptable"),
    (["show", "listyaml/tiny.md"], "listyaml/tiny.targets.yaml:1: bindings file must map"),
    # exec arguments
    (["exec", "tiny.md", "--task", "NOPE-1"], "tiny.md: no task 'NOPE-1' (tasks: T-001)"),
    (["exec", "tiny.md", "--task", "T-001", "--step", "99"], "tiny.md: task T-001 has no step 99"),
    (["exec", "tiny.md", "--task", "T-001", "--var", "FOO"], "--var 'FOO': expected NAME=VALUE"),
    (["exec", "tiny.md", "--task", "T-001", "--target", "~[", "--dry-run"], "host pattern '~[': bad regular"),
    (["exec", "tiny.md", "--task", "T-001", "--target", "!all", "--dry-run"], "host pattern '!all' matches no host"),
    (["exec", "tiny.md", "--task", "T-001", "--session", "nope"], "no session 'nope'"),
    (["exec", "tiny.md", "--task", "T-001", "--connect-limit", "-1"], "--connect-limit must be 1 or more (got -1)"),
    (["exec", "tiny.md", "--task", "T-001", "--parallel", "0"], "--parallel must be 1 or more (got 0)"),
    (["exec", "tiny.md", "--task", "T-001", "--session", "demo.md"], "demo.md:1: not a session journal"),
    (["exec", "tiny.md", "--task", "T-001", "--session-dir", "notadir"],
     "notadir: cannot create the session directory: Not a directory"),
    (["demo", "--session-dir", "notadir"], "notadir: cannot create the session directory: Not a directory"),
    (["run", "tiny.md", "--window-end", "25:99"], "--window-end '25:99': expected HH:MM"),
    # sessions and journals
    (["sessions", "--session-dir", "notadir"], "notadir: cannot list sessions"),
    (["resume", "--session-dir", "emptys"], "no unfinished session in emptys"),
    (["resume", "nope"], "no session 'nope'"),
    (["journal", "verify", "nope"], "no session 'nope'"),
    (["journal", "show", "nope"], "no session 'nope'"),
    (["journal", "verify", "20"], "session '20' is ambiguous"),
    (["journal", "verify", "dir.md"], "dir.md: a directory without a journal.jsonl"),
    # export and verify
    (["export", "nope"], "no session 'nope'"),
    (["export", S, "--sign", "missing_key"], "missing_key: no such key file"),
    (["export", S, "--sign", "k.pub"], "k.pub: not a private key (it is a public key)"),
    (["export", S, "--sign", "bin.md"], "bin.md: not a private key"),
    (["export", S, "--sign-agent"], "no ssh-agent: SSH_AUTH_SOCK is not set"),
    (["export", S, "--out", "nodir/x.md"], "nodir/x.md: cannot write"),
    (["export", S, "--out", "dir.md"], "dir.md: cannot write"),
    (["verify", "missing.md"], "missing.md: no such file"),
    (["verify", "dir.md"], "dir.md: is a directory"),
    (["verify", "rep.md"], "--allowed-signers FILE is needed"),
    (["verify", "rep.md", "--allowed-signers", "missing_as"], "missing_as: no such allowed signers file"),
    # probes
    (["probe", "probed.md", "--task", "NOPE"], "probed.md: no task NOPE"),
    (["probe", "probed.md", "--timeout", "-1"], "--timeout must be > 0"),
]


@pytest.mark.parametrize(("argv", "expected"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_usage_error_is_one_line_exit_2(home: Path, argv: list[str], expected: str) -> None:
    session = (home / "session").read_text()
    done = run(home, *[a.replace(S, session) for a in argv])
    line = one_line(done.stderr)
    assert line.startswith("runbook: ")
    assert expected in line
    assert done.returncode == 2, done.stderr


CHECK_FAILURES = [
    (["journal", "verify", "garbage.jsonl"], "garbage.jsonl:1: journal broken at record seq 1: not valid JSON"),
    (["journal", "verify", "demo.md"], "the first record (line 1) is already bad"),
    (["verify", "demo.md"], "FAILED: demo.md: no signature"),
    (["verify", "rep.md", "--allowed-signers", "garbage_signers"], "not allowed in garbage_signers"),
    (["probe", "probed.md", "--kubeconfig", "kc.bad"], "kubeconfig kc.bad:3: invalid YAML"),
    (["probe", "probed.md", "--kubeconfig", "missing_kc"], "kubeconfig missing_kc: no such file"),
]


@pytest.mark.parametrize(("argv", "expected"), CHECK_FAILURES, ids=[" ".join(a) for a, _ in CHECK_FAILURES])
def test_failed_check_exits_1_with_the_reason(home: Path, argv: list[str], expected: str) -> None:
    done = run(home, *argv)
    assert "Traceback" not in done.stderr
    assert expected in done.stdout
    assert done.returncode == 1, done.stdout + done.stderr


def test_exec_session_refuses_a_file_that_is_not_a_journal(home: Path) -> None:
    """A mistyped ``--session FILE`` must not get a torn tail cut or records appended."""
    (home / "stray.jsonl").write_bytes(b"")
    (home / "stray.log").write_bytes(b"not a journal, no newline")
    for name in ("stray.jsonl", "stray.log"):
        before = (home / name).read_bytes()
        done = run(home, "exec", "tiny.md", "--task", "T-001", "--session", name)
        assert f"runbook: {name}:1: not a session journal" in one_line(done.stderr)
        assert done.returncode == 2
        assert (home / name).read_bytes() == before


@pytest.mark.parametrize("argv", [
    ["sessions", "--session-dir", "missing-dir"],
    ["sessions", "--session-dir", "emptys"],
    ["journal", "verify", S],
    ["exec", "tiny.md", "--task", "T-001", "--dry-run"],
], ids=["sessions-missing-dir", "sessions-empty-dir", "journal-verify", "exec-dry-run"])
def test_odd_but_fine_exits_0(home: Path, argv: list[str]) -> None:
    session = (home / "session").read_text()
    done = run(home, *[a.replace(S, session) for a in argv])
    assert "Traceback" not in done.stderr
    assert done.returncode == 0, done.stderr


def test_ctrl_c_exits_130_and_the_journal_verifies(home: Path, tmp_path: Path) -> None:
    env = _env(home)
    env["RUNBOOK_SESSION_DIR"] = str(tmp_path)
    proc = subprocess.Popen([*RUNBOOK, "exec", "sleepy.md", "--task", "T-001"], cwd=home, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        journal = None
        while time.monotonic() < deadline:  # wait until the step's output is journaled
            found = list(tmp_path.glob("*/journal.jsonl"))
            if found and '"start' in found[0].read_text():
                journal = found[0]
                break
            time.sleep(0.1)
        assert journal is not None, "the step never started"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stderr
    verified = run(home, "journal", "verify", str(journal))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "cancelled" in journal.read_text()
