"""Attacks from a hostile (or broken) Kubernetes API server, over real HTTP on 127.0.0.1.

* It drips its answer one byte every 0.5 s, status line and headers included: every read
  gets a byte, so a per-read socket timeout never trips.  ``runbook probe --timeout 3``
  never returned, and Ctrl-C did not end it (asyncio waited for the stuck worker thread).
  Now the timeout is a deadline for the whole request, and the process ends on Ctrl-C.
* It answers 200 MB (with or without a Content-Length): read whole, that took 808 MB.
  Now a response over the limit is an ERROR, read no further.
* It answers ``/version`` with ``gitVersion: 5``: ``min_version="1.28"`` PASSED (5 > 1).
* Its node list has labels as a list: the operator saw ``AttributeError: 'list' object...``.
* The kubeconfig says ``insecure-skip-tls-verify: true``: the verdict said nothing.

The CLI runs in a subprocess, each run under a hang guard (a timeout far above the probe's
own), so a regression fails the test instead of hanging CI.  No timing is asserted.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.integration import fake_k8s as f

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = [sys.executable, "-m", "runbook.cli"]
HANG_GUARD = 45  # seconds; the probes below time out after 3 s

BOOK = """# Probed

## Phase 1: Checks (5 minutes)

### Task T-001: Cluster

- **Duration**: 5 minutes

#### Steps

1. **Look**
   ```bash
   kubectl version
   ```

#### Acceptance Criteria
- [ ] the API answers <!-- probe: PROBE -->
"""


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RUNBOOK_INVENTORY", "KUBECONFIG", "SSH_AUTH_SOCK") and "proxy" not in k.lower()}
    env["RUNBOOK_SESSION_DIR"] = str(tmp / "sessions")
    env["PYTHONPATH"] = str(ROOT)
    return env


def book(tmp: Path, probe: str) -> Path:
    path = tmp / "probed.md"
    path.write_text(BOOK.replace("PROBE", probe))
    return path


def probe_cli(tmp: Path, kubeconfig: Path, probe: str, *, timeout: str = "3",
              memory: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if memory:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    args = [*RUNBOOK, "probe", str(book(tmp, probe)), "--kubeconfig", str(kubeconfig), "--timeout", timeout]
    try:
        return subprocess.run(args, cwd=tmp, env=_env(tmp), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=HANG_GUARD, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        pytest.fail(f"runbook probe --timeout {timeout} still running after {HANG_GUARD}s")


def verdict(done: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """(status label, evidence line) of the single probe in the text report."""
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    label = lines[0].split("]")[0].lstrip("[")
    return label, lines[2].strip()


@pytest.fixture
def cluster() -> f.FakeCluster:
    return f.FakeCluster(nodes=[f.node(f"master-0{i}") for i in range(1, 4)])


@pytest.fixture
def api(cluster: f.FakeCluster):
    with f.FakeKubeAPI(cluster) as server:
        yield server


@pytest.fixture
def kubeconfig(api: f.FakeKubeAPI, tmp_path: Path) -> Path:
    return f.write_kubeconfig(tmp_path / "kubeconfig", api.url)


def test_a_dripping_server_is_a_timeout_at_the_deadline(cluster: f.FakeCluster, kubeconfig: Path, tmp_path: Path) -> None:
    """~330 bytes at one per 0.5 s would take close to three minutes; the probe says timeout after 3 s."""
    cluster.drip = 0.5
    done = probe_cli(tmp_path, kubeconfig, "k8s.api_reachable()")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert verdict(done) == ("ERROR", "timeout after 3s")


def test_a_dripping_body_after_prompt_headers_is_a_timeout_too(cluster: f.FakeCluster, kubeconfig: Path,
                                                               tmp_path: Path) -> None:
    """In process: headers at once, then a body of 10,000 nodes at one byte per 0.5 s."""
    import asyncio

    from runbook.probes import ProbeContext, run_probe

    cluster.nodes = [f.node(f"node-{i:05d}") for i in range(2000)]
    real_send = f._Handler._send

    def slow_body(self: f._Handler, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        for i in range(len(data)):
            try:
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
            except OSError:
                return
            if self.server.stopping.wait(0.5):
                return

    async def go() -> tuple[str, str]:
        async with ProbeContext(kubeconfig=str(kubeconfig), timeout=2, env={}) as ctx:
            outcome = await asyncio.wait_for(run_probe("k8s.nodes_ready()", ctx), HANG_GUARD)
            return outcome.status, outcome.evidence

    f._Handler._send = slow_body  # type: ignore[method-assign]
    try:
        assert asyncio.run(go()) == ("error", "timeout after 2s")
    finally:
        f._Handler._send = real_send  # type: ignore[method-assign]


def test_ctrl_c_ends_a_probe_stuck_on_a_dripping_server(cluster: f.FakeCluster, kubeconfig: Path,
                                                        tmp_path: Path) -> None:
    cluster.drip = 0.5
    proc = subprocess.Popen([*RUNBOOK, "probe", str(book(tmp_path, "k8s.api_reachable()")), "--kubeconfig",
                             str(kubeconfig), "--timeout", "600"], cwd=tmp_path, env=_env(tmp_path),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        give_up = time.monotonic() + HANG_GUARD
        while not cluster.requests and time.monotonic() < give_up:  # the request is being dripped
            time.sleep(0.1)
        assert cluster.requests, "the probe never reached the server"
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=HANG_GUARD)
        except subprocess.TimeoutExpired:
            pytest.fail(f"Ctrl-C did not end runbook probe within {HANG_GUARD}s")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (proc.returncode, out, err)
    assert "Traceback" not in err and "interrupted" in err, err


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "no-length"])
def test_a_200_mb_answer_is_refused_not_read(cluster: f.FakeCluster, kubeconfig: Path, tmp_path: Path,
                                             declared: bool) -> None:
    """Under a 700 MB address-space limit (the old reader needed more than 800 MB)."""
    cluster.huge, cluster.huge_declared = 200 * 1024 * 1024, declared
    done = probe_cli(tmp_path, kubeconfig, "k8s.nodes_ready()", timeout="30", memory=700 * 1024 * 1024)
    status, evidence = verdict(done)
    assert (status, done.returncode) == ("ERROR", 1), (done.stdout, done.stderr)
    assert "too large" in evidence and "33554432" in evidence, evidence


def test_a_version_of_the_wrong_type_never_passes(cluster: f.FakeCluster, kubeconfig: Path, tmp_path: Path) -> None:
    cluster.version = {"major": "1", "minor": "28", "gitVersion": 5, "platform": "linux/amd64"}
    done = probe_cli(tmp_path, kubeconfig, 'k8s.api_reachable(min_version="1.28")')
    assert done.returncode == 1
    assert verdict(done) == ("ERROR", f"malformed /version from {cluster_url(kubeconfig)}: gitVersion is int 5, not text")


def cluster_url(kubeconfig: Path) -> str:
    import yaml

    return yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]


def test_malformed_objects_are_an_error_in_plain_words(cluster: f.FakeCluster, kubeconfig: Path, tmp_path: Path) -> None:
    """A node whose labels are a list (``labels.get`` raised AttributeError)."""
    bad = f.node("master-09")
    bad["metadata"]["labels"] = ["node-role.kubernetes.io/control-plane"]
    cluster.nodes.append(bad)
    done = probe_cli(tmp_path, kubeconfig, 'k8s.nodes_ready(role="control-plane")')
    status, evidence = verdict(done)
    assert (status, done.returncode) == ("ERROR", 1)
    assert evidence.startswith("malformed response from http://127.0.0.1:"), evidence
    assert "Error" not in evidence and "object has no attribute" not in evidence, evidence


@pytest.fixture
def insecure_kubeconfig(cluster: f.FakeCluster, tmp_path: Path):
    ca = f.make_ca()
    cert = f.make_cert("kube-apiserver", issuer=ca, days=365, ip="127.0.0.1", dns=("localhost",))
    with f.FakeKubeAPI(cluster, tls=cert, workdir=tmp_path) as server:
        yield f.write_kubeconfig(tmp_path / "insecure-kubeconfig", server.url, insecure=True)


def test_insecure_skip_tls_verify_is_shown_in_the_verdict(insecure_kubeconfig: Path, tmp_path: Path) -> None:
    done = probe_cli(tmp_path, insecure_kubeconfig, "k8s.nodes_ready(min=3)", timeout="20")
    status, evidence = verdict(done)
    assert status == "PASS" and evidence.endswith("[TLS NOT VERIFIED: insecure-skip-tls-verify in the kubeconfig]"), \
        evidence


async def test_insecure_skip_tls_verify_is_journaled(insecure_kubeconfig: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the TUI's probe runner, which journals every result as a ProbeResult."""
    from runbook.parse.parser import parse_file
    from sessions.engine.session import Session
    from tui.probing import run_probes

    monkeypatch.setenv("KUBECONFIG", str(insecure_kubeconfig))
    runbook = parse_file(str(book(tmp_path, "k8s.nodes_ready(min=3)")))
    session = Session.create(runbook, root=tmp_path / "sessions")
    try:
        assert await run_probes(session, SimpleNamespace(inventory=None), runbook.task("T-001").acceptance) == 1
    finally:
        session.close()
    records = [json.loads(line) for line in (session.dir / "journal.jsonl").read_text().splitlines()]
    results = [r for r in records if "TLS NOT VERIFIED" in json.dumps(r)]
    assert len(results) == 1 and "insecure-skip-tls-verify" in json.dumps(results[0]), records[-1]
