"""Where sessions live; ids; listing and finding sessions; the operator."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runbook.errors import UserError
from runbook.model import Phase, Runbook, Task
from sessions.engine.operator import current_operator
from sessions.engine.session import Session
from sessions.journal import events as ev
from sessions.journal.journal import Journal
from sessions.store import find_session, list_sessions, new_session_id, session_root


def book() -> Runbook:
    tasks = tuple(Task(t, f"task {t}", 10 + i) for i, t in enumerate(("T-1", "T-2")))
    return Runbook("Test RB", "/nonexistent/rb.md", "a" * 64, phases=(Phase("1", "P", 1, tasks=tasks),))


def _crash(session: Session) -> None:
    """Drop a session as a killed process would: no SessionClosed, lock body left."""
    import fcntl
    import os

    fcntl.flock(session.journal.lock._fd, fcntl.LOCK_UN)
    os.close(session.journal._fd)
    os.close(session.journal.lock._fd)
    session.journal._fd = session.journal.lock._fd = -1


def test_session_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("RUNBOOK_SESSION_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert session_root(str(tmp_path / "flag")) == tmp_path / "flag"
    assert session_root() == tmp_path / "env"
    monkeypatch.delenv("RUNBOOK_SESSION_DIR")
    assert session_root() == tmp_path / "xdg" / "runbook" / "sessions"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")  # the XDG spec: relative paths are invalid
    assert session_root() == tmp_path / "home" / ".local" / "state" / "runbook" / "sessions"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert session_root() == tmp_path / "home" / ".local" / "state" / "runbook" / "sessions"


def test_session_ids_sort_by_time_and_differ():
    t0 = datetime(2026, 11, 27, 4, 32, 16, tzinfo=UTC)
    ids = [new_session_id(t0 + timedelta(seconds=s)) for s in (0, 1, 59, 3600, 86400 * 40)]
    assert ids == sorted(ids)
    assert re.fullmatch(r"20261127T043216Z-[0-9a-f]{4}", ids[0])
    assert len({new_session_id(t0) for _ in range(50)}) > 40  # a random part


def test_operator_from_environment():
    op = current_operator({"USER": "root", "SUDO_USER": "alice", "SSH_CLIENT": "198.51.100.4 51000 22"})
    assert (op.name, op.login, op.origin) == ("alice", "root", "198.51.100.4")
    assert op.describe().startswith("alice (as root) from 198.51.100.4 on ")
    op = current_operator({"USER": "bob", "SSH_CONNECTION": "2001:db8::1 5000 2001:db8::2 22"})
    assert (op.name, op.origin) == ("bob", "2001:db8::1")
    assert current_operator({"LOGNAME": "carol"}).name == "carol"
    assert current_operator({}).name  # falls back to the account


def _sessions(root: Path) -> dict[str, str]:
    """Create one session in each status; return status -> id."""
    out = {}
    s = Session.create(book(), root=root)
    s.start_task("T-1")
    s.complete_task("T-1")
    s.close("finished", finished=True)
    out["finished"] = s.id
    s = Session.create(book(), root=root)
    s.close()
    out["paused"] = s.id
    s = Session.create(book(), root=root)
    s.record(ev.StepStarted("r1", "T-1", 1, ("a",), "cmd"))
    s.record(ev.StepOutcomeUnknown("r1", "lost"))
    _crash(s)
    out["interrupted"] = s.id
    s = Session.create(book(), root=root)
    out["active"] = s.id
    out["_open"] = s  # type: ignore[assignment]
    return out


def test_list_sessions_with_statuses(tmp_path):
    made = _sessions(tmp_path)
    broken = Session.create(book(), root=tmp_path)
    broken.close()
    jp = broken.dir / "journal.jsonl"
    jp.write_bytes(jp.read_bytes().replace(b"Test RB", b"Evil RB"))
    (tmp_path / "not-a-session").mkdir()
    try:
        found = {s.id: s for s in list_sessions(tmp_path)}
        assert len(found) == 5
        for status in ("finished", "paused", "interrupted", "active"):
            assert found[made[status]].status == status, status
        assert found[broken.id].status == "broken" and ":1:" in found[broken.id].problem
        fin = found[made["finished"]]
        assert fin.progress == "1/2" and fin.operators and fin.runbook_title == "Test RB"
        assert fin.started and fin.last_activity and fin.records == 4
        assert found[made["interrupted"]].unknowns == 1
        assert "pid" in found[made["active"]].holder
        assert [s.id for s in list_sessions(tmp_path)] == sorted(found)
    finally:
        made["_open"].close()  # type: ignore[union-attr]
    assert list_sessions(tmp_path / "missing") == []


def test_find_session(tmp_path):
    made = _sessions(tmp_path)
    made["_open"].close()  # type: ignore[union-attr]
    sid = made["paused"]
    jp = tmp_path / sid / "journal.jsonl"
    assert find_session(sid, tmp_path) == jp
    assert find_session(str(jp), tmp_path) == jp
    assert find_session(str(tmp_path / sid), tmp_path) == jp
    # the latest unfinished one: the last created (closed, not finished)
    assert find_session(None, tmp_path) == tmp_path / made["active"] / "journal.jsonl"
    with pytest.raises(UserError, match="ambiguous"):
        find_session("20", tmp_path)
    with pytest.raises(UserError, match="no session 'zzz'"):
        find_session("zzz", tmp_path)
    unique = sid[:-1]
    if sum(1 for v in made.values() if isinstance(v, str) and v.startswith(unique)) == 1:
        assert find_session(unique, tmp_path) == jp
    with pytest.raises(UserError, match="no unfinished session"):
        find_session(None, tmp_path / "empty")


def test_find_session_skips_finished(tmp_path):
    s = Session.create(book(), root=tmp_path)
    s.close("done", finished=True)
    with pytest.raises(UserError, match="no unfinished session"):
        find_session(None, tmp_path)
    with Journal.create(tmp_path / "x" / "journal.jsonl") as j:  # no events: nothing to resume
        assert j.count == 0
    with pytest.raises(UserError, match="no unfinished session"):
        find_session(None, tmp_path)


def test_find_session_never_picks_an_empty_journal(tmp_path):
    """A stray empty journal (crash right after create, or junk) is not a session to resume."""
    s = Session.create(book(), root=tmp_path)
    s.close("quit")
    junk = tmp_path / "zzzz-junk"
    junk.mkdir()
    (junk / "journal.jsonl").write_bytes(b"")
    assert find_session(None, tmp_path) == s.journal.path
