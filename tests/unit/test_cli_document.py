"""``runbook lint``, ``show`` and ``plan`` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

from runbook.cli import main
from runbook.model import Diagnostic
from tests.conftest import DEMO, PROD


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_lint_prod_exits_1_with_file_line_diagnostics(capsys):
    code, out, err = run(capsys, "lint", str(PROD))
    assert code == 1
    lines = out.splitlines()
    assert f"{PROD}:753: error: code fence ```` opened here runs to line 770" in out
    assert all(line.startswith(f"{PROD}:") for line in lines)
    assert "2 error(s)" in err


def test_lint_demo_exits_0(capsys):
    code, out, _ = run(capsys, "lint", str(DEMO))
    assert code == 0 and ": info: " in out and ": error: " not in out


def test_lint_json(capsys):
    code, out, _ = run(capsys, "lint", "--format", "json", str(PROD), str(DEMO))
    data = json.loads(out)
    assert code == 1 and data["exit_code"] == 1
    prod, demo = data["files"]
    assert prod["errors"] == 2 and demo["errors"] == 0
    assert {"path", "line", "severity", "code", "message"} <= set(prod["diagnostics"][0])


def test_lint_unreadable_file_exits_2_but_checks_the_others(capsys, tmp_path):
    missing = tmp_path / "missing.md"
    code, out, err = run(capsys, "lint", str(DEMO), str(missing))
    assert code == 2
    assert f"runbook: {missing}: no such file" in err and "Traceback" not in err
    assert str(DEMO) in out


@pytest.mark.parametrize("content, message", [(b"", "file is empty"), (b"\x00\x01\x02", "binary file"),
                                              (b"# x\n\xc3\x28\n", "not valid UTF-8")])
@pytest.mark.parametrize("command", ["lint", "show", "plan"])
def test_bad_input_one_line_exit_2(capsys, tmp_path, content, message, command):
    path = tmp_path / "bad.md"
    path.write_bytes(content)
    code, _out, err = run(capsys, command, str(path))
    assert code == 2 and err.count("\n") == 1 and message in err and str(path) in err


def test_bad_input_end_to_end_no_traceback(tmp_path):
    path = tmp_path / "dir.md"
    path.mkdir()
    proc = subprocess.run([sys.executable, "-m", "runbook.cli", "show", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"runbook: {path}: is a directory, not a runbook"


def test_show_json_shape(capsys):
    code, out, _ = run(capsys, "show", str(PROD), "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["title"].startswith("PROD") and len(data["sha256"]) == 64
    assert [p["number"] for p in data["phases"]] == ["0", "3", "6", "12"]
    assert sum(len(p["tasks"]) for p in data["phases"]) == 6
    assert data["phases"][0]["duration_minutes"] == 240
    task = data["phases"][1]["tasks"][0]
    for key in ("id", "title", "category", "duration_minutes", "dependencies", "risk", "prerequisites", "steps",
                "acceptance", "rollback", "notes", "line"):
        assert key in task
    assert task["risk"] == "CRITICAL"
    step = task["steps"][0]
    assert {"number", "title", "line", "blocks", "expected", "placeholders"} <= set(step)
    assert {k: step["blocks"][0][k] for k in ("kind", "lang", "path", "line")} == {
        "kind": "file", "lang": "yaml", "path": "/tmp/kubeadm-config.yaml", "line": 286}
    assert {"text", "checked", "line"} <= set(task["prerequisites"][0])
    join = data["phases"][1]["tasks"][1]["steps"][1]
    assert {"name": "CERT_KEY", "secret": True} .items() <= join["placeholders"][2].items()
    assert len(data["checkboxes"]) == 95
    assert any(d["code"] == "stray-fence" and d["line"] == 753 for d in data["diagnostics"])
    assert data["phases"][0]["gates"][0]["steps"][0]["placeholders"][0]["name"] == "PROD_LDAP_PASS"


def test_show_text_prints_resolved_targets_without_colour(capsys):
    code, out, _ = run(capsys, "show", str(DEMO))
    assert code == 0 and "\x1b[" not in out
    assert "→ target web (annotation, serial)" in out
    assert "→ target db (annotation)" in out
    assert "→ target local (document)" in out
    assert "file → /tmp/runbook-demo/app.conf" in out


def test_show_text_with_inventory_lists_hosts(capsys, tmp_path):
    inv = tmp_path / "inv.yaml"
    inv.write_text("all:\n  children:\n    web:\n      hosts:\n        web-1: {}\n        web-2: {}\n"
                   "    db:\n      hosts:\n        db-1: {}\n")
    code, out, _ = run(capsys, "show", str(DEMO), "--inventory", str(inv))
    assert code == 0
    assert "→ target web (annotation): web-1, web-2" in out
    assert "→ target db (annotation): db-1" in out


def test_plan_text_and_json(capsys):
    code, out, _ = run(capsys, "plan", str(PROD))
    assert code == 0
    assert "Rule: phase dependencies honoured" in out
    assert 'Phase 3 [line 258] Dependencies "Phase 2 complete" -> Phase 2 is not in this document' in out
    assert "start +7 h 45 min, end +11 h 45 min (1.47 d)  Disaster Recovery Testing (PROD-ONLY)  after phase 0, phase 3, phase 6" in out
    assert ("Critical path: PROD-PRE-001 -> PROD-PRE-006 -> PROD-K8S-001 -> PROD-K8S-002 -> PROD-SEC-008 -> "
            "PROD-VAL-001  (11 h 45 min (1.47 d))") in out
    assert "Total duration: 11 h 45 min" in out
    assert "PROD-K8S-001 -> PROD-OS-002" in out
    assert "Stated critical path 11.5 days = 92 h at 8 h a day; computed here 11 h 45 min (1.47 d)" in out
    code, out, _ = run(capsys, "plan", str(PROD), "--tasks-only")
    assert code == 0 and "Rule: task dependencies only (--tasks-only)" in out
    assert "Critical path: PROD-VAL-001  (4 h)" in out and "Dependencies \"Phase 2" not in out
    code, out, _ = run(capsys, "plan", str(PROD), "--format", "json")
    data = json.loads(out)
    assert data["critical_minutes"] == 705 and data["stated"]["Critical Path"] == "11.5 days"
    assert data["rule"] == "phases" and data["phases"][1]["after"] == ["0"]
    code, out, _ = run(capsys, "plan", str(PROD), "--format", "json", "--tasks-only")
    data = json.loads(out)
    assert data["critical_minutes"] == 240 and data["rule"] == "tasks" and data["phases"] == []


def test_suggest_probes_hook_is_called_when_available(capsys, monkeypatch):
    module = types.ModuleType("runbook.probes.suggest")
    module.suggest = lambda rb: [Diagnostic(rb.path, 128, "info", "suggested probe: net.ping_all()", "probe-suggestion")]
    monkeypatch.setitem(sys.modules, "runbook.probes.suggest", module)
    code, out, _ = run(capsys, "lint", "--suggest-probes", str(PROD))
    assert f"{PROD}:128: info: suggested probe: net.ping_all()" in out and code == 1
