"""Session: create, intents (durable before shown), resume, handover, write errors."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import shutil
import socket
import stat
from pathlib import Path

import pytest

from runbook.errors import UserError
from runbook.model import Checkbox, Phase, Runbook, Step, Task
from sessions.engine.session import Session, same_secret
from sessions.journal import events as ev
from sessions.journal import journal as jr
from sessions.journal.journal import JournalWriteError, read_records, verify
from sessions.state.state import SUCCEEDED, UNKNOWN

CHECKLISTS = Path(__file__).resolve().parents[2] / "checklists"


def book(path: str = "/nonexistent/rb.md", sha: str = "a" * 64, tasks: tuple[str, ...] = ("T-1", "T-2")) -> Runbook:
    ts = tuple(Task(t, f"task {t}", 10 + i, steps=(Step(1, "one", 11 + i),),
                    prerequisites=(Checkbox(f"{t}/prerequisites/0", f"box of {t}", False, 12 + i),))
               for i, t in enumerate(tasks))
    return Runbook("Test RB", path, sha, phases=(Phase("1", "P", 1, tasks=ts),))


@pytest.fixture
def as_alice(monkeypatch):
    monkeypatch.setenv("USER", "root")
    monkeypatch.setenv("SUDO_USER", "alice")
    monkeypatch.setenv("SSH_CLIENT", "192.0.2.7 50000 22")
    monkeypatch.delenv("SSH_CONNECTION", raising=False)


def events_of(session_or_path) -> list[ev.Event]:
    path = session_or_path.journal.path if isinstance(session_or_path, Session) else session_or_path
    return [r.event for r in read_records(path)]


def test_create_layout_and_opened_event(tmp_path, as_alice):
    inv = tmp_path / "inventory.yaml"
    inv.write_text("all: {}\n")
    s = Session.create(book(), root=tmp_path / "sessions", inventory_path=inv, window_end="2026-11-27T06:00:00Z")
    try:
        assert s.dir.parent == tmp_path / "sessions" and s.dir.name == s.id
        assert stat.S_IMODE(s.dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((s.dir / "journal.jsonl").stat().st_mode) == 0o600
        assert json.loads((s.dir / "lock").read_text())["pid"] == os.getpid()
        opened = events_of(s)[0]
        assert isinstance(opened, ev.SessionOpened)
        assert (opened.operator, opened.origin, opened.jump_host) == ("alice", "192.0.2.7", socket.gethostname())
        assert opened.runbook_path == "/nonexistent/rb.md" and opened.runbook_sha256 == "a" * 64
        assert opened.inventory_digest == hashlib.sha256(b"all: {}\n").hexdigest()
        assert opened.task_ids == ("T-1", "T-2") and opened.window_end == "2026-11-27T06:00:00Z"
        assert opened.tool_version and opened.pid == os.getpid() and not opened.resumed
        assert s.operator == "alice" and s.state.session_id == s.id and s.state.operators == ("alice",)
    finally:
        s.close()
    assert isinstance(events_of(s)[-1], ev.SessionClosed)
    assert (s.dir / "lock").read_text() == ""


def test_each_intent_is_durable_before_subscribers_hear_of_it(tmp_path, monkeypatch):
    s = Session.create(book(), root=tmp_path)
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(jr.os, "fsync", lambda fd: (real(fd), synced.append(s.journal.count))[0])
    heard: list[tuple[str, int, int]] = []
    s.subscribe(lambda rec, state: heard.append((rec.event.TYPE, rec.seq, state.count)))
    s.start_task("T-1")
    s.set_checkbox("T-1/prerequisites/0", True, evidence="seen")
    s.set_checkbox("T-1/prerequisites/0", False, reason="wrong")
    s.note("all green", task="T-1")
    s.pass_guard("risk", "T-1", detail="confirmed")
    s.override_guard("window", "T-1", "CAB approved", step=1)
    s.skip_step("T-1", 1, "done by hand")
    s.complete_task("T-1")
    s.skip_task(book().task("T-2"), "not needed")
    s.start_rollback("T-1", "it broke")
    types = [t for t, _, _ in heard]
    assert types == ["task_started", "checkbox_set", "checkbox_cleared", "note", "guard_passed", "guard_overridden",
                     "step_skipped", "task_completed", "task_skipped", "rollback_started"]
    for _, seq, count in heard:
        assert seq in synced and count == seq  # fsynced first; the state includes it
    box = events_of(s)[2]
    assert box.text == "box of T-1" and box.who == s.operator and box.evidence == "seen"
    assert s.state.checkboxes["T-1/prerequisites/0"].checked is False
    assert s.state.task_status("T-2") == "skipped"
    with pytest.raises(UserError, match="reason"):
        s.skip_task("T-2", "  ")
    with pytest.raises(UserError, match="reason"):
        s.override_guard("gate", "T-1", "")
    assert s.journal.count == 11
    s.close()


def test_unsubscribe_and_broken_subscriber(tmp_path):
    s = Session.create(book(), root=tmp_path)
    seen = []
    unsubscribe = s.subscribe(lambda rec, state: seen.append(rec.seq))
    s.subscribe(lambda rec, state: 1 / 0)  # a broken view does not break journaling
    s.note("one")
    unsubscribe()
    s.note("two")
    assert seen == [2] and s.journal.count == 3
    s.close()


def test_secret_placeholders_never_reach_the_journal(tmp_path):
    s = Session.create(book(), root=tmp_path)
    assert s.supply("DB_PASS", "hunter2-secret", secret=True) is None
    assert s.supply("VERSION", "1.29", secret=False) is None
    assert s.supply("DB_PASS", "hunter2-secret", secret=True) is False
    assert s.supply("VERSION", "1.30", secret=False) is True
    assert s.secrets() == ["hunter2-secret"] and s.values == {"DB_PASS": "hunter2-secret", "VERSION": "1.30"}
    sid = s.id
    s.close()
    data = (tmp_path / sid / "journal.jsonl").read_bytes() + (tmp_path / sid / "runbook.log").read_bytes()
    assert b"hunter2" not in data
    supplied = [e for e in events_of(tmp_path / sid / "journal.jsonl") if isinstance(e, ev.PlaceholderSupplied)]
    secret = supplied[0]
    assert secret.value is None and secret.value_hash.startswith("scrypt:") and len(secret.salt) == 32
    assert supplied[2].salt != secret.salt  # a new salt each time
    assert same_secret("hunter2-secret", secret) and not same_secret("hunter3", secret)
    r = Session.resume(sid, root=tmp_path, runbook=book())
    try:
        assert r.values == {"VERSION": "1.30"}  # non-secret values come back; secrets must be typed again
        assert r.supply("DB_PASS", "changed!", secret=True) is True
        assert r.secrets() == ["changed!"]
    finally:
        r.close()


def _crash(session: Session) -> None:
    """Drop a session as a killed process would: no SessionClosed, lock body left."""
    import fcntl

    fcntl.flock(session.journal.lock._fd, fcntl.LOCK_UN)
    os.close(session.journal._fd)
    os.close(session.journal.lock._fd)
    session.journal._fd = session.journal.lock._fd = -1


def test_resume_marks_interrupted_runs_unknown_and_leaves_detached_ones(tmp_path, as_alice, monkeypatch):
    s = Session.create(book(), root=tmp_path)
    assert not s.resumed
    s.record(ev.StepStarted("r1", "T-1", 1, ("a", "b"), "cmd"))
    s.record_output(ev.OutputChunk("r1", "a", "stdout", "half"))
    s.record(ev.HostFinished("r1", "b", "succeeded", 0))
    s.record(ev.StepStarted("r2", "T-2", 1, ("a",), "long job", detached=True))
    s.record(ev.StepStarted("r3", "T-2", 2, ("a",), "done"))
    s.record(ev.HostFinished("r3", "a", "succeeded", 0))
    s.record(ev.StepFinished("r3", "succeeded"))
    sid, old_pid = s.id, os.getpid()
    _crash(s)
    monkeypatch.setenv("SUDO_USER", "bob")
    r = Session.resume(sid, root=tmp_path, runbook=book())
    try:
        new = events_of(r)[8:]
        assert [type(e).__name__ for e in new] == ["Recovered", "SessionOpened", "StepOutcomeUnknown"]
        assert new[0].what == "stale lock"
        opened = new[1]
        assert r.resumed and opened.resumed and opened.operator == "bob" and opened.handover_from == "alice"
        assert new[2].run_id == "r1" and f"pid {old_pid}" in new[2].why and "end was not seen" in new[2].why
        run = r.state.runs["r1"]
        assert run.hosts["a"].status == UNKNOWN and run.hosts["b"].status == SUCCEEDED
        assert [(x.run_id, h.host) for x, h in r.state.unresolved_unknowns()] == [("r1", "a")]
        assert any("handover" in w for w in r.warnings) and any("stale lock" in w for w in r.warnings)
        assert [x.run_id for x in r.detached_unfinished()] == ["r2"]
        r.mark_unknown("r2", "could not re-attach")
        assert r.state.runs["r2"].hosts["a"].status == UNKNOWN
        with pytest.raises(ValueError):
            r.decide("r1", "maybe")
        with pytest.raises(UserError, match="no step run"):
            r.decide("nope", "failed")
        with pytest.raises(UserError, match="no host to decide"):
            r.decide("r3", "failed")
        r.decide("r1", "succeeded", "checked the pods by hand")
        assert r.state.step_status("T-1", 1) == SUCCEEDED
        decided = events_of(r)[-1]
        assert isinstance(decided, ev.OutcomeDecided) and decided.who == "bob"
        assert r.state.operators == ("alice", "bob")
    finally:
        r.close()
    assert verify(r.journal.path).ok


def test_resume_of_a_serial_run_marks_only_started_hosts_unknown(tmp_path, as_alice):
    """A serial rollout killed on host b: a succeeded, b unknown, c never started (not run)."""
    s = Session.create(book(), root=tmp_path)
    s.record(ev.StepStarted("r1", "T-1", 1, ("a", "b", "c"), "cmd", mode="serial"))
    s.record(ev.HostStarted("r1", "a"))
    s.record(ev.HostFinished("r1", "a", "succeeded", 0))
    s.record(ev.HostStarted("r1", "b"))
    s.record_output(ev.OutputChunk("r1", "b", "stdout", "half"))
    sid = s.id
    _crash(s)
    r = Session.resume(sid, root=tmp_path, runbook=book())
    try:
        run = r.state.runs["r1"]
        assert {h: x.status for h, x in run.hosts.items()} == {"a": SUCCEEDED, "b": UNKNOWN, "c": "skipped"}
        assert run.finished and [(x.run_id, h.host) for x, h in r.state.unresolved_unknowns()] == [("r1", "b")]
    finally:
        r.close()


def test_resume_between_serial_hosts_leaves_nothing_unknown(tmp_path, as_alice):
    s = Session.create(book(), root=tmp_path)
    s.record(ev.StepStarted("r1", "T-1", 1, ("a", "b"), "cmd", mode="serial"))
    s.record(ev.HostStarted("r1", "a"))
    s.record(ev.HostFinished("r1", "a", "succeeded", 0))
    sid = s.id
    _crash(s)
    r = Session.resume(sid, root=tmp_path, runbook=book())
    try:
        run = r.state.runs["r1"]
        assert {h: x.status for h, x in run.hosts.items()} == {"a": SUCCEEDED, "b": "skipped"}
        assert run.finished and not r.state.unresolved_unknowns()
    finally:
        r.close()


def test_resume_by_the_same_operator_is_no_handover(tmp_path, as_alice):
    s = Session.create(book(), root=tmp_path)
    s.close()
    r = Session.resume(s.id, root=tmp_path, runbook=book())
    r.close()
    opened = [e for e in events_of(r) if isinstance(e, ev.SessionOpened)]
    assert [o.handover_from for o in opened] == [None, None] and opened[1].resumed


def test_resume_parses_the_journaled_runbook_and_reports_changes(tmp_path):
    from runbook.parse.parser import parse_file

    path = tmp_path / "demo.md"
    shutil.copy(CHECKLISTS / "demo.md", path)
    first = parse_file(str(path))
    s = Session.create(first, root=tmp_path / "sessions")
    s.close()
    text = path.read_text().replace("DEMO-FLEET-002", "DEMO-FLEET-009")
    path.write_text(text)
    r = Session.resume(s.id, root=tmp_path / "sessions")  # no runbook given: parsed from the journaled path
    try:
        assert r.runbook is not None and r.runbook.sha256 != first.sha256
        changed = [e for e in events_of(r) if isinstance(e, ev.RunbookChanged)]
        assert len(changed) == 1
        assert changed[0].old_sha256 == first.sha256 and changed[0].new_sha256 == r.runbook.sha256
        assert changed[0].tasks_added == ("DEMO-FLEET-009",) and changed[0].tasks_removed == ("DEMO-FLEET-002",)
        assert any("DEMO-FLEET-009" in w and "DEMO-FLEET-002" in w for w in r.warnings)
        assert r.state.runbook_sha256 == r.runbook.sha256
    finally:
        r.close()
    r = Session.resume(s.id, root=tmp_path / "sessions")  # unchanged since: no new RunbookChanged
    r.close()
    assert len([e for e in events_of(r) if isinstance(e, ev.RunbookChanged)]) == 1
    path.unlink()
    r = Session.resume(s.id, root=tmp_path / "sessions")  # gone: the journal alone
    try:
        assert r.runbook is None and any("is gone" in w for w in r.warnings)
        assert r.state.task_ids and r.state.runbook_path == str(path)
    finally:
        r.close()


def test_write_error_stops_everything_and_leaves_state_alone(tmp_path, monkeypatch):
    s = Session.create(book(), root=tmp_path)
    s.note("durable")
    before, heard = s.state, []
    s.subscribe(lambda rec, state: heard.append(rec.seq))
    real_write = os.write

    def enospc(fd, data):
        if fd == s.journal._fd:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(jr.os, "write", enospc)
    with pytest.raises(JournalWriteError, match=r"No space left on device.*no new steps can start"):
        s.set_checkbox("T-1/prerequisites/0", True)
    assert s.state is before and heard == []
    monkeypatch.setattr(jr.os, "write", real_write)
    with pytest.raises(JournalWriteError):
        s.ensure_writable()
    with pytest.raises(JournalWriteError):
        s.record(ev.StepStarted("r1", "T-1", 1, ("a",), "cmd"))
    with pytest.raises(JournalWriteError):
        s.supply("VERSION", "1", secret=False)
    assert "VERSION" not in s.values
    s.close()  # no exception: already reported
    v = verify(s.journal.path)
    assert v.ok and v.count == 2


async def test_output_is_group_committed_on_the_event_loop(tmp_path, monkeypatch):
    s = Session.create(book(), root=tmp_path)
    s.record(ev.StepStarted("r1", "T-1", 1, ("a",), "cmd"))
    s.record_output(ev.OutputChunk("r1", "a", "stdout", "x" * 100))
    s.record_output(ev.OutputChunk("r1", "a", "stdout", "y"))
    assert s.journal.dirty and s.state.runs["r1"].hosts["a"].output_bytes == 101
    for _ in range(100):  # the flush timer fires within group_commit_s
        await asyncio.sleep(0.02)
        if not s.journal.dirty:
            break
    assert not s.journal.dirty and s.journal.durable_count == 4
    s.close()


def test_logging_goes_to_the_session_log_only(tmp_path, capfd):
    import logging

    s = Session.create(book(), root=tmp_path)
    s.supply("API_TOKEN", "tok-123-secret", secret=True)
    s.log.info("something happened", detail="token is tok-123-secret")
    logging.getLogger("asyncssh").warning("a library warning")
    s.close()
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    lines = [json.loads(x) for x in (s.dir / "runbook.log").read_text().splitlines()]
    assert stat.S_IMODE((s.dir / "runbook.log").stat().st_mode) == 0o600
    assert any(x["event"] == "something happened" and x["detail"] == "token is ***" for x in lines)
    assert any(x["event"] == "a library warning" and x["logger"] == "asyncssh" for x in lines)
    assert all("timestamp" in x and "level" in x for x in lines)


def test_closed_session_refuses_and_close_is_idempotent(tmp_path):
    s = Session.create(book(), root=tmp_path)
    s.close("finished", finished=True)
    s.close()
    assert s.closed and s.state.finished
    with pytest.raises(UserError, match="closed"):
        s.note("late")
