"""Dependency order, critical path and totals."""

from __future__ import annotations

import pytest

from runbook.parse.parser import parse, parse_file
from runbook.plan import RULE_PHASES, RULE_TASKS, phase_dependencies, plan, remaining_critical_path_minutes
from tests.conftest import DEMO, PROD


def runbook(*tasks: tuple[str, str, str]):
    body = "# T\n## Phase 1: A\n"
    for tid, duration, deps in tasks:
        body += f"### Task {tid}: t\n- **Duration**: {duration}\n- **Dependencies**: {deps}\n"
    return parse(body, "p.md")


def test_prod_plan_tasks_only():
    p = plan(parse_file(str(PROD)), tasks_only=True)
    assert p.rule == RULE_TASKS and p.phases == ()
    assert [t.id for t in p.order] == [
        "PROD-PRE-001", "PROD-PRE-006", "PROD-K8S-001", "PROD-K8S-002", "PROD-SEC-008", "PROD-VAL-001"]
    assert p.total_minutes == 45 + 60 + 60 + 120 + 180 + 240
    assert p.critical_path == ("PROD-VAL-001",) and p.critical_minutes == 240
    assert p.external == {"PROD-K8S-001": ("PROD-OS-002",), "PROD-SEC-008": ("PROD-NET-002",),
                          "PROD-VAL-001": ("PROD-BACKUP-001",)}
    k2 = next(t for t in p.order if t.id == "PROD-K8S-002")
    assert (k2.earliest_start, k2.earliest_finish) == (60, 180)
    assert all(t.after_phases == () for t in p.order)


def test_prod_plan_honours_phase_dependencies():
    p = plan(parse_file(str(PROD)))
    assert p.rule == RULE_PHASES
    assert [(ph.phase, ph.text, ph.after) for ph in p.phases] == [
        ("0", "DEV deployment complete and stable", ()),
        ("3", "Phase 2 complete", ("0",)),  # phase 2 is not in the document: the phases before it
        ("6", "Phase 5 complete", ("0", "3")),
        ("12", "All phases complete", ("0", "3", "6")),
    ]
    assert p.phases[0].reading == "names no phase of this document: independent"
    assert p.phases[1].reading == "Phase 2 is not in this document: every earlier phase up to it (0)"
    assert p.phases[3].reading == "all earlier phases (0, 3, 6)"
    starts = {t.id: (t.earliest_start, t.earliest_finish, t.after_phases) for t in p.order}
    assert starts == {
        "PROD-PRE-001": (0, 45, ()), "PROD-PRE-006": (45, 105, ()),
        "PROD-K8S-001": (105, 165, ("0",)), "PROD-K8S-002": (165, 285, ()),  # waits via PROD-K8S-001
        "PROD-SEC-008": (285, 465, ("0", "3")), "PROD-VAL-001": (465, 705, ("0", "3", "6")),
    }
    assert p.critical_path == ("PROD-PRE-001", "PROD-PRE-006", "PROD-K8S-001", "PROD-K8S-002",
                               "PROD-SEC-008", "PROD-VAL-001")
    assert p.critical_minutes == 705 == p.total_minutes
    assert p.external["PROD-K8S-001"] == ("PROD-OS-002",)  # external task dependencies still listed
    k1 = next(t for t in p.order if t.id == "PROD-K8S-001")
    assert k1.dependencies == ()  # phase waits are not task dependencies


def test_order_follows_dependencies_not_document_order():
    p = plan(runbook(("C-3", "1 hour", "B-2"), ("A-1", "30 min", "None"), ("B-2", "2 hours", "A-1"), ("D-4", "10 min", "A-1")))
    assert [t.id for t in p.order] == ["A-1", "B-2", "C-3", "D-4"]
    assert p.critical_path == ("A-1", "B-2", "C-3") and p.critical_minutes == 210
    assert p.total_minutes == 220
    assert [t.critical for t in p.order] == [True, True, True, False]


def test_unknown_durations_count_zero_and_are_listed():
    p = plan(runbook(("A-1", "TBD", "None"), ("B-2", "1 day", "A-1")))
    assert p.unknown_durations == ("A-1",) and p.critical_minutes == 480


def test_cycles_do_not_hang_and_are_reported():
    p = plan(runbook(("A-1", "1 hour", "B-2"), ("B-2", "1 hour", "A-1"), ("C-3", "1 hour", "None")))
    assert [t.id for t in p.order] == ["C-3", "A-1", "B-2"]
    assert p.cycles and set(p.cycles[0]) == {"A-1", "B-2"}


def test_demo_plan_and_json():
    p = plan(parse_file(str(DEMO)))
    assert [t.id for t in p.order][:2] == ["DEMO-PREP-001", "DEMO-PREP-002"]
    data = p.to_json()
    assert data["critical_path"][0] == "DEMO-PREP-001" and data["total_minutes"] == 35
    assert data["rule"] == "phases" and "first tasks of a phase" in data["rule_text"]
    assert all({"phase", "text", "after", "reading"} <= set(ph) for ph in data["phases"])
    assert all("after_phases" in t for t in data["order"])


def test_empty_runbook():
    p = plan(parse("# nothing\n", "e.md"))
    assert p.order == () and p.critical_path == () and p.total_minutes == 0


def phased(*phases: tuple[str, str, list[tuple[str, str, str]]]):
    """``(number, dependencies text, [(task id, duration, task dependencies)])`` per phase."""
    body = "# T\n"
    for number, deps_text, tasks in phases:
        body += f"## Phase {number}: P{number}\n"
        if deps_text:
            body += f"**Dependencies**: {deps_text}\n"
        for tid, duration, deps in tasks:
            body += f"### Task {tid}: t\n- **Duration**: {duration}\n- **Dependencies**: {deps}\n"
    return parse(body, "p.md")


def readings(rb):
    return [(ph.phase, ph.after) for ph in phase_dependencies(rb)]


@pytest.mark.parametrize("text, after", [
    ("Phase 1 complete", ("1",)),
    ("Phase 2A complete", ("2A",)),
    ("phase 2a done", ("2A",)),
    ("Phases 1 and 2B complete", ("1", "2B")),
    ("Phases 1, 2A & 2B", ("1", "2A", "2B")),
    ("Phases 2-4 complete", ("2A", "2B", "4")),  # 2A and 2B are part of 2; 3 is absent
    ("Phase 3 complete", ("1", "2A", "2B")),  # absent: every earlier phase up to 3
    ("Phase 2 complete", ("1", "2A", "2B")),  # absent, but 2A and 2B are its parts
    ("All phases complete", ("1", "2A", "2B", "4")),
    ("All previous phases complete", ("1", "2A", "2B", "4")),
    ("Previous phase complete", ("4",)),
    ("Phase 4 complete and Phase 1 verified", ("1", "4")),
    ("", ()),
    ("None", ()),
    ("N/A", ()),
    ("DEV deployment complete and stable", ()),
    ("PROD-OS-002 done", ()),  # a task id: not a phase rule (task dependencies are the tasks' own)
    ("Phase 5 complete", ()),  # the dependent phase itself: ignored
    ("Phase 0 complete", ()),  # absent and nothing earlier up to it
])
def test_reading_phase_dependency_text(text, after):
    rb = phased(("1", "", [("A-1", "1 hour", "None")]), ("2A", "", []), ("2B", "", []), ("4", "", []),
                ("5", text, [("E-1", "1 hour", "None")]))
    assert readings(rb)[-1] == ("5", after)


def test_phase_named_later_in_the_document_is_waited_for():
    rb = phased(("1", "Phase 2 complete", [("A-1", "1 hour", "None")]), ("2", "", [("B-1", "2 hours", "None")]))
    p = plan(rb)
    assert [t.id for t in p.order] == ["B-1", "A-1"] and p.critical_minutes == 180


def test_first_tasks_of_a_phase_wait_for_every_task_of_the_phases_named():
    rb = phased(
        ("1", "", [("A-1", "1 hour", "None"), ("A-2", "3 hours", "None")]),
        ("2", "Phase 1 complete", [("B-1", "1 hour", "None"), ("B-2", "30 min", "B-1"), ("B-3", "10 min", "None")]),
    )
    p = plan(rb)
    by = {t.id: t for t in p.order}
    assert (by["B-1"].earliest_start, by["B-3"].earliest_start) == (180, 180)  # the longer of
    assert by["B-1"].after_phases == ("1",) and by["B-3"].after_phases == ("1",)
    assert by["B-2"].after_phases == () and by["B-2"].earliest_start == 240  # through B-1
    assert p.critical_path == ("A-2", "B-1", "B-2") and p.critical_minutes == 270
    assert plan(rb, tasks_only=True).critical_path == ("A-2",)


def test_phase_without_dependency_is_independent():
    rb = phased(("1", "", [("A-1", "2 hours", "None")]), ("2", "", [("B-1", "1 hour", "None")]),
                ("3", "Phase 2 complete", [("C-1", "1 hour", "None")]))
    by = {t.id: t.earliest_start for t in plan(rb).order}
    assert by == {"A-1": 0, "B-1": 0, "C-1": 60}  # phase 3 waits for phase 2 only, as written


def test_absent_phase_means_every_earlier_phase_up_to_it():
    rb = phased(("1", "", [("A-1", "2 hours", "None")]), ("2", "", [("B-1", "1 hour", "None")]),
                ("4", "Phase 3 complete", [("D-1", "1 hour", "None")]), ("6", "", [("F-1", "1 hour", "None")]))
    by = {t.id: t.earliest_start for t in plan(rb).order}
    assert by == {"A-1": 0, "B-1": 0, "D-1": 120, "F-1": 0}


def test_phase_dependency_cycles_are_reported_not_hung():
    rb = phased(("1", "Phase 2 complete", [("A-1", "1 hour", "None")]), ("2", "Phase 1 complete", [("B-1", "1 hour", "None")]))
    p = plan(rb)
    assert [t.id for t in p.order] == ["A-1", "B-1"]
    assert p.cycles and set(p.cycles[0]) == {"A-1", "B-1"}
    assert remaining_critical_path_minutes(rb, set()) >= 60  # terminates


def test_tasks_outside_any_phase_are_not_waited_for():
    rb = parse("# T\n### Task X-1: loose\n- **Duration**: 5 hours\n"
               "## Phase 1: A\n**Dependencies**: All phases complete\n### Task A-1: t\n- **Duration**: 1 hour\n", "p.md")
    by = {t.id: t.earliest_start for t in plan(rb).order}
    assert by == {"X-1": 0, "A-1": 0}


def test_remaining_critical_path_minutes():
    rb = parse_file(str(PROD))
    assert remaining_critical_path_minutes(rb, set()) == 705
    assert remaining_critical_path_minutes(rb, set(), tasks_only=True) == 240
    assert remaining_critical_path_minutes(rb, {"PROD-PRE-001", "PROD-PRE-006"}) == 600
    assert remaining_critical_path_minutes(rb, {"PROD-PRE-001"}, elapsed={"PROD-PRE-006": 40}) == 620
    assert remaining_critical_path_minutes(rb, set(), elapsed={"PROD-PRE-001": 90}) == 660  # never below 0
    everything = {t.id for t in rb.tasks}
    assert remaining_critical_path_minutes(rb, everything) == 0
    assert remaining_critical_path_minutes(rb, everything - {"PROD-SEC-008"}) == 180
    assert remaining_critical_path_minutes(rb, {"NOT-A-TASK"}) == 705
    assert remaining_critical_path_minutes(parse("# empty\n", "e.md"), set()) == 0


def test_remaining_follows_task_dependencies_within_a_phase():
    rb = phased(("1", "", [("A-1", "30 min", "None"), ("A-2", "1 hour", "A-1"), ("A-3", "20 min", "None")]))
    assert remaining_critical_path_minutes(rb, set()) == 90
    assert remaining_critical_path_minutes(rb, {"A-1"}) == 60
    assert remaining_critical_path_minutes(rb, {"A-1", "A-2"}) == 20
