"""Property: the parser never raises and every line number points inside the file."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook.lint.lint import lint
from runbook.parse.parser import parse
from runbook.serialize import runbook_to_json
from tests.conftest import PROD

FRAGMENTS = [
    "# Title", "## Phase 1: Setup (2 hours)", "## Phase 2A - Other", "### Task X-001: Do it", "### Y-002: Other",
    "### Phase 1 Smoke Test", "#### Steps", "#### Prerequisites", "#### Acceptance Criteria",
    "#### Rollback Procedure", "#### Notes", "#### Description", "##### Sub", "# 3. comment", "---",
    "- **Duration**: 45 minutes", "- **Risk Level**: HIGH", "- **Dependencies**: X-001, Z-9", "* **Category**: Net",
    "**Purpose**: p  ", "**Risk Level**: LOW (read-only)", "- [ ] box", "- [x] done", "* [X] star box",
    "  - [ ] nested", "1. **Step title**", "2. **Next** (hint)", "**Test 1: bold step**", "Expected: `ok`",
    "Expected output:", "Expected:", "- Node `Ready`", "```bash", "```", "````", "~~~", "~~~console",
    "```yaml", "# /tmp/file.yaml", "key: <VALUE>", "echo $SECRET_TOKEN ${X:-1} $(date)", "$ ls -la", "output",
    "   ```bash", "\t```sh", "kubectl uncordon node-1", "rm -rf /tmp/x", "<!-- runbook: target=web serial -->",
    "<!-- runbook: secret=FOO -->", "<!-- probe: k8s.ready() -->", "<!-- runbook: bogus -->",
    "| a | b |", "| - | - |", "| 1 | 2 |", "> quote", "    indented code", "**Gate**: all green", "N/A (read-only)",
    "", "", "",
]

line = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=30))
document = st.builds(
    lambda lines, eol, trailing: eol.join(lines) + (eol if trailing else ""),
    st.lists(line, max_size=60),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.booleans(),
)


def _check_task(t, ok):
    """Every line a task names (its steps, blocks, expectations, placeholders, rollback, metadata)."""
    ok(t.line)
    steps = list(t.steps) + list(t.rollback.steps if t.rollback else ())
    if t.rollback:
        ok(t.rollback.line)
        for b in t.rollback.blocks:
            ok(b.line)
    for s in steps:
        ok(s.line)
        for b in s.blocks:
            ok(b.line)
            if b.end_line is not None:
                ok(b.end_line)
            for i in range(b.code.count("\n") + 1):
                ok(b.code_line(i))
        for e in s.expected:
            ok(e.line)
        for ph in s.placeholders:
            ok(ph.line)
    for v in t.metadata_lines.values():
        ok(v)


def _check(rb, text):
    n = rb.line_count
    assert n >= 0

    def ok(line):
        assert 1 <= line <= n, (line, n)

    for d in lint(rb):
        if d.path == rb.path:
            ok(d.line)
    for b in rb.checkboxes():
        ok(b.line)
    for p in rb.phases:
        ok(p.line)
        for t in p.tasks:
            _check_task(t, ok)
        for g in p.gates:
            ok(g.line)
            for s in g.steps:
                ok(s.line)
                for b in s.blocks:
                    ok(b.line)
    for s in rb.sections:
        ok(s.line)
        for b in s.blocks:
            ok(b.line)
    keys = [b.key for b in rb.checkboxes()]
    assert len(keys) == len(set(keys))
    runbook_to_json(rb)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document)
def test_parser_never_raises_and_lines_are_inside(text):
    rb = parse(text, "fuzz.md")
    assert not [d for d in rb.diagnostics if d.code == "internal"], rb.diagnostics
    _check(rb, text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=894), st.integers(min_value=0, max_value=894), st.text(max_size=20))
def test_mangled_prod_checklist(cut_a, cut_b, junk):
    lines = PROD.read_text().split("\n")
    a, b = sorted((cut_a, cut_b))
    text = "\n".join(lines[:a] + [junk] + lines[b:])
    rb = parse(text, "prod-mangled.md")
    assert not [d for d in rb.diagnostics if d.code == "internal"], rb.diagnostics
    _check(rb, text)


def test_a_file_block_left_open_at_the_end_maps_no_line_past_it():
    """Found by the fuzz test above (cut_a=287, cut_b=864): a ``# path`` file block whose
    fence is never closed ran one line past the end of the document."""
    lines = PROD.read_text().split("\n")
    text = "\n".join(lines[:287] + [""] + lines[864:])
    _check(parse(text, "prod-mangled.md"), text)
