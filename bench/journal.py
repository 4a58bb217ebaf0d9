"""Journal benchmarks: print figures, assert nothing.

    .venv/bin/python bench/journal.py [--dir DIR] [--quick] [--resume]

Measured in one run, on the disk holding ``--dir`` (default: a temporary
directory):

1. durable decision records per second through ``Journal.append`` and through
   ``Session.record`` (write, fsync, state update, notify; a realistic mix of
   operator intents) against a plain ``write`` + ``fsync`` loop of lines of the same
   size on the same disk (target: >= 80 % of it), interleaved in blocks of 25 so that
   disk noise hits all three alike;
2. output throughput through ``Session.record_output`` (group commit) with chunks
   of realistic log text, 4-64 KiB each, including the fsync at the step's end
   (target: >= 100 MB/s);
3. replay of a 100,000-event journal (a realistic mix: steps on several hosts,
   output chunks of 80 B - 2 KiB, host results, checkboxes, notes): the fold into
   state (target: < 1 s), reading with the chain check, and both streamed as
   ``Session.resume`` does; peak memory while replaying (tracemalloc) and the peak
   RSS (VmHWM) of a fresh process that only replays;
4. ``--resume`` (alone, quicker): ``Session.resume`` of a session whose journal holds
   100,000 such events (read, verify the chain, decode, fold, then journal the opening),
   median of 3, with the fold alone beside it (target: < 1 s for the whole resume).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runbook.model import Phase, Runbook, Task
from sessions.engine.session import Session
from sessions.journal import events as ev
from sessions.journal.format import JournalReader
from sessions.journal.journal import Journal
from sessions.state.state import Replayer, replay


def _runbook() -> Runbook:
    tasks = tuple(Task(f"BENCH-{i:03d}", f"task {i}", i) for i in range(40))
    return Runbook("Bench", "/nonexistent/bench.md", "b" * 64, phases=(Phase("1", "P", 1, tasks=tasks),))


def decisions(directory: Path, n: int, block: int = 25) -> dict[str, float]:
    """Durable decision records per second, three ways interleaved block by block (so that
    disk noise hits all alike): a plain write+fsync loop, ``Journal.append`` and
    ``Session.record`` (journal + state update + notify) through the operator intents
    (40 % checkbox set, 10 % cleared, 30 % task started/completed, 10 % guard passed,
    10 % notes)."""
    s = Session.create(_runbook(), root=directory)
    seen: list[int] = []
    s.subscribe(lambda rec, state: seen.append(rec.seq))
    j = Journal.create(directory / "journal-only" / "journal.jsonl", lock=False)
    note = ev.Note("operator note 17: looked at the dashboard, all green", "BENCH-001", "alice")
    j.append(note)
    size = j.path.stat().st_size
    plain_path = directory / "plain.jsonl"
    fd = os.open(plain_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    line = b"x" * (size - 1) + b"\n"
    times = {"plain": 0.0, "journal": 0.0, "session": 0.0}
    # a session's mix of operator decisions: mostly checkboxes, then tasks, guards, a few notes
    intents = []
    for k in range(200):
        task = f"BENCH-{k % 40:03d}"
        box = f"{task}/prerequisites/{k % 5}"
        intents += [(s.set_checkbox, (box, True, "checked on the console"))] * 4
        intents += [(s.set_checkbox, (box, False, "", "ticked the wrong box")), (s.start_task, (task,)),
                    (s.complete_task, (task,)), (s.pass_guard, ("risk", task, None, "confirmed")),
                    (s.start_task, (task,)),
                    (s.note, (f"operator note {k}: looked at the dashboard, all green", task))]
    i = 0
    try:
        for _ in range(n // block):
            t0 = time.perf_counter()
            for _ in range(block):
                os.write(fd, line)
                os.fsync(fd)
            t1 = time.perf_counter()
            for _ in range(block):
                j.append(note)
            t2 = time.perf_counter()
            for _ in range(block):
                i += 1
                intent, args = intents[i % len(intents)]
                intent(*args)
            t3 = time.perf_counter()
            times["plain"] += t1 - t0
            times["journal"] += t2 - t1
            times["session"] += t3 - t2
    finally:
        os.close(fd)
        j.close()
        s.close()
    done = n // block * block
    out = {k: done / v for k, v in times.items()}
    out["bytes"] = size
    return out


def _text_chunks(total: int, rng: random.Random) -> list[bytes]:
    words = ("pod", "node", "Ready", "kube-system", "etcd", "apiserver", "10.0.0.12", "OK", "Running",
             "restarted", "image", "pulled", "sha256:3f9a", "deployment", "rollout", "status", "complete")
    lines = []
    for i in range(4000):
        n = rng.randint(4, 18)
        lines.append(f"2026-11-27T04:32:{i % 60:02d}.{i:06d}Z {' '.join(rng.choice(words) for _ in range(n))}\n")
    text = "".join(lines).encode()
    chunks, done = [], 0
    while done < total:
        size = rng.randint(4096, 65536)
        start = rng.randrange(0, len(text) - size)
        chunks.append(text[start:start + size])
        done += size
    return chunks


def output_throughput(directory: Path, total: int) -> tuple[float, int, int]:
    rng = random.Random(7)
    chunks = _text_chunks(total, rng)
    s = Session.create(_runbook(), root=directory)
    try:
        s.record(ev.StepStarted("run-1", "BENCH-001", 1, ("m1", "m2", "m3"), "journalctl -f", mode="parallel"))
        hosts = ("m1", "m2", "m3")
        t0 = time.perf_counter()
        for i, raw in enumerate(chunks):
            s.record_output(ev.OutputChunk.from_bytes("run-1", hosts[i % 3], "stdout", raw))
        for h in hosts:  # the step's end: durable records, fsync covers the output
            s.record(ev.HostFinished("run-1", h, "succeeded", 0, None, 1.0))
        dt = time.perf_counter() - t0
        nbytes = sum(map(len, chunks))
    finally:
        s.close()
    return nbytes / dt / 1e6, len(chunks), nbytes


def build_replay_journal(path: Path, n_events: int, rng: random.Random) -> None:
    j = Journal.create(path, lock=False)
    count = 0

    def put(e: ev.Event) -> None:
        nonlocal count
        j.append_output(e)
        count += 1

    put(ev.SessionOpened("bench", "/nonexistent/bench.md", "b" * 64, "Bench", "alice", task_ids=("BENCH-001",)))
    text = "".join(f"line {i} of output from the command: Ready Running OK\n" for i in range(200))
    run = 0
    while count < n_events:
        task = f"BENCH-{run // 5 % 40:03d}"
        hosts = tuple(f"m{k}" for k in range(rng.randint(1, 5)))
        rid = f"run-{run}"
        put(ev.TaskStarted(task, "alice")) if run % 5 == 0 else None
        put(ev.StepStarted(rid, task, run % 5 + 1, hosts, "kubectl get nodes -o wide", who="alice"))
        for _ in range(rng.randint(10, 60)):
            start = rng.randrange(0, 9000)
            put(ev.OutputChunk(rid, rng.choice(hosts), "stdout", text[start:start + rng.randint(80, 2048)]))
        for h in hosts:
            put(ev.HostFinished(rid, h, "succeeded", 0, None, rng.random() * 10))
            put(ev.ExpectationChecked(rid, h, 0, True, "Ready"))
        put(ev.StepFinished(rid, "succeeded", 10.0))
        put(ev.CheckboxSet(f"{task}/acceptance/{run % 5}", "box", "alice", "looked"))
        if run % 7 == 0:
            put(ev.Note(f"note on run {run}", task, "alice"))
        if run % 5 == 4:
            put(ev.TaskCompleted(task, "alice"))
        run += 1
    j.close()


def replay_figures(path: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    records = list(JournalReader(path))
    out["read"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    state = replay(records)
    out["fold"] = time.perf_counter() - t0
    out["events"] = state.count
    del records
    t0 = time.perf_counter()
    rep = Replayer()
    for rec in JournalReader(path):
        rep.feed_record(rec)
    state2 = rep.result()
    out["streamed"] = time.perf_counter() - t0
    assert state2 == state  # not a timing: the two paths must agree
    tracemalloc.start()
    rep = Replayer()
    for rec in JournalReader(path):
        rep.feed_record(rec)
    rep.result()
    out["peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return out


def replay_rss(path: Path) -> tuple[float, float]:
    """Peak RSS (MB, VmHWM) of a fresh process before and after replaying the journal as
    resume does (ru_maxrss would include the parent's, inherited across fork+exec)."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})\n"
            "def hwm():\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith('VmHWM:'): return int(line.split()[1])\n"
            "from sessions.journal.format import JournalReader\nfrom sessions.state.state import Replayer\n"
            "base = hwm()\n"
            f"rep = Replayer()\nfor rec in JournalReader({str(path)!r}): rep.feed_record(rec)\nrep.result()\n"
            "print(base, hwm())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]) / 1024, int(out[1]) / 1024


def resume_figures(directory: Path, n_events: int, repeat: int = 3) -> dict[str, float]:
    """Median seconds of ``Session.resume`` (the whole of it: open, read and verify the chain,
    decode, fold, journal the opening) of a session whose journal holds ``n_events`` events,
    and of the fold alone over the same records (decoded beforehand)."""
    root = directory / "sessions"
    path = root / "20261127T043216Z-bench" / "journal.jsonl"
    build_replay_journal(path, n_events, random.Random(3))
    records = list(JournalReader(path))
    folds, resumes, cpus = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        replay(records)
        folds.append(time.perf_counter() - t0)
    del records
    size = path.stat().st_size
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        s = Session.resume(path, root=root)
        resumes.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        s.close()
    return {"events": n_events, "mb": size / 1e6, "fold": sorted(folds)[repeat // 2],
            "resume": sorted(resumes)[repeat // 2], "min": min(resumes), "cpu": sorted(cpus)[repeat // 2]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", help="directory on the disk to measure (default: a temporary one)")
    ap.add_argument("--quick", action="store_true", help="smaller runs")
    ap.add_argument("--resume", action="store_true", help="only the resume of a 100,000-event session")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        d = Path(tmp)
        if args.resume:
            r = resume_figures(d, 20_000 if args.quick else 100_000)
            print(f"resume of a {r['events']:,}-event session ({r['mb']:,.0f} MB journal), median of 3:")
            print(f"  Session.resume (read, verify, decode, fold, journal the opening)  {r['resume']:.2f} s "
                  f"(min {r['min']:.2f} s, CPU {r['cpu']:.2f} s; target < 1 s)")
            print(f"  of which the fold alone (state.replay over decoded events)        {r['fold']:.2f} s")
            return 0
        print(f"journal benchmarks in {d} (python {sys.version.split()[0]})")

        n_dec = 1000 if args.quick else 4000
        r = decisions(d, n_dec)
        print(f"durable decisions ({n_dec} each, interleaved in blocks of 25, ~{r['bytes']:.0f} B/record):")
        print(f"  plain write+fsync loop  {r['plain']:8,.0f} records/s")
        print(f"  Journal.append          {r['journal']:8,.0f} records/s  ({r['journal'] / r['plain']:.0%} of plain)")
        print(f"  Session.record          {r['session']:8,.0f} records/s  ({r['session'] / r['plain']:.0%} of plain; "
              "target >= 80%)")

        total = (32 if args.quick else 256) * 2**20
        mbps, chunks, nbytes = output_throughput(d, total)
        print(f"output with group commit: {mbps:,.0f} MB/s ({chunks} chunks of 4-64 KiB, {nbytes / 1e6:,.0f} MB, "
              f"incl. the fsync at step end; target >= 100 MB/s)")

        n = 20_000 if args.quick else 100_000
        path = d / "replay" / "journal.jsonl"
        build_replay_journal(path, n, random.Random(3))
        f = replay_figures(path)
        base_mb, rss_mb = replay_rss(path)
        size_mb = path.stat().st_size / 1e6
        print(f"replay of a {int(f['events']):,}-event journal ({size_mb:,.0f} MB: output chunks of 80 B-2 KiB, steps, "
              "results, checkboxes, notes):")
        print(f"  fold (state.replay over the decoded events)  {f['fold']:.2f} s  (target < 1 s)")
        print(f"  read + verify the chain + decode             {f['read']:.2f} s")
        print(f"  both, streamed, as Session.resume does       {f['streamed']:.2f} s")
        print(f"  peak memory while replaying: {f['peak_mb']:.1f} MB allocated (tracemalloc); peak RSS of a process "
              f"doing only the replay {rss_mb:.0f} MB (after imports, before replaying: {base_mb:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
