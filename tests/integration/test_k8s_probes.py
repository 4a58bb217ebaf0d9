"""Kubernetes probes over real HTTP(S) against a local fake API server (127.0.0.1 only).

Each probe goes through the official ``kubernetes`` client, a kubeconfig file
with token auth, a real socket, and a server answering with realistic bodies.
"""

from __future__ import annotations

import asyncio
import json
import os
import textwrap

import pytest

from runbook.model import Checkbox
from runbook.probes import ERROR, FAIL, PASS, ProbeContext, run_probe, run_probes
from tests.integration import fake_k8s as f

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
    """Traffic must go straight to 127.0.0.1, never through a proxy from the environment."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def ca():
    return f.make_ca()


def realistic_cluster(ca: f.CertPair) -> f.FakeCluster:
    masters = [f.node(f"master-0{i}", labels={"topology.kubernetes.io/zone": "az-a" if i < 3 else "az-b"}) for i in range(1, 6)]
    workers = [f.node("worker-01", roles=("worker",)), f.node("worker-02", roles=("worker",), ready=False)]
    system = [f.pod(f"etcd-master-0{i}", labels={"component": "etcd", "tier": "control-plane"}, node_name=f"master-0{i}")
              for i in range(1, 6)]
    system += [f.pod("coredns-5d78c9869d-4xk2p", restarts=1), f.pod("cilium-8xq2z", labels={"k8s-app": "cilium"})]
    apps = [f.pod("web-7d4b9c-abcde", "apps"), f.pod("api-6f8d7b-zzzzz", "apps", waiting="CrashLoopBackOff", restarts=12)]
    return f.FakeCluster(
        nodes=masters + workers,
        pods=system + apps,
        namespaces=[f.namespace(n) for n in ("default", "kube-system", "apps", "monitoring")]
        + [f.namespace("legacy", phase="Terminating")],
        deployments=[f.deployment("web", "apps"), f.deployment("api", "apps", updated=1)],
        daemonsets=[f.daemonset("cilium", "kube-system")],
        statefulsets=[f.statefulset("postgres", "apps", ready=2)],
        networkpolicies=[f.network_policy("default-deny", "apps", default_deny=True), f.network_policy("allow-dns", "apps")],
        secrets=[
            f.tls_secret("api-tls", "ingress", f.make_cert("prod-k8s-api.hansa.local", issuer=ca, days=400.5)),
            f.tls_secret("old-tls", "ingress", f.make_cert("old.hansa.local", issuer=ca, days=20.5)),
        ],
    )


@pytest.fixture
def cluster(ca):
    return realistic_cluster(ca)


@pytest.fixture
def api(cluster):
    with f.FakeKubeAPI(cluster) as server:
        yield server


@pytest.fixture
def kubeconfig(api, tmp_path):
    return f.write_kubeconfig(tmp_path / "kubeconfig", api.url)


@pytest.fixture
async def ctx(kubeconfig):
    async with ProbeContext(kubeconfig=str(kubeconfig), timeout=5, env={}) as context:
        yield context


CASES = [
    ("k8s.api_reachable()", PASS, "reachable: Kubernetes v1.28.5 (linux/amd64)"),
    ('k8s.api_reachable(min_version="1.29")', FAIL, "need at least 1.29"),
    ('k8s.nodes_ready(min=5, role="control-plane")', PASS,
     "role=control-plane: 5/5 Ready (need 5): master-01, master-02, master-03, master-04, master-05"),
    ('k8s.nodes_ready(role="worker")', FAIL, "1/2 Ready: worker-01; not ready: worker-02 (NotReady: KubeletNotReady)"),
    ('k8s.nodes_ready(min=2, selector="topology.kubernetes.io/zone=az-a")', PASS, "2/2 Ready (need 2): master-01, master-02"),
    ('k8s.nodes_ready(min=3, selector="topology.kubernetes.io/zone in (az-c)")', FAIL, "no nodes match selector"),
    ('k8s.pods_healthy(namespace="kube-system")', PASS, "7/7 pods healthy in kube-system (7 Running); most restarts: 1"),
    ('k8s.pods_healthy(namespace="kube-system", selector="component=etcd", min=5)', PASS, "5/5 pods healthy in kube-system matching"),
    ('k8s.pods_healthy(namespace="kube-system", restarts_below=1)', FAIL, "coredns-5d78c9869d-4xk2p (1 restarts, limit < 1)"),
    ('k8s.pods_healthy(namespace="apps")', FAIL, "1/2 pods unhealthy in apps: api-6f8d7b-zzzzz (CrashLoopBackOff in main, 12 restarts)"),
    ('k8s.pods_healthy(namespace="empty")', FAIL, "0 pods in empty (need at least 1)"),
    ('k8s.pod_ready("web-7d4b9c-abcde", namespace="apps")', PASS, "pod apps/web-7d4b9c-abcde Ready (Running on master-01"),
    ('k8s.pod_ready("api-6f8d7b-zzzzz", namespace="apps")', FAIL, "not Ready: ContainersNotReady"),
    ('k8s.pod_ready("ghost", namespace="apps")', FAIL, "pod apps/ghost not found"),
    ('k8s.namespace_exists("monitoring")', PASS, "namespace monitoring exists (Active"),
    ('k8s.namespace_exists("observability")', FAIL, "namespace observability not found"),
    ('k8s.namespace_absent("observability")', PASS, "namespace observability not found"),
    ('k8s.namespace_absent("legacy")', FAIL, "namespace legacy exists (Terminating"),
    ('k8s.deployment_rolled_out("web", namespace="apps")', PASS, "deployment apps/web rolled out: 3/3 available"),
    ('k8s.deployment_rolled_out("api", namespace="apps")', FAIL, "deployment apps/api: 1 of 3 replicas updated"),
    ('k8s.rolled_out(kind="deployment", name="nope", namespace="apps")', FAIL, "deployment apps/nope not found"),
    ('k8s.daemonset_rolled_out("cilium", namespace="kube-system")', PASS, "daemonset kube-system/cilium rolled out: 5/5"),
    ('k8s.statefulset_rolled_out("postgres", namespace="apps")', FAIL, "statefulset apps/postgres: 2 of 3 pods ready"),
    ('k8s.network_policies(namespace="apps", default_deny=true)', PASS,
     "2 NetworkPolicies in apps: default-deny, allow-dns (default deny: default-deny)"),
    ('k8s.network_policies(namespace="default")', FAIL, "0 NetworkPolicies in default; need at least 1"),
    ('k8s.tls_cert_days("api-tls", namespace="ingress", min=365)', PASS,
     "secret ingress/api-tls: CN=prod-k8s-api.hansa.local expires"),
    ('k8s.tls_cert_days("old-tls", namespace="ingress", min=30)', FAIL, "20 days left (need more than 30)"),
    ('k8s.tls_cert_days("nope", namespace="ingress")', FAIL, "secret ingress/nope not found"),
]


@pytest.mark.parametrize("expr, status, fragment", CASES, ids=[c[0] for c in CASES])
async def test_probe_over_http(ctx, cluster, expr, status, fragment):
    outcome = await run_probe(expr, ctx, key="T/acceptance/0")
    assert (outcome.status, outcome.key, outcome.probe) == (status, "T/acceptance/0", expr), outcome.evidence
    assert fragment in outcome.evidence
    assert cluster.requests, "the probe never reached the server"


async def test_token_and_query_reach_the_server(ctx, cluster):
    await run_probe('k8s.nodes_ready(min=2, selector="topology.kubernetes.io/zone=az-a")', ctx)
    seen = cluster.requests[-1]
    assert seen.path == "/api/v1/nodes"
    assert seen.query["labelSelector"] == ["topology.kubernetes.io/zone=az-a"]
    assert seen.headers["authorization"] == f"Bearer {f.TOKEN}"
    await run_probe('k8s.tls_cert_days("api-tls", namespace="ingress")', ctx)
    assert cluster.requests[-1].path == "/api/v1/namespaces/ingress/secrets/api-tls"


async def test_the_tls_key_never_reaches_the_evidence(ctx, cluster):
    outcome = await run_probe('k8s.tls_cert_days("api-tls", namespace="ingress")', ctx)
    secret = next(s for s in cluster.secrets if s["metadata"]["name"] == "api-tls")
    assert secret["data"]["tls.key"][:32] not in outcome.evidence
    assert "PRIVATE KEY" not in outcome.evidence


async def test_wrong_token_is_401(ctx, cluster):
    cluster.token = "another-token"
    outcome = await run_probe("k8s.api_reachable()", ctx)
    assert (outcome.status, outcome.evidence) == (ERROR, "401 Unauthorized: the API server rejected the credentials")


@pytest.mark.parametrize(
    "expr, resource, message",
    [
        ("k8s.nodes_ready()", "nodes",
         f'403 Forbidden: nodes is forbidden: User "{f.USER}" cannot list resource "nodes" in API group "" at the cluster scope'),
        ('k8s.tls_cert_days("api-tls", namespace="ingress")', "secrets",
         f'403 Forbidden: secrets "api-tls" is forbidden: User "{f.USER}" cannot get resource "secrets" in API group "" '
         'in the namespace "ingress"'),
        ('k8s.deployment_rolled_out("web", namespace="apps")', "deployments",
         f'403 Forbidden: deployments "web" is forbidden: User "{f.USER}" cannot get resource "deployments" in API group "apps"'),
    ],
)
async def test_forbidden_is_shown_as_such(ctx, cluster, expr, resource, message):
    cluster.forbidden.add(resource)
    outcome = await run_probe(expr, ctx)
    assert outcome.status == ERROR
    assert outcome.evidence.startswith(message)


async def test_a_slow_server_times_out_without_blocking_the_event_loop(ctx, cluster):
    cluster.delay = 5.0  # the server sleeps longer than the probe may wait
    ticks = 0
    done = asyncio.Event()

    async def ticker():
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    try:
        outcome = await run_probe('k8s.nodes_ready(min=5, timeout=0.5)', ctx)
    finally:
        done.set()
        await task
    assert (outcome.status, outcome.evidence) == (ERROR, "timeout after 0.5s")
    assert ticks >= 2, "the event loop was blocked while the probe waited"
    assert cluster.requests[-1].path == "/api/v1/nodes"


async def test_context_timeout_applies_when_the_expression_has_none(kubeconfig, cluster):
    cluster.delay = 5.0
    async with ProbeContext(kubeconfig=str(kubeconfig), timeout=0.3, env={}) as ctx:
        outcome = await run_probe('k8s.pods_healthy(namespace="kube-system")', ctx)
    assert (outcome.status, outcome.evidence) == (ERROR, "timeout after 0.3s")


async def test_unreachable_server_fails_fast_and_says_so(tmp_path):
    port = f.free_port()  # bound, then closed: nothing listens
    kc = f.write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{port}")
    async with ProbeContext(kubeconfig=str(kc), timeout=5, env={}) as ctx:
        outcome = await run_probe("k8s.nodes_ready()", ctx)
    assert (outcome.status, outcome.evidence) == (ERROR, f"unreachable: connection refused to http://127.0.0.1:{port}")


async def test_context_is_selectable(api, tmp_path):
    dead = f"http://127.0.0.1:{f.free_port()}"
    kc = f.write_kubeconfig(tmp_path / "kc", dead, context="dead", extra_contexts={"fake": api.url})
    async with ProbeContext(kubeconfig=str(kc), env={}) as ctx:
        assert (await run_probe("k8s.api_reachable()", ctx)).evidence.startswith("unreachable")
    async with ProbeContext(kubeconfig=str(kc), context="fake", env={}) as ctx:
        outcome = await run_probe("k8s.api_reachable()", ctx)
    assert outcome.status == PASS and api.url in outcome.evidence


async def test_kubeconfig_from_the_environment(api, tmp_path):
    kc = f.write_kubeconfig(tmp_path / "config", api.url)
    async with ProbeContext(env={"KUBECONFIG": str(kc), "HOME": str(tmp_path)}) as ctx:
        assert (await run_probe("k8s.api_reachable()", ctx)).status == PASS
    (tmp_path / ".kube").mkdir()
    os.replace(kc, tmp_path / ".kube" / "config")
    async with ProbeContext(env={"HOME": str(tmp_path)}) as ctx:
        assert (await run_probe("k8s.api_reachable()", ctx)).status == PASS


async def test_run_probes_keeps_order_and_reuses_one_client(ctx):
    boxes = [
        Checkbox("T/acceptance/0", "a", False, 10, 'k8s.nodes_ready(min=5, role="control-plane")'),
        Checkbox("T/acceptance/1", "b", False, 11, None),
        Checkbox("T/acceptance/2", "c", False, 12, 'k8s.pods_healthy(namespace="apps")'),
        Checkbox("T/acceptance/3", "d", False, 13, "k8s.api_reachable()"),
    ]
    outcomes = await run_probes(boxes, ctx, concurrency=3)
    assert [(o.key, o.status) for o in outcomes] == [("T/acceptance/0", PASS), ("T/acceptance/2", FAIL), ("T/acceptance/3", PASS)]
    first = await ctx.api_client()
    assert first is await ctx.api_client()


# --- HTTPS ---------------------------------------------------------------------------------


@pytest.fixture
def https_api(ca, cluster, tmp_path):
    server_cert = f.make_cert("kube-apiserver", issuer=ca, days=365, ip="127.0.0.1", dns=("localhost",))
    with f.FakeKubeAPI(cluster, tls=server_cert, workdir=tmp_path) as server:
        yield server


async def test_https_with_the_ca_from_the_kubeconfig(https_api, ca, cluster, tmp_path):
    kc = f.write_kubeconfig(tmp_path / "kc", https_api.url, ca_pem=ca.cert_pem)
    async with ProbeContext(kubeconfig=str(kc), timeout=5, env={}) as ctx:
        version = await run_probe("k8s.api_reachable()", ctx)
        nodes = await run_probe('k8s.nodes_ready(min=5, role="control-plane")', ctx)
    assert https_api.url.startswith("https://127.0.0.1:")
    assert (version.status, version.evidence) == (PASS, f"API server {https_api.url} reachable: Kubernetes v1.28.5 (linux/amd64)")
    assert nodes.status == PASS
    assert cluster.requests[-1].headers["authorization"] == f"Bearer {f.TOKEN}"


async def test_https_with_an_unknown_ca_is_a_tls_error(https_api, cluster, tmp_path):
    other_ca = f.make_ca("someone-else")
    kc = f.write_kubeconfig(tmp_path / "kc", https_api.url, ca_pem=other_ca.cert_pem)
    async with ProbeContext(kubeconfig=str(kc), timeout=5, env={}) as ctx:
        outcome = await run_probe("k8s.api_reachable()", ctx)
    assert outcome.status == ERROR
    assert outcome.evidence.startswith(f"TLS error talking to {https_api.url}: certificate verify failed")
    assert not cluster.requests, "no request may be sent over an unverified connection"


# --- runbook probe (the CLI) -----------------------------------------------------------------

RUNBOOK = """\
# Probe test runbook

## Phase 3: Kubernetes Core (1 hour)

### Task PROD-K8S-002: Join masters

- **Duration**: 30 minutes
- **Dependencies**: None
- **Risk**: LOW

#### Steps

1. **Check the nodes**

```bash
kubectl get nodes
```

#### Acceptance Criteria

- [ ] All 5 control plane nodes show `Ready` status
  <!-- probe: k8s.nodes_ready(min=5, role="control-plane") -->
- [ ] All kube-system pods healthy <!-- probe: k8s.pods_healthy(namespace="kube-system") -->
- [ ] etcd backup from 5-node cluster verified

### Task PROD-K8S-003: Deploy apps

- **Duration**: 10 minutes
- **Dependencies**: PROD-K8S-002
- **Risk**: LOW

#### Steps

1. **Deploy**

```bash
echo deploy
```

#### Acceptance Criteria

- [ ] App pods healthy
<!-- probe: k8s.pods_healthy(namespace="apps") -->
- [ ] Local marker present <!-- probe: cmd(target="local", run="test -e MARKER") -->
"""


@pytest.fixture
def runbook_file(tmp_path):
    path = tmp_path / "probes.md"
    path.write_text(RUNBOOK.replace("MARKER", str(tmp_path / "marker")))
    return path


def cli(*argv: str) -> int:
    from runbook.cli import main

    return main(list(argv))


def test_cli_all_pass_exits_0(runbook_file, kubeconfig, capsys):
    assert cli("probe", str(runbook_file), "--task", "PROD-K8S-002", "--kubeconfig", str(kubeconfig)) == 0
    out = capsys.readouterr().out
    assert f"[PASS] {runbook_file}:21 PROD-K8S-002/acceptance/0: All 5 control plane nodes show `Ready` status" in out
    assert 'probe: k8s.pods_healthy(namespace="kube-system")' in out
    assert "2 probes: 2 passed, 0 failed, 0 errors, 0 not configured -- all passed" in out


def test_cli_any_failure_exits_1_and_json_says_which(runbook_file, kubeconfig, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RUNBOOK_INVENTORY", raising=False)
    (tmp_path / "marker").write_text("")
    assert cli("probe", str(runbook_file), "--kubeconfig", str(kubeconfig), "--format", "json") == 1
    doc = json.loads(capsys.readouterr().out)
    statuses = {r["key"]: r["status"] for r in doc["results"]}
    assert statuses == {
        "PROD-K8S-002/acceptance/0": PASS,
        "PROD-K8S-002/acceptance/1": PASS,
        "PROD-K8S-003/acceptance/0": FAIL,
        "PROD-K8S-003/acceptance/1": PASS,  # the cmd probe ran through the local executor
    }
    assert doc["summary"] == {"pass": 3, "fail": 1, "error": 0, "not_configured": 0, "total": 4}
    assert doc["ok"] is False
    failed = next(r for r in doc["results"] if r["status"] == FAIL)
    assert "CrashLoopBackOff" in failed["evidence"] and failed["line"] > 0 and failed["text"] == "App pods healthy"


def test_cli_not_configured_is_a_failure_and_says_so(runbook_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert cli("probe", str(runbook_file), "--task", "PROD-K8S-002") == 1
    out = capsys.readouterr().out
    assert "[NOT CONFIGURED] " in out
    assert "0 passed, 0 failed, 0 errors, 2 not configured -- FAILED" in out
    assert "not configured counts as a failure (these never pass):" in out
    assert "  PROD-K8S-002/acceptance/0: Kubernetes not configured: no --kubeconfig, $KUBECONFIG or ~/.kube/config" in out


def test_cli_unknown_task_is_a_usage_error(runbook_file, capsys):
    assert cli("probe", str(runbook_file), "--task", "NOPE-1") == 2
    assert "no task NOPE-1 (tasks: PROD-K8S-002, PROD-K8S-003)" in capsys.readouterr().err


def test_cli_without_probes(tmp_path, capsys):
    path = tmp_path / "plain.md"
    path.write_text(textwrap.dedent(RUNBOOK).replace("<!-- probe:", "<!-- note:"))
    assert cli("probe", str(path)) == 0
    assert "no probes" in capsys.readouterr().out


def test_cli_unreachable_server_exits_1_quickly(runbook_file, tmp_path, capsys):
    kc = f.write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{f.free_port()}")
    assert cli("probe", str(runbook_file), "--task", "PROD-K8S-002", "--kubeconfig", str(kc), "--timeout", "3") == 1
    out = capsys.readouterr().out
    assert out.count("[ERROR] ") == 2 and "unreachable: connection refused to http://127.0.0.1:" in out


def test_fake_server_only_binds_loopback(api, https_api):
    for server in (api, https_api):
        assert server._server.server_address[0] == "127.0.0.1"
        assert server.url.startswith(("http://127.0.0.1:", "https://127.0.0.1:"))
