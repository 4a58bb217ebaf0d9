"""A step's status is a host matrix (the last outcome per host over all its runs), and an
automatic expectation that is not met is a failure until the operator decides: in the
state fold, ``journal show`` and every report format."""

from __future__ import annotations

import json
from pathlib import Path

from sessions.commands.export import render
from sessions.journal import events as ev
from sessions.journal.journal import Journal
from sessions.report.build import build_report, read_journal
from sessions.state import state as S
from tests.unit.export_journals import opened, write_runbook


def run(rid, task, step, hosts, results, *, checks=()):
    """StepStarted, a HostFinished per (host, outcome, exit), the expectation checks, StepFinished."""
    out = [ev.StepStarted(rid, task, step, tuple(hosts), "cmd")]
    for host, outcome, code in results:
        out.append(ev.HostFinished(rid, host, outcome, code))
    for host, index, passed in checks:
        out.append(ev.ExpectationChecked(rid, host, index, passed, "`Running` not found in 3 lines of output"
                                         if not passed else "pod Running"))
    out.append(ev.StepFinished(rid, S.worst(o for _, o, _ in results)))
    return out


def test_status_is_the_last_outcome_per_host_over_every_run():
    events = run("r1", "T", 1, ["a", "b", "c"], [("a", "succeeded", 0), ("b", "failed", 1), ("c", "failed", 2)])
    s = S.replay(events)
    assert s.step_status("T", 1) == "failed"
    # re-run on b only: c's failure still stands, the step is still failed
    events += run("r2", "T", 1, ["b"], [("b", "succeeded", 0)])
    s = S.replay(events)
    m = s.step_matrix("T", 1)
    assert m.runs == 2 and [(c.host, c.status, c.runs, c.run_id) for c in m.hosts] == [
        ("a", "succeeded", 1, "r1"), ("b", "succeeded", 2, "r2"), ("c", "failed", 1, "r1")]
    assert s.step_status("T", 1) == "failed" and s.host_status("T", 1, "b") == "succeeded"
    events += run("r3", "T", 1, ["c"], [("c", "succeeded", 0)])
    assert S.replay(events).step_status("T", 1) == "succeeded"
    # the fold applied event by event gives the same matrix as a replay
    s2 = S.SessionState()
    for e in events:
        s2 = S.apply(s2, e)
    assert s2.step_matrix("T", 1) == S.replay(events).step_matrix("T", 1)


def test_hosts_a_run_did_not_reach_keep_their_earlier_outcome():
    events = run("r1", "T", 1, ["a", "b"], [("a", "failed", 1), ("b", "succeeded", 0)])
    # a serial re-run stopped at a: b was never started (skipped), its earlier success stands
    events += [ev.StepStarted("r2", "T", 1, ("a", "b"), "cmd", mode="serial"),
               ev.HostFinished("r2", "a", "failed", 1), ev.StepFinished("r2", "failed")]
    m = S.replay(events).step_matrix("T", 1)
    assert [(c.host, c.status, c.runs) for c in m.hosts] == [("a", "failed", 2), ("b", "succeeded", 1)]
    # while a run goes on, the step is running
    m = S.replay(events + [ev.StepStarted("r3", "T", 1, ("a",), "cmd")]).step_matrix("T", 1)
    assert m.running and m.status == "running"


def test_an_unmet_expectation_is_a_failure_until_the_operator_decides():
    events = run("r1", "T", 1, ["a", "b"], [("a", "succeeded", 0), ("b", "succeeded", 0)],
                 checks=[("a", 0, True), ("b", 0, False)])
    s = S.replay(events)
    assert s.runs["r1"].hosts["b"].effective == S.EXPECTATION_FAILED == "expectation_failed"
    assert s.step_status("T", 1) == "expectation_failed" and s.host_status("T", 1, "a") == "succeeded"
    assert [(r.run_id, h.host) for r, h in s.undecided()] == [("r1", "b")]
    assert s.unresolved_unknowns() == []  # not an unknown outcome
    decided = S.replay(events + [ev.OutcomeDecided("r1", "succeeded", "pods Running after a minute", "b")])
    assert decided.step_status("T", 1) == "succeeded" and decided.undecided() == []
    failed = S.replay(events + [ev.OutcomeDecided("r1", "failed", "CrashLoopBackOff", "b")])
    assert failed.step_status("T", 1) == "failed"
    # an expectation on a host whose command failed: still just failed
    bad = run("r9", "T", 2, ["a"], [("a", "failed", 1)], checks=[("a", 0, False)])
    assert S.replay(bad).step_status("T", 2) == "failed"


def _journal(tmp_path: Path, events) -> Path:
    runbook, sha = write_runbook(tmp_path)
    path = tmp_path / "s" / "journal.jsonl"
    with Journal.create(path) as j:
        j.append(opened(runbook, sha))
        for e in events:
            j.append(e)
    return path


def test_every_report_format_shows_the_matrix_every_run_and_the_unmet_expectation(tmp_path: Path):
    events = (run("r1", "T-1", 1, ["web-1", "web-2"], [("web-1", "failed", 1), ("web-2", "succeeded", 0)])
              + run("r2", "T-1", 1, ["web-1"], [("web-1", "succeeded", 0)])
              + run("r3", "T-1", 2, ["web-1"], [("web-1", "succeeded", 0)], checks=[("web-1", 0, False)]))
    path = _journal(tmp_path, events)
    jc = read_journal(path)
    report = build_report(jc, use_runbook=False)
    t1 = next(t for t in report.tasks() if t.id == "T-1")
    s1, s2 = t1.steps
    assert [r.run_id for r in s1.runs] == ["r1", "r2"] and s1.run_count == 2
    assert s1.hosts == [{"host": "web-1", "status": "succeeded", "runs": 2, "run_id": "r2"},
                        {"host": "web-2", "status": "succeeded", "runs": 1, "run_id": "r1"}]
    assert s1.status == "succeeded"
    # web-2's success in r1 is not superseded by r2, which did not run there
    r1 = s1.runs[0]
    assert {h.host: h.superseded for h in r1.hosts} == {"web-1": True, "web-2": False}
    assert s2.status == "expectation_failed" and s2.runs[0].hosts[0].outcome == "expectation_failed"
    devs = [d for d in report.deviations if d.kind == "expectation_failed"]
    assert devs and "failed until the operator decides" in devs[0].message
    md = render(report, jc, "md", 50).decode()
    assert "Last outcome per host over 2 runs: web-1 succeeded (2 runs), web-2 succeeded" in md
    assert "#### Step 2 \u2014 failed (expectation)" in md and "Run `r1`" in md and "Run `r2`" in md
    html = render(report, jc, "html", 50).decode()
    assert "Last outcome per host over 2 runs: web-1 succeeded (2 runs), web-2 succeeded" in html
    assert "failed (expectation)" in html
    data = json.loads(render(report, jc, "json", 50))
    step = data["report"]["phases"][0]["tasks"][0]["steps"][1]
    assert step["status"] == "expectation_failed" and step["hosts"][0]["status"] == "expectation_failed"


def test_an_operator_decision_on_an_unmet_expectation_is_in_the_report(tmp_path: Path):
    events = run("r1", "T-1", 1, ["web-1"], [("web-1", "succeeded", 0)], checks=[("web-1", 0, False)]) + [
        ev.OutcomeDecided("r1", "succeeded", "checked by hand: Running", "web-1", "alice")]
    jc = read_journal(_journal(tmp_path, events))
    report = build_report(jc, use_runbook=False)
    step = next(t for t in report.tasks() if t.id == "T-1").steps[0]
    assert step.status == "succeeded"
    [dev] = [d for d in report.deviations if d.kind == "expectation_failed"]
    assert "operator decided: succeeded (checked by hand: Running)" in dev.message and dev.who == "alice"


def test_journal_show_ends_with_each_steps_host_matrix(tmp_path: Path):
    import subprocess
    import sys

    events = (run("r1", "T-1", 1, ["web-1", "web-2"], [("web-1", "failed", 1), ("web-2", "succeeded", 0)])
              + run("r2", "T-1", 1, ["web-1"], [("web-1", "succeeded", 0)])
              + run("r3", "T-1", 2, ["web-1"], [("web-1", "succeeded", 0)], checks=[("web-1", 0, False)]))
    path = _journal(tmp_path, events)
    r = subprocess.run([sys.executable, "-m", "runbook.cli", "journal", "show", str(path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    tail = r.stdout.splitlines()[-3:]
    assert tail == ["# step status (last outcome per host over all runs)",
                    "#   T-1 step 1: succeeded (2 runs): web-1 succeeded x2, web-2 succeeded",
                    "#   T-1 step 2: failed (expectation) (1 run): web-1 failed (expectation)"]
