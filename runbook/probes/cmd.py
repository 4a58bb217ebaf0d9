"""``cmd`` probes: a shell command on a target passes when it exits 0 on every host.

``<!-- probe: cmd(target="masters", run="systemctl is-active kubelet") -->``

The command runs through the :class:`~runbook.transport.executor.Executor` the caller
put in the :class:`~runbook.probes.runner.ProbeContext` (local or SSH), on the
hosts ``ctx.resolve_targets(pattern)`` returns.  Without an executor, or
without a way to resolve a pattern, the probe is *not configured*.  The
evidence carries each host's verdict and the last line of its output.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from runbook.probes.registry import ERROR, FAIL, NOT_CONFIGURED, PASS, Param, Verdict, register
from runbook.transport.executor import RunOptions, RunResult

if TYPE_CHECKING:  # pragma: no cover
    from runbook.probes.runner import ProbeContext
    from runbook.targets.inventory import Target

OUTPUT_TAIL_BYTES = 4096
MAX_PARALLEL_HOSTS = 10
GRACE_SECONDS = 2.0  # on top of the probe timeout, for executors that miss their own
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


def host_name(target: Target) -> str:
    """The display name of an inventory target (``name``, else ``host``, else ``str``)."""
    for attr in ("name", "host", "hostname"):
        value = getattr(target, attr, None)
        if isinstance(value, str) and value:
            return value
    return str(target)


def last_line(data: bytes, width: int = 100) -> str:
    text = _CONTROL.sub("", data.decode("utf-8", "replace"))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return ""
    line = lines[-1]
    return line if len(line) <= width else line[: width - 3] + "..."


def _host_verdict(name: str, result: RunResult, output: bytes) -> tuple[str, str]:
    tail = last_line(output)
    suffix = f": {tail}" if tail else ""
    if result.outcome == "succeeded" and result.exit_status == 0:
        return PASS, f"{name}: exit 0{suffix}"
    if result.outcome in ("succeeded", "failed"):
        if result.exit_signal:
            return FAIL, f"{name}: killed by signal {result.exit_signal}{suffix}"
        return FAIL, f"{name}: exit {result.exit_status}{suffix}"
    why = result.error or result.outcome
    return ERROR, f"{name}: {result.outcome}{' (' + why + ')' if why != result.outcome else ''}{suffix}"


@register(
    "cmd",
    "cmd",
    "a shell command on a target; passes when it exits 0 on every host",
    Param("target", "str", default="local", help="inventory host pattern, e.g. masters or masters[0]"),
    Param("run", "str", required=True, help="the shell command"),
)
async def cmd_probe(ctx: ProbeContext, *, run: str, target: str = "local", timeout: float) -> Verdict:
    """Run ``run`` on every host of ``target``; pass when all exit 0."""
    executor = ctx.executor
    if executor is None:
        return Verdict(NOT_CONFIGURED, "cmd probes not configured: no executor (pass --inventory)")
    if ctx.resolve_targets is None:
        return Verdict(NOT_CONFIGURED, f"cmd probes not configured: no inventory to resolve target {target!r}")
    try:
        targets = list(ctx.resolve_targets(target))
    except Exception as exc:  # noqa: BLE001 - an unknown group or bad pattern: the operator's to fix, never a crash
        return Verdict(ERROR, f"target {target!r}: {exc}")
    if not targets:
        return Verdict(ERROR, f"target {target!r} matches no hosts")
    outputs: dict[str, bytearray] = {host_name(t): bytearray() for t in targets}

    def on_output(host: str, stream: str, data: bytes) -> None:
        buf = outputs.setdefault(host, bytearray())
        buf += data
        if len(buf) > OUTPUT_TAIL_BYTES:
            del buf[: len(buf) - OUTPUT_TAIL_BYTES]

    limit = asyncio.Semaphore(MAX_PARALLEL_HOSTS)

    async def one(t: Target) -> RunResult:
        name = host_name(t)
        async with limit:
            try:
                return await asyncio.wait_for(
                    executor.run(t, run, on_output, RunOptions(timeout=timeout)), timeout + GRACE_SECONDS
                )
            except TimeoutError:
                return RunResult(host=name, outcome="timeout", error=f"timeout after {timeout:g}s")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - connection refused, auth failure, ...: shown, never raised
                return RunResult(host=name, outcome="error", error=f"{type(exc).__name__}: {exc}".strip())

    results = await asyncio.gather(*(one(t) for t in targets))
    verdicts = []
    for t, result in zip(targets, results, strict=True):
        name = host_name(t)
        output = bytes(outputs.get(result.host or name) or outputs.get(name) or b"")
        verdicts.append(_host_verdict(name, result, output))
    statuses = [s for s, _ in verdicts]
    lines = "; ".join(text for _, text in verdicts)
    passed = statuses.count(PASS)
    summary = f"{passed}/{len(verdicts)} hosts of {target} exit 0"
    if FAIL in statuses:
        return Verdict(FAIL, f"{summary}: {lines}")
    if ERROR in statuses:
        return Verdict(ERROR, f"{summary}: {lines}")
    return Verdict(PASS, f"{summary}: {lines}")
