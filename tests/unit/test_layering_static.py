"""tui -> sessions -> runbook, checked on the source of every module (imports anywhere in a
module, function-level ones included, and module names written in strings)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {"runbook": 0, "sessions": 1, "tui": 2}
NAMED = re.compile(r"\b(sessions|tui|textual)\.(?!(?:json|yaml|yml|md|txt|log|tcss)\b)[A-Za-z_]")  # not file names




def _rank(name: str) -> int:
    top = name.split(".", 1)[0]
    return 3 if top == "textual" else LAYERS.get(top, -1)


def violations(root: Path = ROOT) -> list[str]:
    found: list[str] = []
    for package, rank in LAYERS.items():
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            ceiling = 3 if package == "tui" else rank  # the TUI may import textual
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), rel)):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    if _rank(name) > ceiling:
                        found.append(f"{rel}:{node.lineno}: imports {name}")
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    for match in NAMED.finditer(node.value):
                        if _rank(match.group(1)) > ceiling:
                            found.append(f"{rel}:{node.lineno}: names {match.group(0)}… in a string")
    return found


def test_no_module_names_a_higher_layer():
    assert violations() == []


def test_every_module_is_walked():
    walked = sum(1 for p in LAYERS for _ in (ROOT / p).rglob("*.py"))
    assert walked > 100


def test_the_check_can_fail(tmp_path):
    for package in LAYERS:
        (tmp_path / package).mkdir()
    (tmp_path / "runbook" / "bad.py").write_text(
        "def f():\n    from sessions import state\n\nHANDLER = 'tui.commands:run_cmd'\n")
    (tmp_path / "sessions" / "bad.py").write_text("import textual.app\n")
    assert violations(tmp_path) == [
        "runbook/bad.py:2: imports sessions",
        "runbook/bad.py:4: names tui.c… in a string",
        "sessions/bad.py:1: imports textual.app",
    ]
