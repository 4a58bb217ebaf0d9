"""Lint rules, each on a small document of its own, and the PROD checklist pinned."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from runbook.lint.lint import destructive_patterns, lint
from runbook.parse.parser import parse, parse_file
from tests.conftest import DEMO, PROD

SEV = {"error": "E", "warning": "W", "info": "I"}

# Every structural and content problem the PROD checklist really has, at its line (with the
# shipped prod-k8s-deployment.targets.yaml beside it: the two rollbacks it leaves unbound are no-target).
PROD_EXPECTED = [
    (149, "W", "risk-above-phase"), (164, "W", "not-shell"), (167, "W", "environment-mismatch"),
    (168, "W", "environment-mismatch"), (169, "W", "environment-mismatch"), (170, "W", "environment-mismatch"),
    (171, "W", "environment-mismatch"), (203, "E", "high-risk-no-rollback"), (239, "I", "unfilled-placeholder"),
    (258, "I", "phase-gap"), (268, "W", "external-dependency"), (295, "W", "k8s-config"),
    (307, "W", "k8s-config"), (311, "W", "k8s-config"), (362, "W", "recomputed-value"),
    (397, "I", "destructive-command"), (398, "I", "destructive-command"), (399, "I", "destructive-command"),
    (402, "I", "destructive-command"), (420, "I", "no-target"), (441, "W", "example-block"), (452, "I", "unfilled-placeholder"),
    (457, "W", "mixed-hosts"), (458, "W", "elided-command"), (501, "I", "destructive-command"),
    (501, "I", "unfilled-placeholder"), (508, "I", "destructive-command"), (509, "I", "destructive-command"),
    (512, "W", "elided-command"), (523, "I", "phase-gap"), (533, "W", "external-dependency"),
    (571, "I", "interactive-command"), (580, "I", "interactive-command"), (589, "I", "endless-command"),
    (612, "I", "destructive-command"), (624, "I", "phase-gap"), (630, "I", "no-target"), (634, "W", "external-dependency"),
    (635, "W", "risk-above-phase"), (667, "I", "destructive-command"), (671, "I", "destructive-command"),
    (673, "W", "mixed-hosts"), (674, "I", "destructive-command"), (682, "I", "destructive-command"),
    (718, "W", "kubectl-args"), (724, "I", "destructive-command"), (730, "I", "interactive-command"),
    (732, "W", "kubectl-args"), (741, "I", "destructive-command"), (749, "W", "heading-level"),
    (751, "W", "recovered-command"), (753, "E", "stray-fence"), (767, "W", "elided-command"),
    (767, "I", "destructive-command"),
]
# critical-attached (issue 10): the CRITICAL steps (and rollbacks) that run sudo over SSH (not 338: with the shipped bindings, the cilium step runs on the jump host)
PROD_EXPECTED = sorted(PROD_EXPECTED + [(n, "I", "critical-attached") for n in (322, 355, 397, 452, 467, 480, 501)],
                       key=lambda d: (d[0], "EWI".index(d[1]), d[2]))


def test_prod_checklist_diagnostics_pinned():
    rb = parse_file(str(PROD))
    got = [(d.line, SEV[d.severity], d.code) for d in lint(rb)]
    assert got == PROD_EXPECTED


def test_prod_key_messages():
    by = {(d.line, d.code): d for d in lint(parse_file(str(PROD)))}
    assert "opened here runs to line 770" in by[(753, "stray-fence")].message
    assert "'#### Acceptance Criteria' (line 755)" in by[(753, "stray-fence")].message
    assert "PROD-OS-002" in by[(268, "external-dependency")].message
    assert "dev-k8s-master-01" in by[(167, "environment-mismatch")].message
    assert "(secret)" in by[(239, "unfilled-placeholder")].message
    assert by[(203, "high-risk-no-rollback")].format().startswith(f"{PROD}:203: error: task PROD-PRE-006 is HIGH risk")


def test_demo_has_no_errors_or_warnings():
    assert [d for d in lint(parse_file(str(DEMO))) if d.severity != "info"] == []


def codes(text: str, severity: str | None = None):
    rb = parse(textwrap.dedent(text).lstrip("\n"), "t.md")
    return [(d.line, d.code) for d in lint(rb) if severity is None or d.severity == severity]


TASK = """# T
## Phase 1: A
### Task {id}: t
- **Duration**: 1 hour
- **Dependencies**: {deps}
- **Risk Level**: {risk}
#### Steps
1. **s**
```bash
{code}
```
#### Acceptance Criteria
- [ ] ok
#### Rollback Procedure
{rollback}
"""


def task(id="A-1", deps="None", risk="LOW", code="echo hi", rollback="N/A"):
    return TASK.format(id=id, deps=deps, risk=risk, code=code, rollback=rollback)


def test_duplicate_task_ids():
    assert (17, "duplicate-task-id") in codes(task() + task().replace("# T\n", ""), "error")


def test_dependency_cycle_is_named():
    text = task("A-1", "A-3") + task("A-2", "A-1").split("## Phase 1: A\n")[1] + task("A-3", "A-2").split("## Phase 1: A\n")[1]
    rb = parse(textwrap.dedent(text), "t.md")
    cyc = [d for d in lint(rb) if d.code == "dependency-cycle"]
    assert len(cyc) == 1 and cyc[0].severity == "error"
    assert "A-1 -> A-3 -> A-2 -> A-1" in cyc[0].message and cyc[0].line == 5


def test_self_dependency():
    assert (5, "dependency-cycle") in codes(task(deps="A-1"))


def test_external_dependency_is_a_warning():
    assert (5, "external-dependency") in codes(task(deps="B-9 (other document)"), "warning")


def test_missing_acceptance_and_rollback():
    text = "# T\n## Phase 1: A\n### Task A-1: t\n- **Risk Level**: LOW\n#### Steps\n1. **s**\n"
    found = codes(text, "warning")
    assert (3, "missing-acceptance") in found and (3, "missing-rollback") in found


@pytest.mark.parametrize("risk", ["HIGH", "CRITICAL", "**CRITICAL**"])
def test_high_risk_without_rollback_is_an_error(risk):
    assert (14, "high-risk-no-rollback") in codes(task(risk=risk), "error")
    assert not [c for c in codes(task(risk=risk, rollback="```bash\necho undo\n```"), "error")]
    no_section = task(risk=risk).split("#### Rollback Procedure")[0]
    assert (3, "high-risk-no-rollback") in codes(no_section, "error")


def test_unknown_and_missing_risk():
    assert (6, "unknown-risk") in codes(task(risk="spicy"), "warning")
    assert (3, "unknown-risk") in codes(task().replace("- **Risk Level**: LOW\n", ""), "warning")


def test_unfilled_placeholders_are_info():
    found = [d for d in lint(parse(task(code="echo <NAME> $API_TOKEN"), "t.md")) if d.code == "unfilled-placeholder"]
    assert found[0].severity == "info" and found[0].line == 10
    assert "<NAME>" in found[0].message and "$API_TOKEN (secret)" in found[0].message


@pytest.mark.parametrize(
    "code, label",
    [("rm -rf /var/lib/etcd", "rm -rf"), ("sudo rm -fr x", "rm -rf"), ("kubeadm reset -f", "kubeadm reset"),
     ("iptables -t nat -F", "iptables -F"), ("kubectl -n x delete pod y", "kubectl delete"),
     ("ETCDCTL_API=3 etcdctl snapshot restore a.db", "etcdctl snapshot restore"),
     ("systemctl stop kubelet", "systemctl stop"), ("kubectl get pods --all-namespaces", None),
     ("helm uninstall x --all", "--all"), ("kubectl drain n1", "kubectl drain"), ("# rm -rf / (comment)", None),
     ("echo hi # systemctl stop x", None), ("rm file.txt", None)],
)
def test_destructive_patterns(code, label):
    found = destructive_patterns(code)
    assert (label in found) if label else not found


def test_destructive_commands_are_info_at_their_line():
    found = [(d.line, d.severity) for d in lint(parse(task(code="echo a\nrm -rf /tmp/x"), "t.md"))
             if d.code == "destructive-command"]
    assert found == [(11, "info")]


def test_unclosed_and_stray_fences_are_errors_with_the_opening_line():
    text = task().replace("#### Acceptance Criteria", "````\n#### Acceptance Criteria") + "````\n"
    assert (12, "stray-fence") in codes(text, "error")
    unclosed = "# T\n## Phase 1: A\n### Task A-1: t\n#### Steps\n1. **s**\n```bash\necho\n"
    assert (6, "unclosed-fence") in codes(unclosed, "error")


def test_heading_levels_that_break_the_structure():
    text = "# T\n## Phase 1: A\n## Task A-1: t\n#### Steps\n### Phase 2: B\n#### Acceptance Criteria\n# Again\n"
    found = codes(text, "warning")
    assert (3, "heading-level") in found and (5, "heading-level") in found
    assert (6, "heading-level") in found and (7, "heading-level") in found


def test_elided_example_recomputed_interactive_endless():
    code = ("kubeadm join ... --token xxxxx\nf=/b/s-$(date +%s).db\nls /b/s-$(date +%s).db\n"
            "kubectl run t --rm -it --image=busybox -- sh\nkubectl logs -f deploy/x")
    found = codes(task(code=code))
    for entry in [(10, "elided-command"), (10, "example-values"), (12, "recomputed-value"),
                  (13, "interactive-command"), (14, "endless-command")]:
        assert entry in found


def test_pty_annotation_silences_interactive_hint():
    text = task(code="kubectl exec -it pod -- sh").replace("```bash", "```bash {pty}")
    assert not [c for c in codes(text) if c[1] == "interactive-command"]


def test_risk_above_phase_and_phase_gap():
    text = task(risk="HIGH", rollback="```bash\nundo\n```").replace("## Phase 1: A", "## Phase 1: A\n\n**Risk Level**: LOW")
    text += "\n## Phase 4: D\n"
    found = codes(text)
    assert (8, "risk-above-phase") in found and (21, "phase-gap") in found


def test_kubeadm_config_content():
    text = task().replace("```bash\necho hi\n```", textwrap.dedent("""\
        ```yaml
        # /tmp/k.yaml
        apiVersion: kubeadm.k8s.io/v1beta3
        kubernetesVersion: v1.26.0
        etcdLocal:
          dataDir: /x
        apiServer:
          extraArgs:
            enable-admission-plugins: "NodeRestriction,PodSecurityPolicy"
        controllerManager:
          extraArgs:
            pod-eviction-timeout: "30s"
        ```"""))
    found = [(line, c) for line, c in codes(text) if c == "k8s-config"]
    assert found == [(13, "k8s-config"), (17, "k8s-config")]  # 1.26 still has --pod-eviction-timeout


def test_kubectl_options_after_double_dash():
    code = "kubectl run w --image=busybox -- \\\n  sh -c 'echo' \\\n  --overrides='{}'\nkubectl exec p -- ls -n"
    found = [(line, c) for line, c in codes(task(code=code)) if c == "kubectl-args"]
    assert found == [(12, "kubectl-args"), (13, "kubectl-args")]


def test_environment_mismatch_only_for_other_environment_hosts():
    text = task(code="ssh dev-k8s-master-01 uptime\nkubectl run test-pod --image=x\nssh prod-db-01 true")
    text = text.replace("# T", "# PROD Runbook")
    found = [(line, c) for line, c in codes(text) if c == "environment-mismatch"]
    assert found == [(10, "environment-mismatch")]


def test_mixed_hosts_in_one_block():
    code = "# On web-01:\nsystemctl restart app\n# On web-02:\nsystemctl restart app"
    assert (12, "mixed-hosts") in codes(task(code=code), "warning")


def test_step_numbering_gaps():
    text = task().replace("1. **s**", "1. **s**\n```bash\necho\n```\n3. **t**")
    assert (8, "step-numbering") in codes(text, "warning")


PROBED = """# T
## Phase 1: A
### Task A-1: t
- **Duration**: 1 hour
- **Dependencies**: None
- **Risk Level**: LOW
#### Steps
1. **s**
```bash
echo hi
```
#### Acceptance Criteria
- [ ] five nodes <!-- probe: k8s.nodes_ready(min=5) -->
- [ ] typo <!-- probe: k8s.nodes_redy(min=5) -->
- [ ] unclosed
<!-- probe: k8s.nodes_ready(min= -->
- [ ] bad argument <!-- probe: k8s.nodes_ready(bogus=1) -->
#### Rollback Procedure
N/A
## Final Gate
- [ ] api up <!-- probe: k8s.api_reachable() -->
- [ ] api up? <!-- probe: k8s.api_reachble() -->
"""


def test_bad_probe_expressions_are_errors_at_the_checkbox_line():
    rb = parse(PROBED, "t.md")
    assert [b.line for b in rb.checkboxes() if b.probe] == [13, 14, 15, 17, 21, 22]
    bad = {d.line: d for d in lint(rb) if d.code == "bad-probe"}
    assert sorted(bad) == [14, 15, 17, 22]
    assert bad[14].format() == ("t.md:14: error: bad probe 'k8s.nodes_redy(min=5)' on checkbox A-1/acceptance/1: "
                                "unknown probe k8s.nodes_redy (did you mean k8s.nodes_ready?)")
    assert "not a probe expression" in bad[15].message and "A-1/acceptance/2" in bad[15].message
    assert "unknown argument bogus" in bad[17].message
    assert "k8s.api_reachble" in bad[22].message and bad[22].severity == "error"


def test_probe_from_the_bindings_file_is_checked_at_the_checkbox_line(tmp_path):
    md = tmp_path / "app.md"
    md.write_text(PROBED.split("## Final Gate")[0].replace(" <!-- probe: k8s.nodes_ready(bogus=1) -->", ""))
    bindings = tmp_path / "app.targets.yaml"  # TASK.acceptance.N counts from 1: .4 is the box at line 17
    bindings.write_text('A-1.acceptance.4: {probe: "k8s.nodes_ready(min=5)"}\n')
    assert [d.line for d in lint(parse_file(str(md))) if d.code == "bad-probe"] == [14, 15]
    bindings.write_text('A-1.acceptance.4: {probe: "k8s.nodes_ready(min=x)"}\n')
    bad = {d.line: d.message for d in lint(parse_file(str(md))) if d.code == "bad-probe"}
    assert sorted(bad) == [14, 15, 17]
    assert bad[17].startswith("bad probe 'k8s.nodes_ready(min=x)' on checkbox A-1/acceptance/3: x is not a value")


def test_lint_without_probes_does_not_import_the_probes_package():
    code = ("import sys; from runbook.parse.parser import parse_file; from runbook.lint.lint import lint; "
            f"lint(parse_file({str(PROD)!r})); print('runbook.probes' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    code = code.replace(f"parse_file({str(PROD)!r})", f"parse({PROBED!r}, 't.md')").replace("import parse_file", "import parse")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"
