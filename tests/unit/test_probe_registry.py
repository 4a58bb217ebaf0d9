"""The probe registry checks every argument before anything runs."""

from __future__ import annotations

import pytest

from runbook.probes import check_probe, probes
from runbook.probes.expression import ProbeSyntaxError
from runbook.probes.registry import bind

ISSUE_PROBES = {
    "k8s.api_reachable",
    "k8s.nodes_ready",
    "k8s.pods_healthy",
    "k8s.namespace_exists",
    "k8s.namespace_absent",
    "k8s.deployment_rolled_out",
    "k8s.daemonset_rolled_out",
    "k8s.statefulset_rolled_out",
    "k8s.rolled_out",
    "k8s.pod_ready",
    "k8s.network_policies",
    "k8s.tls_cert_days",
    "cmd",
}


def test_every_probe_of_the_issue_is_registered():
    assert set(probes()) >= ISSUE_PROBES


def test_bind_fills_defaults_and_takes_the_timeout_apart():
    bound = bind('k8s.pods_healthy(namespace="kube-system", restarts_below=5, timeout=2.5)')
    assert bound.name == "k8s.pods_healthy"
    assert bound.args == {"namespace": "kube-system", "selector": None, "restarts_below": 5, "min": 1}
    assert bound.timeout == 2.5


def test_positional_arguments_follow_the_signature():
    assert bind('k8s.tls_cert_days("api-tls", "ingress", 365)').args == {
        "name": "api-tls",
        "namespace": "ingress",
        "min": 365,
    }
    assert bind("cmd('masters', 'true')").args == {"target": "masters", "run": "true"}


def test_strings_param_accepts_one_string_or_a_list():
    assert bind('k8s.network_policies(names="default-deny")').args["names"] == ("default-deny",)
    assert bind('k8s.network_policies(names=["a", "b"])').args["names"] == ("a", "b")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("k8s.node_ready(min=5)", "did you mean k8s.nodes_ready?"),
        ("nodes_ready(min=5)", "did you mean k8s.nodes_ready?"),
        ("k8s.frobnicate()", "known: cmd, k8s.api_reachable"),
        ("k8s.nodes_ready(minimum=5)", "unknown argument minimum (did you mean min?)"),
        ('k8s.nodes_ready(min="5")', "min must be a number"),
        ("k8s.nodes_ready(min=2.5)", "min must be a whole number"),
        ("k8s.nodes_ready(min=true)", "min must be a number"),
        ("k8s.nodes_ready(min=-1)", "min must be >= 0"),
        ("k8s.nodes_ready(timeout=0)", "timeout must be > 0"),
        ('k8s.nodes_ready(role="")', "role must be a non-empty string"),
        ("k8s.pod_ready()", "missing name"),
        ('k8s.pod_ready("a", name="b")', "name given twice"),
        ('k8s.namespace_exists("a", "b")', "too many positional arguments"),
        ('k8s.rolled_out(kind="job", name="x")', "kind must be one of deployment, daemonset, statefulset"),
        ('cmd(target="masters")', "missing run"),
        ("k8s.network_policies(names=[1])", "names must be a string or a list of strings"),
        ("k8s.network_policies(default_deny=1)", "default_deny must be true or false"),
    ],
)
def test_bad_arguments_are_explained(text, fragment):
    with pytest.raises(ProbeSyntaxError) as info:
        bind(text)
    assert fragment in str(info.value)
    assert fragment in (check_probe(text) or "")


def test_check_probe_accepts_good_expressions():
    assert check_probe('k8s.nodes_ready(min=5, role="control-plane")') is None
    assert check_probe('cmd(target="masters", run="systemctl is-active kubelet")') is None


def test_signatures_are_printable():
    sig = probes()["k8s.pod_ready"].signature()
    assert sig == 'k8s.pod_ready(name=<str>, namespace="default", [timeout=<float>])'
