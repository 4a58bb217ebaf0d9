"""Guards: what must be confirmed, typed, overridden or supplied before a step runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runbook.model import Block, Checkbox, Gate, Phase, Placeholder, Risk, Rollback, Runbook, Step, Task
from sessions.journal import events as ev
from sessions.planning.guards import (
    answer_ok,
    blockers,
    destructive_patterns,
    finish_problems,
    gate_problems,
    guards_for,
    resolve,
    resolve_task,
)
from sessions.state.state import apply, replay

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def step(n: int, code: str = "echo hi", placeholders=()) -> Step:
    return Step(n, f"step {n}", 10 + n, blocks=(Block("command", "bash", code, 11 + n),),
                placeholders=tuple(placeholders))


def book() -> Runbook:
    gate = Gate("Phase 0 Smoke Test", 40, steps=(step(1, "echo smoke"),))
    p0 = Phase("0", "Pre", 1, risk=Risk.LOW, gates=(gate,), tasks=(
        Task("T-1", "first", 2, phase="0", risk=Risk.LOW, steps=(step(1),)),
        Task("T-2", "second", 20, phase="0", risk=Risk.HIGH, dependencies=("T-1", "DEV-EXTERNAL"),
             steps=(step(1), step(2, "rm -rf /var/lib/etcd"),
                    step(3, "kubeadm join --token <TOKEN> --node <NODE>",
                         [Placeholder("TOKEN", True, 33), Placeholder("NODE", False, 33)])),
             rollback=Rollback("undo", 30, steps=(step(1, "kubeadm reset -f"),))),
    ))
    p1 = Phase("1", "Core", 50, risk=Risk.CRITICAL, tasks=(
        Task("T-3", "third", 51, phase="1", risk=Risk.CRITICAL, steps=(step(1),)),
    ))
    return Runbook("Demo", "demo.md", "0" * 64, phases=(p0, p1))


EXTERNAL_OK = ev.GuardPassed("external", "T-2", None, "dependency=DEV-EXTERNAL; confirmed")


class Recorder:
    """Journals intents as events and folds them, like Session does."""

    def __init__(self, events=()):
        self.state = replay(events)
        self.events: list[ev.Event] = []

    def _rec(self, e):
        self.events.append(e)
        self.state = apply(self.state, e, "2026-11-27T02:00:00.000000Z")

    def pass_guard(self, guard, task, step=None, detail=""):
        self._rec(ev.GuardPassed(guard, task, step, detail))

    def override_guard(self, guard, task, reason, step=None):
        self._rec(ev.GuardOverridden(guard, task, reason, step))

    def supply(self, name, value, secret):
        self._rec(ev.PlaceholderSupplied(name, secret, None if secret else value))


def kinds(guards):
    return [g.kind for g in guards]


def test_low_risk_task_with_done_dependencies_has_no_guards():
    assert guards_for(replay([]), book(), "T-1", 1, ["local"], NOW) == []


def test_high_risk_asks_once_per_task():
    rb = book()
    s = Recorder([ev.TaskCompleted("T-1"), EXTERNAL_OK])
    gs = guards_for(s.state, rb, "T-2", None, [], NOW)
    assert kinds(gs) == ["risk"]
    risk = next(g for g in gs if g.kind == "risk")
    assert risk.needs == "confirm" and "HIGH" in risk.message
    assert answer_ok(risk, "y") and answer_ok(risk, "YES") and not answer_ok(risk, "")
    resolve(s, risk, "yes")
    assert "risk" not in kinds(guards_for(s.state, rb, "T-2", 1, ["local"], NOW))
    assert s.events[-1] == ev.GuardPassed("risk", "T-2", None, "confirmed")


def test_dependencies_only_in_document_and_override_needs_reason():
    rb = book()
    s = Recorder()
    gs = guards_for(s.state, rb, "T-2", None, [], NOW)
    dep = next(g for g in gs if g.kind == "dependencies")
    assert "T-1" in dep.message and "DEV-EXTERNAL" not in dep.message and dep.needs == "reason"
    with pytest.raises(ValueError):
        resolve(s, dep, "  ")
    resolve(s, dep, "T-1 was done by hand")
    assert s.events[-1] == ev.GuardOverridden("dependencies", "T-2", "T-1 was done by hand")
    assert "dependencies" not in kinds(guards_for(s.state, rb, "T-2", None, [], NOW))
    # a skipped dependency counts as finished
    assert "dependencies" not in kinds(guards_for(replay([ev.TaskSkipped("T-1", "n/a")]), rb, "T-2", None, [], NOW))


def test_destructive_needs_the_host_name_or_the_count_and_rearms_for_other_hosts():
    rb = book()
    s = Recorder([ev.TaskCompleted("T-1"), ev.GuardPassed("risk", "T-2"), EXTERNAL_OK])
    [g] = guards_for(s.state, rb, "T-2", 2, ["web-1"], NOW)
    assert g.kind == "destructive" and g.needs == "type_host" and g.expected == "web-1"
    assert not answer_ok(g, "web-2") and not answer_ok(g, "y")
    with pytest.raises(ValueError):
        resolve(s, g, "yes")
    resolve(s, g, "web-1")
    assert guards_for(s.state, rb, "T-2", 2, ["web-1"], NOW) == []
    [g2] = guards_for(s.state, rb, "T-2", 2, ["web-1", "web-2", "web-3"], NOW)
    assert g2.expected == "3" and "3 hosts" in g2.message
    # --yes passes it, recorded as such
    resolve(s, g2, "", yes=True)
    assert s.events[-1].detail.endswith("--yes")
    assert guards_for(s.state, rb, "T-2", 2, ["web-1", "web-2", "web-3"], NOW) == []


def test_placeholders_missing_values_are_guards():
    rb = book()
    s = Recorder([ev.TaskCompleted("T-1"), ev.GuardPassed("risk", "T-2"), EXTERNAL_OK])
    gs = guards_for(s.state, rb, "T-2", 3, ["m1"], NOW, values={})
    assert [(g.kind, g.expected, g.secret, g.needs) for g in gs] == [
        ("placeholder", "TOKEN", True, "value"), ("placeholder", "NODE", False, "value")]
    assert guards_for(s.state, rb, "T-2", 3, ["m1"], NOW, values={"TOKEN": "t", "NODE": "n"}) == []
    # without in-memory values: a journaled non-secret counts, a secret never does (value not on disk)
    resolve(s, gs[1], "m1")
    resolve(s, gs[0], "s3cr3t")
    assert [g.expected for g in guards_for(s.state, rb, "T-2", 3, ["m1"], NOW)] == ["TOKEN"]


def test_failed_gate_blocks_later_phases_until_overridden():
    rb = book()
    events = [ev.StepStarted("r1", "gate:0", 1, ("local",), "echo smoke"),
              ev.HostFinished("r1", "local", "failed", 1), ev.StepFinished("r1", "failed")]
    s = Recorder(events)
    gs = guards_for(s.state, rb, "T-3", 1, ["local"], NOW)
    assert sorted(kinds(gs)) == ["gate", "risk"]
    gate = next(g for g in gs if g.kind == "gate")
    assert "Phase 0 gate step 1 failed" in gate.message and gate.needs == "reason"
    assert blockers(s.state, rb, "T-3") == ["Phase 0 gate not passed"]
    # --yes answers confirmations only: it never overrides
    with pytest.raises(ValueError):
        resolve(s, gate, "", yes=True)
    resolve(s, gate, "smoke test checked by hand")
    assert s.events[-1] == ev.GuardOverridden("gate", "T-3", "smoke test checked by hand")
    assert "gate" not in kinds(guards_for(s.state, rb, "T-3", 1, ["local"], NOW))
    assert blockers(s.state, rb, "T-3") == []
    # a successful re-run of the gate clears it
    ok = replay(events + [ev.StepStarted("r2", "gate:0", 1, ("local",), "echo smoke"),
                          ev.HostFinished("r2", "local", "succeeded", 0), ev.StepFinished("r2", "succeeded")])
    assert "gate" not in kinds(guards_for(ok, rb, "T-3", 1, ["local"], NOW))
    # the gate itself is a task: gate:0
    assert resolve_task(rb, "gate:0").steps[0].blocks[0].code == "echo smoke"


def test_a_gate_that_never_ran_blocks_the_next_phase():
    rb = book()
    assert gate_problems(replay([]), rb, 1) == ["Phase 0 gate step 1 never ran"]
    gs = guards_for(replay([ev.GuardPassed("risk", "T-3")]), rb, "T-3", 1, ["local"], NOW)
    assert kinds(gs) == ["gate"] and "never ran" in gs[0].message
    assert blockers(replay([]), rb, "T-3") == ["Phase 0 gate not passed"]
    # running, unknown, skipped or failed only on one host: not passed either
    started = [ev.StepStarted("r1", "gate:0", 1, ("a", "b"), "echo smoke")]
    assert gate_problems(replay(started), rb, 1) == ["Phase 0 gate step 1 running"]
    one_failed = started + [ev.HostFinished("r1", "a", "succeeded", 0), ev.HostFinished("r1", "b", "failed", 1),
                            ev.StepFinished("r1", "failed")]
    assert gate_problems(replay(one_failed), rb, 1) == ["Phase 0 gate step 1 failed"]
    # re-run on the failed host only: every host's last outcome is now success
    fixed = one_failed + [ev.StepStarted("r2", "gate:0", 1, ("b",), "echo smoke"),
                          ev.HostFinished("r2", "b", "succeeded", 0), ev.StepFinished("r2", "succeeded")]
    assert gate_problems(replay(fixed), rb, 1) == []
    assert gate_problems(replay([ev.StepSkipped("gate:0", 1, "no time")]), rb, 1) == ["Phase 0 gate step 1 skipped"]
    # tasks of the gate's own phase are not blocked by it
    assert gate_problems(replay([]), rb, 0) == []


def test_gate_checkboxes_must_be_ticked():
    rb = book()
    gate = Gate("Phase 0 Smoke Test", 40, steps=(step(1, "echo smoke"),),
                checkboxes=(Checkbox("gate:0/0", "all green", False, 45),))
    p0 = rb.phases[0]
    rb = Runbook("Demo", "demo.md", "0" * 64, phases=(Phase("0", "Pre", 1, gates=(gate,), tasks=p0.tasks),) + rb.phases[1:])
    ran = [ev.StepStarted("r1", "gate:0", 1, ("local",), "echo smoke"), ev.HostFinished("r1", "local", "succeeded", 0),
           ev.StepFinished("r1", "succeeded")]
    assert gate_problems(replay(ran), rb, 1) == ["Phase 0 gate: 1 checkbox(es) not ticked"]
    assert gate_problems(replay(ran + [ev.CheckboxSet("gate:0/0")]), rb, 1) == []


def test_external_dependency_is_confirmed_once_per_session():
    rb = book()
    s = Recorder([ev.TaskCompleted("T-1"), ev.GuardPassed("risk", "T-2")])
    [g] = guards_for(s.state, rb, "T-2", None, [], NOW)
    assert g.kind == "external" and g.needs == "confirm" and "DEV-EXTERNAL" in g.message
    resolve(s, g, "yes")
    assert s.events[-1] == ev.GuardPassed("external", "T-2", None, "dependency=DEV-EXTERNAL; confirmed")
    assert guards_for(s.state, rb, "T-2", None, [], NOW) == []


def test_rerun_of_a_step_that_succeeded_asks_each_time():
    rb = book()
    ran = [ev.StepStarted("r1", "T-1", 1, ("a", "b"), "echo hi"), ev.HostFinished("r1", "a", "succeeded", 0),
           ev.HostFinished("r1", "b", "failed", 1), ev.StepFinished("r1", "failed")]
    s = Recorder(ran)
    [g] = guards_for(s.state, rb, "T-1", 1, ["a", "b"], NOW)
    assert g.kind == "rerun" and g.needs == "confirm" and "already succeeded on a" in g.message
    assert "1 run(s)" in g.message
    # only the failed host: nothing to ask
    assert guards_for(s.state, rb, "T-1", 1, ["b"], NOW) == []
    resolve(s, g, "y")
    assert s.events[-1] == ev.GuardPassed("rerun", "T-1", 1, "after=r1; confirmed")
    assert guards_for(s.state, rb, "T-1", 1, ["a", "b"], NOW) == []
    # after another run, asked again
    for e in [ev.StepStarted("r2", "T-1", 1, ("a", "b"), "echo hi"), ev.HostFinished("r2", "a", "succeeded", 0),
              ev.HostFinished("r2", "b", "succeeded", 0), ev.StepFinished("r2", "succeeded")]:
        s._rec(e)
    assert kinds(guards_for(s.state, rb, "T-1", 1, ["a"], NOW)) == ["rerun"]


def test_block_that_cannot_run_as_written_needs_an_override(tmp_path):
    from runbook.parse.parser import parse_file

    path = tmp_path / "elided.md"
    path.write_text(ELIDED)
    rb = parse_file(str(path))
    s = Recorder()
    gs = guards_for(s.state, rb, "EL-001", 1, ["local"], NOW)
    assert kinds(gs) == ["lint"] and gs[0].needs == "reason"
    assert "elides arguments" in gs[0].message and "line 17" in gs[0].message
    assert guards_for(s.state, rb, "EL-001", 2, ["local"], NOW) == []
    [ex] = guards_for(s.state, rb, "EL-001", 3, ["local"], NOW)
    assert ex.kind == "lint" and "example values" in ex.message
    resolve(s, gs[0], "the operator types the join command by hand")
    assert s.events[-1] == ev.GuardOverridden("lint", "EL-001", "the operator types the join command by hand", 1)
    assert guards_for(s.state, rb, "EL-001", 1, ["local"], NOW) == []


ELIDED = """# Elided

## Phase 0: Only (1 hour)

### Task EL-001: Join

- **Duration**: 5 minutes
- **Dependencies**: None
- **Risk Level**: LOW

#### Steps

1. **Join**

```bash
echo start
sudo kubeadm join ... | tee /tmp/join.log
```

2. **Fine**

```bash
echo fine
```

3. **Token**

```bash
kubeadm token create abcdef.0123456789abcdef
```
"""


def test_finish_problems_name_what_is_not_done():
    rb = book()
    s = replay([ev.StepSkipped("T-1", 1, "not needed")])
    assert finish_problems(s, rb, "T-1") == ["step(s) 1 skipped"]
    assert finish_problems(replay([]), rb, "T-1") == ["step(s) 1 not succeeded"]


def test_window_end_needs_override_for_tasks_not_started_before_it():
    rb = book()
    end = NOW - timedelta(minutes=5)
    [g] = guards_for(replay([]), rb, "T-1", 1, ["local"], NOW, end)
    assert g.kind == "window" and g.needs == "reason"
    # window end from the session (RFC 3339)
    opened = ev.SessionOpened("s", "demo.md", "0" * 64, window_end="2026-11-27T02:55:00Z")
    assert kinds(guards_for(replay([opened]), rb, "T-1", 1, ["local"], NOW)) == ["window"]
    # started before the end: continuing needs nothing
    started = replay([(  "2026-11-27T02:00:00.000000Z", opened), ("2026-11-27T02:10:00.000000Z", ev.TaskStarted("T-1"))])
    assert guards_for(started, rb, "T-1", 1, ["local"], NOW) == []
    assert guards_for(replay([]), rb, "T-1", 1, ["local"], NOW - timedelta(hours=1), end) == []


def test_rollback_is_only_guarded_by_destructive_and_placeholders():
    rb = book()
    [g] = guards_for(replay([]), rb, "T-2", 1, ["m1"], NOW, NOW - timedelta(hours=1), rollback=True)
    assert g.kind == "destructive" and g.detail.startswith("rollback ")


def test_unknown_task_and_step_are_key_errors():
    with pytest.raises(KeyError, match="NOPE"):
        guards_for(replay([]), book(), "NOPE", None, [], NOW)
    with pytest.raises(KeyError, match="no step 9"):
        guards_for(replay([]), book(), "T-1", 9, [], NOW)


def test_destructive_patterns_find_the_usual_suspects():
    assert destructive_patterns("rm -rf /var/lib/etcd")
    assert destructive_patterns("kubectl delete ns demo")
    assert destructive_patterns("sudo kubeadm reset -f")
    assert not destructive_patterns("echo hello; ls -la")
