"""Attacks on secrets, against the real CLI (a subprocess) and the real sshd fleet.

Each test spells out the attack: a one-character secret that garbles the mask, a
literal ``export DB_PASSWORD=hunter2`` in the runbook, a secret in the environment
that reaches ``/proc/PID/environ`` of the step or the SSH server (SendEnv), detached
spools that keep raw output on the host, ``--var`` in ``ps`` (``--var-file``, stdin).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.sshd import SSHFleet
from tests.tools import require

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "runbook.cli"]

HEAD = """# Secret attacks

## Phase 0: Checks (1 hour)

**Purpose**: attack secrets
**Risk Level**: LOW

### Task SEC-001: Secrets

- **Category**: Test
- **Duration**: 5 minutes
- **Dependencies**: None
- **Risk Level**: LOW

#### Steps

"""


def book(tmp_path: Path, steps: str) -> Path:
    path = tmp_path / "book.md"
    path.write_text(HEAD + steps)
    return path


def cli(args: list, *, env: dict | None = None, input: str | None = None, timeout: float = 120,
        home: Path | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not re.search("PASS|TOKEN|SECRET", k)}
    full["PYTHONPATH"] = str(ROOT)
    if home is not None:
        full["HOME"] = str(home)
    full.update(env or {})
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, cwd=ROOT, env=full,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL, timeout=timeout)


def session_dir(sessions: Path, stderr: str) -> Path:
    sid = re.search(r"runbook: session (\S+) \(", stderr).group(1)
    return sessions / sid


def journal_text(sessions: Path, stderr: str) -> str:
    return (session_dir(sessions, stderr) / "journal.jsonl").read_text()


def events(sessions: Path, stderr: str) -> list[dict]:
    return [json.loads(line)["event"] for line in journal_text(sessions, stderr).splitlines()]


def everything_written(sessions: Path) -> str:
    """Every byte under the session directory (journal, logs, sidecars, exports)."""
    return "\n".join(p.read_text(errors="replace") for p in sessions.rglob("*") if p.is_file())


# --- short and empty secrets ------------------------------------------------------------

TOKEN_STEP = """1. **Token**

```bash
echo "the token is $API_TOKEN; redacted stays redacted"
```
"""


@pytest.mark.parametrize("value", ["e", "ab", "abc", ""])
def test_short_or_empty_secret_is_refused_from_every_source(tmp_path, value):
    """Attack: `--var API_TOKEN=e` (or from a var file, stdin, the environment).  A one-letter
    secret masked everywhere garbles the journaled command and output ('r***dact***d'),
    revealing the letter; an empty one is no secret at all.  Refused, exit 2, nothing run."""
    path = book(tmp_path, TOKEN_STEP)
    sessions = tmp_path / "sessions"
    base = ["exec", path, "--task", "SEC-001", "--target", "local", "--session-dir", sessions]
    var_file = tmp_path / "vars"
    var_file.write_text(f"API_TOKEN={value}\n")
    var_file.chmod(0o600)
    attempts = [
        cli(base + ["--var", f"API_TOKEN={value}"]),
        cli(base + ["--var-file", var_file]),
        cli(base, env={"API_TOKEN": value}),
    ]
    if value:
        attempts.append(cli(base, input=f"{value}\n"))
    for r in attempts:
        assert r.returncode == 2, r.stderr
        assert "API_TOKEN" in r.stderr
        assert ("shorter than 4 characters" in r.stderr) or ("empty" in r.stderr) or ("missing" in r.stderr), r.stderr
        assert "Traceback" not in r.stderr
        assert "the token is" not in r.stdout
    assert not sessions.exists() or not any(sessions.rglob("journal.jsonl"))


def test_mask_is_never_garbled_by_a_secret_inside_it(tmp_path):
    """Attack: the secret `edac` occurs inside the mask `<redacted:API_TOKEN>` and in
    `redacted`: a second redaction pass over the masked text turned it into
    `<r***t***:API_TOKEN>` and told what the secret looks like.  One pass: masks intact."""
    path = book(tmp_path, TOKEN_STEP)
    sessions = tmp_path / "sessions"
    r = cli(["exec", path, "--task", "SEC-001", "--target", "local", "--session-dir", sessions,
             "--var", "API_TOKEN=edac"])
    assert r.returncode == 0, r.stderr
    evs = events(sessions, r.stderr)
    command = next(e["command"] for e in evs if e["type"] == "step_started")
    # every occurrence of the value is masked once, and no mask is masked again
    assert command == ("API_TOKEN='<redacted:API_TOKEN>'\n"
                       'echo "the token is $API_TOKEN; r<redacted:API_TOKEN>ted stays r<redacted:API_TOKEN>ted"\n')
    out = "".join(e["data"] or "" for e in evs if e["type"] == "output")
    assert out == "the token is ***; r***ted stays r***ted\n"  # the value itself, and only it, is masked


# --- literal secrets in the runbook -----------------------------------------------------

LITERAL_STEPS = """1. **Literal**

```bash
export DB_PASSWORD=hunter2
mysql_login() { echo "connecting as admin with $DB_PASSWORD"; }
mysql_login
curl --token 's3cr3t-literal-tok' -s file:///dev/null || true
echo "token was s3cr3t-literal-tok"
```

2. **Later step echoes it**

```bash
echo "reminder: hunter2"
```
"""


def test_literal_secret_in_runbook_never_in_journal_or_exports(tmp_path):
    """Attack: the runbook itself assigns `export DB_PASSWORD=hunter2` (and passes
    `--token 's3cr3t-literal-tok'`); the step echoes it.  The value was masked in the
    exported command but journaled raw, and the output kept it.  Both masked, in the
    journal and in every export format (md, json, html)."""
    path = book(tmp_path, LITERAL_STEPS)
    sessions = tmp_path / "sessions"
    r = cli(["exec", path, "--task", "SEC-001", "--target", "local", "--session-dir", sessions])
    assert r.returncode == 0, r.stderr
    assert "hunter2" not in r.stdout and "s3cr3t-literal-tok" not in r.stdout
    evs = events(sessions, r.stderr)
    commands = [e["command"] for e in evs if e["type"] == "step_started"]
    assert "export DB_PASSWORD=<redacted:DB_PASSWORD>" in commands[0]
    out = "".join(e["data"] or "" for e in evs if e["type"] == "output")
    assert "connecting as admin with ***" in out and "reminder: ***" in out
    sdir = session_dir(sessions, r.stderr)
    for fmt in ("md", "json", "html"):
        e = cli(["export", sdir.name, "--session-dir", sessions, "--format", fmt, "--out", tmp_path / f"report.{fmt}"])
        assert e.returncode == 0, e.stderr
    dry = cli(["exec", path, "--task", "SEC-001", "--target", "local", "--dry-run"])
    assert dry.returncode == 0 and "DB_PASSWORD=<redacted:DB_PASSWORD>" in dry.stdout
    reports = [(tmp_path / f"report.{fmt}").read_text() for fmt in ("md", "json", "html")]
    assert "connecting as admin with ***" in reports[0]
    for text in (everything_written(sessions), *reports, dry.stdout):
        assert "hunter2" not in text
        assert "s3cr3t-literal-tok" not in text


# --- secrets in the environment ----------------------------------------------------------

ENV_STEP = """1. **Long running**

```bash
[ -n "$DB_PASSWORD" ] && echo "the password is set"
sh -c 'sleep 30' {marker}
```
"""


def _pids_with_arg(arg: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if arg.encode() in fh.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def _environ(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def test_env_secret_not_in_proc_environ_of_a_running_local_step(tmp_path):
    """Attack: `DB_PASSWORD=... AWS_SECRET_ACCESS_KEY=... runbook exec ...`: runbook reads
    the placeholder from its environment, and every command it started inherited the
    whole environment, readable in /proc/PID/environ (and copied to grandchildren).
    The running step's processes hold no secret-named variable."""
    marker = f"marker-{os.getpid()}-{time.monotonic_ns()}"
    path = book(tmp_path, ENV_STEP.format(marker=marker))
    sessions = tmp_path / "sessions"
    env = {"DB_PASSWORD": "env-secret-Pa55w0rd", "AWS_SECRET_ACCESS_KEY": "aws-secret-in-env-99",
           "RUNBOOK_KEY_PASSPHRASE": "passphrase-in-env-77", "SSL_CERT_FILE": "/etc/hostname"}
    full = {k: v for k, v in os.environ.items() if not re.search("PASS|TOKEN|SECRET", k)}
    full.update(env, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(CLI + ["exec", str(path), "--task", "SEC-001", "--target", "local",
                                   "--session-dir", str(sessions)],
                            cwd=ROOT, env=full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        pids: list[int] = []
        deadline = time.monotonic() + 60
        while not pids and time.monotonic() < deadline:
            pids = [p for p in _pids_with_arg(marker) if p != proc.pid]
            time.sleep(0.1)
        assert pids, "the step did not start"
        chain = set()
        for pid in pids:  # the sleep, its shell, up to (not including) runbook
            while pid not in (proc.pid, 0, 1) and pid not in chain:
                chain.add(pid)
                pid = _parent(pid)
        assert len(chain) >= 2
        for pid in chain:
            environ = _environ(pid)
            assert environ, f"cannot read /proc/{pid}/environ"
            for name, value in env.items():
                if name == "SSL_CERT_FILE":  # a path names a secret, it is not one: kept
                    assert f"{name}={value}".encode() in environ
                    continue
                assert value.encode() not in environ, f"{name} in /proc/{pid}/environ"
                assert f"{name}=".encode() not in environ
    finally:
        os.killpg(proc.pid, 15)
        proc.communicate(timeout=30)


class _AcceptEnvFleet(SSHFleet):
    """A fleet whose sshd accepts every environment variable a client sends."""

    def _config(self, addresses):
        return super()._config(addresses) + "AcceptEnv *\n"


@pytest.fixture
def accept_env_fleet(tmp_path_factory):
    require("sshd")
    require("ssh-keygen")
    fleet = _AcceptEnvFleet.start(tmp_path_factory.mktemp("envfleet"), ["env-1"], base=45)
    try:
        yield fleet
    finally:
        fleet.stop()


REMOTE_ENV_STEP = """1. **Remote environment**

<!-- runbook: target=env-1 -->
```bash
[ -n "$DB_PASSWORD" ] && echo "the password is set"
env > {dump}
```
"""


@pytest.mark.sshd
def test_env_secret_never_sent_to_the_ssh_server(tmp_path, accept_env_fleet):
    """Attack: the operator's ~/.ssh/config has `SendEnv *` (or `SendEnv DB_PASSWORD`) and
    the host accepts it: a secret in runbook's environment reached every remote command's
    environment.  Nothing secret-named is sent; harmless variables still are."""
    fleet = accept_env_fleet
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host *\n  SendEnv *\n  SetEnv API_TOKEN=setenv-token-1234 HARMLESS_SET=1\n")
    dump = tmp_path / "remote-env.txt"
    path = book(tmp_path, REMOTE_ENV_STEP.format(dump=dump))
    inv = fleet.write_inventory(tmp_path / "inv.yaml")
    sessions = tmp_path / "sessions"
    r = cli(["exec", path, "--task", "SEC-001", "--inventory", inv, "--known-hosts", fleet.known_hosts,
             "--session-dir", sessions],
            env={"DB_PASSWORD": "env-secret-over-ssh", "OTHER_SECRET": "other-secret-value", "HARMLESS_VAR": "ok"},
            home=home)
    assert r.returncode == 0, r.stderr
    remote = dump.read_text()
    assert "HARMLESS_VAR=ok" in remote and "HARMLESS_SET=1" in remote  # SendEnv/SetEnv still work
    for value in ("env-secret-over-ssh", "other-secret-value", "setenv-token-1234"):
        assert value not in remote
    assert "the password is set" in r.stdout  # the placeholder itself was supplied, in memory


# --- detached spools ----------------------------------------------------------------------

SPOOL_STEP = """1. **Detached**

<!-- runbook: target={target} detached -->
```bash
echo "spooled secret $API_TOKEN"
```
"""


SPOOL_SECRET = {"API_TOKEN": "Spool-Secret-4421"}


def _spool_ids(sessions: Path, stderr: str) -> list[str]:
    return [e["detached_id"] for e in events(sessions, stderr) if e["type"] == "detached_started"]


def test_local_detached_spool_is_gone_after_success(tmp_path):
    """Attack: a local detached step spools its raw output (secret included) under
    ~/.runbook/spool on the jump host, kept 7 days.  Gone once journaled."""
    home = tmp_path / "home"
    home.mkdir()
    path = book(tmp_path, SPOOL_STEP.format(target="local"))
    sessions = tmp_path / "sessions"
    r = cli(["exec", path, "--task", "SEC-001", "--session-dir", sessions], env=SPOOL_SECRET, home=home)
    assert r.returncode == 0, r.stderr
    assert "spooled secret ***" in r.stdout
    assert _spool_ids(sessions, r.stderr)
    spool = home / ".runbook" / "spool"
    assert not spool.exists() or list(spool.iterdir()) == []
    leftovers = [p for p in home.rglob("*") if p.is_file()]
    assert all("Spool-Secret-4421" not in p.read_text(errors="replace") for p in leftovers)


@pytest.mark.sshd
def test_remote_detached_spool_is_gone_and_leftovers_pruned(tmp_path, ssh_fleet):
    """Attack: on the target host, detached spools keep the raw output for 7 days, and
    leftovers from an old crashed session stay readable; a spool made world-readable
    stays so.  After success the run's spool is gone; on connecting, a finished spool
    older than a day and a never-opened script are removed, and spools are 0700/0600."""
    spool = Path(os.path.expanduser("~")) / ".runbook" / "spool"  # the fleet runs as this user
    spool.mkdir(parents=True, exist_ok=True)
    tag = f"adv-{os.getpid()}-{time.monotonic_ns()}"
    old = spool / f"{tag}-old"  # a finished run from a session that died 2 days ago
    old.mkdir()
    (old / "out").write_text("old raw output with Spool-Secret-4421\n")
    (old / "rc").write_text("0\n")
    stale = spool / f"{tag}-stale"  # a start that failed: the script (secrets in it) was never opened
    stale.mkdir()
    (stale / "script").write_text("PASSWORD='Spool-Secret-4421'\n")
    loose = spool / f"{tag}-loose"  # a recent spool someone opened up
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    (loose / "out").write_text("x\n")
    (loose / "out").chmod(0o644)
    two_days = time.time() - 2 * 86400
    for p in (old / "out", old / "rc", old):
        os.utime(p, (two_days, two_days))
    os.utime(stale / "script", (time.time() - 600, time.time() - 600))
    try:
        path = book(tmp_path, SPOOL_STEP.format(target="node-1"))
        inv = ssh_fleet.write_inventory(tmp_path / "inv.yaml")
        sessions = tmp_path / "sessions"
        r = cli(["exec", path, "--task", "SEC-001", "--inventory", inv, "--known-hosts", ssh_fleet.known_hosts,
                 "--session-dir", sessions], env=SPOOL_SECRET)
        assert r.returncode == 0, r.stderr
        assert "spooled secret ***" in r.stdout
        ids = _spool_ids(sessions, r.stderr)
        assert ids
        for detached_id in ids:
            assert not (spool / detached_id).exists(), f"spool {detached_id} left on the host"
        assert not old.exists(), "a 2-day-old finished spool was not pruned"
        assert not (stale / "script").exists(), "a never-opened script (secrets) was left"
        assert loose.exists(), "a recent spool must stay (its session may still re-attach)"
        assert (loose.stat().st_mode & 0o777) == 0o700
        assert ((loose / "out").stat().st_mode & 0o777) == 0o600
    finally:
        for d in (old, stale, loose):
            shutil.rmtree(d, ignore_errors=True)


# --- argv is not the only way -------------------------------------------------------------

PS_STEP = """1. **Who can see it**

```bash
ps -eo args > {ps}
echo "secret used: $DB_PASSWORD"
```
"""


def test_var_file_and_stdin_keep_the_secret_out_of_ps(tmp_path):
    """Attack: `--var DB_PASSWORD=...` is in `ps` on the jump host for every user.
    `--var-file` (mode 600; a group/world-readable one is refused) and stdin keep it out."""
    ps = tmp_path / "ps.txt"
    path = book(tmp_path, PS_STEP.format(ps=ps))
    sessions = tmp_path / "sessions"
    base = ["exec", path, "--task", "SEC-001", "--target", "local", "--session-dir", sessions]
    secret = "VarFile-Secret-8812"
    var_file = tmp_path / "vars.env"
    var_file.write_text(f"DB_PASSWORD={secret}\n")
    var_file.chmod(0o644)
    r = cli(base + ["--var-file", var_file])
    assert r.returncode == 2
    assert "chmod 600" in r.stderr and secret not in r.stderr
    var_file.chmod(0o600)
    for attempt in (cli(base + ["--var-file", var_file]), cli(base, input=f"{secret}\n"),
                    cli(base, input=f"DB_PASSWORD={secret}\n")):
        assert attempt.returncode == 0, attempt.stderr
        assert "secret used: ***" in attempt.stdout
        assert secret not in ps.read_text()
        assert secret not in everything_written(sessions)
    bad = tmp_path / "bad.env"
    bad.write_text(f"this line has no equals sign {secret}\n")
    bad.chmod(0o600)
    r = cli(base + ["--var-file", bad])
    assert r.returncode == 2 and f"{bad}:1:" in r.stderr and secret not in r.stderr
    fifo = tmp_path / "fifo.env"  # a FIFO would hang a reader: refused at once
    os.mkfifo(fifo, 0o600)
    r = cli(base + ["--var-file", fifo], timeout=30)
    assert r.returncode == 2 and "FIFO" in r.stderr
    link = tmp_path / "link.env"  # a symbolic link is not followed
    link.symlink_to(var_file)
    r = cli(base + ["--var-file", link])
    assert r.returncode == 2 and "symbolic link" in r.stderr
