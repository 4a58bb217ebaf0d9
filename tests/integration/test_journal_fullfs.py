"""A journal on a full file system: a clear error, and what was durable still verifies.

Two ways to fill the disk, both tried:

* ``tmpfs``: a 256 KiB tmpfs mounted for the test (needs root and mount rights; when
  the mount is refused the test falls back to the file size limit, and says so);
* ``rlimit``: ``RLIMIT_FSIZE`` in the writer process, with ``SIGXFSZ`` ignored, so a
  write past the limit fails with ``EFBIG``.

The writer is a separate process: it records operator decisions and output through
a :class:`Session` until the journal refuses, printing every record it was told
was written, then checks that the state did not take the failed record.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sessions.journal.journal import read_records, verify

ROOT = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent("""
    import json, os, resource, signal, sys
    sys.path.insert(0, {root!r})
    from runbook.model import Phase, Runbook, Task
    from sessions.journal import events as ev
    from sessions.journal.journal import JournalWriteError
    from sessions.engine.session import Session
    root, limit = sys.argv[1], int(sys.argv[2])
    book = Runbook("Full", "/nonexistent/full.md", "f" * 64, phases=(Phase("1", "P", 1, tasks=(Task("T-1", "t", 1),)),))
    s = Session.create(book, root=root)
    if limit:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    s.record(ev.StepStarted("r1", "T-1", 1, ("a",), "cat big.log"))
    written, i, error = [], 0, None
    while error is None:
        i += 1
        before = s.state
        try:
            if i % 3:
                rec = s.record_output(ev.OutputChunk("r1", "a", "stdout", ("line %d of output\\n" % i) * 200))
            else:
                rec = s.record(ev.Note("decision %d" % i, "T-1"))
            written.append(rec.seq)
        except JournalWriteError as exc:
            error = str(exc)
            assert s.state is before, "state changed for a record that failed"
    try:
        s.note("after the failure")
    except JournalWriteError as exc:
        again = str(exc)
    s.close()
    print(json.dumps({{"error": error, "again": again, "written": written, "durable": s.journal.durable_count,
                      "journal": str(s.journal.path), "state_count": s.state.count}}))
""")


@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        yield None, f"mount refused ({p.stderr.strip() or p.returncode}); using RLIMIT_FSIZE"
        return
    try:
        yield mnt, ""
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def _write_until_full(root: Path, limit: int) -> dict:
    script = root.parent / "full_writer.py"
    script.write_text(WRITER.format(root=str(ROOT)))
    p = subprocess.run([sys.executable, "-I", str(script), str(root), str(limit)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stderr == "", p.stderr  # a clear error, no traceback or logging noise on the terminal
    return json.loads(p.stdout)


def _check(result: dict, expected_error: str) -> None:
    assert expected_error in result["error"], result["error"]
    assert "no new steps can start" in result["error"]
    assert f"valid up to record {result['durable']}" in result["error"]
    assert result["again"] == result["error"]
    path = Path(result["journal"])
    v = verify(path)
    assert v.ok, v.message
    assert v.count == result["durable"] >= max(result["written"])
    seqs = {r.seq for r in read_records(path)}
    assert set(result["written"]) <= seqs  # nothing reported written is missing
    assert result["state_count"] == max(result["written"])  # the state never took the failed record
    cli = subprocess.run([sys.executable, "-m", "runbook.cli", "journal", "verify", str(path)], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert cli.returncode == 0 and f"ok: {v.count} records" in cli.stdout


def test_full_tmpfs(small_tmpfs, tmp_path):
    mnt, why = small_tmpfs
    if mnt is None:
        print(why)
        result = _write_until_full(tmp_path / "sessions", 200_000)
        _check(result, "File too large (EFBIG)")
        return
    result = _write_until_full(mnt / "sessions", 0)
    _check(result, "No space left on device (ENOSPC)")


def test_file_size_limit(tmp_path):
    result = _write_until_full(tmp_path / "sessions", 150_000)
    _check(result, "File too large (EFBIG)")
