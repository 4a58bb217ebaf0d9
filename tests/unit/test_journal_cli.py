"""``runbook sessions`` and ``runbook journal verify|show``."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from runbook.cli import main
from runbook.model import Phase, Runbook, Task
from sessions.engine.session import Session
from sessions.journal import events as ev
from sessions.journal.journal import Journal

ROOT = Path(__file__).resolve().parents[2]


def book() -> Runbook:
    tasks = tuple(Task(t, f"task {t}", 10 + i) for i, t in enumerate(("T-1", "T-2", "T-3")))
    return Runbook("CLI RB", "/nonexistent/cli.md", "a" * 64, phases=(Phase("1", "P", 1, tasks=tasks),))


def make_session(root: Path) -> Session:
    s = Session.create(book(), root=root)
    s.start_task("T-1")
    s.record(ev.StepStarted("r1", "T-1", 1, ("web-1",), "systemctl restart nginx\nsystemctl status nginx"))
    s.record_output(ev.OutputChunk("r1", "web-1", "stdout", "active (running)\nsecond line\n"))
    s.record_output(ev.OutputChunk.from_bytes("r1", "web-1", "stderr", b"\xff\xfe"))
    s.record(ev.HostFinished("r1", "web-1", "succeeded", 0, None, 1.5))
    s.record(ev.StepFinished("r1", "succeeded", 1.5))
    s.supply("DB_PASS", "s3cret!", secret=True)
    s.set_checkbox("T-1/acceptance/0", True, evidence="looked at it")
    s.complete_task("T-1")
    return s


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_verify_ok_and_broken(tmp_path, capsys):
    s = make_session(tmp_path)
    s.close()
    code, out, err = run(capsys, "journal", "verify", s.id, "--session-dir", str(tmp_path))
    assert code == 0, err
    assert f"ok: {s.journal.count} records, head {s.journal.head}" in out
    path = s.journal.path
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:4] + lines[5:]))  # delete record 5
    code, out, err = run(capsys, "journal", "verify", str(path))
    assert code == 1
    assert f"{path}:5: journal broken at record seq 5" in out and "records 1-4 chain correctly" in out


def test_verify_names_the_record_for_sampled_byte_changes(tmp_path, capsys):
    s = make_session(tmp_path)
    s.close()
    path = s.journal.path
    original = path.read_bytes()
    starts = [0]
    for line in original.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    rng = random.Random(1234)
    for off in sorted(rng.sample(range(len(original)), 60)) + [len(original) - 1]:
        line_no = next(n for n in range(1, len(starts)) if starts[n - 1] <= off < starts[n])
        data = bytearray(original)
        data[off] = (data[off] + rng.randint(1, 255)) % 256
        path.write_bytes(bytes(data))
        code, out, _ = run(capsys, "journal", "verify", str(path))
        assert code == 1, f"byte {off} changed, verify passed"
        assert f":{line_no}: journal broken at record seq {line_no}" in out, (off, out)
    path.write_bytes(original)
    assert run(capsys, "journal", "verify", str(path))[0] == 0


def test_verify_in_a_subprocess_exits_1_without_traceback(tmp_path):
    s = make_session(tmp_path)
    s.close()
    lines = s.journal.path.read_bytes().splitlines(keepends=True)
    s.journal.path.write_bytes(b"".join([lines[0], lines[2], lines[1]] + lines[3:]))  # reorder two records
    p = subprocess.run([sys.executable, "-m", "runbook.cli", "journal", "verify", s.id, "--session-dir",
                        str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert ":2: journal broken at record seq 2" in p.stdout


def test_unknown_session_is_a_user_error(tmp_path, capsys):
    code, _out, err = run(capsys, "journal", "verify", "nope", "--session-dir", str(tmp_path))
    assert code == 2 and "runbook: no session 'nope'" in err


def test_show_text_and_json(tmp_path, capsys):
    s = make_session(tmp_path)
    s.close()
    code, out, err = run(capsys, "journal", "show", s.id[:16], "--session-dir", str(tmp_path))
    assert code == 0, err
    text = out.splitlines()
    assert text[0].split()[:3] == ["1", text[0].split()[1], "session_opened"]
    assert "T-1 step 1 run r1 on web-1 (parallel): systemctl restart nginx ..." in out
    assert "       | active (running)" in out and "       | second line" in out
    assert "<2 bytes, not UTF-8>" in out
    assert "web-1 succeeded exit 0 in 1.5s" in out
    assert "DB_PASS = <secret>" in out and "s3cret" not in out
    code, out, err = run(capsys, "journal", "show", s.id, "--session-dir", str(tmp_path), "--format", "json")
    assert code == 0
    assert [json.loads(x) for x in out.splitlines()] == [json.loads(x) for x in
                                                         s.journal.path.read_text().splitlines()]


def test_show_reports_a_broken_journal(tmp_path, capsys):
    s = make_session(tmp_path)
    s.close()
    s.journal.path.write_bytes(s.journal.path.read_bytes().replace(b"second line", b"second LINE"))
    code, out, err = run(capsys, "journal", "show", str(s.journal.path))
    assert code == 1 and ":4: journal broken at record seq 4: hash mismatch" in err
    assert len(out.splitlines()) == 3  # the records before it are shown


def test_show_follow_prints_new_records(tmp_path):
    with Journal.create(tmp_path / "a" / "journal.jsonl") as j:
        for text in ("first", "second one", "third"):
            j.append(ev.Note(text))
    lines = j.path.read_bytes().splitlines(keepends=True)
    follow = tmp_path / "b.jsonl"
    follow.write_bytes(lines[0])
    proc = subprocess.Popen([sys.executable, "-m", "runbook.cli", "journal", "show", str(follow), "--follow"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert "first" in proc.stdout.readline()
        with open(follow, "ab") as fh:  # a record arriving in two pieces is shown once complete
            fh.write(lines[1][:30])
            fh.flush()
            time.sleep(0.5)
            fh.write(lines[1][30:] + lines[2])
        assert "second one" in proc.stdout.readline()
        assert "third" in proc.stdout.readline()
        with open(follow, "ab") as fh:
            fh.write(lines[1])  # a replayed record breaks the chain: follow stops with an error
        assert proc.wait(timeout=30) == 1
        assert ":4: journal broken at record seq 4" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_show_follow_stops_cleanly_on_interrupt(tmp_path):
    with Journal.create(tmp_path / "a" / "journal.jsonl") as j:
        j.append(ev.Note("only"))
        proc = subprocess.Popen([sys.executable, "-m", "runbook.cli", "journal", "show", str(j.path), "-f",
                                 "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=ROOT)
        assert json.loads(proc.stdout.readline())["event"]["text"] == "only"
        j.append_output(ev.OutputChunk("r", "h", "stdout", "streamed\n"))  # written; follow reads the file
        assert json.loads(proc.stdout.readline())["event"]["data"] == "streamed\n"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()


def test_sessions_listing(tmp_path, capsys):
    s = make_session(tmp_path)
    code, out, _err = run(capsys, "sessions", "--session-dir", str(tmp_path))
    assert code == 0
    header, row, detail = out.splitlines()
    assert header.split()[:2] == ["ID", "OPERATOR"] and "PROGRESS" in header
    assert row.startswith(s.id) and "1/3" in row and f"active (pid {os.getpid()}" in row
    # the full title and the runbook's path, never cut, on the session's second line
    assert detail.startswith("    ") and "CLI RB" in detail and s.state.runbook_path in detail
    s.close()
    code, out, _err = run(capsys, "sessions", "--session-dir", str(tmp_path), "--format", "json")
    data = json.loads(out)
    assert data[0]["id"] == s.id and data[0]["status"] == "paused" and data[0]["done"] == 1
    code, out, _err = run(capsys, "sessions", "--session-dir", str(tmp_path / "none"))
    assert code == 0 and "no sessions in" in out


def test_verify_of_an_empty_journal_fails(tmp_path, capsys):
    empty = tmp_path / "journal.jsonl"
    empty.write_bytes(b"")
    assert main(["journal", "verify", str(empty)]) == 1
    assert "no records" in capsys.readouterr().out
