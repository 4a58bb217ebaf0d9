"""Property tests: replay is a pure fold, consistent over every prefix of an event stream."""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessions.journal import events as ev
from sessions.state import state as S

TASKS = ("T-1", "T-2", "T-3")
HOSTS = ("h1", "h2", "h3")
KEYS = ("T-1/prerequisites/0", "T-1/acceptance/0", "T-2/prerequisites/0")
OUTCOMES = ("succeeded", "failed", "timeout", "cancelled", "unknown")
who = st.sampled_from(("alice", "bob", ""))


def _run_event(draw, kind: str, rid: str, host: str) -> ev.Event | None:
    """An event about run ``rid`` on ``host``; None when ``kind`` is not about a run."""
    if kind == "output":
        if draw(st.booleans()):
            return ev.OutputChunk(rid, host, "stdout", draw(st.text(max_size=6)))
        else:
            return ev.OutputChunk.from_bytes(rid, host, "stderr", draw(st.binary(max_size=6)))
    elif kind == "host":
        return ev.HostFinished(rid, host, draw(st.sampled_from(OUTCOMES)), draw(st.none() | st.integers(0, 2)))
    elif kind == "finish":
        return ev.StepFinished(rid, draw(st.sampled_from(OUTCOMES + ("skipped",))), 1.0)
    elif kind == "unknown":
        return ev.StepOutcomeUnknown(rid, "lost", draw(st.none() | st.just(host)))
    elif kind == "decide":
        return ev.OutcomeDecided(rid, draw(st.sampled_from(("succeeded", "failed", "rerun"))), "why",
                                 draw(st.none() | st.just(host)), draw(who))
    elif kind == "detached":
        return ev.DetachedStarted(rid, host, "d1") if draw(st.booleans()) else ev.HostStarted(rid, host)
    elif kind == "expect":
        return ev.ExpectationChecked(rid, host, draw(st.integers(0, 1)), draw(st.booleans()))
    return None


def _other_event(draw, kind: str, host: str, i: int) -> ev.Event:
    """An event not about a run: tasks, checkboxes, values, guards, notes, the session."""
    if kind == "task":
        t = draw(st.sampled_from(TASKS))
        return draw(st.sampled_from((ev.TaskStarted(t, "a"), ev.TaskCompleted(t, "a"),
                                     ev.TaskSkipped(t, "why", "a"), ev.RollbackStarted(t))))
    elif kind == "skipstep":
        return ev.StepSkipped(draw(st.sampled_from(TASKS)), draw(st.integers(1, 3)), "why")
    elif kind == "box":
        k = draw(st.sampled_from(KEYS))
        return ev.CheckboxSet(k, who="a", evidence="e") if draw(st.booleans()) else \
            ev.CheckboxCleared(k, who="a", reason="r")
    elif kind == "placeholder":
        name = draw(st.sampled_from(("VERSION", "DB_PASS")))
        return ev.PlaceholderSupplied(name, name == "DB_PASS", None if name == "DB_PASS" else draw(st.text(
            max_size=3)), "x" if name == "DB_PASS" else "")
    elif kind == "guard":
        t = draw(st.sampled_from(TASKS))
        return ev.GuardPassed("risk", t) if draw(st.booleans()) else ev.GuardOverridden("window", t, "r")
    elif kind == "note":
        return ev.Note(draw(st.text(max_size=5)), draw(st.none() | st.sampled_from(TASKS)))
    elif kind == "probe":
        return ev.ProbeResult(draw(st.sampled_from(KEYS)), "p()", draw(st.sampled_from(("pass", "fail"))))
    elif kind == "open":
        return ev.SessionOpened("s", "/rb.md", draw(st.sampled_from(("a" * 64, "b" * 64))), "T", draw(who),
                                task_ids=TASKS, resumed=True, handover_from=draw(st.none() | st.just("bob")))
    elif kind == "close":
        return ev.SessionClosed("quit", draw(st.booleans()))
    elif kind == "changed":
        return ev.RunbookChanged("a" * 64, "b" * 64, ("T-4",), ("T-3",))
    elif kind == "recovered":
        return ev.Recovered("torn tail", 3)
    elif kind == "checkpoint":
        return ev.Checkpoint("c" * 64, i)
    else:
        return ev.HostKeyAccepted(host, "SHA256:x")


@st.composite
def streams(draw, max_size: int = 40) -> list[tuple[str, ev.Event]]:
    """A valid event stream: run ids unique per StepStarted, other run events mostly
    about started runs (sometimes about an unknown run id, which the fold must ignore)."""
    n = draw(st.integers(0, max_size))
    runs: list[tuple[str, tuple[str, ...]]] = []
    out: list[tuple[str, ev.Event]] = []
    for i in range(n):
        ts = f"2026-11-27T04:{i // 60:02d}:{i % 60:02d}.000000Z"
        kind = draw(st.sampled_from((
            "start", "start", "output", "output", "output", "host", "host", "finish", "unknown", "decide",
            "detached", "expect", "task", "skipstep", "box", "placeholder", "guard", "note", "probe", "open",
            "close", "changed", "recovered", "checkpoint", "other",
        )))
        if kind == "start" or (kind in ("output", "host", "finish", "unknown", "decide", "detached", "expect")
                               and not runs):
            rid = f"r{len(runs)}"
            targets = tuple(draw(st.lists(st.sampled_from(HOSTS), min_size=1, max_size=3, unique=True)))
            runs.append((rid, targets))
            e: ev.Event = ev.StepStarted(
                rid, draw(st.sampled_from(TASKS)), draw(st.integers(1, 3)), targets, "cmd",
                draw(st.sampled_from(("parallel", "serial"))), draw(st.booleans()), draw(st.booleans()),
                who=draw(who))
        else:
            if draw(st.integers(0, 15)) == 0:
                rid, targets = "nope", HOSTS
            else:
                rid, targets = draw(st.sampled_from(runs)) if runs else ("nope", HOSTS)
            host = draw(st.sampled_from(targets + ("h9",))) if draw(st.integers(0, 9)) == 0 else \
                draw(st.sampled_from(targets))
            e = _run_event(draw, kind, rid, host) or _other_event(draw, kind, host, i)
        out.append((ts, e))
    return out


def fold_apply(pairs, initial=None):
    s = initial if initial is not None else S.SessionState()
    for ts, e in pairs:
        s = S.apply(s, e, ts)
    return s


def reference(pairs):
    """An independent, naive model of a few projections of the state."""
    boxes, placeholders, notes, guards, skips, tasks = {}, {}, [], [], {}, {}
    for _ts, e in pairs:
        if isinstance(e, ev.CheckboxSet):
            boxes[e.key] = (True, e.evidence)
        elif isinstance(e, ev.CheckboxCleared):
            boxes[e.key] = (False, e.reason)
        elif isinstance(e, ev.PlaceholderSupplied):
            placeholders[e.name] = e
        elif isinstance(e, ev.Note):
            notes.append(e)
        elif isinstance(e, (ev.GuardPassed, ev.GuardOverridden)):
            guards.append(e)
        elif isinstance(e, ev.StepSkipped):
            skips[(e.task, e.step)] = e.reason
        elif isinstance(e, ev.StepStarted):
            if not e.rollback:
                skips.pop((e.task, e.step), None)
            if tasks.get(e.task, S.TASK_PENDING) == S.TASK_PENDING:
                tasks[e.task] = S.TASK_IN_PROGRESS
        elif isinstance(e, ev.TaskStarted):
            tasks[e.task] = S.TASK_IN_PROGRESS
        elif isinstance(e, ev.TaskCompleted):
            tasks[e.task] = S.TASK_DONE
        elif isinstance(e, ev.TaskSkipped):
            tasks[e.task] = S.TASK_SKIPPED
        elif isinstance(e, ev.RollbackStarted):
            tasks.setdefault(e.task, S.TASK_PENDING)
    return boxes, placeholders, notes, guards, skips, tasks


def check_consistent(state: S.SessionState, pairs) -> None:
    assert state.count == len(pairs)
    if pairs:
        assert state.last_activity == pairs[-1][0]
    boxes, placeholders, notes, guards, skips, tasks = reference(pairs)
    assert {k: (b.checked, b.evidence) for k, b in state.checkboxes.items()} == boxes
    assert state.placeholders == placeholders and state.placeholder_names == frozenset(placeholders)
    assert list(state.notes) == notes and list(state.guards) == guards
    assert state.step_skips == skips
    assert {t: ts.status for t, ts in state.tasks.items()} == tasks
    assert all(e.value is None for e in state.placeholders.values() if e.secret)
    for key, rid in state.latest_run.items():
        run = state.runs[rid]
        assert (run.task, run.step, run.rollback) == key
    started = [e for _, e in pairs if isinstance(e, ev.StepStarted)]
    assert set(state.runs) == {e.run_id for e in started}
    for run in state.runs.values():
        assert state.task_status(run.task) != S.TASK_PENDING
        if run.finished:
            assert not run.unfinished_hosts, run
            assert run.ended is not None
        for h in run.hosts.values():
            assert h.status in (S.PENDING, S.RUNNING, S.SKIPPED) + OUTCOMES
            if h.decided is not None:  # decided while unknown; a late real result may follow
                assert h.status not in (S.PENDING, S.RUNNING)
        expected_bytes = {}
        for _, e in pairs:
            if isinstance(e, ev.OutputChunk) and e.run_id == run.run_id and e.host in run.hosts:
                expected_bytes[e.host] = expected_bytes.get(e.host, 0) + len(e.raw)
        for name, h in run.hosts.items():
            assert h.output_bytes <= expected_bytes.get(name, 0)
    for run, h in state.unresolved_unknowns():
        assert h.status == S.UNKNOWN and h.decided is None
        assert state.latest_run[(run.task, run.step, run.rollback)] == run.run_id
    for (task, step, rollback), rid in state.latest_run.items():
        status = state.step_status(task, step, rollback)
        if not rollback and (task, step) in state.step_skips:
            assert status == S.SKIPPED
        else:
            # the last outcome per host over every run (a host another run still runs on is
            # running); with one run, that is the run's own status
            matrix = state.step_matrix(task, step, rollback)
            assert status == matrix.status
            if matrix.runs == 1:
                assert status == state.runs[rid].status
    assert state.operators == tuple(dict.fromkeys(
        e.operator for _, e in pairs if isinstance(e, ev.SessionOpened) and e.operator))


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(streams())
def test_replay_of_every_prefix_is_consistent_and_equals_fold_of_apply(pairs):
    live = S.SessionState()
    for i, (ts, e) in enumerate(pairs):
        before = copy.deepcopy(live) if i % 4 == 0 else None
        new = S.apply(live, e, ts)
        if before is not None:
            assert live == before, "apply mutated its input"
        live = new
        prefix = pairs[: i + 1]
        replayed = S.replay(prefix)
        assert replayed == live
        check_consistent(replayed, prefix)
    assert S.replay(pairs) == fold_apply(pairs)


@SETTINGS
@given(streams(), st.data())
def test_replay_continues_from_any_state(pairs, data):
    cut = data.draw(st.integers(0, len(pairs)))
    first = S.replay(pairs[:cut])
    snapshot = copy.deepcopy(first)
    assert S.replay(pairs[cut:], initial=first) == S.replay(pairs)
    assert first == snapshot, "replay mutated its initial state"
    rep = S.Replayer(first)
    for ts, e in pairs[cut:]:
        rep.feed(ts, e)
    assert rep.result() == S.replay(pairs)


@settings(max_examples=40, deadline=None)
@given(streams(max_size=25))
def test_events_alone_and_pairs_agree_except_for_times(pairs):
    plain = S.replay(e for _, e in pairs)
    assert plain.count == len(pairs)
    assert plain.tasks.keys() == S.replay(pairs).tasks.keys()
