"""Attacks through the inventory and host names.

* A large inventory (30,000 hosts, a few groups) used to take minutes to load: the loader
  asked every group for its members once per host (hosts x groups x members) and kept
  each group's hosts in a list searched on every insertion.  At 02:00 a slow ``runbook``
  looks hung.  Now each group's members are computed once and membership is a set.
  (Timings are printed by bench/inventory.py; here a deterministic count, and the real CLI
  under a generous timeout that only guards CI against the quadratic loader.)
* A homoglyph host name (Cyrillic ``а`` U+0430 in ``prod-k8s-mаster-01``) was refused,
  but the message did not say why the name that looks right is wrong: it must name the
  characters that are not ASCII, and the inventory host the name imitates.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.targets.inventory import Inventory

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = [sys.executable, "-m", "runbook.cli"]
sys.path.insert(0, str(ROOT))
from bench.inventory import inventory_text  # noqa: E402  (the benchmark's generator)

BOOK = """<!-- runbook: target=local -->
# Fleet

## Phase 1: Checks (5 minutes)

### Task T-001: Hello

- **Duration**: 5 minutes

#### Steps

1. **Greet**
   <!-- runbook: target=prod-k8s-m\u0430ster-01 -->
   ```bash
   echo hello
   ```
"""


def runbook(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RUNBOOK_INVENTORY", "KUBECONFIG", "SSH_AUTH_SOCK")}
    env["RUNBOOK_SESSION_DIR"] = str(cwd / "sessions")
    env["PYTHONPATH"] = str(ROOT)
    try:
        return subprocess.run([*RUNBOOK, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"runbook {' '.join(args)} still running after {timeout}s")


def test_group_membership_is_computed_once_per_group_not_once_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """The work per host must not grow with the inventory: count the group-membership walks."""
    calls = {"n": 0}
    members = Inventory._members

    def counting(self: Inventory, group: str) -> list[str]:
        calls["n"] += 1
        return members(self, group)

    monkeypatch.setattr(Inventory, "_members", counting)
    walks = []
    for hosts in (500, 2000):
        calls["n"] = 0
        inv = Inventory.from_text(inventory_text(hosts), path="inv.yaml")
        assert len(inv.hosts) == hosts
        walks.append(calls["n"])
    assert walks[0] == walks[1] <= len(inv._groups), walks  # one walk per group, whatever the host count


def test_thirty_thousand_hosts_load_through_the_cli(tmp_path: Path) -> None:
    """The quadratic loader needed minutes of CPU here (30,000 hosts x 24 groups x members)."""
    (tmp_path / "book.md").write_text(BOOK.replace("prod-k8s-m\u0430ster-01", "node-29999"))
    (tmp_path / "inv.yaml").write_text(inventory_text(30_000))
    done = runbook(tmp_path, "exec", "book.md", "--task", "T-001", "--inventory", "inv.yaml", "--dry-run",
                   timeout=150)
    assert done.returncode == 0, done.stderr
    assert "on 1 host(s): node-29999" in done.stdout


def test_a_homoglyph_host_name_is_refused_naming_the_non_ascii_characters(tmp_path: Path) -> None:
    (tmp_path / "book.md").write_text(BOOK)
    (tmp_path / "inv.yaml").write_text("all:\n  hosts:\n    prod-k8s-master-01: {ansible_host: 127.0.0.1}\n")
    for args in (["exec", "book.md", "--task", "T-001", "--inventory", "inv.yaml", "--dry-run"],
                 ["exec", "book.md", "--task", "T-001", "--dry-run"]):
        done = runbook(tmp_path, *args)
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        line = done.stderr.strip()
        assert "\n" not in line
        assert "not ASCII: '\u0430' (U+0430 CYRILLIC SMALL LETTER A) at position 11" in line, line
        if "--inventory" in args:
            assert line.endswith("did you mean 'prod-k8s-master-01'?"), line
