"""Fan-out and throughput of ``runbook exec`` over a loopback OpenSSH fleet.

    .venv/bin/python bench/fanout.py [--hosts 50] [--seq 3000000] [--repeat 3] [--no-ansible]

Starts an :class:`~tests.integration.sshd.SSHFleet` of ``--hosts`` addresses
(127.0.1.x; several sshd, at most 16 addresses each) and measures, printing
figures only (never asserting):

* ``uname -a`` on every host
    - plain OpenSSH: one ``ssh`` per host started in the background, then wait for all
      (``-o KexAlgorithms=curve25519-sha256``, BatchMode, the fleet's known_hosts and key);
    - ``runbook exec`` (the real CLI in a subprocess: Python start-up, parsing, session,
      journal with fsync) with the defaults (``--parallel 10 --connect-limit 10``) and with
      ``--parallel N --connect-limit N`` (plain ssh bounds neither);
    - the in-process :class:`~sessions.engine.engine.Engine` with journaling (no start-up);
    - Ansible ad-hoc ``-m command -f N`` (pipelining on, same ssh options) when ``ansible``
      is installed, e.g. ``.venv/bin/pip install ansible-core`` (row skipped otherwise);
  target: runbook <= 1.5x plain ssh;
* ``seq N`` on one host: ``ssh host 'seq N' > /dev/null`` against ``runbook exec`` with
  journaling and output to /dev/null: throughput (target >= 50% of ssh) and the peak RSS
  of the runbook process (target < 200 MB).

Each figure is the median of ``--repeat`` runs; every run opens new connections.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.sshd import SSHFleet  # noqa: E402

RUNBOOK_BIN = Path(sys.executable).parent / "runbook"
RUNBOOK = [str(RUNBOOK_BIN)] if RUNBOOK_BIN.exists() else [sys.executable, "-m", "runbook.cli"]

BOOK = """# Bench

## Phase 0: Bench (1 hour)

### Task FAN-001: uname everywhere

- **Duration**: 1 minute
- **Risk Level**: LOW

#### Steps

1. **uname**

<!-- runbook: target=all -->
```bash
uname -a
```

### Task SEQ-001: lots of output

- **Duration**: 1 minute
- **Risk Level**: LOW

#### Steps

1. **seq**

<!-- runbook: target=node-1 -->
```bash
seq {seq}
```
"""


def ssh_argv(fleet: SSHFleet, name: str, command: str) -> list[str]:
    return [
        "ssh", "-o", "BatchMode=yes", "-o", "KexAlgorithms=curve25519-sha256",
        "-o", f"UserKnownHostsFile={fleet.known_hosts}", "-o", "StrictHostKeyChecking=yes",
        "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ControlMaster=no", "-o", "ControlPath=none",
        "-i", str(fleet.client_key), "-p", str(fleet.port), "-l", fleet.user, fleet.addresses[name], command,
    ]


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median_of(fn, repeat: int) -> float:
    return statistics.median(timed(fn) for _ in range(repeat))


def plain_ssh_fanout(fleet: SSHFleet) -> None:
    procs = [subprocess.Popen(ssh_argv(fleet, n, "uname -a"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL) for n in fleet.names]
    outs = [p.communicate() for p in procs]
    bad = [n for n, p, (o, _) in zip(fleet.names, procs, outs, strict=True) if p.returncode != 0 or b"Linux" not in o]
    if bad:
        raise SystemExit(f"plain ssh failed on {bad[:5]}: {outs[0][1][:200]!r}")


def runbook_exec(args: list[str]) -> tuple[float, bytes, str]:
    """Run the CLI; return (wall, stdout, stderr)."""
    t0 = time.perf_counter()
    proc = subprocess.run(RUNBOOK + args, capture_output=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"runbook exec failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return wall, proc.stdout, proc.stderr.decode()


def seq_bytes(n: int) -> int:
    """Bytes ``seq n`` prints (digits and newlines), without building them."""
    total, digits, start = 0, 1, 1
    while start <= n:
        end = min(n, 10**digits - 1)
        total += (end - start + 1) * (digits + 1)
        start, digits = end + 1, digits + 1
    return total


def runbook_exec_rss(args: list[str], tmp: Path) -> tuple[float, int]:
    """Run the CLI with output to /dev/null; return (wall, peak RSS in MB).

    The RSS comes from GNU time (``%M``) when installed: ``wait4`` on a child forked
    from this (large) process would count the pages it shared before ``exec``.
    """
    gnu_time = shutil.which("time") if os.path.exists("/usr/bin/time") else None
    report = tmp / "time.txt"
    argv = (["/usr/bin/time", "-o", str(report), "-f", "%M"] if gnu_time else []) + RUNBOOK + args
    with open(os.devnull, "wb") as devnull:
        t0 = time.perf_counter()
        proc = subprocess.run(argv, stdout=devnull, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"runbook exec failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    if gnu_time:
        rss_kib = int(report.read_text().split()[-1])
    else:
        import resource

        rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, rss_kib // 1024


async def engine_seq(book_path: Path, inventory_path: Path, fleet: SSHFleet, sessions: Path) -> tuple[float, float]:
    """In-process Engine on SEQ-001: (wall of run_step, seconds from first to last output record)."""
    from runbook.parse.parser import parse_file
    from runbook.targets.inventory import Inventory
    from sessions.engine.engine import Engine
    from sessions.engine.session import Session
    from sessions.journal import events as ev

    session = Session.create(parse_file(str(book_path)), root=sessions)
    engine = Engine(session, Inventory.load(str(inventory_path)), known_hosts=str(fleet.known_hosts))
    stamps: list[float] = []
    session.subscribe(lambda rec, st: stamps.append(time.perf_counter())
                      if isinstance(rec.event, ev.OutputChunk) else None)
    try:
        t0 = time.perf_counter()
        outcome = await engine.run_step("SEQ-001", 1)
        wall = time.perf_counter() - t0
    finally:
        await engine.close()
        session.close()
    if outcome != "succeeded":
        raise SystemExit(f"engine seq: {outcome}")
    return wall, (stamps[-1] - stamps[0]) if len(stamps) > 1 else wall


async def engine_fanout(book_path: Path, inventory_path: Path, fleet: SSHFleet, sessions: Path,
                        parallel: int) -> float:
    from runbook.parse.parser import parse_file
    from runbook.targets.inventory import Inventory
    from sessions.engine.engine import Engine
    from sessions.engine.session import Session

    book = parse_file(str(book_path))
    inventory = Inventory.load(str(inventory_path))
    session = Session.create(book, root=sessions)
    engine = Engine(session, inventory, known_hosts=str(fleet.known_hosts), parallel_limit=parallel,
                    connect_limit=parallel)
    try:
        t0 = time.perf_counter()
        summary = await engine.run_step_summary("FAN-001", 1)
        wall = time.perf_counter() - t0
    finally:
        await engine.close()
        session.close()
    if summary.outcome != "succeeded" or len(summary.hosts) != len(fleet.names):
        raise SystemExit(f"engine fan-out: {summary.outcome} on {len(summary.hosts)} hosts")
    return wall


def ansible_fanout(fleet: SSHFleet, inventory: Path, forks: int) -> None:
    ansible = shutil.which("ansible", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    extra = (f"-o KexAlgorithms=curve25519-sha256 -o UserKnownHostsFile={fleet.known_hosts} "
             "-o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes")
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_SSH_ARGS="-o ControlMaster=no",
               ANSIBLE_PYTHON_INTERPRETER=shutil.which("python3") or sys.executable, ANSIBLE_PIPELINING="True",
               ANSIBLE_LOCAL_TEMP=str(inventory.parent / "ansible-tmp"), ANSIBLE_NOCOLOR="1")
    r = subprocess.run([ansible, "all", "-i", str(inventory), "-m", "command", "-a", "uname -a", "-f", str(forks),
                        f"--ssh-common-args={extra}"], capture_output=True, text=True, env=env)
    if r.returncode == 0 and r.stdout.count("CHANGED") + r.stdout.count("SUCCESS") < len(fleet.names):
        raise RuntimeError("not every host answered: " + r.stdout[-500:])
    if r.returncode != 0:
        raise RuntimeError(r.stdout[-1500:] + r.stderr[-1500:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--seq", type=int, default=3_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-ansible", action="store_true")
    ap.add_argument("--only", choices=["fanout", "seq"], help="run one half of the benchmark")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    opts = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="runbook-bench-"))
    fleet = SSHFleet.start(tmp / "fleet", opts.hosts)
    rows: list[tuple[str, str, str]] = []
    try:
        inv = fleet.write_inventory(tmp / "inventory.yaml")
        book = tmp / "bench.md"
        book.write_text(BOOK.format(seq=opts.seq))
        sessions = tmp / "sessions"
        common = ["--inventory", str(inv), "--known-hosts", str(fleet.known_hosts), "--session-dir", str(sessions)]
        n = opts.hosts
        print(f"fleet: {n} hosts on {len(fleet._servers)} sshd, port {fleet.port}; repeat {opts.repeat} (median)",
              flush=True)

        if opts.only != "seq":
            fanout(opts, fleet, book, inv, sessions, common, rows)
        if opts.only != "fanout":
            throughput(opts, fleet, book, sessions, common, rows)
    finally:
        fleet.stop()
        if not opts.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")

    width = max(len(r[0]) for r in rows)
    print()
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>14}  {ratio}")
    return 0


def fanout(opts, fleet, book, inv, sessions, common, rows) -> None:
    n = opts.hosts
    plain_ssh_fanout(fleet)  # warm the page cache of ssh/sshd binaries, check the fleet works
    ssh_wall = median_of(lambda: plain_ssh_fanout(fleet), opts.repeat)
    rows.append((f"plain ssh x{n} in the background", f"{ssh_wall:.3f} s", "1.00x"))

    for parallel in (10, n):
        def cli(parallel=parallel) -> None:
            _, out, _ = runbook_exec(["exec", str(book), "--task", "FAN-001", "--parallel", str(parallel),
                                      "--connect-limit", str(parallel)] + common)
            lines = [x for x in out.decode().splitlines() if "Linux" in x]
            if len(lines) != n:
                raise SystemExit(f"expected {n} uname lines, got {len(lines)}")
        wall = median_of(cli, opts.repeat)
        label = " (the defaults)" if parallel == 10 else ""
        rows.append((f"runbook exec CLI --parallel {parallel} --connect-limit {parallel}{label}", f"{wall:.3f} s",
                     f"{wall / ssh_wall:.2f}x"))

    imports = [sys.executable, "-c", "import runbook.cli, runbook.parse.parser, runbook.targets.inventory, runbook.transport.ssh, "
               "sessions.commands.exec, sessions.engine.engine, sessions.engine.session, sessions.commands.exec_terminal"]
    startup = median_of(lambda: subprocess.run(imports, capture_output=True, check=True), opts.repeat)
    rows.append(("  (of which Python start-up + imports)", f"{startup:.3f} s", f"{startup / ssh_wall:.2f}x"))

    walls = [asyncio.run(engine_fanout(book, inv, fleet, sessions, n)) for _ in range(opts.repeat)]
    eng = statistics.median(walls)
    rows.append((f"in-process Engine, journaled, parallel {n}", f"{eng:.3f} s", f"{eng / ssh_wall:.2f}x"))

    ansible = shutil.which("ansible", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    if opts.no_ansible:
        rows.append(("ansible ad-hoc", "skipped (--no-ansible)", ""))
    elif ansible:
        try:
            ansible_fanout(fleet, inv, n)
            wall = median_of(lambda: ansible_fanout(fleet, inv, n), opts.repeat)
            rows.append((f"ansible -m command -f {n} (pipelining)", f"{wall:.3f} s", f"{wall / ssh_wall:.2f}x"))
        except RuntimeError as exc:
            rows.append(("ansible ad-hoc", "failed: " + str(exc).strip().splitlines()[-1][:80], ""))
    else:
        rows.append(("ansible ad-hoc", "skipped (ansible not installed)", ""))


def throughput(opts, fleet, book, sessions, common, rows) -> None:
    size = seq_bytes(opts.seq)

    def ssh_seq() -> None:
        with open(os.devnull, "wb") as devnull:
            subprocess.run(ssh_argv(fleet, "node-1", f"seq {opts.seq}"), stdout=devnull, check=True,
                           stdin=subprocess.DEVNULL)

    ssh_seq()
    seq_ssh = median_of(ssh_seq, opts.repeat)
    runs = [runbook_exec_rss(["exec", str(book), "--task", "SEQ-001"] + common, sessions.parent)
            for _ in range(opts.repeat)]
    seq_rb = statistics.median(w for w, _ in runs)
    rss = max(r for _, r in runs)
    journal = max((p.stat().st_size for p in sessions.glob("*/journal.jsonl")), default=0)
    mb = size / 1e6
    rows.append((f"ssh 'seq {opts.seq}' > /dev/null", f"{seq_ssh:.3f} s", f"{mb / seq_ssh:.1f} MB/s"))
    rows.append((f"runbook exec seq {opts.seq} (journaled)", f"{seq_rb:.3f} s",
                 f"{mb / seq_rb:.1f} MB/s = {100 * seq_ssh / seq_rb:.0f}% of ssh"))
    engine_runs = [asyncio.run(engine_seq(book, Path(common[1]), fleet, sessions)) for _ in range(opts.repeat)]
    eng = statistics.median(w for w, _ in engine_runs)
    stream = statistics.median(s for _, s in engine_runs)
    rows.append(("in-process Engine seq (journaled)", f"{eng:.3f} s",
                 f"{mb / eng:.1f} MB/s = {100 * seq_ssh / eng:.0f}% of ssh"))
    rows.append(("  first to last output record", f"{stream:.3f} s", f"{mb / stream:.1f} MB/s streaming"))
    rows.append(("  peak RSS of runbook exec (seq)", f"{rss} MB", "target < 200 MB"))
    rows.append(("  largest journal", f"{journal / 1e6:.1f} MB", f"{mb:.1f} MB of output"))


if __name__ == "__main__":
    sys.exit(main())
