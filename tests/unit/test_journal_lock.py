"""One writer per session, across processes; stale locks are taken over and journaled."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sessions.journal import events as ev
from sessions.journal.journal import Journal, read_records, verify
from sessions.journal.lock import SessionLock, SessionLocked, current_holder

ROOT = Path(__file__).resolve().parents[2]

HOLDER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from sessions.journal.journal import Journal
    from sessions.journal import events as ev
    j = Journal.open({path!r}, operator="alice") if {reopen!r} else Journal.create({path!r}, operator="alice")
    j.append(ev.Note("held"))
    print("ready", flush=True)
    sys.stdin.readline()
    j.close()
    print("closed", flush=True)
""")

SECOND = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from runbook.errors import UserError
    from sessions.journal.journal import Journal
    try:
        Journal.open({path!r}, operator="bob")
    except UserError as exc:
        print(exc)
        sys.exit(exc.exit_code)
    print("opened")
""")


def _holder(path: Path, reopen: bool = False) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=str(ROOT), path=str(path), reopen=reopen)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_second_writer_process_is_refused_naming_the_holder(tmp_path):
    path = tmp_path / "s1" / "journal.jsonl"
    first = _holder(path)
    try:
        second = subprocess.run([sys.executable, "-c", SECOND.format(root=str(ROOT), path=str(path))],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1, second.stdout + second.stderr
        msg = second.stdout
        assert f"pid {first.pid} on {socket.gethostname()} (operator alice) since 20" in msg
        assert "open for writing" in msg and "Traceback" not in second.stderr
        # in this process too (the lock is per open file, not per process)
        with pytest.raises(SessionLocked) as exc:
            Journal.open(path)
        assert exc.value.holder.pid == first.pid
        assert current_holder(path.parent / "lock").pid == first.pid
    finally:
        first.stdin.write("\n")
        first.stdin.flush()
        assert first.stdout.readline().strip() == "closed"
        first.wait(timeout=30)
    assert current_holder(path.parent / "lock") is None
    with Journal.open(path) as j:  # free again, nothing stale to report
        assert j.recovered == []
    assert [type(r.event).__name__ for r in read_records(path)] == ["Note"]


def test_stale_lock_of_a_dead_writer_is_taken_over_and_journaled(tmp_path):
    path = tmp_path / "s1" / "journal.jsonl"
    first = _holder(path)
    dead_pid = first.pid
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert json.loads((path.parent / "lock").read_text())["pid"] == dead_pid  # left behind
    assert current_holder(path.parent / "lock") is None  # dead: not a holder
    with Journal.open(path, operator="bob") as j:
        assert len(j.recovered) == 1
        rec = j.recovered[0].event
        assert isinstance(rec, ev.Recovered) and rec.what == "stale lock"
        assert f"pid {dead_pid} on {socket.gethostname()} (operator alice)" in rec.detail
        assert "no longer running" in rec.detail and f"taken over by pid {os.getpid()}" in rec.detail
        assert json.loads((path.parent / "lock").read_text())["pid"] == os.getpid()
    assert (path.parent / "lock").read_text() == ""  # a clean close empties it
    assert verify(path).ok


def test_lock_left_by_another_host_is_not_taken_over(tmp_path):
    lock = tmp_path / "lock"
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "since": "2026-11-27T04:00:00Z"}))
    with pytest.raises(SessionLocked, match=r"left open by pid 1 on elsewhere.example since .*Check there that it "
                       r"has ended \(`ssh elsewhere.example ps -p 1`.*only then remove .*lock"):
        SessionLock.acquire(lock)
    assert current_holder(lock).host == "elsewhere.example"


def test_lock_release_is_idempotent(tmp_path):
    lk = SessionLock.acquire(tmp_path / "lock", operator="alice")
    assert lk.held and lk.stale is None
    lk.release()
    lk.release()
    assert not lk.held
    again = SessionLock.acquire(tmp_path / "lock")
    again.release()
