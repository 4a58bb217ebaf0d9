"""Many hosts from one jump host: 40 hosts on 3 sshd processes, a small connect limit,
every host succeeds; an open-file limit too low for the hosts is said, not suffered.
Nothing here is timed (bench/scale.py measures)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook.parse.parser import parse_file
from runbook.targets.inventory import Inventory, Target
from runbook.transport import ssh_pool
from runbook.transport.ssh_pool import ConnectError, SSHPool
from sessions.engine.engine import Engine
from sessions.engine.session import Session
from tests.integration.sshd import MAX_LISTEN, SSHFleet, loopback_address
from tests.tools import require

pytestmark = pytest.mark.sshd

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).parent / "runbook"
RUNBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "runbook.cli"]
HOSTS = 40

BOOK = """# Scale

## Phase 0: Scale (1 hour)

### Task SCALE-001: everywhere

- **Duration**: 1 minute
- **Risk Level**: LOW

#### Steps

1. **who**

<!-- runbook: target=all -->
```bash
echo "up on $RUNBOOK_HOST"
```
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHFleet]:
    require("sshd")
    require("ssh-keygen")
    # its own /24 (127.0.60.x): make_fleet's fleets use 127.0.20.x and up
    fleet = SSHFleet.start(tmp_path_factory.mktemp("scale-fleet"), HOSTS, base=60)
    try:
        yield fleet
    finally:
        fleet.stop()


def test_fleet_addresses_go_past_254_and_stay_in_loopback():
    assert loopback_address(253) == "127.0.1.254"
    assert loopback_address(254) == "127.0.2.1"
    assert loopback_address(499) == "127.0.2.246"
    with pytest.raises(ValueError):
        loopback_address(0, base=256)
    with pytest.raises(ValueError):
        loopback_address(254, base=255)


async def test_forty_hosts_on_several_sshd_with_a_small_connect_limit(fleet, tmp_path):
    assert len(fleet._servers) == -(-HOSTS // MAX_LISTEN) >= 3
    book = tmp_path / "scale.md"
    book.write_text(BOOK)
    inventory = Inventory.load(str(fleet.write_inventory(tmp_path / "inventory.yaml")))
    fds_before = open_fds()
    session = Session.create(parse_file(str(book)), root=tmp_path / "sessions")
    engine = Engine(session, inventory, known_hosts=str(fleet.known_hosts), parallel_limit=HOSTS, connect_limit=3)
    try:
        summary = await engine.run_step_summary("SCALE-001", 1)
        ssh = engine.executor_for(fleet.hosts["node-1"])
        connects = ssh.pool.connects  # type: ignore[attr-defined]
        fds_running = open_fds()
    finally:
        await engine.close()
        session.close()
    fds_after = open_fds()
    sockets = [fd for fd in fds_after.values() if fd.startswith("socket:")]
    assert len(fds_running) >= len(fds_before) + HOSTS  # one pooled socket per host ...
    # ... all closed with the engine: no descriptor leaked (the session's runbook.log stays
    # open by design, as the process's one log, until the next session moves it)
    assert len(sockets) <= sum(1 for fd in fds_before.values() if fd.startswith("socket:"))
    assert set(fds_after) - set(fds_before) <= {fd for fd, what in fds_after.items() if what.endswith("runbook.log")}
    assert summary.outcome == "succeeded"
    outcomes = {h: r.outcome for h, r in summary.hosts.items()}
    assert outcomes == {name: "succeeded" for name in fleet.names}
    assert connects == HOSTS  # one handshake per host, none retried


def open_fds() -> dict[str, str]:
    """fd -> what it is, for this process."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the directory's own descriptor, closed already
            pass
    return out


def _lower_open_files(soft: int, hard: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_exec_says_when_the_hard_open_file_limit_is_too_low_for_the_hosts(fleet, tmp_path):
    # hard limit 96: room for the 40 sockets, not for 40 + the 64 the process keeps in reserve
    book = tmp_path / "scale.md"
    book.write_text(BOOK)
    inv = fleet.write_inventory(tmp_path / "inventory.yaml")
    sessions = tmp_path / "sessions"
    r = subprocess.run(
        RUNBOOK + ["exec", str(book), "--task", "SCALE-001", "--inventory", str(inv), "--known-hosts",
                   str(fleet.known_hosts), "--session-dir", str(sessions), "--parallel", str(HOSTS),
                   "--connect-limit", "4"],
        capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL, timeout=180,
        preexec_fn=lambda: _lower_open_files(48, 96), env=dict(os.environ),
    )
    assert r.returncode == 0, r.stderr
    [line] = [x for x in r.stderr.splitlines() if "open-file limit" in x]
    assert f"too low for {HOSTS} hosts" in line and "RLIMIT_NOFILE is 96 (hard limit 96)" in line
    assert len(re.findall(r"^\[node-\d+\] up on node-\d+$", r.stdout, re.M)) == HOSTS
    sid = re.search(r"runbook: session (\S+) \(", r.stderr).group(1)
    events = [json.loads(x)["event"] for x in (sessions / sid / "journal.jsonl").read_text().splitlines()]
    notes = [e["text"] for e in events if e["type"] == "note"]
    assert any("open-file limit too low" in n for n in notes), notes
    assert sum(1 for e in events if e["type"] == "host_finished" and e["outcome"] == "succeeded") == HOSTS


async def _run_everywhere(fleet: SSHFleet, tmp_path: Path, connect_limit: int) -> dict[str, str]:
    book = tmp_path / "scale.md"
    book.write_text(BOOK)
    inventory = Inventory.load(str(fleet.write_inventory(tmp_path / "inventory.yaml")))
    session = Session.create(parse_file(str(book)), root=tmp_path / "sessions")
    engine = Engine(session, inventory, known_hosts=str(fleet.known_hosts), parallel_limit=len(fleet.names),
                    connect_limit=connect_limit)
    try:
        summary = await engine.run_step_summary("SCALE-001", 1)
    finally:
        await engine.close()
        session.close()
    return {h: r.outcome for h, r in summary.hosts.items()}


async def test_connect_limit_keeps_every_host_under_sshd_max_startups(tmp_path):
    # one sshd for 16 hosts that drops every unauthenticated connection beyond 4 (with 16
    # handshakes at once it drops most); the pool's connect limit keeps them under it
    require("sshd")
    fleet = SSHFleet.start(tmp_path / "fleet", MAX_LISTEN, base=61, max_startups="4:100:4")
    try:
        outcomes = await _run_everywhere(fleet, tmp_path, connect_limit=2)
    finally:
        fleet.stop()
    assert outcomes == {name: "succeeded" for name in fleet.names}


async def test_connections_dropped_before_the_key_exchange_are_tried_again(tmp_path):
    # all 8 handshakes at once against an sshd keeping 4 unauthenticated: the ones it drops
    # (closed before its host key) are tried again after a pause, and every host gets in
    require("sshd")
    fleet = SSHFleet.start(tmp_path / "fleet", 8, base=62, max_startups="4:100:4")
    pool = SSHPool(known_hosts=str(fleet.known_hosts), connect_limit=8)
    try:
        conns = await asyncio.gather(*(pool.get(t) for t in fleet.hosts.values()), return_exceptions=True)
        assert [c for c in conns if isinstance(c, BaseException)] == []
        assert pool.connects > len(fleet.names)  # some were dropped, and retried
    finally:
        await pool.close()
        fleet.stop()


async def test_a_server_that_always_drops_is_named_as_such(tmp_path, monkeypatch):
    # a listener that closes every connection before the SSH banner, as sshd does past MaxStartups
    monkeypatch.setattr(ssh_pool, "DROP_PAUSE", 0.01)
    accepted = 0

    def drop(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    server = await asyncio.start_server(drop, "127.0.63.1", 0)
    port = server.sockets[0].getsockname()[1]
    known = tmp_path / "known_hosts"
    known.write_text("")
    pool = SSHPool(known_hosts=str(known))
    try:
        with pytest.raises(ConnectError) as err:
            await pool.get(Target(name="dropper", host="127.0.63.1", port=port, user="nobody"))
    finally:
        await pool.close()
        server.close()
        await server.wait_closed()
    assert accepted == 1 + ssh_pool.DROP_RETRIES
    assert "closed by the server before the key exchange, 5 times" in str(err.value)
    assert "MaxStartups" in str(err.value) and "--connect-limit" in str(err.value)
