"""Lint ``critical-attached``: a CRITICAL step over SSH that needs a terminal or sudo is told
to consider ``detached`` (issue 10, item 11)."""

from __future__ import annotations

import textwrap

import pytest

from runbook.lint.lint import lint
from runbook.parse.parser import parse

BOOK = """# T
## Phase 1: A
### Task A-1: t
- **Duration**: 1 hour
- **Risk Level**: {risk}
#### Steps
1. **s**
{annotation}
```bash
echo prepare
{code}
```
#### Acceptance Criteria
- [ ] ok
#### Rollback Procedure
1. **undo**
```bash
echo undo
```
"""


def notes(code: str, risk: str = "CRITICAL", annotation: str = "") -> list[tuple[int, str]]:
    text = BOOK.format(risk=risk, code=code, annotation=annotation)
    return [(d.line, d.message) for d in lint(parse(textwrap.dedent(text), "t.md")) if d.code == "critical-attached"]


@pytest.mark.parametrize("code, why", [
    ("sudo kubeadm init --config /etc/kubernetes/kubeadm-config.yaml", "sudo may prompt for a password"),
    ("sudo -n systemctl restart kubelet", "uses sudo"),
    ("kubectl exec -it etcd-0 -- sh", "kubectl asks for a terminal (-it)"),
])
def test_a_critical_step_needing_a_terminal_or_sudo_gets_a_note(code, why):
    [(line, message)] = notes(code)
    assert line == 11  # the line that needs it
    assert f"CRITICAL step 1 of A-1 runs over SSH with a terminal or sudo ({why})" in message
    assert "detached" in message


@pytest.mark.parametrize("code, risk, annotation", [
    ("sudo kubeadm init", "HIGH", ""),  # not CRITICAL
    ("systemctl status kubelet", "CRITICAL", ""),  # no terminal, no sudo
    ("sudo kubeadm init", "CRITICAL", "<!-- runbook: detached -->"),  # already detached
    ("sudo kubeadm init", "CRITICAL", "<!-- runbook: target=local -->"),  # not over SSH
    ("# sudo kubeadm init (a comment)", "CRITICAL", ""),
])
def test_no_note_otherwise(code, risk, annotation):
    assert notes(code, risk, annotation) == []


def test_a_pty_annotation_counts_and_the_note_is_once_per_step():
    found = notes("sudo a\nsudo b", annotation="<!-- runbook: target=masters pty -->")
    assert len(found) == 1 and found[0][0] == 10 and "(runs with a terminal (pty))" in found[0][1]
