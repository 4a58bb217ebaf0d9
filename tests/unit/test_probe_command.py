"""``runbook probe`` on model objects (the parser-independent part of the command)."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from runbook.commands.probe import RoutingExecutor, run_command, select_checkboxes
from runbook.errors import UserError
from runbook.model import Checkbox, Phase, Runbook, Section, Task
from runbook.targets.inventory import Target
from runbook.transport.executor import RunResult


def _box(key, line, probe=None, text="criterion"):
    return Checkbox(key=key, text=text, checked=False, line=line, probe=probe)


def make_runbook() -> Runbook:
    t1 = Task(
        id="A-1",
        title="one",
        line=10,
        prerequisites=(_box("A-1/prerequisites/0", 12, "cmd(run='true')"),),
        acceptance=(_box("A-1/acceptance/0", 20, "k8s.api_reachable()"), _box("A-1/acceptance/1", 21)),
        extra=(Section("Smoke", 4, 22, checkboxes=(_box("A-1/smoke/0", 23, "k8s.nodes_ready()"),)),),
    )
    t2 = Task(id="B-2", title="two", line=30, acceptance=(_box("B-2/acceptance/0", 40, "k8s.nodes_ready(min=1)"),))
    final = Section("Final gate", 2, 50, checkboxes=(_box("section:final/0", 51, "k8s.api_reachable()"),))
    return Runbook(title="t", path="rb.md", sha256="0" * 64, phases=(Phase("1", "p", 5, tasks=(t1, t2)),), sections=(final,))


def args(**kw) -> argparse.Namespace:
    base = dict(task=None, kubeconfig=None, context=None, timeout=2.0, inventory=None, format="text")
    base.update(kw)
    return argparse.Namespace(**base)


def test_select_checkboxes_whole_document_and_one_task():
    rb = make_runbook()
    assert [b.key for b in select_checkboxes(rb, None)] == [
        "A-1/prerequisites/0", "A-1/acceptance/0", "A-1/smoke/0", "B-2/acceptance/0", "section:final/0",
    ]
    assert [b.key for b in select_checkboxes(rb, "A-1")] == ["A-1/prerequisites/0", "A-1/acceptance/0", "A-1/smoke/0"]
    with pytest.raises(UserError) as info:
        select_checkboxes(rb, "C-3")
    assert (str(info.value), info.value.exit_code) == ("rb.md: no task C-3 (tasks: A-1, B-2)", 2)


class Recorder:
    """An executor stand-in that records and succeeds (cmd probes only need ``run``)."""

    def __init__(self):
        self.ran = []

    async def run(self, target, script, on_output, options):
        self.ran.append((target.name, script, options.timeout))
        on_output(target.name, "stdout", b"ok\n")
        return RunResult(host=target.name, outcome="succeeded", exit_status=0)


def test_not_configured_never_passes_and_is_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    out = io.StringIO()
    rec = Recorder()
    code = run_command(make_runbook(), args(task="A-1"), out=out, executor=rec,
                       resolve_targets=lambda p: [Target.local_machine()])
    text = out.getvalue()
    assert code == 1
    assert rec.ran == [("local", "true", 2.0)]
    assert "[PASS]           rb.md:12 A-1/prerequisites/0: criterion" in text
    assert "[NOT CONFIGURED] rb.md:20 A-1/acceptance/0: criterion" in text
    assert "3 probes: 1 passed, 0 failed, 0 errors, 2 not configured -- FAILED" in text
    assert "  A-1/smoke/0: Kubernetes not configured" in text


def test_json_report(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    out = io.StringIO()
    assert run_command(make_runbook(), args(task="B-2", format="json"), out=out) == 1
    doc = json.loads(out.getvalue())
    assert doc["file"] == "rb.md" and doc["task"] == "B-2" and doc["ok"] is False
    (result,) = doc["results"]
    assert set(result) == {"key", "line", "text", "probe", "status", "evidence", "duration_s"}
    assert (result["key"], result["line"], result["status"]) == ("B-2/acceptance/0", 40, "not_configured")


def test_no_probes_is_not_a_failure():
    rb = Runbook(title="t", path="rb.md", sha256="0" * 64)
    out = io.StringIO()
    assert run_command(rb, args(), out=out) == 0
    assert out.getvalue().startswith("rb.md: no probes (add <!-- probe: ... --> after a criterion;")
    out = io.StringIO()
    assert run_command(rb, args(format="json"), out=out) == 0
    assert json.loads(out.getvalue())["summary"]["total"] == 0


def test_bad_timeout_is_a_usage_error():
    with pytest.raises(UserError, match="--timeout must be > 0"):
        run_command(make_runbook(), args(timeout=-1))


async def test_routing_executor_reports_a_missing_executor_per_host():
    def broken():
        raise RuntimeError("ssh unavailable")

    rex = RoutingExecutor({"local": broken, "ssh": broken})
    result = await rex.run(Target(name="m1", host="m1"), "true", lambda *a: None, None)
    assert (result.host, result.outcome, result.error) == ("m1", "error", "no executor: ssh unavailable")
    await rex.close()
