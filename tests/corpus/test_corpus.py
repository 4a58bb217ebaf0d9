"""Real runbooks from public repositories (tests/corpus/SOURCES.md), read unmodified.

Each file has a golden summary in ``golden/NAME.json`` (title, tasks and their steps,
command blocks, checkboxes, diagnostics by code).  When the parser's reading changes on
purpose, regenerate them and review the diff by hand::

    RUNBOOK_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/corpus

The corpus-wide properties hold for every file whatever the goldens say.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from runbook.lint.lint import lint
from runbook.model import Block, Runbook
from runbook.parse.front_matter import split_front_matter
from runbook.parse.markdown_blocks import CONSOLE_LANGS, SHELL_LANGS, normalize, parse_blocks, walk
from runbook.parse.parser import parse, parse_file
from runbook.parse.steps import CHECK_RE, PROMPT_RE

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
GOLDEN = HERE / "golden"
FILES = sorted(p for p in HERE.glob("*.md") if p.name != "SOURCES.md")
PROD = ROOT / "checklists" / "prod-k8s-deployment.md"


def _blocks(rb: Runbook) -> list[Block]:
    out = [b for t in rb.tasks for s in t.steps for b in s.blocks]
    out += [b for t in rb.tasks if t.rollback for s in t.rollback.steps for b in s.blocks]
    out += [b for p in rb.phases for g in p.gates for s in g.steps for b in s.blocks]
    out += [b for s in rb.sections for b in s.blocks]
    out += [b for t in rb.tasks for s in t.extra for b in s.blocks]
    return out


def summary(path: Path) -> dict[str, Any]:
    rb = parse_file(str(path), bindings=False)
    diags = lint(rb)
    return {
        "title": rb.title,
        "inferred": rb.inferred,
        "phases": [f"{p.number}: {p.title}".strip(": ") for p in rb.phases],
        "tasks": {
            t.id: {
                "title": t.title,
                "line": t.line,
                "steps": [
                    f"{s.number}. {s.title} [{len(s.commands)} cmd{', ' + str(len(s.files)) + ' file' if s.files else ''}"
                    f"{', ticks ' + s.checkbox if s.checkbox else ''}]"
                    for s in t.steps
                ],
                "checkboxes": len(t.checkboxes),
            }
            for t in rb.tasks
        },
        "sections": [s.title for s in rb.sections],
        "command_blocks": sum(1 for b in _blocks(rb) if b.kind == "command"),
        "checkboxes": len(list(rb.checkboxes())),
        "diagnostics": dict(sorted(Counter(f"{d.severity}:{d.code}" for d in diags).items())),
    }


def _golden(name: str, got: dict[str, Any]) -> dict[str, Any]:
    path = GOLDEN / (name + ".json")
    if os.environ.get("RUNBOOK_UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert path.exists(), f"no golden summary for {name}: run with RUNBOOK_UPDATE_GOLDEN=1 and review it"
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_corpus_is_large_and_every_file_has_its_source_recorded():
    assert len(FILES) >= 30
    sources = (HERE / "SOURCES.md").read_text(encoding="utf-8")
    for f in FILES:
        row = next((ln for ln in sources.splitlines() if f"`{f.name}`" in ln), None)
        assert row is not None, f"{f.name} is not in SOURCES.md"
        assert re.search(r"\b[0-9a-f]{40}\b", row), f"{f.name}: no commit recorded"
        assert re.search(r"Apache-2\.0|MIT|CC-BY-4\.0", row), f"{f.name}: no licence recorded"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_golden_summary(path: Path):
    got = summary(path)
    assert got == _golden(path.stem, got)


def test_golden_summary_of_the_prod_checklist():
    """The seed's dialect reads as before structure inference existed (no task is inferred)."""
    got = summary(PROD)
    assert not got["inferred"] and len(got["tasks"]) == 6
    assert got == _golden("prod-k8s-deployment", got)


def _source_nodes(text: str):
    _, markdown = split_front_matter(normalize(text))
    return list(walk(parse_blocks(markdown, [])))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_corpus_properties(path: Path):
    text = path.read_text(encoding="utf-8")
    rb = parse(text, str(path))  # parse never raises ...
    assert not [d for d in rb.diagnostics if d.code == "internal"]
    lint(rb)  # ... and neither does lint
    nodes = _source_nodes(text)

    # every file with shell blocks yields at least one task with runnable steps
    shell = [n for n in nodes if n.kind == "fence" and (n.lang in SHELL_LANGS or n.lang in CONSOLE_LANGS)]
    if shell:
        assert any(s.runnable for t in rb.tasks for s in t.steps), f"{path.name}: shell blocks but no runnable step"

    # no command block starts with a prompt
    for b in _blocks(rb):
        if b.kind == "command":
            first = next((ln for ln in b.code.split("\n") if ln.strip()), "")
            assert not PROMPT_RE.match(first), f"{path.name}:{b.line}: command starts with a prompt: {first!r}"

    # every checkbox appears exactly once
    lines = [n.line for n in nodes if n.kind == "item" and n.children and n.children[0].kind == "paragraph"
             and CHECK_RE.match(n.children[0].text.strip())]
    boxes = list(rb.checkboxes())
    assert sorted(b.line for b in boxes) == sorted(lines)
    assert len({b.key for b in boxes}) == len(boxes)

    # no file gets front matter or a shortcode as its title
    front, _ = split_front_matter(normalize(text))
    assert not re.match(r"^\s*(---|\+\+\+|\{\{|\{%|[\w-]+:\s)", rb.title), f"{path.name}: title {rb.title!r}"
    h1 = next((n for n in nodes if n.kind == "heading"), None)
    if front.title and (h1 is None or h1.level != 1):
        assert rb.title == front.title


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "runbook"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "runbook.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=cwd, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_the_cli_reads_and_runs_a_corpus_runbook_with_an_ini_inventory(tmp_path: Path):
    """As an operator would: show with an INI inventory, lint, then exec a step of a transcript runbook."""
    book = HERE / "runme-examples-README.md"
    inv = tmp_path / "hosts"
    inv.write_text("[control]\nhere ansible_connection=local\n")
    shown = _cli("show", str(book), "--inventory", str(inv), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "shell  Shell" in shown.stdout and "inferred from its section" in shown.stdout
    linted = _cli("lint", str(book), cwd=tmp_path)
    assert linted.returncode == 0 and "Traceback" not in linted.stderr
    ran = _cli("exec", str(book), "--task", "shell", "--step", "3", "--target", "control", "--inventory", str(inv),
               "--session-dir", str(tmp_path / "sessions"), "--yes", cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "[here] 1\n[here] 2\n[here] 3" in ran.stdout  # three "$ echo" prompt lines, run as one script
    bad = tmp_path / "bad.ini"
    bad.write_text("[web]\nw1\n[web:nonsense]\n")
    refused = _cli("show", str(book), "--inventory", str(bad), cwd=tmp_path)
    assert refused.returncode == 2 and f"{bad}:3" in refused.stderr and "Traceback" not in refused.stderr
