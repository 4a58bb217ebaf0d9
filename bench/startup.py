"""Start-up cost of the ``runbook`` command: imports above a bare ``python -c pass``.

    .venv/bin/python bench/startup.py [--repeat 7] [--no-ssh] [--top 12]

Runs, each ``--repeat`` times, in a fresh interpreter with ``-X importtime`` (the installed
console script, else ``-m runbook.cli``):

* ``python -c pass`` (the floor: ``site``, ``encodings``, ...);
* ``runbook --help``;
* ``runbook lint`` of a small runbook;
* ``runbook exec`` of a one-step task on ``local``;
* ``runbook exec`` of a one-step task on one host of a loopback sshd (skipped with ``--no-ssh``).

For each it prints the median of the summed ``-X importtime`` self times (all modules imported
during the whole run, lazy ones included) and that figure above the floor (issue #15's target
for ``exec``: <= 150 ms), the modules imported, and the median wall-clock and CPU time (user + system) of the
same runs without ``-X importtime`` (CPU time is the steadier figure on a loaded machine).  ``--top`` lists the heaviest top-level imports of each command.
Figures only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUNBOOK_BIN = Path(sys.executable).parent / "runbook"
RUNBOOK = [str(RUNBOOK_BIN)] if RUNBOOK_BIN.exists() else ["-m", "runbook.cli"]

BOOK = """# Start-up bench

## Phase 0: Bench (1 hour)

### Task LOC-001: local

- **Duration**: 1 minute
- **Risk Level**: LOW

#### Steps

1. **true**

<!-- runbook: target=local -->
```bash
true
```

### Task SSH-001: one host over SSH

- **Duration**: 1 minute
- **Risk Level**: LOW

#### Steps

1. **true**

<!-- runbook: target=node-1 -->
```bash
true
```
"""

_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S.*)$")


def importtime(argv: list[str]) -> tuple[int, int, list[tuple[int, str]]]:
    """One run under ``-X importtime``: (sum of self us, modules, top-level (cumulative us, name))."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    total = count = 0
    top: list[tuple[int, str]] = []
    for line in proc.stderr.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        total += int(m.group(1))
        count += 1
        if len(m.group(3)) <= 1:  # not nested: imported by the program itself
            top.append((int(m.group(2)), m.group(4)))
    return total, count, top


def wall(argv: list[str]) -> tuple[float, float]:
    """One run without ``-X importtime``: (wall-clock, CPU time of the child) in seconds."""
    before = os.times()
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *argv], capture_output=True, stdin=subprocess.DEVNULL, check=True)
    elapsed = time.perf_counter() - t0
    after = os.times()
    return elapsed, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def measure(label: str, argv: list[str], repeat: int, floor: float | None, top_n: int) -> float:
    runs = [importtime(argv) for _ in range(repeat)]
    total = statistics.median(r[0] for r in runs) / 1000
    modules = statistics.median(r[1] for r in runs)
    plain = [wall(argv) for _ in range(repeat)]
    walls, cpus = [w for w, _ in plain], [c for _, c in plain]
    above = f"{total - floor:7.1f} ms above" if floor is not None else "      (floor)  "
    print(f"{label:<28} imports {total:7.1f} ms  {above}  modules {modules:5.0f}  "
          f"wall {statistics.median(walls) * 1000:6.1f} ms (min {min(walls) * 1000:6.1f})  "
          f"cpu {statistics.median(cpus) * 1000:6.1f} ms", flush=True)
    if top_n and floor is not None:
        merged: dict[str, list[int]] = {}
        for _, _, top in runs:
            for us, name in top:
                merged.setdefault(name, []).append(us)
        heavy = sorted(((statistics.median(v), k) for k, v in merged.items()), reverse=True)[:top_n]
        print("    " + ", ".join(f"{name} {us / 1000:.0f}" for us, name in heavy))
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-ssh", action="store_true", help="skip the exec over SSH (no sshd started)")
    ap.add_argument("--top", type=int, default=0, metavar="N", help="list the N heaviest top-level imports")
    opts = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="runbook-startup-"))
    fleet = None
    try:
        book = tmp / "book.md"
        book.write_text(BOOK)
        sessions = tmp / "sessions"
        common = ["--session-dir", str(sessions)]
        rows: list[tuple[str, list[str]]] = [
            ("runbook --help", [*RUNBOOK, "--help"]),
            ("runbook lint", [*RUNBOOK, "lint", str(book)]),
            ("runbook exec (local)", [*RUNBOOK, "exec", str(book), "--task", "LOC-001", *common]),
        ]
        if not opts.no_ssh:
            from tests.integration.sshd import SSHFleet

            fleet = SSHFleet.start(tmp / "fleet", 1)
            inv = fleet.write_inventory(tmp / "inventory.yaml")
            rows.append(("runbook exec (ssh, 1 host)", [*RUNBOOK, "exec", str(book), "--task", "SSH-001",
                                                        "--inventory", str(inv), "--known-hosts",
                                                        str(fleet.known_hosts), *common]))
        for _, argv in rows:  # warm the page cache and the byte-code
            subprocess.run([sys.executable, *argv], capture_output=True, stdin=subprocess.DEVNULL, check=True)
        print(f"median of {opts.repeat} runs; imports = sum of -X importtime self times", flush=True)
        floor = measure("python -c pass", ["-c", "pass"], opts.repeat, None, 0)
        for label, argv in rows:
            measure(label, argv, opts.repeat, floor, opts.top)
    finally:
        if fleet is not None:
            fleet.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: figures are noisy on a shared machine; "
          "target for exec: <= 150 ms above python -c pass)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
