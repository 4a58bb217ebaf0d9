"""Load time of generated Ansible-style YAML inventories (1,000 to 10,000 hosts).

    .venv/bin/python bench/inventory.py [--hosts 1000,5000,10000] [--runs N]

Each inventory has ``all`` vars, 20 groups under three parent groups, and one line per
host with an ``ansible_host`` and an ``ansible_port``; a few hosts are in two groups.
Prints, per size, the median wall-clock and CPU time of ``Inventory.load`` and the time
per host (a linear loader keeps the per-host time flat as the inventory grows).
Figures only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runbook.targets.inventory import Inventory  # noqa: E402

GROUPS = 20


def inventory_text(hosts: int) -> str:
    lines = ["all:", "  vars: {ansible_user: ops, ansible_ssh_private_key_file: ~/.ssh/prod_ed25519}", "  children:"]
    per_group = -(-hosts // GROUPS)
    for parent in ("masters", "workers", "edge"):
        lines += [f"    {parent}:", "      vars: {tier: " + parent + "}", "      children:"]
        for g in range(GROUPS):
            if g % 3 != ("masters", "workers", "edge").index(parent):
                continue
            lines += [f"        g{g:02d}:", "          vars: {zone: az-" + str(g % 3) + "}", "          hosts:"]
            for h in range(g * per_group, min(hosts, (g + 1) * per_group)):
                lines.append(f"            node-{h:05d}: {{ansible_host: 127.0.{h // 250 % 250}.{h % 250 + 1}, ansible_port: 22}}")
    lines += ["    canary:", "      hosts:"]
    lines += [f"        node-{h:05d}: {{}}" for h in range(0, hosts, max(1, hosts // 50))]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1000,5000,10000", help="comma-separated inventory sizes")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.hosts.split(",")):
            path = os.path.join(tmp, f"inv-{n}.yaml")
            Path(path).write_text(inventory_text(n))
            walls, cpus = [], []
            for _ in range(args.runs):
                w0, c0 = time.perf_counter(), time.process_time()
                inv = Inventory.load(path)
                walls.append(time.perf_counter() - w0)
                cpus.append(time.process_time() - c0)
            assert len(inv.hosts) == n, (len(inv.hosts), n)  # the generator, not a timing
            wall, cpu = statistics.median(walls), statistics.median(cpus)
            print(f"{n:>6} hosts: load {wall:7.3f} s wall, {cpu:7.3f} s CPU (median of {args.runs}), "
                  f"{cpu / n * 1e6:6.1f} us CPU per host")


if __name__ == "__main__":
    main()
