"""Acceptance probes from the TUI (``runbook.probes``): run them, journal each result.

A passing result does not tick anything by itself: the operator accepts it with one
key (``p`` on the checkbox), which ticks the box with the probe as evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runbook.model import Checkbox
    from runbook.targets.inventory import Target
    from runbook.transport.executor import OnOutput, RunOptions, RunResult
    from sessions.engine.engine import Engine
    from sessions.engine.engine_session import EngineSession


class _EngineExecutor:
    """``cmd`` probes run through the engine's executors (local or SSH per target)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def run(self, target: Target, script: str, on_output: OnOutput, options: RunOptions) -> RunResult:
        return await self.engine.executor_for(target).run(target, script, on_output, options)


def _redactor(session: EngineSession) -> Callable[[str], str]:
    def redact(text: str) -> str:
        for value in session.secrets():
            if value:
                text = text.replace(value, "<redacted>")
        return text

    return redact


async def run_probes(session: EngineSession, engine: Engine, checkboxes: Iterable[Checkbox]) -> int:
    """Run the probes of ``checkboxes`` that have one; journal a ``ProbeResult`` each.
    Returns how many ran."""
    from runbook.probes import ProbeContext, probe_event_fields
    from runbook.probes import run_probes as run_all
    from sessions.journal.events import ProbeResult

    boxes = [b for b in checkboxes if b.probe]
    if not boxes:
        return 0
    inventory = engine.inventory
    ctx = ProbeContext(
        executor=_EngineExecutor(engine),
        resolve_targets=inventory.resolve if inventory is not None else None,
        redact=_redactor(session),
    )
    async with ctx:
        outcomes = await run_all(boxes, ctx)
    for outcome in outcomes:
        session.record(ProbeResult(**probe_event_fields(outcome)))
    return len(outcomes)
