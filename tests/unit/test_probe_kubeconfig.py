"""Where the kubeconfig comes from, and what happens without one or with a bad one."""

from __future__ import annotations

import dataclasses
import os

import pytest

from runbook.probes import NOT_CONFIGURED, ProbeContext, probe_event_fields, run_probe
from runbook.probes.kubeconfig import (
    KubeConfigError,
    KubeconfigSource,
    KubeNotConfigured,
    build_api_client,
    find_kubeconfig,
    list_contexts,
)
from runbook.probes.runner import ProbeOutcome
from tests.integration.fake_k8s import write_kubeconfig


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


def test_explicit_path_wins(tmp_path, home):
    explicit = write_kubeconfig(tmp_path / "explicit", "http://127.0.0.1:1")
    env_file = write_kubeconfig(tmp_path / "env", "http://127.0.0.1:2")
    src = find_kubeconfig(str(explicit), {"KUBECONFIG": str(env_file), "HOME": str(home)})
    assert src == KubeconfigSource(str(explicit), "--kubeconfig")


def test_kubeconfig_env_list_keeps_existing_files(tmp_path, home):
    a = write_kubeconfig(tmp_path / "a", "http://127.0.0.1:1")
    b = write_kubeconfig(tmp_path / "b", "http://127.0.0.1:2")
    listed = os.pathsep.join([str(a), str(tmp_path / "missing"), str(b)])
    src = find_kubeconfig(None, {"KUBECONFIG": listed, "HOME": str(home)})
    assert src == KubeconfigSource(f"{a}{os.pathsep}{b}", "$KUBECONFIG")


def test_home_default(home):
    (home / ".kube").mkdir()
    write_kubeconfig(home / ".kube" / "config", "http://127.0.0.1:1")
    assert find_kubeconfig(None, {"HOME": str(home), "KUBECONFIG": ""}).origin == "~/.kube/config"


def test_nothing_means_not_configured(tmp_path, home):
    with pytest.raises(KubeNotConfigured, match=r"no --kubeconfig, \$KUBECONFIG or ~/.kube/config"):
        find_kubeconfig(None, {"HOME": str(home)})
    with pytest.raises(KubeNotConfigured, match="names no existing file"):
        find_kubeconfig(None, {"HOME": str(home), "KUBECONFIG": str(tmp_path / "nope")})


def test_an_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(KubeConfigError, match="no such file"):
        find_kubeconfig(str(tmp_path / "nope"), {})
    with pytest.raises(KubeConfigError, match="is a directory"):
        find_kubeconfig(str(tmp_path), {})


def test_unknown_context_and_garbage_are_one_line_errors(tmp_path):
    path = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:1", extra_contexts={"staging": "http://127.0.0.1:2"})
    src = KubeconfigSource(str(path), "--kubeconfig")
    with pytest.raises(KubeConfigError, match="context 'prod' not found"):
        build_api_client(src, "prod")
    assert list_contexts(src) == (["fake", "staging"], "fake")
    garbage = tmp_path / "garbage"
    garbage.write_text("clusters: [unterminated\n")
    with pytest.raises(KubeConfigError) as info:
        build_api_client(KubeconfigSource(str(garbage), "--kubeconfig"), None)
    assert "\n" not in str(info.value) and f"{garbage}:1: invalid YAML" in str(info.value)  # where the [ opened
    as_list = tmp_path / "as-list"
    as_list.write_text("- clusters: []\n- users: []\n")
    with pytest.raises(KubeConfigError, match=r"as-list: the top level is a list, not a mapping"):
        build_api_client(KubeconfigSource(str(as_list), "--kubeconfig"), None)


def test_client_has_retries_disabled(tmp_path):
    path = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:1")
    client = build_api_client(KubeconfigSource(str(path), "--kubeconfig"), None)
    try:
        assert client.configuration.retries is False
        assert client.configuration.host == "http://127.0.0.1:1"
        assert client.rest_client.pool_manager.connection_pool_kw["retries"].total is False  # urllib3: no retries
    finally:
        client.close()


async def test_probes_without_kubeconfig_say_not_configured(home):
    ctx = ProbeContext(env={"HOME": str(home)}, timeout=1)
    outcome = await run_probe('k8s.nodes_ready(min=5, role="control-plane")', ctx, key="T/acceptance/0")
    assert outcome.status == NOT_CONFIGURED
    assert not outcome.passed
    assert outcome.evidence == "Kubernetes not configured: no --kubeconfig, $KUBECONFIG or ~/.kube/config"


async def test_bad_kubeconfig_is_an_error_outcome_not_an_exception(tmp_path):
    path = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:1")
    async with ProbeContext(kubeconfig=str(path), context="nope", timeout=2) as ctx:
        outcome = await run_probe("k8s.api_reachable()", ctx)
    assert (outcome.status, outcome.evidence) == ("error", f"kubeconfig {path}: context 'nope' not found")


async def test_invalid_expression_is_an_error_outcome(home):
    outcome = await run_probe("k8s.nodes_ready(min=five)", ProbeContext(env={"HOME": str(home)}), key="k")
    assert outcome.status == "error"
    assert outcome.evidence.startswith('invalid probe: five is not a value: quote strings, e.g. "five"')


async def test_evidence_is_redacted(home):
    ctx = ProbeContext(env={"HOME": str(home)}, redact=lambda s: s.replace("KUBECONFIG", "[redacted]"))
    outcome = await run_probe("k8s.api_reachable()", ctx)
    assert "[redacted]" in outcome.evidence and "KUBECONFIG" not in outcome.evidence


def test_outcome_fields_match_the_journal_event():
    from sessions.journal.events import ProbeResult

    outcome = ProbeOutcome(key="T/acceptance/0", probe="k8s.api_reachable()", status="pass", evidence="ok", duration_s=0.12345)
    fields = probe_event_fields(outcome)
    assert set(fields) == {f.name for f in dataclasses.fields(ProbeResult)}
    assert [f.name for f in dataclasses.fields(ProbeOutcome)] == [f.name for f in dataclasses.fields(ProbeResult)]
    event = ProbeResult(**fields)
    assert event.to_json() == {"type": "probe_result", **fields, "duration_s": 0.123}


def test_context_rejects_a_non_positive_timeout():
    with pytest.raises(ValueError):
        ProbeContext(timeout=0)
