"""The parser on the real PROD checklist and the demo runbook."""

from __future__ import annotations

import re

import pytest

from runbook.errors import InputError
from runbook.model import Risk
from runbook.parse.parser import parse, parse_file
from tests.conftest import DEMO, PROD

CHECKBOX_LINE = re.compile(r"^[ \t]*[-*+] \[[ xX]\]", re.M)


@pytest.fixture(scope="module")
def prod():
    return parse_file(str(PROD))


def test_prod_phases_and_tasks(prod):
    assert prod.title == "PROD Environment Kubernetes Deployment Checklist"
    assert [p.number for p in prod.phases] == ["0", "3", "6", "12"]
    assert [p.title for p in prod.phases] == [
        "Pre-Flight Validation", "Kubernetes Core", "Security Infrastructure", "Validation & Handoff"]
    assert [p.duration_minutes for p in prod.phases] == [240, 960, 1200, 720]
    assert [t.id for t in prod.tasks] == [
        "PROD-PRE-001", "PROD-PRE-006", "PROD-K8S-001", "PROD-K8S-002", "PROD-SEC-008", "PROD-VAL-001"]
    assert [len(p.tasks) for p in prod.phases] == [2, 2, 1, 1]


def test_prod_phase_metadata(prod):
    p0 = prod.phases[0]
    assert p0.risk is Risk.LOW and p0.risk_text == "LOW (read-only)"
    assert p0.purpose == "Validate production prerequisites with zero tolerance for failures"
    assert p0.dependencies == "DEV deployment complete and stable"
    assert prod.phases[1].risk is Risk.CRITICAL
    assert prod.phases[1].duration_text == "2 days - accelerated"
    assert prod.phases[3].risk is Risk.MEDIUM


@pytest.mark.parametrize(
    "tid, category, minutes, deps, risk, risk_text, line",
    [
        ("PROD-PRE-001", "Network", 45, (), Risk.LOW, "LOW", 84),
        ("PROD-PRE-006", "Infrastructure", 60, ("PROD-PRE-001",), Risk.HIGH, "HIGH", 144),
        ("PROD-K8S-001", "Kubernetes Core", 60, ("PROD-OS-002",), Risk.CRITICAL, "CRITICAL", 264),
        ("PROD-K8S-002", "Kubernetes Core", 120, ("PROD-K8S-001",), Risk.CRITICAL, "CRITICAL", 420),
        ("PROD-SEC-008", "Security", 180, ("PROD-NET-002",), Risk.HIGH, "HIGH", 529),
        ("PROD-VAL-001", "Disaster Recovery", 240, ("PROD-BACKUP-001",), Risk.HIGH, "HIGH (testing in production)", 630),
    ],
)
def test_prod_task_metadata(prod, tid, category, minutes, deps, risk, risk_text, line):
    t = prod.task(tid)
    assert (t.category, t.duration_minutes, t.dependencies, t.risk, t.risk_text, t.line) == (
        category, minutes, deps, risk, risk_text, line)
    assert t.metadata["Category"] == category


def test_prod_duration_note_kept(prod):
    t = prod.task("PROD-K8S-002")
    assert t.duration_text == "2 hours (4 nodes, parallelizable)"
    assert prod.task("PROD-SEC-008").dependencies_text == "PROD-NET-002 (network policies created)"


@pytest.mark.parametrize(
    "tid, prereq, accept, steps, notes",
    [
        ("PROD-PRE-001", 3, 4, 2, 2),
        ("PROD-PRE-006", 2, 4, 3, 2),
        ("PROD-K8S-001", 4, 7, 5, 4),
        ("PROD-K8S-002", 3, 5, 4, 3),
        ("PROD-SEC-008", 4, 5, 5, 4),
        ("PROD-VAL-001", 5, 6, 3, 4),
    ],
)
def test_prod_task_counts(prod, tid, prereq, accept, steps, notes):
    t = prod.task(tid)
    assert (len(t.prerequisites), len(t.acceptance), len(t.steps), len(t.notes)) == (prereq, accept, steps, notes)
    assert [s.number for s in t.steps] == list(range(1, steps + 1))
    assert all(not b.checked for b in t.checkboxes)


def test_prod_step_titles_and_hints(prod):
    t = prod.task("PROD-PRE-001")
    assert [(s.title, s.hint, s.line) for s in t.steps] == [
        ("Ping Test All PROD Node IPs", "", 103),
        ("Latency Verification", "(PROD-specific)", 117),
    ]
    assert prod.task("PROD-K8S-002").step(2).hint == "(NOT parallel - etcd requires sequential joins)"
    assert [s.title for s in prod.task("PROD-VAL-001").steps] == [
        "Test 1: etcd Restore Simulation", "Test 2: PV Restore Simulation", "Test 3: Node Failure Simulation"]


def test_prod_blocks_kinds(prod):
    k1 = prod.task("PROD-K8S-001")
    cfg = k1.step(1).blocks
    assert [(b.kind, b.lang, b.path, b.line) for b in cfg] == [("file", "yaml", "/tmp/kubeadm-config.yaml", 286)]
    assert cfg[0].code.startswith("apiVersion: kubeadm.k8s.io/v1beta3\n")  # the path comment is not content
    assert cfg[0].code_line(0) == 288
    init = k1.step(2).blocks
    assert [(b.kind, b.line) for b in init] == [("command", 316), ("output", 327)]
    assert "initialized successfully" in init[1].code
    assert k1.step(2).expected[0].text.startswith("Your Kubernetes control-plane has initialized successfully!")
    # PROD-PRE-006 step 1 is labelled bash but is a list of notes, step 3 a scenario: neither runs
    pre6 = prod.task("PROD-PRE-006")
    assert [b.kind for b in pre6.step(1).blocks] == ["text"]
    assert [b.kind for b in pre6.step(3).blocks] == ["text"]
    assert not pre6.step(1).runnable and pre6.step(2).runnable


def test_prod_expectations_and_literals(prod):
    k1 = prod.task("PROD-K8S-001")
    assert k1.step(3).expected[0].literals == ("✅ Cilium was successfully installed!",)
    assert [e.literals for e in k1.step(5).expected] == [("Ready",), ("Running",)]
    assert [e.line for e in k1.step(5).expected] == [376, 377]
    assert prod.task("PROD-PRE-001").step(2).expected[0].text == "Average latency < 2ms (SLA requirement)"
    assert prod.task("PROD-PRE-001").step(2).expected[0].literals == ()


def test_prod_placeholders(prod):
    join = prod.task("PROD-K8S-002").step(2)
    assert [(p.name, p.token, p.secret, p.line) for p in join.placeholders] == [
        ("TOKEN", "<TOKEN>", True, 452), ("HASH", "<HASH>", True, 453), ("CERT_KEY", "<CERT-KEY>", True, 454)]
    cilium = prod.task("PROD-K8S-001").step(3)
    assert cilium.placeholders == ()  # CILIUM_CLI_VERSION is assigned in the block
    smoke = prod.phases[0].gates[0].steps[0]
    assert [(p.name, p.secret, p.line) for p in smoke.placeholders] == [("PROD_LDAP_PASS", True, 239)]
    rb = prod.task("PROD-K8S-002").rollback
    assert [(p.name, p.secret) for p in rb.steps[0].placeholders] == [("MEMBER_ID", False)]


def test_prod_gate_belongs_to_phase_0(prod):
    p0 = prod.phases[0]
    assert len(p0.gates) == 1 and all(not p.gates for p in prod.phases[1:])
    g = p0.gates[0]
    assert g.title == "Phase 0 Smoke Test (PROD)" and g.line == 214
    assert g.gate.startswith("ZERO failures tolerated. Any failure requires root cause analysis")
    assert len(g.steps) == 1 and g.steps[0].runnable
    assert [(b.kind, b.line) for b in g.steps[0].blocks] == [("command", 218)]
    assert "PROD version includes additional checks" in g.text


def test_prod_rollbacks(prod):
    assert prod.task("PROD-PRE-001").rollback.applicable is False
    assert prod.task("PROD-PRE-001").rollback.text.startswith("N/A (read-only)")
    assert prod.task("PROD-PRE-006").rollback.applicable is False
    k1 = prod.task("PROD-K8S-001").rollback
    assert k1.applicable and [s.number for s in k1.steps] == [1] and k1.steps[0].title == "CRITICAL ROLLBACK STEPS"
    assert "kubeadm reset -f" in k1.steps[0].blocks[0].code
    sec = prod.task("PROD-SEC-008").rollback
    assert sec.line == 602 and "kubectl delete networkpolicy --all -A" in sec.blocks[0].code


def test_prod_val001_swallowed_content_recovered(prod):
    t = prod.task("PROD-VAL-001")
    assert next(b.text for b in t.acceptance) == "etcd restore successful (namespace + pod recovered)"
    assert [b.line for b in t.acceptance] == [756, 757, 758, 759, 760, 761]
    assert t.rollback is not None and t.rollback.applicable and t.rollback.line == 763
    (step,) = t.rollback.steps
    assert step.blocks[0].line == 764 and step.blocks[0].kind == "command"
    assert "systemctl restart kubelet" in step.blocks[0].code and "````" not in step.blocks[0].code
    assert t.notes[0].startswith("**PROD-Only**")
    # the uncordon that fell out of its fence is recovered as a command of Test 3
    test3 = t.step(3)
    recovered = test3.blocks[-1]
    assert recovered.kind == "command" and recovered.line == 749
    assert "kubectl uncordon prod-k8s-worker-01" in recovered.code
    assert recovered.code_line(1) == 751


def test_prod_every_checkbox_exactly_once(prod):
    raw = PROD.read_text(encoding="utf-8")
    expected_lines = [raw.count("\n", 0, m.start()) + 1 for m in CHECKBOX_LINE.finditer(raw)]
    boxes = list(prod.checkboxes())
    assert len(boxes) == len(expected_lines) == 95
    assert [b.line for b in boxes] == expected_lines
    keys = [b.key for b in boxes]
    assert len(set(keys)) == len(keys)


def test_prod_checkbox_keys(prod):
    assert prod.checkbox("PROD-PRE-001/prerequisites/0").line == 97
    assert prod.checkbox("PROD-VAL-001/acceptance/5").text == "DR runbook validated (all steps work as documented)"
    box = prod.checkbox("section:prod-acceptance-criteria-final-gate/technical-acceptance/3")
    assert box.text == "DR procedures tested and documented"
    assert prod.checkbox("section:prod-handoff-checklist/ongoing-responsibilities-transferred/4").line == 864


def test_prod_sections_nothing_dropped(prod):
    titles = [s.title for s in prod.sections]
    for t in ("Overview", "Document Control", "Hardening Requirements", "PROD-Specific Risk Matrix",
              "Technical Acceptance", "Summary Timeline (PROD)"):
        assert t in titles
    hardening = next(s for s in prod.sections if s.title == "Hardening Requirements")
    assert hardening.parent == "CRITICAL PROD DIFFERENCES FROM DEV"
    table = hardening.tables[0]
    assert table[0] == ("Aspect", "DEV", "PROD", "Rationale") and len(table) == 13
    timeline = next(s for s in prod.sections if s.title == "Summary Timeline (PROD)")
    assert "Handoff Target" in timeline.text and len(timeline.tables[0]) == 15
    assert prod.overview["Critical Path"] == "11.5 days"
    assert prod.overview["Prerequisites"].startswith("DEV environment validated and stable; ")


def test_prod_runnable_steps_have_a_spec_but_no_target_without_bindings():
    rb = parse_file(str(PROD), bindings=False)
    for t in rb.tasks:
        for s in t.steps:
            assert (s.target is not None) == s.runnable
            if s.target:  # nobody chose: no implicit local
                assert s.target.pattern == "" and s.target.source == "none" and not s.target.chosen


def test_demo_runbook():
    rb = parse_file(str(DEMO))
    assert len(rb.phases) == 2 and len(rb.tasks) == 4
    assert not [d for d in rb.diagnostics if d.severity != "info"]
    prep = rb.task("DEMO-PREP-002")
    cfg = prep.step(2)
    assert cfg.blocks[0].kind == "file" and cfg.blocks[0].path == "/tmp/runbook-demo/app.conf"
    token = prep.step(3)
    assert {(p.name, p.secret) for p in token.placeholders} == {("GREETING", False), ("DEMO_TOKEN", True)}
    web = rb.task("DEMO-FLEET-001")
    assert (web.step(1).target.pattern, web.step(1).target.serial) == ("web", False)
    assert (web.step(2).target.pattern, web.step(2).target.serial, web.step(2).target.source) == ("web", True, "annotation")
    db = rb.task("DEMO-FLEET-002")
    assert db.risk is Risk.HIGH and db.rollback.steps[0].target.pattern == "db"
    assert rb.phases[0].gates[0].gate and rb.phases[0].gates[0].steps[0].expected[0].literals == ("SMOKE OK",)
    raw = DEMO.read_text()
    assert len(list(rb.checkboxes())) == len(CHECKBOX_LINE.findall(raw))


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        (b"", "file is empty"),
        (b"  \n\n", "file is empty"),
        (b"\x7fELF\x00\x00binary", "binary file"),
        (b"# Title\n\n\xff\xfe bad\n", "not valid UTF-8"),
    ],
)
def test_parse_file_bad_input(tmp_path, content, message):
    path = tmp_path / "rb.md"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as exc:
        parse_file(str(path))
    assert message in str(exc.value) and str(path) in str(exc.value)


def test_parse_never_raises_on_odd_input():
    for text in ("", "\n", "```", "````\n# x\n- [ ] y", "#" * 7, "\r\r\r", "\x00", "- [ ]", "1. **x**\n```bash\n"):
        rb = parse(text, "odd.md")
        assert all(1 <= d.line <= max(rb.line_count, 1) for d in rb.diagnostics)


def test_sha256_of_text(prod):
    import hashlib

    assert prod.sha256 == hashlib.sha256(PROD.read_bytes()).hexdigest()
    assert prod.line_count == 894
