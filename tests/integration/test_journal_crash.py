"""SIGKILL a journal writer at random points, 200 times.

Each writer process opens the journal (recovering whatever the previous one left:
a torn last line, a stale lock), appends records of very different sizes (large
ones can be cut short by SIGKILL in the middle of ``write``), and prints
``<seq> <h>`` for every record once it is durable: after ``append()`` returned,
or after a group commit covered an output record.  After the kill, the journal
must open (truncating a torn tail), verify, and hold every reported record with
the reported hash.
"""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sessions.journal import events as ev
from sessions.journal.journal import Journal, JournalReader, read_records, verify

ROOT = Path(__file__).resolve().parents[2]
ITERATIONS = 200
CHAIN = 5  # kills per journal before starting a fresh one (keeps each iteration fast)

WRITER = textwrap.dedent("""
    import os, random, sys
    sys.path.insert(0, {root!r})
    from sessions.journal import events as ev
    from sessions.journal.journal import Journal
    path, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    from sessions.journal.journal import JournalReader
    if os.path.exists(path) and sum(1 for _ in JournalReader(path)) == 0:
        os.unlink(path)  # killed before its first record: no history to resume (open refuses it)
    j = Journal.open(path) if os.path.exists(path) else Journal.create(path)
    out = sys.stdout
    for rec in j.recovered:
        out.write(f"{{rec.seq}} {{rec.h}}\\n")
    out.write("open\\n")
    out.flush()
    sizes = (40, 400, 4000, 40000, 400000)
    while True:
        size = rng.choice(sizes)
        if rng.random() < 0.5:
            rec = j.append(ev.Note("n" * size, None, "writer"))
            out.write(f"{{rec.seq}} {{rec.h}}\\n")
        else:
            before = j.durable_count
            j.append_output(ev.OutputChunk("run-1", "host-1", "stdout", "o" * size))
            if rng.random() < 0.2:
                j.sync()
            if j.durable_count != before:
                out.write(f"{{j.durable_count}} {{j.head}}\\n")
        out.flush()
""")


def _reported(text: str) -> dict[int, str]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            out[int(parts[0])] = parts[1]
    return out


def test_sigkill_at_random_points_loses_nothing_reported_durable(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(root=str(ROOT)))
    rng = random.Random(20261127)
    stats = {"torn": 0, "stale": 0, "killed_before_open": 0, "records": 0}
    path = tmp_path / "j0" / "journal.jsonl"
    for i in range(ITERATIONS):
        if i % CHAIN == 0:
            path = tmp_path / f"j{i // CHAIN}" / "journal.jsonl"
            if i >= CHAIN:
                old = tmp_path / f"j{i // CHAIN - 1}" / "journal.jsonl"
                old.unlink()  # keep the disk use small
        proc = subprocess.Popen([sys.executable, "-I", str(script), str(path), str(i)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if rng.random() < 0.15:
            time.sleep(rng.uniform(0.0, 0.15))  # maybe still starting, maybe recovering
            stats["killed_before_open"] += 1
        else:
            first = proc.stdout.readline()
            while first and first.strip() != b"open":
                first = proc.stdout.readline()  # recovered records come before "open"
            assert first, proc.stderr.read().decode()
            time.sleep(rng.uniform(0.0, 0.04))
        proc.kill()
        out, err = proc.communicate(timeout=60)
        assert b"Traceback" not in err, err.decode()
        # everything printed so far, including what came before "open"
        reported = _reported(out.decode())
        if i % 2:
            # leave recovery to the next writer; the records must be readable as they are
            found = {r.seq: r.h for r in read_records(path)} if path.exists() else {}
        else:
            if not path.exists():  # killed before the journal was created
                assert not reported
                continue
            reader = JournalReader(path)
            for _ in reader:
                pass
            if reader.count == 0:  # killed before the first record: refused for writing, left to the writer
                assert not reported
                continue
            with Journal.open(path) as j:  # truncates a torn tail, takes over the lock
                kinds = [r.event.what for r in j.recovered]
            stats["torn"] += "torn tail" in kinds
            stats["stale"] += "stale lock" in kinds
            assert ("torn tail" in kinds) == bool(reader.torn)
            v = verify(path)
            assert v.ok, f"iteration {i}: {v.message}"
            found = {r.seq: r.h for r in read_records(path, allow_torn_tail=False)}
        missing = {seq: h for seq, h in reported.items() if found.get(seq) != h}
        assert not missing, f"iteration {i}: reported durable but missing or different: {sorted(missing)[:5]}"
        stats["records"] += len(reported)
    if path.exists() and verify(path).count:
        with Journal.open(path):
            pass
        assert verify(path).ok
    print(f"\n{ITERATIONS} kills: {stats}")
    assert stats["records"] > ITERATIONS  # the writers did write


def test_recovered_record_is_journaled_after_a_torn_tail(tmp_path):
    """The deterministic version of what the kills above hit by chance."""
    path = tmp_path / "journal.jsonl"
    with Journal.create(path, lock=False) as j:
        rec = j.append(ev.Note("kept"))
    with open(path, "ab") as fh:
        fh.write(b'{"event":{"data":"cut sh')
    with Journal.open(path, lock=False) as j:
        assert [r.event.bytes_dropped for r in j.recovered] == [24]
    records = list(read_records(path, allow_torn_tail=False))
    assert records[0].h == rec.h and isinstance(records[1].event, ev.Recovered)
