"""The one path a step takes (sessions.engine.flow), for exec and the TUI alike: a scripted
asker stands for the front end; the session, engine, journal and executor are real."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook.parse.parser import parse_file
from sessions.engine.engine import Engine
from sessions.engine.flow import Declined, StepFlow, StepRequest, questions
from sessions.engine.session import Session
from sessions.journal import events as ev
from sessions.journal.journal import read_records
from sessions.planning.guards import Guard, resolve

BOOK = """# Flow

## Phase 1: Work (1 hour)

### Task F-001: Careful work

- **Risk Level**: HIGH

#### Steps

1. **Greet** on the machine nobody chose

```bash
echo "hello <NAME>"
```

2. **Again**

<!-- runbook: target=local -->
```bash
echo again
```
"""


class ScriptedAsker:
    """A front end that answers from a script and remembers what it was asked, in order."""

    def __init__(self, session: Session, *, target: str | None = "local", values: dict[str, str] | None = None,
                 decline: str | None = None) -> None:
        self.session = session
        self.target = target
        self.values = values or {}
        self.decline = decline  # a guard kind answered no
        self.asked: list[str] = []

    async def choose_target(self, task: str, step: int, rollback: bool) -> bool:
        self.asked.append(f"target {task} {step}")
        if self.target is None:
            return False
        self.session.choose_target(task, self.target, step=step)
        return True

    async def resolve(self, guard: Guard) -> None:
        self.asked.append(f"{guard.kind}:{guard.expected or guard.needs}")
        if guard.kind == self.decline:
            raise Declined(f"{guard.kind}: no")
        resolve(self.session, guard, self.values.get(guard.expected, "yes") if guard.needs == "value" else "yes")

    async def approve(self, guard: Guard, *, target: str | None, only_host: str | None) -> None:
        self.asked.append("approval")
        raise Declined("no approver in this test")


@pytest.fixture
def session(tmp_path: Path):
    path = tmp_path / "flow.md"
    path.write_text(BOOK)
    runbook = parse_file(str(path))
    s = Session.create(runbook, root=tmp_path / "sessions")
    yield s
    s.close()


def started(session: Session) -> list[ev.StepStarted]:
    session.sync()
    return [r.event for r in read_records(session.journal.path) if isinstance(r.event, ev.StepStarted)]


async def test_target_then_guards_then_the_run_with_the_value_in_the_command(session):
    engine = Engine(session, None)
    asker = ScriptedAsker(session, values={"NAME": "operator"})
    try:
        summary = await StepFlow(engine, asker).run(StepRequest("F-001", 1))
    finally:
        await engine.close()
    assert summary.outcome == "succeeded"
    assert asker.asked[0] == "target F-001 1", "where it runs is asked before anything else"
    assert any(a.startswith("risk:") for a in asker.asked), asker.asked
    assert any(a == "placeholder:NAME" for a in asker.asked), asker.asked
    [run] = started(session)
    assert run.targets == ("local",) and "hello operator" in run.command
    assert session.state.task_status("F-001") == "in_progress", "the flow starts the task before the run"


async def test_a_declined_guard_runs_nothing_and_starts_no_task(session):
    engine = Engine(session, None)
    asker = ScriptedAsker(session, decline="risk")
    try:
        with pytest.raises(Declined):
            await StepFlow(engine, asker).run(StepRequest("F-001", 2))
    finally:
        await engine.close()
    assert started(session) == []
    assert session.state.task_status("F-001") == "pending"


async def test_nobody_choosing_a_target_is_declined_before_any_guard(session):
    engine = Engine(session, None)
    asker = ScriptedAsker(session, target=None)
    try:
        with pytest.raises(Declined, match="no target chosen"):
            await StepFlow(engine, asker).prepare(StepRequest("F-001", 1))
    finally:
        await engine.close()
    assert asker.asked == ["target F-001 1"]


async def test_a_target_given_for_the_run_is_not_asked_and_the_plan_uses_it(session):
    engine = Engine(session, None)
    asker = ScriptedAsker(session, values={"NAME": "x"})
    try:
        plan = await StepFlow(engine, asker).prepare(StepRequest("F-001", 1, target="local"))
    finally:
        await engine.close()
    assert not any(a.startswith("target") for a in asker.asked)
    assert plan.hosts == ("local",) and questions(plan) == []


def test_questions_add_one_value_guard_per_missing_placeholder(session):
    plan = Engine(session, None).plan("F-001", 1, target="local")
    names = [g.expected for g in questions(plan) if g.needs == "value"]
    assert names == ["NAME"]


async def test_the_run_judges_the_window_by_the_clock_the_guards_were_answered_by(tmp_path):
    """The TUI's clock is injected; the engine re-planned at run time by the machine's clock, so
    a window open for the operator was closed for the run (a test failed once real time passed)."""
    from datetime import UTC, datetime

    path = tmp_path / "flow.md"
    path.write_text(BOOK)
    s = Session.create(parse_file(str(path)), root=tmp_path / "sessions", window_end="2026-11-27T06:00:00Z")
    engine = Engine(s, None)
    try:
        summary = await StepFlow(engine, ScriptedAsker(s)).run(StepRequest("F-001", 2),
                                                               now=datetime(2026, 11, 27, 2, 30, tzinfo=UTC))
    finally:
        await engine.close()
        s.close()
    assert summary.outcome == "succeeded"
