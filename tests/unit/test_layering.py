"""The core never imports the UI: tui -> sessions -> runbook, never back."""

import json
import subprocess
import sys

import pytest

CORE_MODULES = [
    "runbook.cli",
    "runbook.model",
    "runbook.parse.parser",
    "runbook.lint.lint",
    "runbook.targets.inventory",
    "runbook.transport.executor",
    "runbook.transport.local",
    "runbook.transport.ssh",
    "runbook.probes.k8s",
    "sessions.journal.journal",
    "sessions.state.state",
    "sessions.engine.session",
    "sessions.engine.engine",
    "sessions.report.build",
    "sessions.signing",
]


def _loaded_after_import(module: str) -> set[str]:
    code = f"import importlib, json, sys; importlib.import_module({module!r}); print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_never_imports_textual_or_tui(module):
    loaded = _loaded_after_import(module)
    assert not any(m == "textual" or m.startswith("textual.") for m in loaded), module
    assert not any(m == "tui" or m.startswith("tui.") for m in loaded), module


@pytest.mark.parametrize("module", [m for m in CORE_MODULES if m.startswith("runbook.") and m != "runbook.cli"])
def test_domain_never_imports_sessions(module):
    loaded = _loaded_after_import(module)
    assert not any(m == "sessions" or m.startswith("sessions.") for m in loaded), module


def test_cli_imports_nothing_heavy_at_start():
    loaded = _loaded_after_import("runbook.cli")
    assert not any(m.startswith(("sessions", "tui", "textual", "asyncssh", "kubernetes")) for m in loaded)


def test_the_check_can_fail():
    """Guard against a vacuous test: importing the TUI does load textual."""
    assert "textual" in _loaded_after_import("textual.app")


def test_each_layer_registers_its_own_commands():
    """runbook/cli.py names no handler of the layers above: they come from the installed
    package's ``runbook.commands`` entry points."""
    from runbook.cli import build_parser

    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"lint", "exec", "journal", "run", "watch", "demo"} <= set(choices)
    own = build_parser(()).parse_args(["lint", "x.md"])
    assert own.handler.startswith("runbook.")


def test_an_uninstalled_source_tree_says_how_to_get_the_other_commands(tmp_path):
    """Without the installed entry points (a bare checkout on sys.path, no pip install):
    the domain's commands work, the others get a one-line hint, exit 2, no traceback."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    shutil.copytree(root / "runbook", tmp_path / "src" / "runbook")  # no egg-info, no dist-info beside it
    code = (f"import sys; sys.path.insert(0, {str(tmp_path / 'src')!r}); from runbook.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    env = {"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"}
    out = subprocess.run(["/usr/bin/python3", "-S", "-c", code, "exec", "--task", "X", "f.md"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "registered when runbook is installed" in out.stderr and "Traceback" not in out.stderr
