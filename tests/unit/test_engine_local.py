"""The engine over the real LocalExecutor and a real Session journal."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from runbook.errors import UserError
from runbook.model import Block, Expectation, Phase, Placeholder, Risk, Runbook, Step, TargetSource, TargetSpec, Task
from runbook.targets.inventory import Inventory
from sessions.engine.engine import Engine
from sessions.engine.session import Session
from sessions.journal import events as ev
from sessions.journal.journal import read_records, verify
from sessions.planning.planning import plan_step

SECRET = "s3cr3t-Valu3-xyz"


def cmd(code: str, **spec) -> Block:
    return Block("command", "bash", textwrap.dedent(code).strip() + "\n", 1,
                 target=TargetSpec(**spec) if spec else None)


def step(n: int, *blocks: Block, expected=(), placeholders=(), target: TargetSpec | None = None) -> Step:
    # Deliberately as under a document default of ``local``: a step given no pattern runs on this
    # machine (there is no implicit local default any more; a step nobody targeted does not run).
    target = target or TargetSpec()
    if not target.chosen:
        target = replace(target, pattern="local", source=TargetSource.DOCUMENT)
    return Step(n, f"step {n}", n * 10, blocks=tuple(blocks), expected=tuple(expected),
                placeholders=tuple(placeholders), target=target)


def make_book(tmp_path: Path, steps: list[Step], risk: Risk = Risk.LOW) -> Runbook:
    task = Task("T-1", "the task", 5, phase="0", risk=risk, steps=tuple(steps))
    path = tmp_path / "book.md"
    path.write_text("# book\n")
    return Runbook("Book", str(path), "a" * 64, phases=(Phase("0", "P", 1, tasks=(task,)),))


INVENTORY = """
all:
  hosts:
    web-1: {ansible_connection: local}
    web-2: {ansible_connection: local}
    web-3: {ansible_connection: local}
"""


@pytest.fixture
def inventory() -> Inventory:
    return Inventory.from_text(INVENTORY)


@pytest.fixture
def sessions_root(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


def events_of(session: Session, kind: type | None = None) -> list[ev.Event]:
    session.sync()
    out = [r.event for r in read_records(session.journal.path)]
    return [e for e in out if kind is None or isinstance(e, kind)]


def output_of(session: Session, host: str | None = None, stream: str | None = None) -> str:
    return "".join(e.raw.decode() for e in events_of(session, ev.OutputChunk)
                   if (host is None or e.host == host) and (stream is None or e.stream == stream))


async def open_engine(tmp_path, sessions_root, steps, inventory=None, risk=Risk.LOW, **kw):
    book = make_book(tmp_path, steps, risk)
    session = Session.create(book, root=sessions_root)
    engine = Engine(session, inventory, **kw)
    return session, engine


async def test_run_journals_start_output_and_finish_with_streams_apart(tmp_path, sessions_root):
    s = step(1, cmd("echo hello; echo oops >&2; echo world"))
    session, engine = await open_engine(tmp_path, sessions_root, [s])
    try:
        assert await engine.run_step("T-1", 1) == "succeeded"
        types = [type(e).__name__ for e in events_of(session)]
        assert types[0] == "SessionOpened" and types[1] == "StepStarted"
        assert types[-2:] == ["HostFinished", "StepFinished"]
        started = events_of(session, ev.StepStarted)[0]
        assert started.targets == ("local",) and "echo hello" in started.command and started.mode == "parallel"
        assert output_of(session, "local", "stdout") == "hello\nworld\n"
        assert output_of(session, "local", "stderr") == "oops\n"
        [fin] = events_of(session, ev.HostFinished)
        assert (fin.outcome, fin.exit_status) == ("succeeded", 0)
        assert session.state.step_status("T-1", 1) == "succeeded"
    finally:
        await engine.close()
        session.close()
    assert verify(session.journal.path).ok


async def test_output_is_journaled_while_the_command_runs(tmp_path, sessions_root):
    flag = tmp_path / "seen"
    s = step(1, cmd(f"""
        echo first
        i=0; while [ ! -e {flag} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
        [ -e {flag} ] && echo second
    """))
    session, engine = await open_engine(tmp_path, sessions_root, [s])

    def on_record(rec, state):
        if isinstance(rec.event, ev.OutputChunk) and "first" in rec.event.data:
            assert not any(isinstance(e, ev.HostFinished) for e in [rec.event])
            flag.touch()

    session.subscribe(on_record)
    try:
        assert await engine.run_step("T-1", 1) == "succeeded"
        assert output_of(session) == "first\nsecond\n"
    finally:
        await engine.close()
        session.close()


async def test_failure_in_serial_mode_stops_and_skips_the_rest(tmp_path, sessions_root, inventory):
    s = step(1, cmd('echo "on $RUNBOOK_HOST"; [ "$RUNBOOK_HOST" != web-2 ] || exit 7'),
             target=TargetSpec("all", serial=True, source="annotation"))
    session, engine = await open_engine(tmp_path, sessions_root, [s], inventory)
    try:
        assert await engine.run_step("T-1", 1) == "failed"
        fins = {e.host: e for e in events_of(session, ev.HostFinished)}
        assert set(fins) == {"web-1", "web-2"}
        assert fins["web-2"].exit_status == 7 and fins["web-2"].outcome == "failed"
        run = session.state.step_run("T-1", 1)
        assert run.mode == "serial"
        assert {h: r.status for h, r in run.hosts.items()} == {"web-1": "succeeded", "web-2": "failed",
                                                                "web-3": "skipped"}
        assert "web-3" not in output_of(session)
        assert engine.last_summary.skipped == ["web-3"] and "web-2" in engine.last_summary.stopped
    finally:
        await engine.close()
        session.close()


async def test_parallel_runs_every_host_and_reports_the_worst(tmp_path, sessions_root, inventory):
    marker = tmp_path / "running"
    marker.mkdir()
    s = step(1, cmd(f"""
        touch {marker}/$RUNBOOK_HOST; sleep 0.3; ls {marker} | wc -l > {marker}.$RUNBOOK_HOST
        rm {marker}/$RUNBOOK_HOST
        [ "$RUNBOOK_HOST" != web-1 ]
    """), target=TargetSpec("web-*", source="annotation"))
    session, engine = await open_engine(tmp_path, sessions_root, [s], inventory, parallel_limit=2)
    try:
        assert await engine.run_step("T-1", 1) == "failed"
        fins = {e.host: e.outcome for e in events_of(session, ev.HostFinished)}
        assert fins == {"web-1": "failed", "web-2": "succeeded", "web-3": "succeeded"}
        seen = [int((tmp_path / f"running.{h}").read_text()) for h in ("web-1", "web-2", "web-3")]
        assert max(seen) <= 2  # the concurrency limit held
        assert events_of(session, ev.StepFinished)[0].outcome == "failed"
    finally:
        await engine.close()
        session.close()


async def test_expectations_checked_per_host_with_evidence(tmp_path, sessions_root):
    s = step(1, cmd("echo 'etcd: healthy snapshot saved'"),
             expected=[Expectation("`healthy snapshot`", 12, ("healthy snapshot",)),
                       Expectation("`degraded`", 13, ("degraded",)),
                       Expectation("looks fine to a human", 14)])
    session, engine = await open_engine(tmp_path, sessions_root, [s])
    try:
        await engine.run_step("T-1", 1)
        checks = {e.index: e for e in events_of(session, ev.ExpectationChecked)}
        assert set(checks) == {0, 1}
        assert checks[0].passed and checks[0].evidence == "etcd: healthy snapshot saved"
        assert not checks[1].passed and checks[1].evidence == "`degraded` not found in 1 lines of output"
        assert not engine.last_summary.ok  # exec treats a failed expectation as a failure
    finally:
        await engine.close()
        session.close()


def our_process_tree(ps_output: str) -> list[tuple[str, str]]:
    """(pid, args) of this process and its descendants, from ``ps -eo pid=,ppid=,args=``."""
    rows = [line.split(None, 2) + [""] for line in ps_output.splitlines() if line.strip()]
    children: dict[str, list[str]] = {}
    args = {}
    for pid, ppid, rest, *_ in rows:
        children.setdefault(ppid, []).append(pid)
        args[pid] = rest
    tree, todo = [], [str(os.getpid())]
    while todo:
        pid = todo.pop()
        tree.append((pid, args.get(pid, "")))
        todo.extend(children.get(pid, []))
    return tree


async def test_secrets_never_reach_the_journal_or_argv(tmp_path, sessions_root):
    ps_file = tmp_path / "ps.txt"
    s = step(1, cmd(f"""
        ps -eo pid=,ppid=,args= > {ps_file}
        printf 'half:%s' "${{DB_PASS%????????}}"; sleep 0.2; printf '%s:end\\n' "${{DB_PASS#????????}}"
        echo "token is <API_TOKEN> and pass is $DB_PASS" >&2
        echo "user <DB_USER>"
    """), placeholders=[Placeholder("DB_PASS", True, 3), Placeholder("API_TOKEN", True, 4),
                        Placeholder("DB_USER", False, 5)])
    session, engine = await open_engine(tmp_path, sessions_root, [s])
    try:
        with pytest.raises(UserError, match=r"DB_PASS.*API_TOKEN|placeholder"):
            await engine.run_step("T-1", 1)
        session.supply("DB_PASS", SECRET, True)
        session.supply("API_TOKEN", "tok-" + SECRET[::-1], True)
        session.supply("DB_USER", "alice", False)
        assert await engine.run_step("T-1", 1) == "succeeded"
        journal = Path(session.journal.path).read_bytes()
        assert SECRET.encode() not in journal and SECRET[::-1].encode() not in journal
        assert SECRET[:8].encode() + SECRET[8:].encode() not in journal
        out = output_of(session)
        assert "half:***:end" in out and "pass is ***" in out and "token is ***" in out
        assert "user alice" in out
        started = events_of(session, ev.StepStarted)[0]
        assert "<redacted:DB_PASS>" in started.command and "alice" in started.command
        ours = our_process_tree(ps_file.read_text())  # this test's processes, not the whole machine's
        assert any(str(os.getpid()) == pid for pid, _ in ours) and len(ours) >= 3, ours
        assert not [args for _, args in ours if SECRET in args or "alice" in args], ours
    finally:
        await engine.close()
        session.close()


async def test_guards_block_until_resolved(tmp_path, sessions_root):
    s = step(1, cmd("rm -rf /tmp/runbook-engine-test-nothing-here"))
    session, engine = await open_engine(tmp_path, sessions_root, [s], risk=Risk.CRITICAL)
    try:
        with pytest.raises(UserError) as info:
            await engine.run_step("T-1", 1)
        assert "risk" in str(info.value) and "destructive" in str(info.value)
        assert not events_of(session, ev.StepStarted)
        plan = engine.plan("T-1", 1)
        assert [g.kind for g in plan.guards] == ["risk", "destructive"]
        assert plan.guards[1].expected == "local"
        session.pass_guard("risk", "T-1", detail="confirmed")
        session.pass_guard("destructive", "T-1", step=1, detail=plan.guards[1].detail + "; typed 'local'")
        assert engine.plan("T-1", 1).guards == ()
        assert await engine.run_step("T-1", 1) == "succeeded"
    finally:
        await engine.close()
        session.close()


async def test_files_are_uploaded_before_the_commands_in_order(tmp_path, sessions_root):
    dest, public = tmp_path / "app.conf", tmp_path / "public.conf"
    s = step(1,
             Block("file", "yaml", "user: <APP_USER>\n", 1, path=str(dest)),
             Block("file", "yaml", "x: 1\n", 2, path=str(public), target=TargetSpec(mode="0644")),
             cmd(f"cat {dest}; stat -c %a {dest} {public}"),
             placeholders=[Placeholder("APP_USER", False, 1)])
    session, engine = await open_engine(tmp_path, sessions_root, [s])
    session.supply("APP_USER", "bob", False)
    try:
        assert await engine.run_step("T-1", 1) == "succeeded"
        ups = events_of(session, ev.FileUploaded)
        assert [(u.path, u.mode) for u in ups] == [(str(dest), "0600"), (str(public), "0644")]
        import hashlib

        assert ups[0].sha256 == hashlib.sha256(b"user: bob\n").hexdigest()
        assert output_of(session) == "user: bob\n600\n644\n"
    finally:
        await engine.close()
        session.close()


async def test_a_file_with_a_secret_is_uploaded_whole_but_journaled_masked(tmp_path, sessions_root):
    """A hash of content holding a secret would let a weak secret be guessed from the journal."""
    import hashlib

    dest = tmp_path / "db.conf"
    s = step(1, Block("file", "ini", "password = <DB_PASSWORD>\n", 1, path=str(dest)),
             placeholders=[Placeholder("DB_PASSWORD", True, 1)])
    session, engine = await open_engine(tmp_path, sessions_root, [s])
    session.supply("DB_PASSWORD", SECRET, True)
    try:
        assert await engine.run_step("T-1", 1) == "succeeded"
        assert dest.read_text() == f"password = {SECRET}\n"
        (up,) = events_of(session, ev.FileUploaded)
        assert up.masked
        assert up.sha256 != hashlib.sha256(dest.read_bytes()).hexdigest()
        journal = session.journal.path.read_text()
        assert SECRET not in journal and hashlib.sha256(dest.read_bytes()).hexdigest() not in journal
    finally:
        await engine.close()
        session.close()


async def test_consecutive_blocks_share_a_shell_and_a_failing_block_stops_the_rest(tmp_path, sessions_root):
    s = step(1, cmd("X=42; echo one"), cmd("echo two $X; false"), cmd("echo three"))
    session, engine = await open_engine(tmp_path, sessions_root, [s])
    try:
        assert await engine.run_step("T-1", 1) == "failed"
        assert output_of(session) == "one\ntwo 42\n"
        assert events_of(session, ev.HostFinished)[0].exit_status == 1
    finally:
        await engine.close()
        session.close()


async def test_timeout_and_cancel(tmp_path, sessions_root):
    slow = step(1, cmd("echo started; sleep 30", timeout=1.0), target=TargetSpec(timeout=1.0))
    cancel = step(2, cmd("echo started; sleep 30"))
    session, engine = await open_engine(tmp_path, sessions_root, [slow, cancel])
    try:
        assert await engine.run_step("T-1", 1) == "timeout"
        first_run = session.state.step_run("T-1", 1).run_id

        def on_record(rec, state):
            if isinstance(rec.event, ev.OutputChunk) and rec.event.run_id != first_run:
                asyncio.get_running_loop().create_task(engine.cancel())

        session.subscribe(on_record)
        assert await engine.run_step("T-1", 2) == "cancelled"
        fin = events_of(session, ev.HostFinished)[-1]
        assert fin.outcome == "cancelled"
    finally:
        await engine.close()
        session.close()


async def test_pty_step_and_operator_input(tmp_path, sessions_root):
    s = step(1, cmd("tty >/dev/null && echo has-tty; read -r answer; echo got:$answer"),
             target=TargetSpec(pty=True, timeout=20))
    session, engine = await open_engine(tmp_path, sessions_root, [s])

    def on_record(rec, state):
        if isinstance(rec.event, ev.OutputChunk) and "has-tty" in rec.event.data:
            asyncio.get_running_loop().create_task(engine.send_input(rec.event.run_id, "local", b"yes\n"))

    session.subscribe(on_record)
    try:
        assert await engine.run_step("T-1", 1) == "succeeded"
        out = output_of(session, "local", "pty")
        assert "has-tty" in out and "got:yes" in out
        assert events_of(session, ev.StepStarted)[0].pty
    finally:
        await engine.close()
        session.close()


def test_plan_without_a_session_fills_and_masks(tmp_path):
    s = step(1, cmd("login --user <DB_USER> --password <DB_PASS>"),
             placeholders=[Placeholder("DB_USER", False, 1), Placeholder("DB_PASS", True, 1)])
    book = make_book(tmp_path, [s])
    plan = plan_step(book, None, "T-1", 1, values={"DB_USER": "alice", "DB_PASS": SECRET})
    assert plan.hosts == ("local",) and plan.missing == ()
    assert "--user alice --password <redacted:DB_PASS>" in plan.script_redacted
    assert SECRET not in plan.script_redacted and SECRET not in repr(plan)
    partial = plan_step(book, None, "T-1", 1, values={})
    assert [p.name for p in partial.missing] == ["DB_USER", "DB_PASS"]
    assert [g.expected for g in partial.guards] == ["DB_USER", "DB_PASS"]
    with pytest.raises(UserError, match="needs an inventory"):
        plan_step(book, None, "T-1", 1, target="web-1")


CRASHER = """
import asyncio, sys
sys.path.insert(0, {root!r})
from tests.unit.test_engine_local import detached_book
from sessions.engine.session import Session
from sessions.engine.engine import Engine

async def main():
    session = Session.create(detached_book({tmp!r}), root={sessions!r})
    print(session.id, flush=True)
    engine = Engine(session, None)
    await engine.run_step("T-1", 1)

asyncio.run(main())
"""


def detached_book(tmp: str) -> Runbook:
    gate = Path(tmp) / "go"
    s = step(1, cmd(f"echo before; while [ ! -e {gate} ]; do sleep 0.05; done; echo after; exit 3"),
             target=TargetSpec(detached=True), expected=[Expectation("`after`", 1, ("after",))])
    return make_book(Path(tmp), [s])


async def test_detached_run_is_reattached_after_the_process_dies(tmp_path, sessions_root, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # the spool lives under ~/.runbook
    root = Path(__file__).resolve().parents[2]
    code = CRASHER.format(root=str(root), tmp=str(tmp_path), sessions=str(sessions_root))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, HOME=str(tmp_path)))
    sid = proc.stdout.readline().strip()
    journal = sessions_root / sid / "journal.jsonl"
    for _ in range(400):
        if journal.exists() and b'"data":"before\\n"' in journal.read_bytes():  # the output, not the script
            break
        await asyncio.sleep(0.05)
    proc.kill()
    proc.wait()
    (tmp_path / "go").touch()  # the detached command goes on without runbook
    book = detached_book(str(tmp_path))
    session = Session.resume(sid, root=sessions_root, runbook=book)
    engine = Engine(session, None)
    try:
        assert [r.run_id for r in session.state.running()]
        recovered = await engine.recover()
        assert len(recovered) == 1
        [fin] = events_of(session, ev.HostFinished)
        assert (fin.outcome, fin.exit_status) == ("failed", 3)
        assert output_of(session) == "before\nafter\n"  # nothing lost, nothing twice
        [check] = events_of(session, ev.ExpectationChecked)
        assert check.passed
        assert session.state.step_run("T-1", 1).finished
        assert any(isinstance(e, ev.DetachedStarted) for e in events_of(session))
    finally:
        await engine.close()
        session.close()


async def test_serial_pause_asks_between_hosts_and_can_stop(tmp_path, sessions_root, inventory):
    s = step(1, cmd('echo "on $RUNBOOK_HOST"'), target=TargetSpec("all", serial=True, pause=True))
    asked: list[tuple[str, str]] = []

    async def on_pause(done: str, next_host: str) -> bool:
        asked.append((done, next_host))
        return len(asked) < 2  # go on after web-1, stop after web-2

    session, engine = await open_engine(tmp_path, sessions_root, [s], inventory, on_pause=on_pause)
    try:
        assert await engine.run_step("T-1", 1) == "cancelled"
        assert asked == [("web-1", "web-2"), ("web-2", "web-3")]
        run = session.state.step_run("T-1", 1)
        assert {h: r.status for h, r in run.hosts.items()} == {"web-1": "succeeded", "web-2": "succeeded",
                                                                "web-3": "skipped"}
    finally:
        await engine.close()
        session.close()


def test_pty_is_chosen_for_interactive_commands(tmp_path):
    book = make_book(tmp_path, [step(1, cmd("kubectl exec -it pod -- sh")), step(2, cmd("echo plain"))])
    assert plan_step(book, None, "T-1", 1).pty
    assert not plan_step(book, None, "T-1", 2).pty


async def test_recover_marks_unknown_what_it_cannot_reattach(tmp_path, sessions_root):
    session, engine = await open_engine(tmp_path, sessions_root, [step(1, cmd("true"), target=TargetSpec(detached=True))])
    try:  # a detached run whose command id never reached the journal (runbook died just before)
        session.record(ev.StepStarted("r-1", "T-1", 1, ("local",), "true\n", detached=True))
        assert await engine.recover() == ["r-1"]
        run = session.state.runs["r-1"]
        assert run.finished and run.hosts["local"].status == "unknown"
        assert any(isinstance(e, ev.StepOutcomeUnknown) and e.host == "local" for e in events_of(session))
        assert session.state.unresolved_unknowns()
    finally:
        await engine.close()
        session.close()
