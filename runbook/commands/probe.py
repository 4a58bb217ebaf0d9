"""``runbook probe FILE [--task ID]``: run a runbook's acceptance probes without the TUI.

Exit 0 when every probe passed; 1 when any failed, erred or is not configured
(*not configured never passes*, and the output says which); 2 for bad input.
Nothing is journaled: this is a read-only check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from runbook.errors import UserError
from runbook.model import Checkbox, Runbook
from runbook.probes.registry import ERROR, FAIL, NOT_CONFIGURED, PASS, STATUSES
from runbook.probes.runner import ProbeContext, ProbeOutcome, run_probes
from runbook.transport.executor import Executor, OnOutput, RunOptions, RunResult

if TYPE_CHECKING:
    from runbook.targets.inventory import Target

LABELS = {PASS: "PASS", FAIL: "FAIL", ERROR: "ERROR", NOT_CONFIGURED: "NOT CONFIGURED"}


def probe(args: argparse.Namespace) -> int:
    """CLI handler for ``runbook probe``."""
    try:
        from runbook.parse.parser import parse_file
    except ImportError:  # pragma: no cover - the parser ships with runbook
        raise UserError("runbook probe: the runbook parser (runbook.parse.parser) is not available", 2) from None
    runbook = parse_file(args.file)
    return run_command(runbook, args)


def select_checkboxes(runbook: Runbook, task_id: str | None) -> list[Checkbox]:
    """Checkboxes carrying a probe: the whole document, or one task's (prerequisites,
    acceptance criteria and its other sub-sections)."""
    if task_id is None:
        boxes: list[Checkbox] = list(runbook.checkboxes())
    else:
        try:
            task = runbook.task(task_id)
        except KeyError:
            known = ", ".join(t.id for t in runbook.tasks[:20]) or "none"
            raise UserError(f"{runbook.path}: no task {task_id} (tasks: {known})", 2) from None
        boxes = list(task.prerequisites) + list(task.acceptance)
        for section in task.extra:
            boxes.extend(section.checkboxes)
        boxes.sort(key=lambda b: b.line)
    return [b for b in boxes if b.probe]


class RoutingExecutor(Executor):
    """Local targets to a :class:`LocalExecutor`, others to an :class:`SSHExecutor`,
    each built on first use (a host that cannot be reached is a per-host error)."""

    def __init__(self, factories: dict[str, Callable[[], Executor]] | None = None) -> None:
        super().__init__()
        self._factories = factories or {"local": _local_executor, "ssh": _ssh_executor}
        self._made: dict[str, Executor] = {}

    def _for(self, target: Target) -> Executor:
        kind = "local" if target.local else "ssh"
        if kind not in self._made:
            self._made[kind] = self._factories[kind]()
        return self._made[kind]

    async def run(self, target: Target, script: str, on_output: OnOutput, options: RunOptions) -> RunResult:
        name = target.name
        try:
            executor = self._for(target)
        except Exception as exc:  # noqa: BLE001 - no executor for the target is the probe's error result
            return RunResult(host=name, outcome="error", error=f"no executor: {exc}")
        return await executor.run(target, script, on_output, options)

    async def close(self) -> None:
        for executor in self._made.values():
            try:
                await executor.close()
            except Exception:  # noqa: BLE001 - pragma: no cover - closing is best effort
                pass


def _local_executor() -> Executor:
    from runbook.transport.local import LocalExecutor

    return LocalExecutor()


def _ssh_executor() -> Executor:
    from runbook.transport.ssh import SSHExecutor

    return SSHExecutor()


def _needs_cmd(boxes: Sequence[Checkbox]) -> bool:
    return any((b.probe or "").lstrip().startswith("cmd") for b in boxes)


def run_command(
    runbook: Runbook,
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    executor: Executor | None = None,
    resolve_targets: Callable[[str], Sequence[Any]] | None = None,
) -> int:
    """Run the selected probes of ``runbook`` and print the report; return the exit code.

    ``executor`` and ``resolve_targets`` serve ``cmd`` probes; by default the
    inventory (``--inventory`` or ``$RUNBOOK_INVENTORY``; ``local`` always resolves)
    and local/SSH executors.
    """
    out = out or sys.stdout
    fmt = getattr(args, "format", "text")
    task_id = getattr(args, "task", None)
    timeout = float(getattr(args, "timeout", None) or 10.0)
    if timeout <= 0:
        raise UserError(f"--timeout must be > 0 (got {timeout:g})", 2)
    boxes = select_checkboxes(runbook, task_id)
    scope = f" for task {task_id}" if task_id else ""
    if not boxes:
        if fmt == "json":
            _print_json(out, runbook, task_id, [], {})
        else:
            print(
                f"{runbook.path}: no probes{scope} (add <!-- probe: ... --> after a criterion; "
                f"`runbook lint --suggest-probes {runbook.path}` proposes some)",
                file=out,
            )
        return 0
    own_executor = None
    if _needs_cmd(boxes):
        if resolve_targets is None:
            from runbook.targets.inventory import Inventory

            resolve_targets = Inventory.load(getattr(args, "inventory", None)).resolve
        if executor is None:
            executor = own_executor = RoutingExecutor()

    async def go() -> list[ProbeOutcome]:
        async with ProbeContext(
            kubeconfig=getattr(args, "kubeconfig", None),
            context=getattr(args, "context", None),
            timeout=timeout,
            executor=executor,
            resolve_targets=resolve_targets,
        ) as ctx:
            try:
                return await run_probes(boxes, ctx)
            finally:
                if own_executor is not None:
                    await own_executor.close()

    outcomes = asyncio.run(go())
    by_key = {b.key: b for b in boxes}
    if fmt == "json":
        _print_json(out, runbook, task_id, outcomes, by_key)
    else:
        _print_text(out, runbook, outcomes, by_key)
    return 0 if all(o.status == PASS for o in outcomes) else 1


def summarize(outcomes: Sequence[ProbeOutcome]) -> dict[str, int]:
    counts = {s: 0 for s in STATUSES}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    counts["total"] = len(outcomes)
    return counts


def _print_text(out: TextIO, runbook: Runbook, outcomes: Sequence[ProbeOutcome], boxes: dict[str, Checkbox]) -> None:
    width = max(len(LABELS.get(o.status, o.status)) for o in outcomes)
    for o in outcomes:
        box = boxes[o.key]
        label = LABELS.get(o.status, o.status.upper())
        pad = " " * (width + 3)
        print(f"[{label}]{' ' * (width - len(label))} {runbook.path}:{box.line} {o.key}: {box.text}", file=out)
        print(f"{pad}probe: {o.probe} ({o.duration_s:.2f}s)", file=out)
        print(f"{pad}{o.evidence}", file=out)
    c = summarize(outcomes)
    verdict = "all passed" if c[PASS] == c["total"] else "FAILED"
    print(
        f"\n{c['total']} probes: {c[PASS]} passed, {c[FAIL]} failed, {c[ERROR]} errors, "
        f"{c[NOT_CONFIGURED]} not configured -- {verdict}",
        file=out,
    )
    unconfigured = [o for o in outcomes if o.status == NOT_CONFIGURED]
    if unconfigured:
        print("not configured counts as a failure (these never pass):", file=out)
        for o in unconfigured:
            print(f"  {o.key}: {o.evidence}", file=out)


def _print_json(
    out: TextIO, runbook: Runbook, task_id: str | None, outcomes: Sequence[ProbeOutcome], boxes: dict[str, Checkbox]
) -> None:
    results = []
    for o in outcomes:
        box = boxes[o.key]
        results.append(
            {
                "key": o.key,
                "line": box.line,
                "text": box.text,
                "probe": o.probe,
                "status": o.status,
                "evidence": o.evidence,
                "duration_s": round(o.duration_s, 3),
            }
        )
    counts = summarize(outcomes)
    doc = {
        "file": runbook.path,
        "task": task_id,
        "results": results,
        "summary": counts,
        "ok": counts[PASS] == counts["total"],
    }
    json.dump(doc, out, indent=2, ensure_ascii=False)
    out.write("\n")
