"""Every run records its real duration, outcome unknown included (issue 10, item 11).

A runbook process is SIGKILLed mid-step; the resume journals the unknown outcome with
how long the step ran as far as the journal saw, and a detached run re-attached later
gets its duration from its start, not from the re-attach.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from runbook.model import Block, Phase, Risk, Runbook, Step, TargetSpec, Task
from sessions.engine.engine import Engine
from sessions.engine.session import Session, seconds_between
from sessions.journal import events as ev
from sessions.journal.journal import read_records

ROOT = Path(__file__).resolve().parents[2]

CRASHER = """
import asyncio, sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {here!r})
from test_run_durations import book
from sessions.engine.session import Session
from sessions.engine.engine import Engine

async def main():
    session = Session.create(book({tmp!r}, {detached!r}), root={sessions!r})
    print(session.id, flush=True)
    await Engine(session, None).run_step("T-1", 1)

asyncio.run(main())
"""


def book(tmp: str, detached: bool) -> Runbook:
    gate = Path(tmp) / "go"
    code = f"echo one; sleep 1.5; echo two; while [ ! -e {gate} ]; do sleep 0.05; done; echo after; exit 3\n"
    step = Step(1, "s", 10, blocks=(Block("command", "bash", code, 11),), target=TargetSpec("local", detached=detached))  # deliberately local: no implicit target
    task = Task("T-1", "t", 5, phase="0", risk=Risk.LOW, steps=(step,))
    path = Path(tmp) / "book.md"
    path.write_text("# book\n")
    return Runbook("Book", str(path), "a" * 64, phases=(Phase("0", "P", 1, tasks=(task,)),))


async def crash_mid_step(tmp_path: Path, detached: bool) -> tuple[str, Path]:
    sessions = tmp_path / "sessions"
    code = CRASHER.format(root=str(ROOT), here=str(Path(__file__).parent), tmp=str(tmp_path),
                          sessions=str(sessions), detached=detached)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, HOME=str(tmp_path)))
    sid = proc.stdout.readline().strip()
    journal = sessions / sid / "journal.jsonl"
    for _ in range(600):
        if journal.exists() and b'"data":"two\\n"' in journal.read_bytes():
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the step did not get to 'two'")
    proc.kill()
    proc.wait()
    return sid, sessions


def events(session: Session) -> list[ev.Event]:
    session.sync()
    return [r.event for r in read_records(session.journal.path)]


async def test_a_crash_mid_step_records_how_long_it_ran(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    sid, sessions = await crash_mid_step(tmp_path, detached=False)
    (tmp_path / "go").touch()  # the orphaned command ends (it lost its runbook)
    session = Session.resume(sid, root=sessions, runbook=book(str(tmp_path), False))
    try:
        evs = events(session)
        [unknown] = [e for e in evs if isinstance(e, ev.StepOutcomeUnknown)]
        # from the step's start to its last record before the crash (the "two" line): the journal's
        # own timestamps, whatever the machine's speed
        ours = [r for r in read_records(session.journal.path) if getattr(r.event, "run_id", None) == unknown.run_id]
        started = next(r for r in ours if isinstance(r.event, ev.StepStarted))
        last = [r for r in ours if r.seq < next(x.seq for x in ours if isinstance(x.event, ev.StepOutcomeUnknown))][-1]
        assert isinstance(last.event, ev.OutputChunk) and last.event.data.endswith("two\n")
        assert unknown.duration_s == seconds_between(started.ts, last.ts)
        run = session.state.step_run("T-1", 1)
        assert run.finished and run.outcome == "unknown"
        assert run.hosts["local"].duration_s == unknown.duration_s and run.duration_s == unknown.duration_s
    finally:
        session.close()


async def test_a_detached_run_reattached_later_records_its_whole_duration(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # the spool lives under ~/.runbook
    sid, sessions = await crash_mid_step(tmp_path, detached=True)
    await asyncio.sleep(1.0)  # runbook is down for a while; the command goes on
    (tmp_path / "go").touch()
    session = Session.resume(sid, root=sessions, runbook=book(str(tmp_path), True))
    engine = Engine(session, None)
    try:
        assert len(await engine.recover()) == 1
        evs = events(session)
        [fin] = [e for e in evs if isinstance(e, ev.HostFinished)]
        [step_fin] = [e for e in evs if isinstance(e, ev.StepFinished)]
        assert (fin.outcome, fin.exit_status) == ("failed", 3)
        # it ran from its start across the time runbook was down, not only from the re-attach:
        # at least from StepStarted to the resume's session_opened, as the journal recorded them
        # (less one second: the spool keeps whole seconds)
        records = list(read_records(session.journal.path))
        started = next(r.ts for r in records if isinstance(r.event, ev.StepStarted))
        resumed = [r.ts for r in records if isinstance(r.event, ev.SessionOpened)][-1]
        down = seconds_between(started, resumed)
        assert down is not None and fin.duration_s >= down - 1
        assert step_fin.duration_s >= fin.duration_s
    finally:
        await engine.close()
        session.close()
