"""Benchmark: export and verify a session of 100,000 journal events.

    .venv/bin/python bench/export.py [--events N] [--hosts H] [--keep DIR]

Builds a journal like a long session (steps on several hosts, most events output
chunks, plus checkboxes, notes, guards), then times, in this process:

* export: read + chain check + secret check + replay + render + sign (ed25519 file key)
  for json, md and html;
* verify: ``runbook verify`` on the signed JSON (chain recomputed + signature) and on
  the md (signature only);
* then ``runbook export --format json --sign KEY`` and ``runbook verify`` as commands (new
  processes: interpreter start and imports included).

Prints figures; asserts nothing (DEVELOPERS.md: benchmarks print, tests never time).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncssh  # noqa: E402

from sessions.journal import events as ev  # noqa: E402
from sessions.journal.journal import Journal  # noqa: E402


def build_journal(path: Path, events: int, hosts: int) -> int:
    names = [f"web-{i:02d}" for i in range(hosts)]
    n = 0
    with Journal.create(path, group_commit_s=1.0) as j:
        def add(e: ev.Event, durable: bool = False) -> None:
            nonlocal n
            (j.append if durable else j.append_output)(e)
            n += 1

        add(ev.SessionOpened("20261127T043216Z-bench", "/nonexistent/prod.md", "0" * 64, "Bench runbook",
                             operator="alice", jump_host="jump-01", tool_version="0.1.0",
                             task_ids=tuple(f"T-{i}" for i in range(100))), True)
        run = 0
        while n < events - 2:
            task = f"T-{run // 10 % 100}"
            rid = f"r{run}"
            add(ev.StepStarted(rid, task, run % 10 + 1, tuple(names), f"deploy --step {run} --wait", who="alice"))
            for line in range(20):
                for h in names:
                    add(ev.OutputChunk(rid, h, "stdout", f"{h}: step {run} line {line}: " + "x" * 60 + "\n"))
            for h in names:
                add(ev.HostFinished(rid, h, "succeeded" if run % 50 else "failed", exit_status=0 if run % 50 else 1,
                                    duration_s=1.5))
            add(ev.StepFinished(rid, "succeeded" if run % 50 else "failed", duration_s=1.5))
            add(ev.CheckboxSet(f"{task}/acceptance/{run % 3}", text=f"criterion {run}", who="alice"))
            if run % 7 == 0:
                add(ev.Note(f"note for run {run}", task=task, who="alice"))
            run += 1
        add(ev.SessionClosed("finished", finished=True), True)
    return n


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--hosts", type=int, default=4)
    ap.add_argument("--keep", metavar="DIR")
    args = ap.parse_args()

    from sessions.commands.export import render, verify_report
    from sessions.report.build import build_report, read_journal
    from sessions.signing import REPORT_NAMESPACE, FileSigningKey

    tmp = Path(args.keep or tempfile.mkdtemp(prefix="runbook-bench-export-"))
    journal = tmp / "session" / "journal.jsonl"
    if journal.exists():
        journal.unlink()
        (tmp / "session" / "lock").unlink(missing_ok=True)
    t0 = time.perf_counter()
    n = build_journal(journal, args.events, args.hosts)
    print(f"journal: {n} events, {journal.stat().st_size / 1e6:.1f} MB, written in {time.perf_counter() - t0:.2f} s")

    key = FileSigningKey(asyncssh.generate_private_key("ssh-ed25519"), "generated")
    allowed = tmp / "allowed_signers"
    allowed.write_text(f"bench@example {key.public_line('')}\n")
    for fmt in ("json", "md", "html"):
        out = tmp / f"report.{fmt}"
        t0 = time.perf_counter()
        jc = read_journal(journal)
        t_read = time.perf_counter() - t0
        report = build_report(jc)
        t_build = time.perf_counter() - t0 - t_read
        data = render(report, jc, fmt, 200)
        out.write_bytes(data)
        Path(str(out) + ".sig").write_bytes(key.sign(data, REPORT_NAMESPACE))
        t_export = time.perf_counter() - t0
        t1 = time.perf_counter()
        ok, verdict = verify_report(str(out), None, str(allowed), "bench@example")
        t_verify = time.perf_counter() - t1
        print(f"{fmt:4s}: export {t_export:.2f} s (read+chain {t_read:.2f}, report {t_build:.2f}), "
              f"{len(data) / 1e6:.1f} MB; verify {t_verify:.2f} s; export+verify {t_export + t_verify:.2f} s; "
              f"{'OK' if ok else 'FAILED'}")
        if not ok:
            print("  " + verdict)
    # the same through the command line, as an operator runs it (process start and imports included)
    keyfile = tmp / "id_ed25519"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(keyfile))
    allowed.write_text(f"bench@example {asyncssh.read_private_key(str(keyfile)).export_public_key().decode()}")
    exe = [sys.executable, "-m", "runbook.cli"]
    out = tmp / "cli.json"
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    subprocess.run(exe + ["export", str(journal), "--format", "json", "--out", str(out), "--sign", str(keyfile)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    t1 = time.perf_counter()
    res = subprocess.run(exe + ["verify", str(out), "--allowed-signers", str(allowed), "--identity", "bench@example"],
                         capture_output=True, text=True, cwd=ROOT)
    t2 = time.perf_counter()
    print(f"cli : runbook export --format json --sign {t1 - t0:.2f} s; runbook verify {t2 - t1:.2f} s; "
          f"together {t2 - t0:.2f} s wall, {_children_cpu() - cpu0:.2f} s CPU; {res.stdout.split(':')[0]}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall times grow with it)")
    print(f"files in {tmp}" if args.keep else "")
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)



if __name__ == "__main__":
    main()
