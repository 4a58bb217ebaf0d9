"""Judging Kubernetes objects (the JSON a real API server returns) into pass/fail + evidence."""

from __future__ import annotations

import base64

import pytest

from runbook.probes import k8s_checks as checks
from runbook.probes.registry import ERROR, FAIL, PASS
from tests.integration import fake_k8s as f


def listing(*items):
    return {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": list(items)}


MASTERS = [f.node(f"master-0{i}") for i in range(1, 6)]
WORKERS = [f.node(f"worker-0{i}", roles=("worker",)) for i in range(1, 4)]


# --- nodes -------------------------------------------------------------------------------


def test_five_ready_control_plane_nodes_pass_with_names():
    v = checks.judge_nodes(listing(*MASTERS, *WORKERS), min=5, role="control-plane")
    assert v.status == PASS
    assert v.evidence == "role=control-plane: 5/5 Ready (need 5): master-01, master-02, master-03, master-04, master-05"


def test_a_not_ready_master_fails_and_says_why():
    nodes = MASTERS[:3] + [f.node("master-04", ready=False), f.node("master-05", ready=None)]
    v = checks.judge_nodes(listing(*nodes), min=5, role="control-plane")
    assert v.status == FAIL
    assert "3/5 Ready (need 5)" in v.evidence
    assert "master-04 (NotReady: KubeletNotReady)" in v.evidence
    assert "master-05 (Unknown: NodeStatusUnknown)" in v.evidence


def test_min_counts_ready_nodes_not_all_nodes():
    nodes = MASTERS + [f.node("master-06", ready=False)]
    assert checks.judge_nodes(listing(*nodes), min=5, role="control-plane").status == PASS
    assert checks.judge_nodes(listing(*nodes), role="control-plane").status == FAIL  # no min: all must be Ready


def test_legacy_master_role_label_counts_as_control_plane():
    old = [f.node(f"m{i}", roles=("master",)) for i in range(3)]
    assert checks.judge_nodes(listing(*old, *WORKERS), min=3, role="control-plane").status == PASS
    assert checks.judge_nodes(listing(*old, *WORKERS), min=3, role="worker").status == PASS
    assert checks.judge_nodes(listing(*old, *WORKERS), min=4, role="worker").status == FAIL


def test_no_matching_nodes_fails():
    v = checks.judge_nodes(listing(*WORKERS), role="control-plane")
    assert (v.status, v.evidence) == (FAIL, "no nodes match role=control-plane (3 nodes listed)")
    assert checks.judge_nodes(listing(), min=0).status == FAIL


def test_cordoned_nodes_are_mentioned():
    v = checks.judge_nodes(listing(f.node("w1", roles=("worker",), unschedulable=True)))
    assert v.status == PASS
    assert "cordoned (SchedulingDisabled): w1" in v.evidence


def test_long_name_lists_are_shortened():
    many = [f.node(f"worker-{i:03d}", roles=("worker",)) for i in range(40)]
    v = checks.judge_nodes(listing(*many), role="worker")
    assert v.evidence.endswith("worker-011, ... (+28 more)")


# --- pods --------------------------------------------------------------------------------


def test_healthy_pods_pass_with_counts():
    pods = [f.pod("etcd-master-01", restarts=2), f.pod("kube-proxy-x"), f.pod("job-1", phase="Succeeded")]
    v = checks.judge_pods(listing(*pods), namespace="kube-system")
    assert v.status == PASS
    assert v.evidence == "3/3 pods healthy in kube-system (2 Running, 1 Succeeded); most restarts: 2 (etcd-master-01)"


@pytest.mark.parametrize(
    "bad, expected",
    [
        (f.pod("coredns-1", waiting="CrashLoopBackOff", restarts=7), "coredns-1 (CrashLoopBackOff in main, 7 restarts)"),
        (f.pod("app-1", waiting="ImagePullBackOff"), "app-1 (ImagePullBackOff in main)"),
        (f.pod("app-2", waiting="ErrImagePull"), "app-2 (ErrImagePull in main"),
        (f.pod("pend-1", phase="Pending", reason="Unschedulable"), "pend-1 (Pending: Unschedulable)"),
        (f.pod("failed-1", phase="Failed"), "failed-1 (Failed)"),
    ],
)
def test_unhealthy_pods_fail_naming_the_reason(bad, expected):
    v = checks.judge_pods(listing(f.pod("ok-1"), bad), namespace="kube-system")
    assert v.status == FAIL
    assert v.evidence.startswith("1/2 pods unhealthy in kube-system: ")
    assert expected in v.evidence


def test_restarts_below_n():
    pods = listing(f.pod("a", restarts=4), f.pod("b", restarts=5))
    assert checks.judge_pods(pods, namespace="x", restarts_below=6).status == PASS
    v = checks.judge_pods(pods, namespace="x", restarts_below=5)
    assert v.status == FAIL
    assert "b (5 restarts, limit < 5)" in v.evidence


def test_an_empty_namespace_is_not_healthy_unless_min_is_zero():
    v = checks.judge_pods(listing(), namespace="kube-system", selector="component=etcd", min=1)
    assert (v.status, v.evidence) == (FAIL, "0 pods in kube-system matching 'component=etcd' (need at least 1)")
    assert checks.judge_pods(listing(), namespace="x", min=0).status == PASS


def test_pod_ready():
    assert checks.judge_pod_ready(f.pod("p"), name="p", namespace="kube-system").status == PASS
    v = checks.judge_pod_ready(f.pod("p", waiting="CrashLoopBackOff"), name="p", namespace="ns")
    assert v.status == FAIL and "ContainersNotReady" in v.evidence and "CrashLoopBackOff" in v.evidence
    assert checks.judge_pod_ready(None, name="p", namespace="ns").evidence == "pod ns/p not found"


# --- namespaces --------------------------------------------------------------------------


def test_namespaces():
    active, terminating = f.namespace("monitoring"), f.namespace("old", phase="Terminating")
    assert checks.judge_namespace(active, name="monitoring", present=True).status == PASS
    assert checks.judge_namespace(terminating, name="old", present=True).status == FAIL
    assert checks.judge_namespace(None, name="x", present=True).status == FAIL
    assert checks.judge_namespace(None, name="x", present=False).status == PASS
    v = checks.judge_namespace(terminating, name="old", present=False)
    assert (v.status, v.evidence) == (FAIL, "namespace old exists (Terminating, created 2026-11-20T02:00:00Z)")


# --- rollouts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj, status, fragment",
    [
        (f.deployment("web"), PASS, "deployment default/web rolled out: 3/3 available (generation 4)"),
        (f.deployment("web", observed=3), FAIL, "waiting for the controller to observe generation 4 (observed 3)"),
        (f.deployment("web", updated=1), FAIL, "1 of 3 replicas updated"),
        (f.deployment("web", current=5), FAIL, "2 old replicas pending termination"),
        (f.deployment("web", available=2), FAIL, "2 of 3 updated replicas available"),
        (f.deployment("web", deadline_exceeded=True), FAIL, "exceeded its progress deadline"),
    ],
)
def test_deployment_rollout(obj, status, fragment):
    v = checks.judge_rollout(obj, kind="deployment", name="web", namespace="default")
    assert v.status == status
    assert fragment in v.evidence


@pytest.mark.parametrize(
    "obj, status, fragment",
    [
        (f.daemonset("cilium"), PASS, "daemonset kube-system/cilium rolled out: 5/5 available"),
        (f.daemonset("cilium", updated=3), FAIL, "3 of 5 updated pods scheduled"),
        (f.daemonset("cilium", available=4), FAIL, "4 of 5 updated pods available"),
        (f.daemonset("cilium", observed=1), FAIL, "observe generation 2"),
    ],
)
def test_daemonset_rollout(obj, status, fragment):
    v = checks.judge_rollout(obj, kind="daemonset", name="cilium", namespace="kube-system")
    assert (v.status, fragment in v.evidence) == (status, True), v.evidence


@pytest.mark.parametrize(
    "obj, status, fragment",
    [
        (f.statefulset("web"), PASS, "statefulset default/web rolled out: 3/3 ready (revision web-7d9f)"),
        (f.statefulset("web", ready=2), FAIL, "2 of 3 pods ready"),
        (f.statefulset("web", updated=1, update_revision="web-8e0a"), FAIL, "1 of 3 pods updated to revision web-8e0a"),
        (f.statefulset("web", partition=2, updated=1, update_revision="web-8e0a"), PASS, "partitioned roll out complete"),
        (f.statefulset("web", partition=1, updated=1, update_revision="web-8e0a"), FAIL, "1 of 2 pods updated (partition 1)"),
    ],
)
def test_statefulset_rollout(obj, status, fragment):
    v = checks.judge_rollout(obj, kind="statefulset", name="web", namespace="default")
    assert (v.status, fragment in v.evidence) == (status, True), v.evidence


def test_missing_workload():
    v = checks.judge_rollout(None, kind="deployment", name="x", namespace="apps")
    assert (v.status, v.evidence) == (FAIL, "deployment apps/x not found")


# --- network policies --------------------------------------------------------------------


def test_network_policies():
    pols = listing(f.network_policy("default-deny", default_deny=True), f.network_policy("allow-dns"))
    v = checks.judge_network_policies(pols, namespace="default", default_deny=True)
    assert v.status == PASS
    assert v.evidence == "2 NetworkPolicies in default: default-deny, allow-dns (default deny: default-deny)"
    v = checks.judge_network_policies(listing(f.network_policy("allow-dns")), namespace="default", default_deny=True)
    assert v.status == FAIL and "no default-deny ingress policy" in v.evidence
    v = checks.judge_network_policies(pols, namespace="default", names=("allow-dns", "allow-metrics"))
    assert v.status == FAIL and "missing: allow-metrics" in v.evidence
    assert checks.judge_network_policies(pols, namespace="default", min=3).status == FAIL
    v = checks.judge_network_policies(listing(), namespace="prod")
    assert (v.status, v.evidence) == (FAIL, "0 NetworkPolicies in prod; need at least 1")


# --- TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca():
    return f.make_ca()


def test_tls_cert_valid_long_enough(ca):
    pair = f.make_cert("prod-k8s-api.hansa.local", issuer=ca, days=400.5)
    v = checks.judge_tls_secret(f.tls_secret("api-tls", "ingress", pair), name="api-tls", namespace="ingress", min_days=365)
    assert v.status == PASS
    assert v.evidence.startswith("secret ingress/api-tls: CN=prod-k8s-api.hansa.local expires ")
    assert v.evidence.endswith(", 400 days left (> 365)")
    key_b64 = base64.b64encode(pair.key_pem).decode()
    assert "PRIVATE" not in v.evidence and key_b64[:40] not in v.evidence


def test_tls_cert_too_short_expired_or_not_yet_valid(ca):
    short = f.make_cert("a", issuer=ca, days=100.5)
    v = checks.judge_tls_secret(f.tls_secret("s", "ns", short), name="s", namespace="ns", min_days=365)
    assert v.status == FAIL and v.evidence.endswith("100 days left (need more than 365)")
    expired = f.make_cert("b", issuer=ca, days=-3.5, not_before_days=-30)
    v = checks.judge_tls_secret(f.tls_secret("s", "ns", expired), name="s", namespace="ns", min_days=1)
    assert v.status == FAIL and "CN=b expired" in v.evidence and "(3 days ago)" in v.evidence
    future = f.make_cert("c", issuer=ca, days=500, not_before_days=2)
    v = checks.judge_tls_secret(f.tls_secret("s", "ns", future), name="s", namespace="ns", min_days=1)
    assert v.status == FAIL and "not valid before" in v.evidence


def test_tls_secret_without_a_certificate():
    assert checks.judge_tls_secret(None, name="s", namespace="ns", min_days=1).evidence == "secret ns/s not found"
    opaque = {"metadata": {"name": "s"}, "type": "Opaque", "data": {"password": "eA=="}}
    v = checks.judge_tls_secret(opaque, name="s", namespace="ns", min_days=1)
    assert (v.status, v.evidence) == (FAIL, "secret ns/s has no tls.crt (type Opaque)")
    not_b64 = {"metadata": {"name": "s"}, "data": {"tls.crt": "%%%not base64%%%"}}
    assert checks.judge_tls_secret(not_b64, name="s", namespace="ns", min_days=1).status == ERROR
    not_pem = f.tls_secret("s", "ns", crt=b"hello")
    v = checks.judge_tls_secret(not_pem, name="s", namespace="ns", min_days=1)
    assert (v.status, v.evidence) == (ERROR, "secret ns/s: tls.crt holds no PEM certificate")


# --- version -----------------------------------------------------------------------------


def test_version():
    v = checks.judge_version(f.VERSION, server="https://127.0.0.1:6443")
    assert (v.status, v.evidence) == (PASS, "API server https://127.0.0.1:6443 reachable: Kubernetes v1.28.5 (linux/amd64)")
    assert checks.judge_version(f.VERSION, server="s", min_version="1.28").status == PASS
    assert checks.judge_version(f.VERSION, server="s", min_version="v1.28.5").status == PASS
    assert checks.judge_version(f.VERSION, server="s", min_version="1.29").status == FAIL
    assert checks.parse_version("v1.27.3+k3s1") == (1, 27, 3)
    assert checks.judge_version({"gitVersion": "weird"}, server="s", min_version="1.2").status == ERROR  # malformed
    assert checks.judge_version({"gitVersion": 5}, server="s", min_version="1.28").status == ERROR  # never a pass
