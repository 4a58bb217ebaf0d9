"""Attacks through the YAML files runbook reads: bindings, inventories, kubeconfigs.

The attacker writes a small YAML file the operator's runbook picks up (a bindings file
``NAME.targets.yaml`` in a shared checklist repository, an inventory, a kubeconfig):

* the *alias bomb* ("billion laughs"): nine anchors, each a list of nine aliases of the
  previous one, under a key runbook reads (``timeout: *i``).  PyYAML loads it at once as
  shared references, then ``str(value)`` expands 9**9 items: lint/show/exec hung above 2 GB;
* nesting 2,000 flow sequences deep (the pure-Python composer's recursion);
* a FIFO where a YAML file is expected (``open()`` waits forever for a writer).

Each must be refused at once: exit 2, one line naming ``file:line``, no traceback.  The
real CLI runs in a subprocess with a timeout and an address-space limit, so a regression
fails the test instead of hanging CI or eating the machine's memory.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = [sys.executable, "-m", "runbook.cli"]
MEMORY_LIMIT = 1536 * 1024 * 1024  # bytes of address space for the CLI under attack
TIMEOUT = 60

TINY = """# Tiny

## Phase 1: Checks (5 minutes)

### Task T-001: Hello

- **Duration**: 5 minutes
- **Risk Level**: LOW

#### Steps

1. **Greet**
   ```bash
   echo hello
   ```

#### Acceptance Criteria
- [ ] the API answers
  <!-- probe: k8s.api_reachable() -->
"""

LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def _indent(text: str, prefix: str) -> str:
    return "".join(prefix + line + "\n" for line in text.splitlines())


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def runbook(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RUNBOOK_INVENTORY", "KUBECONFIG", "SSH_AUTH_SOCK")}
    env["RUNBOOK_SESSION_DIR"] = str(cwd / "sessions")
    env["PYTHONPATH"] = str(ROOT)
    try:
        return subprocess.run([*RUNBOOK, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=TIMEOUT, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        pytest.fail(f"runbook {' '.join(args)} still running after {TIMEOUT}s (the attack made it hang)")


def refused(done: subprocess.CompletedProcess[str], where: str) -> str:
    """The command failed with exit 2 and one line on stderr that starts with ``where``."""
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert lines[0].startswith(f"runbook: {where}"), lines[0]
    return lines[0]


@pytest.fixture
def bombed_bindings(tmp_path: Path) -> Path:
    """``tiny.targets.yaml``: the nine laughs under a harmless key, ``timeout: *i`` in T-001's binding."""
    (tmp_path / "tiny.md").write_text(TINY)
    (tmp_path / "tiny.targets.yaml").write_text("laughs:\n" + _indent(LAUGHS, "  ") + "T-001: {target: local, timeout: *i}\n")
    return tmp_path


@pytest.mark.parametrize("command", [["lint"], ["show"], ["plan"], ["exec", "--task", "T-001", "--dry-run"]])
def test_an_alias_bomb_in_the_bindings_is_refused_at_its_line(bombed_bindings: Path, command: list[str]) -> None:
    done = runbook(bombed_bindings, command[0], "tiny.md", *command[1:])
    # line 8 is `g: &g [*f, ...]`, where the aliases first stand for more than a million nodes
    line = refused(done, "tiny.targets.yaml:8: bindings file is not valid YAML")
    assert "alias" in line


def test_an_alias_bomb_in_the_inventory_is_refused_at_its_line(tmp_path: Path) -> None:
    """The bomb as an inventory's group vars: ``vars: {ansible_user: *i}``."""
    (tmp_path / "tiny.md").write_text(TINY)
    inventory = "all:\n  vars:\n    laughs:\n" + _indent(LAUGHS, "      ") + "    ansible_user: *i\n  hosts:\n    web-1: {}\n"
    (tmp_path / "inv.yaml").write_text(inventory)
    done = runbook(tmp_path, "show", "tiny.md", "--inventory", "inv.yaml")
    line = refused(done, "inv.yaml:10: invalid inventory YAML")
    assert "alias" in line


def test_an_alias_bomb_in_the_kubeconfig_is_refused_at_its_line(tmp_path: Path) -> None:
    """The bomb as the kubeconfig user's token (the client formats ``Bearer <token>``)."""
    (tmp_path / "tiny.md").write_text(TINY)
    kubeconfig = (
        "apiVersion: v1\nkind: Config\nlaughs:\n" + _indent(LAUGHS, "  ")
        + "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        + "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
        + "users: [{name: u, user: {token: *i}}]\n"
    )
    (tmp_path / "kc.yaml").write_text(kubeconfig)
    done = runbook(tmp_path, "probe", "tiny.md", "--kubeconfig", "kc.yaml", "--timeout", "5")
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "[ERROR]" in done.stdout
    assert "kubeconfig kc.yaml:10: invalid YAML: aliases expand to more than" in done.stdout, done.stdout


def test_bindings_nested_two_thousand_deep_are_refused(tmp_path: Path) -> None:
    (tmp_path / "tiny.md").write_text(TINY)
    (tmp_path / "tiny.targets.yaml").write_text("T-001:\n  target: " + "[" * 2000 + "]" * 2000 + "\n")
    done = runbook(tmp_path, "lint", "tiny.md")
    line = refused(done, "tiny.targets.yaml:2: bindings file is not valid YAML")
    assert "nest" in line


@pytest.mark.parametrize("what", ["bindings", "inventory"])
def test_a_fifo_instead_of_a_yaml_file_is_refused_without_waiting(tmp_path: Path, what: str) -> None:
    """Nobody ever writes to the FIFO: reading it would wait forever."""
    (tmp_path / "tiny.md").write_text(TINY)
    fifo = tmp_path / ("tiny.targets.yaml" if what == "bindings" else "inv.yaml")
    os.mkfifo(fifo)
    args = ["show", "tiny.md"] + (["--inventory", "inv.yaml"] if what == "inventory" else [])
    line = refused(runbook(tmp_path, *args), fifo.name)
    assert "FIFO" in line and "regular file" in line


def test_an_alias_bomb_in_front_matter_is_reported_at_its_line(tmp_path: Path) -> None:
    """The bomb in a document's YAML front matter (``tags: *i``): a warning at the line where
    the aliases first stand for more than a million nodes; the document is still read."""
    (tmp_path / "fm.md").write_text("---\ntitle: Bombed\n" + LAUGHS + "tags: *i\n---\n" + TINY)
    done = runbook(tmp_path, "lint", "fm.md")
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "fm.md:9: warning: front matter is not valid YAML: aliases expand to more than" in done.stdout, done.stdout
    shown = runbook(tmp_path, "show", "fm.md", "--format", "json")
    assert shown.returncode == 0 and '"T-001"' in shown.stdout, shown.stderr
