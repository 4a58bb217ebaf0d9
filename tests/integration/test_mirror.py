"""The journal mirror (``--mirror DEST``, ``resume --from DEST/ID``) against a real sshd.

The mirror host is a second loopback OpenSSH server (its own fleet, ``backup-jump`` in
an SSH config under a throwaway ``$HOME``, strict known_hosts).  ``runbook exec`` runs in
a subprocess, as an operator would run it; the "other jump host" that carries on is
another ``$HOME``, ``$XDG_STATE_HOME`` and session store on this machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sessions.journal.journal import read_records, verify
from tests.integration.sshd import SSHFleet
from tests.tools import require

pytestmark = pytest.mark.sshd

RUNBOOK = """\
# Mirror drill

### MIR-1: Long step

#### Steps

1. **Stream lines**

```bash
{step1}
```

2. **Say done**

```bash
{step2}
```
"""


class Host:
    """One "jump host": its own HOME (SSH config naming the mirror), XDG dirs and session store."""

    def __init__(self, root: Path, fleet: SSHFleet) -> None:
        self.root = root
        self.home = root / "home"
        (self.home / ".ssh").mkdir(parents=True)
        (self.home / ".ssh" / "config").write_text(fleet.ssh_config({"backup-jump": fleet.names[0]}))
        self.store = root / "sessions"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBOOK_", "XDG_", "SSH_AUTH"))}
        self.env.update(HOME=str(self.home), XDG_STATE_HOME=str(root / "state"), XDG_CONFIG_HOME=str(root / "config"),
                        PYTHONUNBUFFERED="1")

    def runbook(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "runbook.cli", *args]

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.runbook(*args), env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.runbook(*args), env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)


@pytest.fixture
def mirror_host(make_fleet: Callable[..., SSHFleet]) -> SSHFleet:
    return make_fleet(["mirror"], base=40)


def _runbook(tmp_path: Path, step1: str, step2: str = "echo done") -> Path:
    path = tmp_path / "drill.md"
    path.write_text(RUNBOOK.format(step1=step1, step2=step2))
    return path


def _until(store: Path, needle: str, lines: bool = False) -> str:
    """A step's command that waits (30 s at most) until a journal in ``store`` holds ``needle``: the
    session stays open until the mirror's state change is journaled, however loaded the machine."""
    say = 'echo "line $i"; ' if lines else ""
    half = len(needle) // 2  # the needle in two halves: the step's own journaled command must not match it
    return (f"a='{needle[:half]}'; b='{needle[half:]}'; i=0; until grep -qsF \"$a$b\" {store}/*/journal.jsonl; "
            f'do i=$((i+1)); {say}[ "$i" -ge 600 ] && break; sleep 0.05; done; echo "waited $i"')


def _wait(cond: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _only_session(store: Path) -> Path:
    dirs = [d for d in store.iterdir() if (d / "journal.jsonl").is_file()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def _types(journal: Path) -> list[str]:
    return [r.event.TYPE for r in read_records(journal)]


def _complete(data: bytes) -> bytes:
    return data[:data.rfind(b"\n") + 1]


def test_the_mirror_follows_a_running_session_byte_for_byte(tmp_path: Path, mirror_host: SSHFleet) -> None:
    a = Host(tmp_path / "a", mirror_host)
    remote_root = tmp_path / "remote"
    rb = _runbook(tmp_path, "for i in $(seq 1 60); do echo line $i; sleep 0.05; done")
    proc = a.start("exec", str(rb), "--task", "MIR-1", "--target", "local", "--session-dir", str(a.store),
                   "--mirror", f"backup-jump:{remote_root}")
    compared = 0
    try:
        _wait(lambda: remote_root.exists() and any(remote_root.iterdir()), 30, "the mirror's session directory")
        sid = next(remote_root.iterdir()).name
        remote, local = remote_root / sid / "journal.jsonl", a.store / sid / "journal.jsonl"
        while proc.poll() is None:  # while it runs: what the mirror holds is a prefix of the journal
            theirs = remote.read_bytes() if remote.exists() else b""
            ours = local.read_bytes()
            assert ours.startswith(theirs), "the mirror is not a prefix of the journal"
            compared += bool(theirs)
            time.sleep(0.1)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert compared >= 5, "the run was too short to watch the mirror follow it"
    assert f"mirror backup-jump:{remote_root}/{sid}: following the journal" in err
    assert "records acknowledged" in err and "not acknowledged" not in err, err
    assert remote.read_bytes() == local.read_bytes()  # at the end: the whole journal, byte for byte
    assert verify(remote).ok
    on_mirror = a.run("journal", "verify", sid, "--session-dir", str(remote_root))  # the mirror is a session store
    assert on_mirror.returncode == 0, on_mirror.stdout + on_mirror.stderr
    types = _types(local)
    assert types.count("mirror_changed") == 1 and "output" in types  # started; no acks journaled
    started = next(r.event for r in read_records(local) if r.event.TYPE == "mirror_changed")
    assert started.state == "started"
    assert oct(remote.stat().st_mode & 0o777) == "0o600" and oct(remote.parent.stat().st_mode & 0o777) == "0o700"


def test_sigkill_mid_step_then_resume_from_the_mirror_elsewhere(tmp_path: Path, mirror_host: SSHFleet) -> None:
    a = Host(tmp_path / "a", mirror_host)
    b = Host(tmp_path / "b", mirror_host)
    remote_root = tmp_path / "remote"
    rb = _runbook(tmp_path, "echo started; for i in $(seq 1 600); do echo tick $i; sleep 0.1; done")
    proc = a.start("exec", str(rb), "--task", "MIR-1", "--step", "1", "--target", "local",
                   "--session-dir", str(a.store), "--mirror", f"backup-jump:{remote_root}")
    try:
        _wait(lambda: remote_root.exists() and any(remote_root.glob("*/journal.jsonl"))
              and b"tick 5" in next(remote_root.glob("*/journal.jsonl")).read_bytes(), 60,
              "the mirror to hold the step's output")
        os.killpg(proc.pid, signal.SIGKILL)  # the jump host dies: no session_closed, no last flush
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    remote = next(remote_root.glob("*/journal.jsonl"))
    sid = remote.parent.name
    acknowledged = _complete(remote.read_bytes())  # every record the mirror fsynced (and more is fine)
    assert acknowledged and "session_closed" not in acknowledged.decode()

    done = b.run("exec", str(rb), "--task", "MIR-1", "--step", "2", "--target", "local",
                 "--session-dir", str(b.store), "--from", f"backup-jump:{remote_root}/{sid}")
    assert done.returncode == 0, done.stderr
    n = acknowledged.count(b"\n")
    assert f"copied {n} records of session {sid}" in done.stderr
    journal = b.store / sid / "journal.jsonl"
    assert journal.read_bytes().startswith(acknowledged)  # nothing acknowledged is lost
    assert verify(journal).ok
    records = list(read_records(journal))
    after = [r.event for r in records[n:]]
    assert after[0].TYPE == "session_opened" and after[0].resumed
    handover = after[1]
    assert handover.TYPE == "mirror_handover"
    assert handover.source == f"backup-jump:{remote_root}/{sid}" and handover.records == n
    assert handover.previous_operator and handover.operator and handover.previous_host
    step1 = next(r.event.run_id for r in records if r.event.TYPE == "step_started" and r.event.step == 1)
    unknown = [e for e in after if e.TYPE == "step_outcome_unknown" and e.run_id == step1]
    assert unknown and "end was not seen" in unknown[0].why
    assert not any(e.TYPE == "step_finished" and e.run_id == step1 and e.outcome == "succeeded" for e in after)
    assert any(e.TYPE == "step_finished" and e.outcome == "succeeded" for e in after)  # step 2 ran here
    report = b.run("export", sid, "--format", "json", "--out", "-", "--session-dir", str(b.store))
    assert report.returncode == 0, report.stderr
    handovers = [d for d in json.loads(report.stdout)["report"]["deviations"] if d["kind"] == "mirror_handover"]
    assert len(handovers) == 1 and f"{n} records copied" in handovers[0]["reason"]  # an auditor sees it


def test_a_lost_mirror_warns_never_stops_the_run_and_catches_up(tmp_path: Path, mirror_host: SSHFleet) -> None:
    a = Host(tmp_path / "a", mirror_host)
    remote_root = tmp_path / "remote"
    rb = _runbook(tmp_path, _until(a.store, '"state":"restored"', lines=True))  # runs until the mirror is back
    proc = a.start("exec", str(rb), "--task", "MIR-1", "--target", "local", "--session-dir", str(a.store),
                   "--mirror", f"backup-jump:{remote_root}")

    def journaled(needle: bytes) -> bool:
        return any(needle in j.read_bytes() for j in a.store.glob("*/journal.jsonl"))

    try:
        _wait(lambda: journaled(b'"state":"started"'), 30, "the mirror to start")
        mirror_host.stop()  # the mirror host goes away mid-step (its sessions killed)
        _wait(lambda: journaled(b'"state":"lost"'), 30, "the mirror to be lost")
        assert proc.poll() is None, "the run stopped with the mirror"
        mirror_host.restart()
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "waited 600" not in out, "the mirror never came back"
    assert "warning: mirror" in err and "lost" in err and "the session goes on" in err, err
    sid = _only_session(a.store).name
    local, remote = a.store / sid / "journal.jsonl", remote_root / sid / "journal.jsonl"
    assert remote.read_bytes() == local.read_bytes(), err  # caught up, to the last record
    states = [r.event.state for r in read_records(local) if r.event.TYPE == "mirror_changed"]
    assert states[0] == "started" and "lost" in states and states[-1] == "restored", states
    assert states.count("lost") == 1, states  # one outage, journaled once however many retries


def test_resume_from_refuses_a_tampered_mirror(tmp_path: Path, mirror_host: SSHFleet) -> None:
    a = Host(tmp_path / "a", mirror_host)
    b = Host(tmp_path / "b", mirror_host)
    remote_root = tmp_path / "remote"
    rb = _runbook(tmp_path, "echo one; echo two")
    ran = a.run("exec", str(rb), "--task", "MIR-1", "--step", "1", "--target", "local", "--session-dir", str(a.store),
                "--mirror", f"backup-jump:{remote_root}")
    assert ran.returncode == 0, ran.stderr
    sid = _only_session(a.store).name
    remote = remote_root / sid / "journal.jsonl"
    data = remote.read_bytes()
    assert data == (a.store / sid / "journal.jsonl").read_bytes()
    lines = data.split(b"\n")
    victim = next(i for i, line in enumerate(lines) if b'"type":"step_started"' in line)
    record = json.loads(lines[victim])
    lines[victim] = lines[victim].replace(b'"step":1', b'"step":2')  # an altered record, its hash kept
    assert lines[victim] != json.dumps(record).encode()
    remote.write_bytes(b"\n".join(lines))

    refused = b.run("exec", str(rb), "--task", "MIR-1", "--step", "2", "--target", "local",
                    "--session-dir", str(b.store), "--from", f"backup-jump:{remote_root}/{sid}")
    assert refused.returncode == 1, refused.stderr
    assert "the mirrored journal does not verify" in refused.stderr and "refusing to resume from it" in refused.stderr
    assert f"record {victim + 1}" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not b.store.exists() or not any(b.store.iterdir())  # nothing left in the store
    # `resume --from` fetches and verifies the same way (fetch_from_mirror); without a terminal
    # it says so before it copies anything
    tui = b.run("resume", "--from", f"backup-jump:{remote_root}", sid, "--session-dir", str(b.store))
    assert tui.returncode == 2 and "the TUI (runbook resume) needs a terminal" in tui.stderr, tui.stderr
    assert not any(b.store.iterdir())


def test_a_torn_record_on_the_mirror_is_dropped_on_resume_and_set_aside_when_mirroring_again(
        tmp_path: Path, mirror_host: SSHFleet) -> None:
    """The first jump host died in the middle of a write to the mirror: the mirror ends in half
    a record.  ``--from`` drops it as a local torn tail is dropped (journaled), and mirroring the
    carried-on session to the same place sets the torn file aside (renamed, never truncated)."""
    a = Host(tmp_path / "a", mirror_host)
    b = Host(tmp_path / "b", mirror_host)
    remote_root = tmp_path / "remote"
    rb = _runbook(tmp_path, "echo one", _until(b.store, "set aside"))  # step 2 ends once the mirror says so
    ran = a.run("exec", str(rb), "--task", "MIR-1", "--step", "1", "--target", "local", "--session-dir", str(a.store),
                "--mirror", f"backup-jump:{remote_root}")
    assert ran.returncode == 0, ran.stderr
    sid = _only_session(a.store).name
    remote = remote_root / sid / "journal.jsonl"
    whole = remote.read_bytes()
    torn = b'{"event":{"reason":"exec finished","type":"session_clos'
    with open(remote, "ab") as fh:
        fh.write(torn)

    done = b.run("exec", str(rb), "--task", "MIR-1", "--step", "2", "--target", "local",
                 "--session-dir", str(b.store), "--from", f"backup-jump:{remote_root}/{sid}",
                 "--mirror", f"backup-jump:{remote_root}")
    assert done.returncode == 0, done.stderr
    assert f"a torn last record of {len(torn)} bytes is dropped" in done.stderr
    journal = b.store / sid / "journal.jsonl"
    assert journal.read_bytes().startswith(whole)
    events = [r.event for r in read_records(journal)]
    n = whole.count(b"\n")
    assert events[n].TYPE == "recovered" and events[n].what == "torn tail"
    assert events[n + 2].TYPE == "mirror_handover" and events[n + 2].torn_bytes == len(torn)
    aside = remote_root / sid / f"journal.jsonl.torn-{len(whole) + len(torn)}"
    assert aside.read_bytes() == whole + torn  # set aside whole, never truncated
    assert remote.read_bytes() == journal.read_bytes()  # mirrored again from record 1
    started = [e for e in read_records(journal) if e.event.TYPE == "mirror_changed"][-1].event
    assert started.state == "started" and "set aside" in started.detail, started


def test_a_mirror_that_is_not_this_journal_is_refused_and_left_alone(tmp_path: Path, mirror_host: SSHFleet) -> None:
    a = Host(tmp_path / "a", mirror_host)
    remote_root = tmp_path / "remote"
    rb = _runbook(tmp_path, "echo one", _until(a.store, '"state":"refused"'))  # step 2 ends once refused
    ran = a.run("exec", str(rb), "--task", "MIR-1", "--step", "1", "--target", "local", "--session-dir", str(a.store),
                "--mirror", f"backup-jump:{remote_root}")
    assert ran.returncode == 0, ran.stderr
    sid = _only_session(a.store).name
    remote = remote_root / sid / "journal.jsonl"
    altered = remote.read_bytes().replace(b'"reason":"exec finished"', b'"reason":"exec FINISHED"')
    remote.write_bytes(altered)

    again = a.run("exec", str(rb), "--task", "MIR-1", "--step", "2", "--target", "local",
                  "--session", str(a.store / sid), "--mirror", f"backup-jump:{remote_root}")
    assert again.returncode == 0, again.stderr  # the session goes on without its mirror
    assert "warning: mirror refused" in again.stderr and "differs from this session's" in again.stderr
    assert remote.read_bytes() == altered  # never written to
    states = [r.event.state for r in read_records(a.store / sid / "journal.jsonl") if r.event.TYPE == "mirror_changed"]
    assert states[-1] == "refused"


def test_the_bindings_file_names_the_mirror(tmp_path: Path, mirror_host: SSHFleet) -> None:
    a = Host(tmp_path / "a", mirror_host)
    remote_root = tmp_path / "remote"
    rb = _runbook(tmp_path, "echo one; sleep 1")
    (tmp_path / "drill.targets.yaml").write_text(f"default: local\nmirror: backup-jump:{remote_root}\n")
    ran = a.run("exec", str(rb), "--task", "MIR-1", "--step", "1", "--session-dir", str(a.store))
    assert ran.returncode == 0, ran.stderr
    sid = _only_session(a.store).name
    assert f"mirror backup-jump:{remote_root}/{sid}: following the journal" in ran.stderr
    assert (remote_root / sid / "journal.jsonl").read_bytes() == (a.store / sid / "journal.jsonl").read_bytes()


def test_the_mirror_host_key_is_checked_strictly(tmp_path: Path, mirror_host: SSHFleet) -> None:
    """An unknown mirror host key: refused (a warning; the run goes on); with
    ``--accept-new-host-keys`` recorded and journaled, as for any host."""
    a = Host(tmp_path / "a", mirror_host)
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    config = a.home / ".ssh" / "config"
    config.write_text(config.read_text().replace(str(mirror_host.known_hosts), str(empty)))
    remote_root = tmp_path / "remote"
    rb = _runbook(tmp_path, "echo one", _until(a.store, "host_key_accepted"))
    ran = a.run("exec", str(rb), "--task", "MIR-1", "--step", "1", "--target", "local", "--session-dir", str(a.store),
                "--mirror", f"backup-jump:{remote_root}")
    assert ran.returncode == 0, ran.stderr
    assert "warning: mirror" in ran.stderr and "unknown host key" in ran.stderr, ran.stderr
    assert not remote_root.exists()

    ran = a.run("exec", str(rb), "--task", "MIR-1", "--step", "2", "--target", "local", "--session-dir", str(a.store),
                "--mirror", f"backup-jump:{remote_root}", "--accept-new-host-keys")
    assert ran.returncode == 0, ran.stderr
    sid = next(remote_root.iterdir()).name
    local = a.store / sid / "journal.jsonl"
    assert (remote_root / sid / "journal.jsonl").read_bytes() == local.read_bytes()
    assert [r.event.TYPE for r in read_records(local)].count("host_key_accepted") == 1
    assert mirror_host.addresses["mirror"] in empty.read_text()


def test_another_writer_on_the_mirror_makes_it_refuse_never_interleave(tmp_path: Path, mirror_host: SSHFleet) -> None:
    """Two jump hosts writing one mirror (the session carried on elsewhere while the first still
    runs): the first to see the other's bytes stops mirroring, and never appends after them."""
    a = Host(tmp_path / "a", mirror_host)
    remote_root = tmp_path / "remote"
    rb = _runbook(tmp_path, "for i in $(seq 1 40); do echo line $i; sleep 0.05; done")
    proc = a.start("exec", str(rb), "--task", "MIR-1", "--target", "local", "--session-dir", str(a.store),
                   "--mirror", f"backup-jump:{remote_root}")
    other = b'{"event":{"type":"note","text":"from the other jump host"}}\n'
    try:
        _wait(lambda: remote_root.exists() and any(remote_root.glob("*/journal.jsonl"))
              and b"line 3" in next(remote_root.glob("*/journal.jsonl")).read_bytes(), 30, "the mirror to follow")
        remote = next(remote_root.glob("*/journal.jsonl"))
        with open(remote, "ab") as fh:
            fh.write(other)
        theirs = remote.read_bytes()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "warning: mirror refused" in err and "another writer changed it" in err, err
    assert remote.read_bytes() == theirs and theirs.endswith(other)  # nothing appended after the other writer
    states = [r.event.state for r in read_records(a.store / remote.parent.name / "journal.jsonl")
              if r.event.TYPE == "mirror_changed"]
    assert states == ["started", "refused"]


def test_signed_checkpoints_survive_the_jump_host_too(tmp_path: Path, mirror_host: SSHFleet) -> None:
    """The checkpoint sidecar is mirrored beside the journal and copied by ``--from``: the carried-on
    session still verifies against the signer's key (without it: "sidecar lacks the signed
    checkpoint")."""
    a = Host(tmp_path / "a", mirror_host)
    b = Host(tmp_path / "b", mirror_host)
    key = tmp_path / "signer"
    subprocess.run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "signer", "-f", str(key)],
                   check=True)
    signers = tmp_path / "allowed_signers"
    signers.write_text("signer " + " ".join(Path(f"{key}.pub").read_text().split()[:2]) + "\n")
    for host in (a, b):
        host.env.update(RUNBOOK_SIGNING_KEY=str(key), RUNBOOK_CHECKPOINT_EVERY_S="0.3")
    remote_root = tmp_path / "remote"
    rb = _runbook(tmp_path, "for i in $(seq 1 600); do echo tick $i; sleep 0.05; done")
    proc = a.start("exec", str(rb), "--task", "MIR-1", "--step", "1", "--target", "local",
                   "--session-dir", str(a.store), "--mirror", f"backup-jump:{remote_root}")
    try:
        _wait(lambda: remote_root.exists() and any(remote_root.glob("*/checkpoints.sig.jsonl"))
              and b"tick 20" in next(remote_root.glob("*/journal.jsonl")).read_bytes(), 60,
              "signed checkpoints on the mirror")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    sid = next(remote_root.iterdir()).name
    done = b.run("exec", str(rb), "--task", "MIR-1", "--step", "2", "--target", "local",
                 "--session-dir", str(b.store), "--from", f"backup-jump:{remote_root}/{sid}")
    assert done.returncode == 0, done.stderr
    assert (b.store / sid / "checkpoints.sig.jsonl").exists()
    checked = b.run("journal", "verify", sid, "--allowed-signers", str(signers), "--session-dir", str(b.store))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "signed by" in checked.stdout


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (the sshd listener and the per-connection sshd's)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def test_a_hung_mirror_never_holds_the_run_and_exec_quits_in_bounded_time(
        tmp_path: Path, mirror_host: SSHFleet) -> None:
    """The mirror host stops answering (its sshd SIGSTOPped: TCP stays up, nothing replies): the
    steps go on and `exec` still quits in a bounded time (each remote operation 10 s, 5 s at close)."""
    a = Host(tmp_path / "a", mirror_host)
    rb = _runbook(tmp_path, _until(a.store, '"state":"started"') + "; for i in 1 2 3 4 5; do echo tick $i; done",
                  "echo done")
    proc = a.start("exec", str(rb), "--task", "MIR-1", "--target", "local", "--session-dir", str(a.store),
                   "--mirror", f"backup-jump:{tmp_path / 'remote'}")
    stopped: list[int] = []
    try:
        _wait(lambda: any(b'"state":"started"' in j.read_bytes() for j in a.store.glob("*/journal.jsonl")), 30,
              "the mirror to start")
        for server in mirror_host._servers:
            assert server.proc is not None
            for pid in _descendants(server.proc.pid):
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        started = time.monotonic()
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - started
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"exec quit {took:.1f} s after the mirror hung")
    assert proc.returncode == 0, err
    assert "tick 5" in out and "[local] done" in out, out
    assert "Traceback" not in err and "not acknowledged" in err, err


def test_resume_from_refuses_a_mirror_with_a_forged_approval(tmp_path: Path, mirror_host: SSHFleet) -> None:
    """The chain is not keyed: whoever writes on the mirror host can append records that chain.
    A forged `approval_granted` (a signature by a key that is not the approvers') is refused
    by `--from` before anything is copied into the store, so no step runs on it."""
    from sessions.journal import events as ev
    from sessions.journal.format import encode_record

    keygen = require("ssh-keygen")
    for name in ("alice", "mallory"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(tmp_path / name)], check=True)
    a, b = Host(tmp_path / "a", mirror_host), Host(tmp_path / "b", mirror_host)
    remote_root = tmp_path / "remote"
    rb = _runbook(tmp_path, "echo one")
    done = a.run("exec", str(rb), "--task", "MIR-1", "--step", "1", "--target", "local",
                 "--session-dir", str(a.store), "--mirror", f"backup-jump:{remote_root}")
    assert done.returncode == 0, done.stderr
    sid = _only_session(a.store).name
    remote = remote_root / sid / "journal.jsonl"
    last = json.loads(remote.read_bytes().splitlines()[-1])
    seq, prev = last["seq"], last["h"]
    alice = " ".join((tmp_path / "alice.pub").read_text().split()[:2])
    message = tmp_path / "request.json"
    message.write_text('{"kind": "runbook-approval-request", "task": "MIR-1"}\n')
    subprocess.run([keygen, "-q", "-Y", "sign", "-f", str(tmp_path / "mallory"), "-n", "runbook-approval",
                    str(message)], check=True)
    fingerprint = subprocess.run([keygen, "-l", "-f", str(tmp_path / "alice.pub")], capture_output=True,
                                 text=True, check=True).stdout.split()[1]
    forged = [ev.ApproversSet("/srv/team.allowed_signers", "0" * 64, f"alice@example {alice}\n", "root"),
              ev.ApprovalRequested("0a1b2c3d", "MIR-1", "/x/approval.json", message.read_text(), "0" * 64, (), "root"),
              ev.ApprovalGranted("0a1b2c3d", "MIR-1", "alice@example", fingerprint,
                                 Path(f"{message}.sig").read_text(), "runbook-approval", message.read_text())]
    with remote.open("ab") as f:
        for event in forged:
            seq += 1
            line, prev = encode_record(seq, "2026-12-08T03:00:00.000000Z", prev, event)
            f.write(line)
    assert verify(remote).ok  # the chain holds: only the signature gives it away

    refused = b.run("exec", str(rb), "--task", "MIR-1", "--step", "2", "--target", "local",
                    "--session-dir", str(b.store), "--from", f"backup-jump:{remote_root}/{sid}")
    assert refused.returncode == 1, refused.stderr
    assert "a journaled approval does not verify" in refused.stderr, refused.stderr
    assert "not in the journaled approvers file" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert not b.store.exists() or not any(b.store.iterdir())
