"""Dependency order, critical path and totals."""

from __future__ import annotations

from runbook.parser import parse, parse_file
from runbook.plan import plan
from tests.conftest import DEMO, PROD


def runbook(*tasks: tuple[str, str, str]):
    body = "# T\n## Phase 1: A\n"
    for tid, duration, deps in tasks:
        body += f"### Task {tid}: t\n- **Duration**: {duration}\n- **Dependencies**: {deps}\n"
    return parse(body, "p.md")


def test_prod_plan():
    p = plan(parse_file(str(PROD)))
    assert [t.id for t in p.order] == [
        "PROD-PRE-001", "PROD-PRE-006", "PROD-K8S-001", "PROD-K8S-002", "PROD-SEC-008", "PROD-VAL-001"]
    assert p.total_minutes == 45 + 60 + 60 + 120 + 180 + 240
    assert p.critical_path == ("PROD-VAL-001",) and p.critical_minutes == 240
    assert p.external == {"PROD-K8S-001": ("PROD-OS-002",), "PROD-SEC-008": ("PROD-NET-002",),
                          "PROD-VAL-001": ("PROD-BACKUP-001",)}
    k2 = next(t for t in p.order if t.id == "PROD-K8S-002")
    assert (k2.earliest_start, k2.earliest_finish) == (60, 180)


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


def test_empty_runbook():
    p = plan(parse("# nothing\n", "e.md"))
    assert p.order == () and p.critical_path == () and p.total_minutes == 0
