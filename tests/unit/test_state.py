"""Replay semantics: per task, step and host status; decisions; checkboxes; timings."""

from __future__ import annotations

import dataclasses

from runbook.model import Phase, Runbook, Task
from sessions.journal import events as ev
from sessions.state import state as S


def ts(n: int) -> str:
    return f"2026-11-27T04:{n // 60:02d}:{n % 60:02d}.000000Z"


def run_pairs(*events: ev.Event) -> list[tuple[str, ev.Event]]:
    return [(ts(i), e) for i, e in enumerate(events)]


def test_public_names_are_kept():
    names = {f.name for f in dataclasses.fields(S.SessionState)}
    assert {"session_id", "runbook_path", "runbook_sha256", "runbook_title", "operators", "opened",
            "last_activity", "closed", "finished", "window_end", "tasks", "runs", "latest_run", "step_skips",
            "checkboxes", "placeholders", "guards", "notes", "probes", "recovered", "count"} <= names
    for attr in ("task_status", "step_run", "step_status", "unresolved_unknowns", "running"):
        assert callable(getattr(S.SessionState, attr))
    assert {f.name for f in dataclasses.fields(S.StepRun)} >= {
        "run_id", "task", "step", "targets", "command", "mode", "rollback", "detached", "started", "seq", "hosts",
        "finished", "outcome", "duration_s", "expectations"}
    assert {f.name for f in dataclasses.fields(S.HostRun)} >= {
        "host", "status", "exit_status", "exit_signal", "duration_s", "error", "output_bytes", "decided",
        "decided_reason"}


def test_step_and_host_lifecycle():
    s = S.replay(run_pairs(ev.StepStarted("r1", "T-1", 1, ("a", "b", "c"), "cmd", "serial")))
    run = s.step_run("T-1", 1)
    assert [h.status for h in run.hosts.values()] == [S.PENDING] * 3
    assert s.step_status("T-1", 1) == S.RUNNING and s.task_status("T-1") == S.TASK_IN_PROGRESS
    assert run.seq == 1 and run.started == ts(0)
    s = S.apply(s, ev.OutputChunk("r1", "a", "stdout", "héllo\n"), ts(1))
    assert s.runs["r1"].hosts["a"].status == S.RUNNING
    assert s.runs["r1"].hosts["a"].output_bytes == len("héllo\n".encode())
    s = S.apply(s, ev.HostFinished("r1", "a", "succeeded", 0, None, 1.5), ts(2))
    s = S.apply(s, ev.OutputChunk("r1", "b", "stdout", "x"), ts(3))
    s = S.apply(s, ev.HostFinished("r1", "b", "failed", 2, None, 0.5, "exit 2"), ts(4))
    s = S.apply(s, ev.StepFinished("r1", "failed", 2.0), ts(5))
    run = s.runs["r1"]
    assert run.finished and run.outcome == S.FAILED and run.ended == ts(5)
    assert {h: r.status for h, r in run.hosts.items()} == {"a": S.SUCCEEDED, "b": S.FAILED, "c": S.SKIPPED}
    assert run.hosts["b"].exit_status == 2 and run.hosts["b"].error == "exit 2"
    assert s.step_status("T-1", 1) == S.FAILED
    assert s.host_status("T-1", 1, "c") == S.SKIPPED
    assert s.running() == []


def test_a_host_without_a_result_is_never_success():
    s = S.replay(run_pairs(
        ev.StepStarted("r1", "T-1", 1, ("a", "b"), "cmd"),
        ev.OutputChunk("r1", "a", "stdout", "x"),
        ev.HostFinished("r1", "b", "succeeded", 0),
        ev.StepFinished("r1", "succeeded"),
    ))
    assert s.runs["r1"].hosts["a"].status == S.UNKNOWN
    assert s.step_status("T-1", 1) == S.UNKNOWN


def test_outcome_unknown_and_decisions():
    s = S.replay(run_pairs(
        ev.StepStarted("r1", "T-1", 1, ("a", "b"), "cmd"),
        ev.HostFinished("r1", "a", "succeeded", 0),
        ev.StepOutcomeUnknown("r1", "runbook died"),
    ))
    run = s.runs["r1"]
    assert run.finished and run.outcome == S.UNKNOWN
    assert run.hosts["a"].status == S.SUCCEEDED and run.hosts["b"].status == S.UNKNOWN
    assert run.hosts["b"].error == "runbook died"
    assert [(r.run_id, h.host) for r, h in s.unresolved_unknowns()] == [("r1", "b")]
    assert s.step_status("T-1", 1) == S.UNKNOWN
    decided = S.apply(s, ev.OutcomeDecided("r1", "succeeded", "checked the pods", None, "alice"), ts(9))
    assert decided.unresolved_unknowns() == []
    assert decided.step_status("T-1", 1) == S.SUCCEEDED
    h = decided.runs["r1"].hosts["b"]
    assert (h.status, h.decided, h.decided_reason, h.decided_by) == (S.UNKNOWN, "succeeded", "checked the pods",
                                                                     "alice")
    failed = S.apply(s, ev.OutcomeDecided("r1", "failed"), ts(9))
    assert failed.step_status("T-1", 1) == S.FAILED
    rerun = S.apply(s, ev.OutcomeDecided("r1", "rerun"), ts(9))
    assert rerun.step_status("T-1", 1) == S.UNKNOWN and rerun.unresolved_unknowns() == []
    again = S.apply(rerun, ev.StepStarted("r2", "T-1", 1, ("a", "b"), "cmd"), ts(10))
    assert again.step_run("T-1", 1).run_id == "r2" and again.step_status("T-1", 1) == S.RUNNING
    assert s.step_status("T-1", 1) == S.UNKNOWN  # earlier states are untouched


def test_unknown_for_one_host_keeps_the_run_open():
    s = S.replay(run_pairs(
        ev.StepStarted("r1", "T-1", 1, ("a", "b"), "cmd"),
        ev.StepOutcomeUnknown("r1", "connection dropped", "a"),
    ))
    run = s.runs["r1"]
    assert not run.finished and run.unfinished_hosts == ("b",)
    assert run.hosts["a"].status == S.UNKNOWN


def test_superseded_unknowns_are_not_unresolved():
    s = S.replay(run_pairs(
        ev.StepStarted("r1", "T-1", 1, ("a",), "cmd"),
        ev.StepOutcomeUnknown("r1", "lost"),
        ev.StepStarted("r2", "T-1", 1, ("a",), "cmd"),
        ev.HostFinished("r2", "a", "succeeded", 0),
        ev.StepFinished("r2", "succeeded"),
    ))
    assert s.unresolved_unknowns() == [] and s.step_status("T-1", 1) == S.SUCCEEDED


def test_detached_runs():
    s = S.replay(run_pairs(
        ev.StepStarted("r1", "T-1", 1, ("a", "b"), "cmd", detached=True),
        ev.DetachedStarted("r1", "a", "rb-1"),
    ))
    assert [r.run_id for r in s.detached_unfinished()] == ["r1"]
    assert s.runs["r1"].hosts["a"].status == S.RUNNING and s.runs["r1"].hosts["a"].detached_id == "rb-1"
    assert s.runs["r1"].hosts["b"].status == S.PENDING


def test_skips_rollback_and_tasks():
    s = S.replay(run_pairs(
        ev.StepSkipped("T-1", 2, "done by hand", "alice"),
        ev.TaskStarted("T-1", "alice"),
        ev.StepStarted("r1", "T-1", 2, ("a",), "undo", rollback=True),
        ev.RollbackStarted("T-1", "it broke", "alice"),
        ev.TaskSkipped("T-2", "not needed", "bob"),
    ))
    assert s.step_status("T-1", 2) == S.SKIPPED  # a rollback step does not unskip the step
    assert s.step_status("T-1", 2, rollback=True) == S.RUNNING
    assert s.tasks["T-1"].rollback_started and s.task_status("T-1") == S.TASK_IN_PROGRESS
    assert s.tasks["T-2"].skip_reason == "not needed" and s.task_status("T-2") == S.TASK_SKIPPED
    s = S.apply(s, ev.StepStarted("r2", "T-1", 2, ("a",), "do"), ts(9))
    assert s.step_status("T-1", 2) == S.RUNNING


def test_checkboxes_placeholders_guards_notes():
    s = S.replay(run_pairs(
        ev.CheckboxSet("k1", "box", "alice", "seen it"),
        ev.CheckboxSet("k2", "box", "alice"),
        ev.CheckboxCleared("k2", "box", "bob", "wrong box"),
        ev.PlaceholderSupplied("VERSION", False, "1.29", who="alice"),
        ev.PlaceholderSupplied("DB_PASS", True, None, "scrypt:x", "00", "alice"),
        ev.GuardPassed("risk", "T-1", None, "confirmed"),
        ev.Note("hello", "T-1", "alice"),
        ev.ProbeResult("k1", "k8s.nodes_ready()", "pass"),
    ))
    assert s.checkboxes["k1"] == S.CheckboxState("k1", True, "alice", ts(0), "seen it")
    assert s.checkboxes["k2"] == S.CheckboxState("k2", False, "bob", ts(2), "wrong box")
    assert s.placeholder_names == {"VERSION", "DB_PASS"}
    assert s.placeholders["DB_PASS"].value is None
    assert [g.guard for g in s.guards] == ["risk"] and [n.text for n in s.notes] == ["hello"]
    assert s.probes["k1"].status == "pass"


def test_sessions_operators_handovers_changes():
    s = S.replay(run_pairs(
        ev.SessionOpened("s1", "/rb.md", "a" * 64, "RB", "alice", task_ids=("T-1", "T-2"),
                         window_end="2026-11-27T06:00:00Z"),
        ev.TaskCompleted("T-1", "alice"),
        ev.SessionOpened("s1", "/rb.md", "b" * 64, "RB", "bob", task_ids=("T-1", "T-3"), resumed=True,
                         handover_from="alice"),
        ev.RunbookChanged("a" * 64, "b" * 64, ("T-3",), ("T-2",)),
        ev.Recovered("torn tail", 12),
        ev.Checkpoint("c" * 64, 5),
        ev.SessionClosed("done", True),
    ))
    assert s.operators == ("alice", "bob") and s.operator == "bob"
    assert s.opened == ts(0) and s.window_end == "2026-11-27T06:00:00Z"
    assert [o.handover_from for o in s.handovers] == ["alice"]
    assert s.runbook_sha256 == "b" * 64 and s.task_ids == ("T-1", "T-3")
    assert s.runbook_changes[0].tasks_removed == ("T-2",)
    assert s.recovered[0].bytes_dropped == 12 and s.last_checkpoint.seq == 5
    assert s.closed and s.finished
    assert s.progress() == (1, 2)


def test_sha_before_a_recorded_change_is_kept():
    s = S.replay(run_pairs(
        ev.SessionOpened("s1", "/rb.md", "a" * 64, "RB", "alice"),
        ev.SessionOpened("s1", "/rb.md", "b" * 64, "RB", "alice", resumed=True),
    ))
    assert s.runbook_sha256 == "a" * 64  # only a RunbookChanged moves it


def test_timings_estimated_versus_actual():
    book = Runbook("RB", "/rb.md", "a" * 64, phases=(Phase("1", "P", 1, tasks=(
        Task("T-1", "one", 2, duration_minutes=15), Task("T-2", "two", 3), Task("T-3", "three", 4,
                                                                                 duration_minutes=5))),))
    s = S.replay([
        ("2026-11-27T04:00:00.000000Z", ev.TaskStarted("T-1")),
        ("2026-11-27T04:20:30.000000Z", ev.TaskCompleted("T-1")),
        ("2026-11-27T04:21:00.000000Z", ev.TaskStarted("T-2")),
    ])
    got = {t.task: t for t in S.timings(s, book, now="2026-11-27T04:22:00Z")}
    assert got["T-1"] == S.TaskTiming("T-1", S.TASK_DONE, 900.0, 1230.0)
    assert got["T-2"] == S.TaskTiming("T-2", S.TASK_IN_PROGRESS, None, 60.0)
    assert got["T-3"] == S.TaskTiming("T-3", S.TASK_PENDING, 300.0, None)


def test_replay_accepts_events_pairs_and_records(tmp_path):
    from sessions.journal.journal import Journal, read_records

    events = [ev.StepStarted("r1", "T-1", 1, ("a",), "cmd"), ev.HostFinished("r1", "a", "succeeded", 0)]
    with Journal.create(tmp_path / "journal.jsonl", lock=False) as j:
        for e in events:
            j.append(e)
    records = list(read_records(tmp_path / "journal.jsonl"))
    assert S.replay(records) == S.replay([(r.ts, r.event) for r in records])
    assert S.replay(events).step_status("T-1", 1) == S.SUCCEEDED


def test_output_to_unknown_run_or_after_the_end_is_ignored():
    s = S.replay(run_pairs(
        ev.OutputChunk("nope", "a", "stdout", "x"),
        ev.StepStarted("r1", "T-1", 1, ("a",), "cmd"),
        ev.HostFinished("r1", "a", "succeeded", 0),
        ev.StepFinished("r1", "succeeded"),
        ev.OutputChunk("r1", "z", "stdout", "late"),
        ev.OutputChunk("r1", "a", "stdout", "late"),
    ))
    assert set(s.runs["r1"].hosts) == {"a"} and s.runs["r1"].hosts["a"].status == S.SUCCEEDED
    assert s.runs["r1"].hosts["a"].output_bytes == 4 and s.count == 6
