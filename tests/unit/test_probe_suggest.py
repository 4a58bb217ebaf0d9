"""``runbook lint --suggest-probes``: probes proposed for criteria whose text matches one."""

from __future__ import annotations

import re

import pytest

from runbook.model import Checkbox, Diagnostic, Phase, Runbook, Section, Task
from runbook.probes import check_probe
from runbook.probes.suggest import suggest, suggest_for_text
from tests.conftest import PROD


@pytest.mark.parametrize(
    "text, expected",
    [
        ("All 5 control plane nodes show `Ready` status", 'k8s.nodes_ready(min=5, role="control-plane")'),
        ("First node shows `Ready` status", "k8s.nodes_ready(min=1)"),
        ("All nodes Ready", "k8s.nodes_ready()"),
        ("All worker nodes are Ready", 'k8s.nodes_ready(role="worker")'),
        ("3 master nodes in Ready state", 'k8s.nodes_ready(min=3, role="control-plane")'),
        ("All kube-system pods healthy", 'k8s.pods_healthy(namespace="kube-system")'),
        ("All pods in monitoring are Running", 'k8s.pods_healthy(namespace="monitoring")'),
        ("Network policies in enforcing mode", 'k8s.network_policies(namespace="default")'),
        (
            "Certificate expiry > 365 days",
            'k8s.tls_cert_days(name="SECRET-NAME", namespace="NAMESPACE", min=365)',
        ),
        ("API server reachable from all master nodes", "k8s.api_reachable()"),
        ("**PROD**: Namespace `monitoring` created", 'k8s.namespace_exists(name="monitoring")'),
        ("Old `legacy` namespace deleted", 'k8s.namespace_absent(name="legacy")'),
        ("Deployment ingress-nginx rolled out", 'k8s.deployment_rolled_out(name="ingress-nginx", namespace="default")'),
        ("Cilium CNI installed within 5 minutes", 'k8s.daemonset_rolled_out(name="cilium", namespace="kube-system")'),
        ("kubelet is active on all nodes", 'cmd(target="all", run="systemctl is-active kubelet")'),
    ],
)
def test_suggestions(text, expected):
    assert suggest_for_text(text) == expected
    assert check_probe(expected) is None


def test_etcd_members_suggest_a_cmd_probe_counting_healthy_endpoints():
    expr = suggest_for_text("etcd cluster has 5 healthy members")
    assert expr.startswith('cmd(target="masters[0]", run="test $(sudo ETCDCTL_API=3 ETCDCTL_CLUSTER=true ')
    assert "etcdctl endpoint health 2>&1 | grep -c 'is healthy') -ge 5\")" in expr
    assert check_probe(expr) is None


@pytest.mark.parametrize(
    "text",
    [
        "Network team written sign-off obtained",
        "Network policy penetration test passed",
        "Node drain/uncordon successful (pods rescheduled)",
        "etcd backup created and verified",
        "Join token and cert key saved securely (for additional masters)",
        "Certificate renewal procedures",
        "Change freeze procedures documented",
    ],
)
def test_no_suggestion_for_criteria_no_probe_can_check(text):
    assert suggest_for_text(text) is None


def _box(key, text, line, probe=None):
    return Checkbox(key=key, text=text, checked=False, line=line, probe=probe)


def test_suggest_returns_info_diagnostics_on_the_checkbox_line():
    task = Task(
        id="PROD-K8S-002",
        title="Join masters",
        line=400,
        prerequisites=(_box("PROD-K8S-002/prerequisites/0", "First master healthy", 433),),
        acceptance=(
            _box("PROD-K8S-002/acceptance/0", "All 5 control plane nodes show `Ready` status", 489),
            _box("PROD-K8S-002/acceptance/1", "etcd cluster has 5 healthy members", 490),
            _box("PROD-K8S-002/acceptance/3", "API server reachable from all master nodes", 492, probe="k8s.api_reachable()"),
        ),
    )
    gate = Section(
        title="Technical Acceptance",
        level=3,
        line=798,
        checkboxes=(_box("section:final/technical-acceptance/7", "Certificate expiry > 365 days", 807),),
    )
    rb = Runbook(title="PROD", path="prod.md", sha256="0" * 64, phases=(Phase("2", "Masters", 390, tasks=(task,)),), sections=(gate,))
    found = suggest(rb)
    assert [d.line for d in found] == [489, 490, 807]  # the box that has a probe gets none
    first = found[0]
    assert first == Diagnostic(
        path="prod.md",
        line=489,
        severity="info",
        message='suggest: <!-- probe: k8s.nodes_ready(min=5, role="control-plane") -->',
        code="suggest-probe",
    )
    assert first.format() == 'prod.md:489: info: suggest: <!-- probe: k8s.nodes_ready(min=5, role="control-plane") -->'


def test_every_suggestion_for_the_prod_checklist_is_valid_and_safe_in_an_html_comment():
    texts = [m.group(1) for m in re.finditer(r"^\s*- \[[ xX]\] (.*)$", PROD.read_text(), re.M)]
    assert len(texts) > 50
    suggested = {t: suggest_for_text(t) for t in texts}
    hits = {t: e for t, e in suggested.items() if e}
    # the criteria the issue names are all covered
    for text in (
        "All 5 control plane nodes show `Ready` status",
        "All kube-system pods healthy",
        "Network policies in enforcing mode",
        "Certificate expiry > 365 days",
        "etcd cluster has 5 healthy members",
    ):
        assert text in hits
    for expr in hits.values():
        assert check_probe(expr) is None, expr
        assert "--" not in expr and ">" not in expr.replace("2>&1", "")
