"""500 hosts from one jump host: ``uname -a`` on 50, 200 and 500 loopback hosts.

    .venv/bin/python bench/scale.py [--sizes 50,200,500] [--repeat 1] [--jobs 50] [--no-ansible]

Starts one :class:`~tests.integration.sshd.SSHFleet` as big as the largest size
(127.0.1.1-254, then 127.0.2.x: all in 127.0.0.0/8; one sshd per 16 addresses, as
``bench/fanout.py`` does) and, for each size, runs ``uname -a`` on the first N hosts:

* plain OpenSSH: one ``ssh`` per host in the background, at most ``--jobs`` at once
  (``xargs -P`` style; the same options as ``bench/fanout.py``);
* ``runbook exec`` (the real CLI: start-up, session, journal with fsync) with
  ``--parallel JOBS --connect-limit JOBS``, under GNU time for its peak RSS;
* Ansible ad-hoc ``-m command -f JOBS`` (pipelining, the same ssh options) when
  ``ansible`` is installed (``.venv/bin/pip install ansible-core``), else said.

Printed per size and tool: wall time (median of ``--repeat``), time per host, hosts
succeeded/lost; then the growth ratio (time per host at the largest size over time per
host at the smallest: target <= 1.2) and runbook's peak RSS (target < 300 MB).  Figures
only: nothing is asserted about timings.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fanout import RUNBOOK, ssh_argv  # noqa: E402
from tests.integration.sshd import SSHFleet  # noqa: E402

BOOK = """# Scale bench

## Phase 0: Bench (1 hour)

### Task SCALE-001: uname everywhere

- **Duration**: 1 minute
- **Risk Level**: LOW

#### Steps

1. **uname**

<!-- runbook: target=all -->
```bash
uname -a
```
"""


@dataclass
class Run:
    """One measured run: wall seconds, hosts that answered, peak RSS (MB, runbook only)."""

    wall: float
    ok: int
    rss_mb: int | None = None
    note: str = ""


def subset_inventory(fleet: SSHFleet, names: Sequence[str], path: Path) -> Path:
    """The fleet's inventory restricted to ``names`` (same vars as ``SSHFleet.inventory_yaml``)."""
    lines = ["all:", "  vars:", f"    ansible_user: {fleet.user}", f"    ansible_port: {fleet.port}",
             f"    ansible_ssh_private_key_file: {fleet.client_key}", "  hosts:"]
    lines += [f"    {n}: {{ansible_host: {fleet.addresses[n]}}}" for n in names]
    path.write_text("\n".join(lines) + "\n")
    return path


def plain_ssh(fleet: SSHFleet, names: Sequence[str], jobs: int) -> Run:
    """One ``ssh`` per host in the background, at most ``jobs`` running; wait for all."""

    def one(name: str) -> bool:
        r = subprocess.run(ssh_argv(fleet, name, "uname -a"), capture_output=True, stdin=subprocess.DEVNULL)
        return r.returncode == 0 and b"Linux" in r.stdout

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        ok = sum(pool.map(one, names))
    return Run(time.perf_counter() - t0, ok)


def runbook_exec(book: Path, inventory: Path, fleet: SSHFleet, sessions: Path, jobs: int, hosts: int,
                 tmp: Path) -> Run:
    """The CLI under GNU time (peak RSS of the runbook process alone, not of this one)."""
    report = tmp / "time.txt"
    gnu_time = os.path.exists("/usr/bin/time")
    argv = (["/usr/bin/time", "-o", str(report), "-f", "%M"] if gnu_time else []) + RUNBOOK + [
        "exec", str(book), "--task", "SCALE-001", "--inventory", str(inventory), "--known-hosts",
        str(fleet.known_hosts), "--session-dir", str(sessions), "--parallel", str(jobs), "--connect-limit", str(jobs)]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    ok = sum(1 for line in proc.stdout.decode(errors="replace").splitlines() if "] Linux" in line)
    # without GNU time: getrusage covers every child so far (an upper bound)
    rss = (int(report.read_text().split()[-1]) if gnu_time else resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) // 1024
    finished = _journal_successes(sessions, proc.stderr.decode(errors="replace"))
    note = "" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr.decode(errors='replace')[-300:]!r}"
    if finished is not None and finished != ok:
        note = (note + f"; journal: {finished} succeeded").strip("; ")
    warnings = [x for x in proc.stderr.decode(errors="replace").splitlines() if "open-file limit" in x]
    if warnings:
        note = (note + "; " + warnings[0]).strip("; ")
    return Run(wall, ok, rss, note)


def _journal_successes(sessions: Path, stderr: str) -> int | None:
    for line in stderr.splitlines():
        if line.startswith("runbook: session ") and "(" in line:
            path = Path(line.split("(", 1)[1].rstrip(")"))
            if path.exists():
                events = (json.loads(x)["event"] for x in path.read_text().splitlines() if x.strip())
                return sum(1 for e in events if e.get("type") == "host_finished" and e.get("outcome") == "succeeded")
    return None


def ansible_bin() -> str | None:
    return shutil.which("ansible", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")


def ansible_adhoc(fleet: SSHFleet, inventory: Path, jobs: int) -> Run:
    ansible = ansible_bin()
    assert ansible is not None
    extra = (f"-o KexAlgorithms=curve25519-sha256 -o UserKnownHostsFile={fleet.known_hosts} "
             "-o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes")
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_SSH_ARGS="-o ControlMaster=no",
               ANSIBLE_PYTHON_INTERPRETER=shutil.which("python3") or sys.executable, ANSIBLE_PIPELINING="True",
               ANSIBLE_LOCAL_TEMP=str(inventory.parent / "ansible-tmp"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    t0 = time.perf_counter()
    r = subprocess.run([ansible, "all", "-i", str(inventory), "-m", "command", "-a", "uname -a", "-f", str(jobs),
                        f"--ssh-common-args={extra}"], capture_output=True, text=True, env=env,
                       stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    ok = sum(1 for line in r.stdout.splitlines() if " | CHANGED" in line or " | SUCCESS" in line)
    note = "" if r.returncode == 0 else f"exit {r.returncode}: {(r.stdout + r.stderr).strip().splitlines()[-1][:120]!r}"
    return Run(wall, ok, None, note)


def measure(fn: Callable[[], Run], repeat: int) -> Run:
    runs = [fn() for _ in range(repeat)]
    wall = statistics.median(r.wall for r in runs)
    rss = max((r.rss_mb for r in runs if r.rss_mb is not None), default=None)
    notes = "; ".join(dict.fromkeys(r.note for r in runs if r.note))
    return Run(wall, min(r.ok for r in runs), rss, notes)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="50,200,500", help="host counts, comma-separated (default 50,200,500)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per figure (median; default 1)")
    ap.add_argument("--jobs", type=int, default=50,
                    help="ssh processes at once / runbook --parallel and --connect-limit / ansible -f (default 50)")
    ap.add_argument("--no-ansible", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    opts = ap.parse_args()
    try:
        sizes = sorted({int(s) for s in opts.sizes.split(",") if s.strip()})
    except ValueError:
        ap.error(f"--sizes: not a comma-separated list of numbers: {opts.sizes!r}")
    if not sizes or sizes[0] < 1:
        ap.error("--sizes: at least one positive host count")

    tmp = Path(tempfile.mkdtemp(prefix="runbook-scale-"))
    t0 = time.perf_counter()
    fleet = SSHFleet.start(tmp / "fleet", sizes[-1], ready_timeout=120)
    print(f"fleet: {sizes[-1]} hosts ({fleet.addresses['node-1']} .. {fleet.addresses[fleet.names[-1]]}) on "
          f"{len(fleet._servers)} sshd, port {fleet.port}, started in {time.perf_counter() - t0:.1f} s; "
          f"jobs {opts.jobs}; repeat {opts.repeat} (median); RLIMIT_NOFILE {resource.getrlimit(resource.RLIMIT_NOFILE)}",
          flush=True)
    book = tmp / "scale.md"
    book.write_text(BOOK)
    have_ansible = ansible_bin() is not None and not opts.no_ansible
    results: dict[str, dict[int, Run]] = {"plain ssh": {}, "runbook exec": {}}
    if have_ansible:
        results[f"ansible -f {opts.jobs}"] = {}
    try:
        plain_ssh(fleet, fleet.names[: sizes[0]], opts.jobs)  # warm the page cache, check the fleet answers
        for n in sizes:
            names = fleet.names[:n]
            inv = subset_inventory(fleet, names, tmp / f"inventory-{n}.yaml")
            sessions = tmp / f"sessions-{n}"
            results["plain ssh"][n] = measure(lambda names=names: plain_ssh(fleet, names, opts.jobs), opts.repeat)
            results["runbook exec"][n] = measure(
                lambda inv=inv, sessions=sessions, n=n: runbook_exec(book, inv, fleet, sessions, opts.jobs, n, tmp),
                opts.repeat)
            if have_ansible:
                results[f"ansible -f {opts.jobs}"][n] = measure(lambda inv=inv: ansible_adhoc(fleet, inv, opts.jobs),
                                                                opts.repeat)
            for tool, by_size in results.items():
                r = by_size[n]
                print(f"  {n:>4} hosts  {tool:<14} {r.wall:8.2f} s  {1000 * r.wall / n:7.1f} ms/host  "
                      f"{r.ok}/{n} succeeded, {n - r.ok} lost"
                      + (f"  peak RSS {r.rss_mb} MB" if r.rss_mb is not None else "")
                      + (f"  [{r.note}]" if r.note else ""), flush=True)
    finally:
        fleet.stop()
        if opts.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    header = f"{'':<16}" + "".join(f"{f'{n} hosts':>22}" for n in sizes) + f"{'growth':>10}"
    print(header)
    for tool, by_size in results.items():
        cells = "".join(f"{f'{by_size[n].wall:.2f} s ({by_size[n].ok}/{n})':>22}" for n in sizes)
        lo, hi = sizes[0], sizes[-1]
        growth = (by_size[hi].wall / hi) / (by_size[lo].wall / lo) if hi != lo else 1.0
        print(f"{tool:<16}{cells}{growth:>9.2f}x")
    if not have_ansible:
        print("ansible ad-hoc: not measured (" + ("--no-ansible" if opts.no_ansible else
                                                   "ansible not installed: .venv/bin/pip install ansible-core") + ")")
    rss = max((r.rss_mb for r in results["runbook exec"].values() if r.rss_mb is not None), default=None)
    print(f"growth = time per host at {sizes[-1]} / time per host at {sizes[0]} (target <= 1.2x); "
          f"runbook exec peak RSS {rss} MB (target < 300 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
