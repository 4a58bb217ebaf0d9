"""``cmd`` probes run a real shell command through an Executor and pass on exit 0."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from runbook.probes import ERROR, FAIL, NOT_CONFIGURED, PASS, ProbeContext, run_probe
from runbook.targets.inventory import Inventory
from runbook.transport.executor import Executor, RunOptions, RunResult

INVENTORY = """
all:
  children:
    masters:
      hosts:
        m1: {}
        m2: {}
        m3: {}
"""


class SubprocessExecutor(Executor):
    """Runs every target's script locally with ``bash -s`` ($HOST = the target's name)."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[str, str]] = []

    async def run(self, target, script, on_output, options: RunOptions) -> RunResult:
        self.scripts.append((target.name, script))
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            "bash", "-s",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "HOST": target.name},
            start_new_session=True,  # so a timeout kills the whole group, grandchildren too
        )

        async def pump(stream, name):
            while chunk := await stream.read(4096):
                on_output(target.name, name, chunk)

        proc.stdin.write(script.encode())
        proc.stdin.close()
        try:
            await asyncio.wait_for(
                asyncio.gather(pump(proc.stdout, "stdout"), pump(proc.stderr, "stderr"), proc.wait()), options.timeout
            )
        except TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            return RunResult(host=target.name, outcome="timeout", error=f"timed out after {options.timeout:g} s")
        rc = proc.returncode
        return RunResult(
            host=target.name,
            outcome="succeeded" if rc == 0 else "failed",
            exit_status=rc,
            duration_s=time.monotonic() - started,
        )


class BrokenExecutor(Executor):
    async def run(self, target, script, on_output, options):
        raise ConnectionRefusedError(111, "Connection refused")


@pytest.fixture
def ctx():
    inventory = Inventory.from_text(INVENTORY)
    return ProbeContext(executor=SubprocessExecutor(), resolve_targets=inventory.resolve, timeout=10, env={})


async def test_passes_when_every_host_exits_0(ctx):
    out = await run_probe('cmd(target="masters", run="echo active on $HOST")', ctx, key="T/acceptance/0")
    assert out.status == PASS
    assert out.evidence == "3/3 hosts of masters exit 0: m1: exit 0: active on m1; m2: exit 0: active on m2; m3: exit 0: active on m3"
    assert sorted(ctx.executor.scripts) == [("m1", "echo active on $HOST"), ("m2", "echo active on $HOST"), ("m3", "echo active on $HOST")]


async def test_fails_when_one_host_exits_non_zero(ctx):
    run = 'if [ "$HOST" = m2 ]; then echo inactive; exit 3; fi; echo active'
    out = await run_probe(f"cmd(target='masters', run='{run}')", ctx)
    assert out.status == FAIL
    assert out.evidence.startswith("2/3 hosts of masters exit 0: ")
    assert "m2: exit 3: inactive" in out.evidence


async def test_subscripted_target_and_stderr_tail(ctx):
    out = await run_probe('cmd(target="masters[0]", run="echo starting; echo oops >&2; exit 1")', ctx)
    assert (out.status, out.evidence) == (FAIL, "0/1 hosts of masters[0] exit 0: m1: exit 1: oops")


async def test_a_hanging_command_is_an_error_after_its_timeout(ctx):
    out = await run_probe('cmd(target="masters[0]", run="sleep 30", timeout=0.5)', ctx)
    assert out.status == ERROR
    assert "m1: timeout (timed out after 0.5 s)" in out.evidence


async def test_executor_exceptions_become_errors():
    inventory = Inventory.from_text(INVENTORY)
    ctx = ProbeContext(executor=BrokenExecutor(), resolve_targets=inventory.resolve, env={})
    out = await run_probe('cmd(target="masters", run="true")', ctx)
    assert out.status == ERROR
    assert "m1: error (ConnectionRefusedError: [Errno 111] Connection refused)" in out.evidence


async def test_a_pattern_matching_nothing_is_an_error_naming_it(ctx):
    out = await run_probe('cmd(target="masters[9]", run="true")', ctx)
    assert out.status == ERROR
    assert out.evidence.startswith("target 'masters[9]': host pattern 'masters[9]': 'masters' has 3 host(s), no index 9")
    assert ctx.executor.scripts == []


async def test_without_executor_or_inventory_not_configured():
    out = await run_probe('cmd(run="true")', ProbeContext(env={}))
    assert (out.status, out.evidence) == (NOT_CONFIGURED, "cmd probes not configured: no executor (pass --inventory)")
    out = await run_probe('cmd(run="true")', ProbeContext(env={}, executor=SubprocessExecutor()))
    assert out.status == NOT_CONFIGURED and "no inventory to resolve target 'local'" in out.evidence


async def test_local_target_through_the_real_local_executor_when_present():
    local_executor = pytest.importorskip("runbook.transport.local", reason="runbook.transport.local not written yet")
    inventory = Inventory.load(None)
    ctx = ProbeContext(executor=local_executor.LocalExecutor(), resolve_targets=inventory.resolve, env={})
    try:
        ok = await run_probe('cmd(target="local", run="echo fine")', ctx)
        bad = await run_probe('cmd(target="local", run="exit 4")', ctx)
    finally:
        await ctx.executor.close()
    assert (ok.status, ok.evidence) == (PASS, "1/1 hosts of local exit 0: local: exit 0: fine")
    assert (bad.status, bad.evidence) == (FAIL, "0/1 hosts of local exit 0: local: exit 4")
