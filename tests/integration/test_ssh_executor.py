"""SSHExecutor against real OpenSSH servers on loopback (see sshd.py / conftest.py).

The fleet's "hosts" are loopback addresses of this machine, so a test can look at
the remote side directly: ``ps``, spool files, uploaded files.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.errors import UserError
from runbook.sanitize.redaction import Redactor
from runbook.targets.inventory import Inventory, Target
from runbook.transport.executor import RunOptions
from runbook.transport.ssh import ConnectError, HostKeyError, SSHExecutor
from tests.integration.sshd import SSHFleet, find_tool
from tests.output_capture import GUARD, Output, processes

pytestmark = pytest.mark.sshd

ROOT = Path(__file__).resolve().parents[2]


async def group_gone(pgid: int) -> bool:
    for _ in range(100):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        await asyncio.sleep(0.1)
    return False


def fingerprint(pub: Path) -> str:
    out = subprocess.run([find_tool("ssh-keygen"), "-l", "-E", "sha256", "-f", str(pub)],
                         capture_output=True, text=True, check=True).stdout
    return out.split()[1]


@pytest.fixture
async def ex(ssh_fleet: SSHFleet, tmp_path: Path):
    executor = SSHExecutor(known_hosts=str(ssh_fleet.known_hosts), spool_dir=str(tmp_path / "spool"),
                           drain=0.5, kill_grace=1.0)
    try:
        yield executor
    finally:
        await executor.close()


# --- running ------------------------------------------------------------------------


async def test_run_streams_live_with_stdout_and_stderr_apart(ssh_fleet: SSHFleet, ex: SSHExecutor, tmp_path: Path) -> None:
    node = ssh_fleet.hosts["node-1"]
    gate = tmp_path / "gate"
    out = Output()
    script = (f"echo first; echo oops >&2; i=0; while [ ! -e {gate} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done\n"
              f"[ -e {gate} ] || exit 9\necho second\n")
    run = asyncio.ensure_future(ex.run(node, script, out, RunOptions()))
    await out.wait_for("first")  # seen while the script waits for the gate
    assert not run.done()
    gate.touch()
    result = await asyncio.wait_for(run, GUARD)
    assert (result.host, result.outcome, result.exit_status) == ("node-1", "succeeded", 0)
    assert out.text("stdout") == "first\nsecond\n"
    assert out.text("stderr") == "oops\n"  # the executor's pid frame is not output


async def test_script_is_not_swallowed_by_commands_reading_stdin(ssh_fleet: SSHFleet, ex: SSHExecutor) -> None:
    out = Output()
    result = await ex.run(ssh_fleet.hosts["node-1"], "cat\nread x || echo no-input\necho after\n", out, RunOptions())
    assert result.outcome == "succeeded" and out.text() == "no-input\nafter\n"


async def test_concurrent_runs_on_several_hosts_share_pooled_connections(
    ssh_fleet: SSHFleet, ex: SSHExecutor, tmp_path: Path
) -> None:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    # Each host waits until all three have started: only a parallel run can succeed.
    script = (f"touch {barrier}/$(echo $SSH_CONNECTION | cut -d' ' -f3); i=0\n"
              f"while [ $(ls {barrier} | wc -l) -lt 3 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done\n"
              f"[ $(ls {barrier} | wc -l) -ge 3 ] || exit 9\necho $SSH_CONNECTION\n")
    out = Output()
    targets = list(ssh_fleet.hosts.values())
    results = await asyncio.wait_for(asyncio.gather(*(ex.run(t, script, out, RunOptions()) for t in targets)), GUARD)
    assert [r.outcome for r in results] == ["succeeded"] * 3
    for t in targets:
        assert out.text(host=t.name).split()[2] == t.host  # each ran on its own server address
    assert ex.pool.connects == 3
    for t in targets:  # serial runs reuse the pooled connections
        assert (await ex.run(t, "true", Output(), RunOptions())).outcome == "succeeded"
    assert ex.pool.connects == 3


async def test_hosts_from_the_fleet_inventory(ssh_fleet: SSHFleet, ex: SSHExecutor) -> None:
    inv = Inventory.from_text(ssh_fleet.inventory_yaml({"masters": ["node-1", "node-2", "node-3"]}))
    targets = inv.resolve("masters[1:]")
    assert [t.name for t in targets] == ["node-2", "node-3"]
    out = Output()
    results = await asyncio.gather(*(ex.run(t, "hostname >/dev/null; echo ok", out, RunOptions()) for t in targets))
    assert [r.outcome for r in results] == ["succeeded", "succeeded"]
    assert out.text(host="node-3") == "ok\n"


async def test_a_fleet_larger_than_one_sshd(make_fleet, tmp_path: Path) -> None:
    fleet = make_fleet(17)  # sshd listens on at most 16 addresses: two servers
    assert len({s.config for s in fleet._servers}) == 2
    ex = SSHExecutor(known_hosts=str(fleet.known_hosts))
    try:
        out = Output()
        picked = [fleet.hosts["node-1"], fleet.hosts["node-17"]]
        results = await asyncio.gather(*(ex.run(t, "echo $SSH_CONNECTION", out, RunOptions()) for t in picked))
        assert [r.outcome for r in results] == ["succeeded", "succeeded"]
        assert out.text(host="node-17").split()[2] == fleet.addresses["node-17"]
    finally:
        await ex.close()
    inv = Inventory.from_text(fleet.inventory_yaml({"web": ["node-16", "node-17"]}))
    assert [t.host for t in inv.resolve("web")] == [fleet.addresses["node-16"], fleet.addresses["node-17"]]


async def test_connects_are_bounded(ssh_fleet: SSHFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    import runbook.transport.ssh_pool as ssh_pool

    active, peak = 0, 0
    real_connect = ssh_pool.asyncssh.connect

    async def counting_connect(*args, **kwargs):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        try:
            await asyncio.sleep(0.2)  # widen the window in which handshakes could overlap
            return await real_connect(*args, **kwargs)
        finally:
            active -= 1

    monkeypatch.setattr(ssh_pool.asyncssh, "connect", counting_connect)
    ex = SSHExecutor(known_hosts=str(ssh_fleet.known_hosts), connect_limit=2)
    try:
        results = await asyncio.gather(*(ex.run(t, "true", Output(), RunOptions()) for t in ssh_fleet.hosts.values()))
        assert [r.outcome for r in results] == ["succeeded"] * 3
        assert peak == 2
    finally:
        await ex.close()


async def test_failure_exit_status_and_signal(ssh_fleet: SSHFleet, ex: SSHExecutor) -> None:
    node = ssh_fleet.hosts["node-2"]
    result = await ex.run(node, "echo partial; exit 7", Output(), RunOptions())
    assert (result.outcome, result.exit_status, result.exit_signal, result.error) == ("failed", 7, None, "exit status 7")
    result = await ex.run(node, "kill -TERM $$", Output(), RunOptions())
    assert (result.outcome, result.exit_status, result.exit_signal) == ("failed", None, "TERM")


async def test_timeout_kills_the_remote_process(ssh_fleet: SSHFleet, ex: SSHExecutor) -> None:
    out = Output()
    result = await asyncio.wait_for(
        ex.run(ssh_fleet.hosts["node-2"], "echo $$; sleep 31.9", out, RunOptions(timeout=1)), GUARD)
    assert result.outcome == "timeout" and "timed out after 1 s" in result.error
    assert await group_gone(int(out.text()))


async def test_cancel_and_ctrl_c(ssh_fleet: SSHFleet, ex: SSHExecutor) -> None:
    node = ssh_fleet.hosts["node-3"]
    out = Output()
    run = asyncio.ensure_future(ex.run(node, "echo $$; sleep 32.7", out, RunOptions()))
    await out.wait_for("\n")
    await ex.cancel("node-3")
    result = await asyncio.wait_for(run, GUARD)
    assert result.outcome == "cancelled" and result.exit_signal == "INT"
    assert await group_gone(int(out.text()))

    out = Output()
    run = asyncio.ensure_future(ex.run(node, "echo $$; sleep 32.8", out, RunOptions()))
    await out.wait_for("\n")
    await ex.signal("node-3", "INT")
    result = await asyncio.wait_for(run, GUARD)
    assert result.outcome == "cancelled" and "interrupted" in result.error
    assert await group_gone(int(out.text()))


async def test_pty_with_operator_input_and_ctrl_c(ssh_fleet: SSHFleet, ex: SSHExecutor) -> None:
    node = ssh_fleet.hosts["node-1"]
    out = Output()
    run = asyncio.ensure_future(ex.run(node, "read -p 'name? ' x; echo got:$x; tty", out, RunOptions(pty=True)))
    await out.wait_for("name? ")
    await ex.write_stdin("node-1", b"bob\r")
    result = await asyncio.wait_for(run, GUARD)
    assert result.outcome == "succeeded"
    assert {s for _, s, _ in out.chunks} == {"pty"}
    assert "got:bob" in out.text() and "/dev/pts/" in out.text() and "RUNBOOK-PID" not in out.text()

    out = Output()
    run = asyncio.ensure_future(ex.run(node, "echo ready; sleep 33.1", out, RunOptions(pty=True)))
    await out.wait_for("ready")
    await ex.signal("node-1", "INT")
    result = await asyncio.wait_for(run, GUARD)
    assert result.outcome == "cancelled" and "^C" in out.text()


async def test_a_pty_script_never_started_does_not_stay_on_the_host(
        ssh_fleet: SSHFleet, ex: SSHExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    """The PTY script (it may hold secret values) is uploaded to a temporary file first.  If
    the PTY command then cannot start, the executor deletes the file; if it cannot reach
    the host any more, the reaper the upload left behind deletes it after its TTL."""
    import asyncssh

    from runbook.transport import ssh as ssh_executor

    node = ssh_fleet.hosts["node-1"]
    conn = await ex.pool.get(node)
    # the reaper alone (nobody starts the PTY command, nobody cleans up): gone after the TTL
    upload = await conn.run(ssh_executor.pty_upload_command(1), input=b"echo secret-value\n", encoding=None,
                            request_pty=False, term_type=None)
    path = upload.stdout.decode().strip()
    assert upload.exit_status == 0 and Path(path).read_bytes() == b"echo secret-value\n"  # the sshd is this machine
    assert oct(Path(path).stat().st_mode & 0o777) == "0o600"
    for _ in range(100):
        if not Path(path).exists():
            break
        await asyncio.sleep(0.1)
    assert not Path(path).exists()

    # the PTY command fails to start: the executor removes the file at once
    uploaded: list[str] = []
    real_run = asyncssh.SSHClientConnection.run

    async def spy_run(self, command, *args, **kwargs):
        result = await real_run(self, command, *args, **kwargs)
        if "mktemp" in str(command):
            uploaded.append(result.stdout.decode().strip())
        return result

    real_create = asyncssh.SSHClientConnection.create_process

    async def refuse(self, *args, **kwargs):
        if kwargs.get("request_pty") == "force":  # only the PTY command; run() goes through here too
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, "refused by the test")
        return await real_create(self, *args, **kwargs)

    monkeypatch.setattr(asyncssh.SSHClientConnection, "run", spy_run)
    monkeypatch.setattr(asyncssh.SSHClientConnection, "create_process", refuse)
    result = await ex.run(node, "echo hi", Output(), RunOptions(pty=True))
    assert result.outcome == "failed" and "refused by the test" in (result.error or "")
    assert len(uploaded) == 1 and uploaded[0].startswith("/") and not Path(uploaded[0]).exists()


async def test_input_to_a_step_without_terminal_is_refused(ssh_fleet: SSHFleet, ex: SSHExecutor) -> None:
    out = Output()
    run = asyncio.ensure_future(ex.run(ssh_fleet.hosts["node-1"], "echo ready; sleep 1", out, RunOptions()))
    await out.wait_for("ready")
    with pytest.raises(UserError, match="node-1: no step with a terminal"):
        await ex.write_stdin("node-1", b"x\n")
    assert (await asyncio.wait_for(run, GUARD)).outcome == "succeeded"


async def test_local_target_through_the_ssh_executor(ex: SSHExecutor) -> None:
    out = Output()
    result = await ex.run(Target.local_machine(), "echo here", out, RunOptions())
    assert (result.host, result.outcome, out.text()) == ("local", "succeeded", "here\n")


# --- connections ----------------------------------------------------------------------


async def test_connection_killed_mid_step_gives_outcome_unknown(ssh_fleet: SSHFleet, ex: SSHExecutor) -> None:
    node = ssh_fleet.hosts["node-2"]
    out = Output()
    run = asyncio.ensure_future(ex.run(node, "echo $$; sleep 5; echo never", out, RunOptions()))
    await out.wait_for("\n")
    assert ssh_fleet.kill_session_processes("node-2") > 0
    result = await asyncio.wait_for(run, GUARD)
    assert (result.outcome, result.exit_status, result.exit_signal) == ("unknown", None, None)
    assert result.error == "connection lost before the command finished"
    assert "never" not in out.text()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(int(out.text()), signal.SIGKILL)  # the orphaned command keeps running: clean up
    again = await ex.run(node, "echo back", Output(), RunOptions())  # a new connection
    assert again.outcome == "succeeded"


async def test_unknown_host_key_is_refused_naming_host_and_fingerprint(ssh_fleet: SSHFleet, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    ex = SSHExecutor(known_hosts=str(empty))
    node = ssh_fleet.hosts["node-1"]
    expected = fingerprint(Path(str(ssh_fleet.host_key) + ".pub"))
    try:
        with pytest.raises(HostKeyError) as err:
            await ex.connect(node)
        message = str(err.value)
        assert f"[{node.host}]:{ssh_fleet.port}" in message and expected in message
        assert "unknown host key" in message and "--accept-new-host-keys" in message
        assert (err.value.fingerprint, err.value.changed, err.value.host) == (expected, False, "node-1")
        result = await ex.run(node, "echo no", Output(), RunOptions())
        assert result.outcome == "failed" and expected in result.error
        assert empty.read_text() == ""
    finally:
        await ex.close()


async def test_a_key_added_to_known_hosts_meanwhile_is_used_on_retry(ssh_fleet: SSHFleet, tmp_path: Path) -> None:
    """The pool keeps known_hosts parsed between connections, but an operator who adds the
    key in another terminal (ssh-keyscan, a config push) is heard on the next attempt."""
    known = tmp_path / "known_hosts"
    known.write_text("")
    ex = SSHExecutor(known_hosts=str(known))
    node = ssh_fleet.hosts["node-1"]
    try:
        with pytest.raises(HostKeyError):
            await ex.connect(node)
        algorithm, blob = ssh_fleet.host_public_key.split()[:2]
        with known.open("a") as f:
            f.write(f"[{node.host}]:{ssh_fleet.port} {algorithm} {blob}\n")
        assert (await ex.run(node, "true", Output(), RunOptions())).outcome == "succeeded"
    finally:
        await ex.close()


async def test_known_hosts_files_come_from_the_ssh_config_as_for_ssh(
        ssh_fleet: SSHFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --known-hosts the host's UserKnownHostsFile (with %d) is used, as ssh does;
    --known-hosts wins over it; 'none' leaves nothing known and never turns checking off."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))  # ~/.ssh/known_hosts is empty here
    (home / "prod_known_hosts").write_text(ssh_fleet.known_hosts.read_text())
    config = tmp_path / "ssh_config"
    config.write_text("Host 127.0.1.*\n  UserKnownHostsFile %d/prod_known_hosts\n  GlobalKnownHostsFile none\n")
    node = ssh_fleet.hosts["node-2"]

    ex = SSHExecutor(ssh_config=str(config))
    try:
        assert ex.pool.known_hosts_files(node) == [str(home / "prod_known_hosts")]
        assert (await ex.run(node, "true", Output(), RunOptions())).outcome == "succeeded"
    finally:
        await ex.close()

    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    ex = SSHExecutor(ssh_config=str(config), known_hosts=str(empty))
    try:
        with pytest.raises(HostKeyError, match="unknown host key"):
            await ex.connect(node)
    finally:
        await ex.close()

    config.write_text("Host 127.0.1.*\n  UserKnownHostsFile none\n  GlobalKnownHostsFile none\n")
    ex = SSHExecutor(ssh_config=str(config), accept_new_host_keys=True)
    try:
        with pytest.raises(HostKeyError, match="no known_hosts file"):
            await ex.connect(node)
    finally:
        await ex.close()


async def test_changed_host_key_is_refused_even_when_accepting_new_keys(ssh_fleet: SSHFleet, tmp_path: Path) -> None:
    other = tmp_path / "other_host_key"
    subprocess.run([find_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    node = ssh_fleet.hosts["node-2"]
    pattern = f"[{node.host}]:{ssh_fleet.port}"
    known = tmp_path / "known_hosts"
    algorithm, blob = Path(str(other) + ".pub").read_text().split()[:2]
    known.write_text(f"{pattern} {algorithm} {blob}\n")
    before = known.read_text()
    accepted: list[tuple[str, str]] = []
    ex = SSHExecutor(known_hosts=str(known), accept_new_host_keys=True,
                     on_host_key_accepted=lambda h, f: accepted.append((h, f)))
    try:
        with pytest.raises(HostKeyError) as err:
            await ex.connect(node)
        message = str(err.value)
        offered = fingerprint(Path(str(ssh_fleet.host_key) + ".pub"))
        assert "HOST KEY CHANGED" in message and pattern in message
        assert offered in message and fingerprint(Path(str(other) + ".pub")) in message
        assert err.value.changed and accepted == [] and known.read_text() == before
    finally:
        await ex.close()

    # known with a key of another type (the server has no such key): still a changed key
    rsa = tmp_path / "rsa_host_key"
    subprocess.run([find_tool("ssh-keygen"), "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(rsa)], check=True)
    algorithm, blob = Path(str(rsa) + ".pub").read_text().split()[:2]
    known.write_text(f"{pattern} {algorithm} {blob}\n")
    ex = SSHExecutor(known_hosts=str(known), accept_new_host_keys=True)
    try:
        with pytest.raises(HostKeyError) as err:
            await ex.connect(node)
        assert "HOST KEY CHANGED" in str(err.value) and fingerprint(Path(str(rsa) + ".pub")) in str(err.value)
    finally:
        await ex.close()


async def test_accept_new_host_keys_records_them(ssh_fleet: SSHFleet, tmp_path: Path) -> None:
    known = tmp_path / "ssh" / "known_hosts"  # not there yet
    accepted: list[tuple[str, str]] = []
    ex = SSHExecutor(known_hosts=str(known), accept_new_host_keys=True,
                     on_host_key_accepted=lambda h, f: accepted.append((h, f)))
    node = ssh_fleet.hosts["node-3"]
    expected = fingerprint(Path(str(ssh_fleet.host_key) + ".pub"))
    try:
        assert (await ex.run(node, "true", Output(), RunOptions())).outcome == "succeeded"
    finally:
        await ex.close()
    assert accepted == [("node-3", expected)]
    pattern = f"[{node.host}]:{ssh_fleet.port}"
    found = subprocess.run([find_tool("ssh-keygen"), "-F", pattern, "-f", str(known)], capture_output=True, text=True)
    assert found.returncode == 0 and ssh_fleet.host_public_key in found.stdout  # OpenSSH reads it back
    strict = SSHExecutor(known_hosts=str(known))
    try:
        assert (await strict.run(node, "true", Output(), RunOptions())).outcome == "succeeded"
        with pytest.raises(HostKeyError):  # only that host was recorded
            await strict.connect(ssh_fleet.hosts["node-1"])
    finally:
        await strict.close()


async def test_unreachable_host_fails_clearly(ssh_fleet: SSHFleet, ex: SSHExecutor) -> None:
    closed = Target("ghost", "127.0.1.250", ssh_fleet.port, ssh_fleet.user, str(ssh_fleet.client_key))
    result = await ex.run(closed, "true", Output(), RunOptions())
    assert result.outcome == "failed" and "ghost: cannot connect to" in result.error
    with pytest.raises(ConnectError, match="ghost"):
        await ex.connect(closed)


async def test_ssh_config_alias_and_proxyjump(ssh_fleet: SSHFleet, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    n3 = ssh_fleet.hosts["node-3"]
    config.write_text(
        ssh_fleet.ssh_config({"jump-box": "node-1", "db-backup": "node-2"})
        + f"\nHost behind-jump\n  HostName {n3.host}\n  Port {ssh_fleet.port}\n  User {ssh_fleet.user}\n"
        f"  IdentityFile {ssh_fleet.client_key}\n  ProxyJump jump-box\n"
    )
    inv = Inventory.load(None)
    (alias,) = inv.resolve("db-backup")  # not in any inventory: resolved by the ssh config
    assert (alias.host, alias.port, alias.user, alias.in_inventory) == ("db-backup", None, None, False)
    ex = SSHExecutor(known_hosts=str(ssh_fleet.known_hosts), ssh_config=str(config))
    try:
        out = Output()
        assert (await ex.run(alias, "echo $SSH_CONNECTION", out, RunOptions())).outcome == "succeeded"
        assert out.text().split()[2] == ssh_fleet.hosts["node-2"].host
        (jumped,) = inv.resolve("behind-jump")
        out = Output()
        run = asyncio.ensure_future(ex.run(jumped, "echo $SSH_CONNECTION; echo $$; sleep 4", out, RunOptions()))
        for _ in range(GUARD * 20):  # until both lines (address, pid) are there
            if out.text().count("\n") >= 2:
                break
            await asyncio.sleep(0.05)
        assert out.text().split()[2] == n3.host
        assert ssh_fleet.kill_session_processes("node-1") > 0  # cut the jump host: the step's end is lost
        result = await asyncio.wait_for(run, GUARD)
        assert result.outcome == "unknown"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(out.text().split()[-1]), signal.SIGKILL)
    finally:
        await ex.close()


async def test_jump_hosts_are_checked_against_known_hosts_too(ssh_fleet: SSHFleet, tmp_path: Path) -> None:
    """A ProxyJump host's key is checked like any host's, against --known-hosts; a config
    saying 'UserKnownHostsFile none' for it (asyncssh alone would then check nothing)
    does not get it through.  A ProxyJump loop is an error, not a hang."""
    n1, n3 = ssh_fleet.hosts["node-1"], ssh_fleet.hosts["node-3"]
    only_target = tmp_path / "known_hosts"
    only_target.write_text("".join(line + "\n" for line in ssh_fleet.known_hosts.read_text().splitlines()
                                   if line.startswith(f"[{n3.host}]:")))
    config = tmp_path / "ssh_config"
    common = f"  Port {ssh_fleet.port}\n  User {ssh_fleet.user}\n  IdentityFile {ssh_fleet.client_key}\n"
    config.write_text(
        f"Host jump-box\n  HostName {n1.host}\n{common}  UserKnownHostsFile none\n  StrictHostKeyChecking no\n"
        f"Host behind-jump\n  HostName {n3.host}\n{common}  ProxyJump jump-box\n"
        f"Host loop-a\n  HostName {n1.host}\n{common}  ProxyJump loop-b\n"
        f"Host loop-b\n  HostName {n3.host}\n{common}  ProxyJump loop-a\n"
    )
    (jumped,) = Inventory.load(None).resolve("behind-jump")
    ex = SSHExecutor(known_hosts=str(only_target), ssh_config=str(config))
    try:
        with pytest.raises(HostKeyError) as err:
            await ex.connect(jumped)
        assert "jump-box (jump host)" in str(err.value) and f"[{n1.host}]:{ssh_fleet.port}" in str(err.value)
        (loop,) = Inventory.load(None).resolve("loop-a")
        with pytest.raises(ConnectError, match="ProxyJump loop"):
            await asyncio.wait_for(ex.connect(loop), GUARD)
    finally:
        await ex.close()
    # with the jump host's key known, the same config works, through the pooled jump connection
    ex = SSHExecutor(known_hosts=str(ssh_fleet.known_hosts), ssh_config=str(config))
    try:
        out = Output()
        assert (await ex.run(jumped, "echo $SSH_CONNECTION", out, RunOptions())).outcome == "succeeded"
        assert out.text().split()[2] == n3.host
        assert ex.pool.connects == 2  # the jump host, then the host behind it
    finally:
        await ex.close()


# --- detached -----------------------------------------------------------------------

CLIENT = """
import asyncio, json, sys
from runbook.transport.executor import RunOptions
from runbook.targets.inventory import Target
from runbook.transport.ssh import SSHExecutor

args = json.loads(sys.argv[1])

async def main():
    ex = SSHExecutor(known_hosts=args["known_hosts"], spool_dir=args["spool"])
    target = Target(**args["target"])
    await ex.run(target, args["script"], lambda *a: None, RunOptions(detached=True, detached_id=args["id"]))

asyncio.run(main())
"""


async def test_detached_run_survives_a_killed_client_and_is_reattached(ssh_fleet: SSHFleet, tmp_path: Path) -> None:
    node = ssh_fleet.hosts["node-1"]
    spool = tmp_path / "spool"
    args = {
        "known_hosts": str(ssh_fleet.known_hosts), "spool": str(spool), "id": "run-7-node-1",
        "script": "sleep 2; echo done; exit 3",
        "target": {"name": node.name, "host": node.host, "port": node.port, "user": node.user, "key_file": node.key_file},
    }
    client = subprocess.Popen([sys.executable, "-c", CLIENT, json.dumps(args)], cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    pid_file = spool / "run-7-node-1" / "pid"
    for _ in range(300):
        if pid_file.exists() or client.poll() is not None:
            break
        await asyncio.sleep(0.05)
    assert pid_file.exists() and client.poll() is None
    assert not (spool / "run-7-node-1" / "rc").exists()  # mid-step
    client.send_signal(signal.SIGKILL)  # runbook dies: no clean close, no goodbye
    client.wait(10)

    ex = SSHExecutor(known_hosts=str(ssh_fleet.known_hosts), spool_dir=str(spool))
    try:
        out = Output()
        result = await asyncio.wait_for(ex.reattach(node, "run-7-node-1", out), GUARD)
    finally:
        await ex.close()
    assert (result.outcome, result.exit_status, result.detached_id) == ("failed", 3, "run-7-node-1")
    assert out.text("stdout") == "done\n"
    assert stat.S_IMODE((spool / "run-7-node-1").stat().st_mode) == 0o700


async def test_detached_run_rides_out_a_lost_connection(ssh_fleet: SSHFleet, ex: SSHExecutor) -> None:
    node = ssh_fleet.hosts["node-3"]
    out = Output()
    run = asyncio.ensure_future(ex.run(node, "echo a; echo e1 >&2; sleep 2; echo b; exit 0", out,
                                       RunOptions(detached=True)))
    await out.wait_for("a\n")
    assert ssh_fleet.kill_session_processes("node-3") > 0
    result = await asyncio.wait_for(run, GUARD)
    assert result.outcome == "succeeded" and result.detached_id
    assert out.text("stdout") == "a\nb\n" and out.text("stderr") == "e1\n"  # nothing lost, nothing twice
    assert ex.pool.connects == 2


async def test_detached_timeout_stops_the_remote_command(ssh_fleet: SSHFleet, ex: SSHExecutor) -> None:
    out = Output()
    result = await asyncio.wait_for(
        ex.run(ssh_fleet.hosts["node-2"], "echo $$; sleep 34.2", out, RunOptions(detached=True, timeout=1)), GUARD)
    assert result.outcome == "timeout" and result.detached_id
    assert await group_gone(int(out.text("stdout")))


async def test_reattach_to_an_unknown_spool(ssh_fleet: SSHFleet, ex: SSHExecutor) -> None:
    result = await ex.reattach(ssh_fleet.hosts["node-2"], "never-started", Output())
    assert result.outcome == "unknown" and "no spool" in result.error


# --- files and secrets ------------------------------------------------------------------


async def test_sftp_upload_is_atomic_with_mode(ssh_fleet: SSHFleet, ex: SSHExecutor, tmp_path: Path) -> None:
    node = ssh_fleet.hosts["node-1"]
    conf = tmp_path / "etc"
    conf.mkdir()
    target = conf / "kubeadm.yaml"
    target.write_text("old\n")
    inode = target.stat().st_ino
    content = b"apiVersion: kubeadm.k8s.io/v1beta3\n"
    digest = await ex.upload(node, str(target), content, 0o640)
    assert digest == hashlib.sha256(content).hexdigest()
    assert target.read_bytes() == content
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.stat().st_ino != inode  # renamed into place
    assert sorted(os.listdir(conf)) == ["kubeadm.yaml"]  # no temporary left behind
    await ex.upload(node, str(conf / "token"), b"t0k3n")
    assert stat.S_IMODE((conf / "token").stat().st_mode) == 0o600
    with pytest.raises(UserError, match=r"node-1: cannot write .*/missing/x\.yaml: no such directory"):
        await ex.upload(node, str(tmp_path / "missing" / "x.yaml"), b"x")


async def test_secrets_never_in_remote_argv_and_redacted_in_output(ssh_fleet: SSHFleet, ex: SSHExecutor) -> None:
    node = ssh_fleet.hosts["node-2"]
    literal = "lit-" + secrets.token_hex(12)  # a secret placeholder substituted into the script
    env_secret = "env-" + secrets.token_hex(12)  # a secret passed as an environment variable
    script = f"PW='{literal}'\necho \"pw=$PW\"\necho \"tok=$API_TOKEN\" >&2\nsleep 1.5\necho done\n"
    for mode in ({}, {"pty": True}, {"detached": True}):
        out = Output()
        options = RunOptions(env={"API_TOKEN": env_secret}, redactor=Redactor([literal, env_secret]), **mode)
        run = asyncio.ensure_future(ex.run(node, script, out, options))
        seen = 0
        while not run.done():
            table = processes()
            assert literal not in table and env_secret not in table, mode
            seen += 1
            await asyncio.sleep(0.05)
        result = run.result()
        assert result.outcome == "succeeded", (mode, result)
        assert seen > 5
        text = out.text()
        assert literal not in text and env_secret not in text
        assert "pw=***" in text and "tok=***" in text and "done" in text
