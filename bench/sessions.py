"""``runbook sessions`` over many large sessions: print figures, assert nothing.

    .venv/bin/python bench/sessions.py [--dir DIR] [--sessions 200] [--mb 10] [--full 200]

Builds one closed session whose journal is about ``--mb`` MB (steps with output chunks,
written through ``Session`` so that it leaves its head), then ``--sessions`` session
directories holding it (the journal hard-linked, the head copied: the listing reads each
session's own files, the disk holds one journal).  Times, median of 3:

1. ``list_sessions`` as ``runbook sessions`` does it: each session's head, checked against
   its journal's size and last record (target: 200 sessions of 10 MB in < 1 s);
2. the same listing with the heads removed, which reads and verifies every journal whole
   (what ``runbook sessions`` did before heads), over ``--full`` of the sessions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runbook.model import Phase, Runbook, Task
from sessions.engine.session import Session
from sessions.journal import events as ev
from sessions.store import HEAD, JOURNAL, list_sessions


def _runbook() -> Runbook:
    tasks = tuple(Task(f"BENCH-{i:03d}", f"task {i}", i) for i in range(40))
    return Runbook("Bench", "/nonexistent/bench.md", "b" * 64, phases=(Phase("1", "P", 1, tasks=tasks),))


def build_session(root: Path, mb: float) -> Path:
    """One closed session of about ``mb`` MB of journal; its journal's path."""
    s = Session.create(_runbook(), root=root)
    text = "".join(f"line {i} of output from the command: Ready Running OK\n" for i in range(30))
    run = 0
    while s.journal.size < mb * 1e6:
        task = f"BENCH-{run % 40:03d}"
        rid = f"run-{run}"
        s.start_task(task)
        s.record(ev.StepStarted(rid, task, 1, ("m1", "m2"), "kubectl get nodes -o wide"))
        for i in range(200):
            s.record_output(ev.OutputChunk(rid, ("m1", "m2")[i % 2], "stdout", text))
        for h in ("m1", "m2"):
            s.record(ev.HostFinished(rid, h, "succeeded", 0, None, 1.0))
        s.record(ev.StepFinished(rid, "succeeded", 1.0))
        s.complete_task(task)
        run += 1
    s.close()
    return s.journal.path


def replicate(template: Path, root: Path, n: int) -> list[Path]:
    dirs = []
    for i in range(n):
        d = root / f"20261127T{i // 3600 % 24:02d}{i // 60 % 60:02d}{i % 60:02d}Z-{i:04x}"
        d.mkdir(mode=0o700)
        os.link(template, d / JOURNAL)
        shutil.copyfile(template.parent / HEAD, d / HEAD)
        os.chmod(d / HEAD, 0o600)
        dirs.append(d)
    return dirs


def timed(root: Path, repeat: int = 3) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = len(list_sessions(root))
        times.append(time.perf_counter() - t0)
    return sorted(times)[repeat // 2], count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", help="directory on the disk to measure (default: a temporary one)")
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--mb", type=float, default=10.0, help="journal size of each session")
    ap.add_argument("--full", type=int, default=200, help="sessions listed without heads (full reads)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        d = Path(tmp)
        template = build_session(d / "template", args.mb)
        size = template.stat().st_size
        root = d / "sessions"
        root.mkdir(mode=0o700)
        dirs = replicate(template, root, args.sessions)
        print(f"runbook sessions over {args.sessions} sessions of {size / 1e6:.1f} MB each "
              f"({args.sessions * size / 1e9:.2f} GB of journals; python {sys.version.split()[0]}), median of 3:")
        t, n = timed(root)
        assert n == args.sessions  # not a timing: every session is listed
        print(f"  from the heads (size + last record checked)  {t:.3f} s  (target < 1 s for 200 of 10 MB)")
        full = min(args.full, args.sessions)
        for extra in dirs[full:]:
            shutil.rmtree(extra)
        for kept in dirs[:full]:
            (kept / HEAD).unlink()
        t, n = timed(root, 1 if full > 20 else 3)
        print(f"  without heads (every journal read and verified whole, as before), {n} sessions  {t:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
