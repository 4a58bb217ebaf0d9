"""Shell semantics over the real sshd fleet: ``set -e -o pipefail`` and the failing line,
with plain channels, a PTY and detached runs alike."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runbook.model import Block, Phase, Risk, Runbook, Step, TargetSpec, Task
from runbook.targets.inventory import Inventory
from runbook.transport.ssh import SSHExecutor
from sessions.engine.engine import Engine
from sessions.engine.session import Session
from sessions.journal import events as ev
from sessions.journal.journal import read_records

pytestmark = pytest.mark.sshd

MODES = {"channel": {}, "pty": {"pty": True}, "detached": {"detached": True}}

# block, errexit, outcome, output, failing line
CASES = {
    "middle": ("echo first; false; echo after", True, "failed", "first\n", 1),
    "pipe": ("echo first\nfalse | cat\necho after", True, "failed", "first\n", 2),
    "or-true": ("false || true\nif false; then echo no; fi\necho after", True, "succeeded", "after\n", None),
    "errexit-off": ("echo first; false; echo after", False, "succeeded", "first\nafter\n", None),
}


def book(code: str, on: bool, spec: TargetSpec) -> Runbook:
    block = Block("command", "bash", textwrap.dedent(code).strip() + "\n", 20, end_line=30,
                  annotations={} if on else {"errexit": "off"})
    task = Task("T-1", "t", 5, phase="0", risk=Risk.LOW, steps=(Step(1, "s", 19, blocks=(block,), target=spec),))
    return Runbook("B", "/nonexistent/fleet.md", "c" * 64, phases=(Phase("0", "P", 1, tasks=(task,)),))


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("name", sorted(CASES))
async def test_errexit_over_ssh(ssh_fleet, tmp_path: Path, mode: str, name: str) -> None:
    code, on, outcome, expected_out, line = CASES[name]
    rb = book(code, on, TargetSpec("node-1", source="annotation", timeout=60, **MODES[mode]))
    inventory = Inventory.from_text(ssh_fleet.inventory_yaml())
    session = Session.create(rb, root=tmp_path / "sessions")
    ssh = SSHExecutor(known_hosts=str(ssh_fleet.known_hosts), spool_dir=str(tmp_path / "spool"))
    engine = Engine(session, inventory, executors={"ssh": ssh})
    try:
        assert await engine.run_step("T-1", 1) == outcome
    finally:
        await engine.close()
        await ssh.close()
        session.close()
    events = [r.event for r in read_records(session.journal.path)]
    out = b"".join(e.raw for e in events if isinstance(e, ev.OutputChunk)).decode().replace("\r\n", "\n")
    assert out == expected_out  # the side channel never reaches the journal
    [fin] = [e for e in events if isinstance(e, ev.HostFinished)]
    if line is None:
        assert fin.failed_line is None and fin.error == ""
        return
    text = code.splitlines()[line - 1]
    assert (fin.exit_status, fin.failed_line, fin.failed_block_line, fin.failed_command) == (1, 20 + line, line, text)
    assert fin.error == f"failed at line {line} of the block (/nonexistent/fleet.md:{20 + line}): `{text}`, exit 1"
