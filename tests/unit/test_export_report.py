"""The report model: built from the journal alone, for finished, unfinished, resumed
sessions and sessions whose runbook changed or vanished."""

from __future__ import annotations

import hashlib
import json
import sys
import types
from pathlib import Path

import pytest

from runbook import model as m
from runbook.errors import UserError
from sessions.commands.export import render, resolve_journal
from sessions.journal import events as ev
from sessions.journal.journal import Journal, TamperedJournal, canonical, record_hash
from sessions.report.as_json import verify_chain
from sessions.report.as_markdown import render_md
from sessions.report.build import build_report, read_journal
from tests.unit.export_journals import SESSION_ID, full_session, resume, write_runbook


def kinds(report) -> list[str]:
    return [d.kind for d in report.deviations]


def task(report, tid):
    return next(t for t in report.tasks() if t.id == tid)


def test_finished_session(tmp_path: Path) -> None:
    path, _runbook = full_session(tmp_path)
    jc = read_journal(path)
    r = build_report(jc, use_runbook=False)
    assert r.session_id == SESSION_ID and r.finished and r.closed
    assert r.operators == ["alice"] and r.jump_hosts == ["jump-01"] and r.tool_versions == ["0.1.0"]
    assert r.record_count == jc.count == len(path.read_text().splitlines())
    assert r.journal_head == json.loads(path.read_text().splitlines()[-1])["h"]
    assert r.window_end == "2099-11-27T06:00:00Z"  # records carry real times: keep the window ahead
    # deviations: every kind the session produced, nothing for the clean task T-1 step
    assert sorted(set(kinds(r))) == sorted({
        "unticked", "guard_overridden", "retried", "outcome_unknown", "host_skipped", "step_skipped", "rollback",
        "task_skipped", "host_key_accepted"})
    unticked = next(d for d in r.deviations if d.kind == "unticked")
    assert "Load below 2" in unticked.message and unticked.reason == "load was 3.1 on web-2"
    guard = next(d for d in r.deviations if d.kind == "guard_overridden")
    assert guard.reason == "change board approved CAB-77" and guard.who == "alice" and guard.step == 1
    unknown = next(d for d in r.deviations if d.kind == "outcome_unknown")
    assert "connection lost" in unknown.message and "succeeded" in unknown.message
    assert unknown.reason == "checked schema version by hand"

    t1 = task(r, "T-1")
    assert t1.status == "done" and t1.who == "alice"
    run = t1.steps[0].runs[0]
    assert run.command.startswith("uptime") and run.targets == ["web-1", "web-2"] and run.who == "alice"
    web2 = next(h for h in run.hosts if h.host == "web-2")
    raw = b"".join(f"web-2 line {n}\n".encode() for n in range(3)) + b"\xff\xfe binary\n"
    assert web2.output.sha256 == hashlib.sha256(raw).hexdigest() and web2.output.bytes == len(raw)
    assert web2.exit_status == 0 and web2.duration_s == 1.5 and web2.outcome == "succeeded"
    boxes = {c.key: c for c in t1.checkboxes}
    assert boxes["T-1/acceptance/0"].checked and boxes["T-1/acceptance/0"].evidence == "uptime ok"
    assert not boxes["T-1/acceptance/1"].checked
    t2 = task(r, "T-2")
    assert [s.number for s in t2.steps] == [1, 2, 3]
    assert [run.superseded for run in t2.steps[0].runs] == [True, False]
    assert t2.steps[2].skipped["reason"] == "not needed for this release"
    assert t2.rollback_steps[0].runs[0].command == "restore-snapshot" and t2.rollbacks[0]["reason"]
    assert task(r, "T-3").skip_reason == "covered by T-2"
    assert task(r, "T-4").status == "pending"
    placeholders = {p["name"]: p for p in r.placeholders}
    assert placeholders["NAMESPACE"]["value"] == "prod"
    assert placeholders["DB_PASSWORD"] == {**placeholders["DB_PASSWORD"], "secret": True, "value": None}
    assert set(placeholders["DB_PASSWORD"]) == {"name", "secret", "who", "ts", "value"}  # no hash, no salt


def test_unfinished_session_with_a_run_still_open(tmp_path: Path) -> None:
    path, runbook = full_session(tmp_path, finished=False)
    with Journal.open(path) as j:
        j.append(ev.SessionOpened(SESSION_ID, str(runbook), hashlib.sha256(runbook.read_bytes()).hexdigest(),
                                  operator="alice", resumed=True))
        j.append(ev.StepStarted("r9", "T-4", 1, ("web-1", "web-2"), "sleep 600", who="alice"))
        j.append(ev.OutputChunk("r9", "web-1", "stdout", "started\n"))
        j.append(ev.HostFinished("r9", "web-2", "succeeded", exit_status=0))
    r = build_report(path, use_runbook=False)
    assert not r.finished and not r.closed and r.ended == ""
    assert "unfinished" in kinds(r)
    run = task(r, "T-4").steps[0].runs[0]
    web1 = next(h for h in run.hosts if h.host == "web-1")
    assert web1.outcome == "unknown" and web1.no_end_recorded  # never success
    assert run.outcome == "unknown"
    assert any(d.kind == "outcome_unknown" and d.host == "web-1" and "no end recorded" in d.message
               for d in r.deviations)
    assert "not closed" in render_md(r)


def test_resumed_session_with_handover(tmp_path: Path) -> None:
    path, runbook = full_session(tmp_path, finished=False)
    resume(path, runbook, hashlib.sha256(runbook.read_bytes()).hexdigest())
    r = build_report(path, use_runbook=False)
    assert r.operators == ["alice", "bob"] and r.finished
    assert [o["operator"] for o in r.openings] == ["alice", "bob"]
    assert r.openings[1]["resumed"] and r.openings[1]["handover_from"] == "alice"
    t4 = task(r, "T-4")
    assert t4.status == "done" and t4.who == "bob" and t4.steps[0].runs[0].who == "bob"
    assert "handed over from alice" in render_md(r)


@pytest.mark.parametrize("change", ["vanished", "edited"])
def test_runbook_changed_or_vanished(tmp_path: Path, change: str) -> None:
    path, runbook = full_session(tmp_path)
    if change == "vanished":
        runbook.unlink()
    else:
        runbook.write_text("# Something else entirely\n")
    jc = read_journal(path)
    r = build_report(jc)
    assert r.runbook_status.startswith("missing" if change == "vanished" else "changed (sha256 now ")
    assert not r.enriched and task(r, "T-2").steps[0].runs  # everything still there, from the journal
    for fmt in ("md", "html", "json"):
        assert b"T-2" in render(r, jc, fmt, 200)


def test_runbook_changed_during_the_session(tmp_path: Path) -> None:
    path, _runbook = full_session(tmp_path, finished=False)
    with Journal.open(path) as j:
        j.append(ev.RunbookChanged("a" * 64, "b" * 64, tasks_added=("T-9",)))
    r = build_report(path, use_runbook=False)
    d = next(d for d in r.deviations if d.kind == "runbook_changed")
    assert "T-9" in d.reason


def _fake_parser(monkeypatch: pytest.MonkeyPatch, runbook: Path, sha: str) -> None:
    """Stand in for runbook.parse.parser with a known model (the export must only rely on the model)."""
    cb = lambda key, text: m.Checkbox(key, text, False, 1)  # noqa: E731
    tasks = (
        m.Task("T-1", "Check hosts", 5, phase="1", steps=(m.Step(1, "Uptime", 6),),
               prerequisites=(cb("T-1/prerequisites/0", "Backups verified"),),
               acceptance=(cb("T-1/acceptance/0", "All hosts up"), cb("T-1/acceptance/1", "Load below 2"),
                           cb("T-1/acceptance/2", "Dashboards green"))),
        m.Task("T-2", "Restart database", 9, phase="1",
               steps=(m.Step(1, "Restart", 10), m.Step(2, "Migrate", 11), m.Step(3, "Vacuum", 12),
                      m.Step(4, "Analyze", 13, blocks=(m.Block("command", "bash", "analyze", 14),)))),
    )
    rb = m.Runbook("Demo runbook", str(runbook), sha, phases=(m.Phase("1", "Prepare", 3, tasks=tasks),),
                   sections=(m.Section("Final gate", 2, 20, checkboxes=(cb("section:final/x/0", "Signed off"),)),))
    module = types.ModuleType("runbook.parse.parser")
    module.parse_file = lambda path, **kw: rb  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "runbook.parse.parser", module)


def test_enriched_from_an_unchanged_runbook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, runbook = full_session(tmp_path)
    _fake_parser(monkeypatch, runbook, hashlib.sha256(runbook.read_bytes()).hexdigest())
    r = build_report(path)
    assert r.enriched and r.runbook_status == "matches"
    assert [(p.number, p.title) for p in r.phases][:1] == [("1", "Prepare")]
    assert task(r, "T-1").title == "Check hosts" and task(r, "T-1").steps[0].title == "Uptime"
    msgs = [d.message for d in r.deviations]
    assert any("Dashboards green" in x and "acceptance" in x for x in msgs)  # never ticked: known from the file
    assert any("Signed off" in x for x in msgs)  # final gate of a finished session
    assert any(d.kind == "step_not_run" and d.task == "T-2" and d.step == 4 for d in r.deviations)
    assert task(r, "T-3").title == "" and any(p.title == "Tasks not in the runbook file" for p in r.phases)


def test_torn_tail_is_left_out(tmp_path: Path) -> None:
    path, _ = full_session(tmp_path)
    count = len(path.read_bytes().splitlines())
    with open(path, "ab") as fh:
        fh.write(b'{"event":{"type":"note","text":"half')
    r = build_report(path, use_runbook=False)
    assert r.torn_tail and r.record_count == count
    assert any("torn" in d.message for d in r.deviations)


def test_tampered_journal_is_refused(tmp_path: Path) -> None:
    path, _ = full_session(tmp_path)
    data = bytearray(path.read_bytes())
    at = data.index(b"systemctl restart db")
    data[at] = ord("S")
    path.write_bytes(bytes(data))
    with pytest.raises(TamperedJournal) as exc:
        read_journal(path)
    assert exc.value.exit_code == 1 and "hash mismatch" in str(exc.value)


def test_unknown_event_types_are_kept_verbatim(tmp_path: Path) -> None:
    path, _ = full_session(tmp_path)
    lines = path.read_bytes().splitlines()
    last = json.loads(lines[-1])
    event = {"type": "from_the_future", "x": 1}
    seq = last["seq"] + 1
    ts = "2026-11-27T05:00:00.000000Z"
    h = record_hash(seq, ts, last["h"], event)
    with open(path, "ab") as fh:
        fh.write(canonical({"event": event, "h": h, "prev": last["h"], "seq": seq, "ts": ts}) + b"\n")
    jc = read_journal(path)
    r = build_report(jc, use_runbook=False)
    assert r.unknown_event_types == ["from_the_future"] and r.record_count == seq
    data = render(r, jc, "json", 10)
    assert verify_chain(data).ok and b"from_the_future" in data


def test_output_is_cut_in_md_but_whole_in_json(tmp_path: Path) -> None:
    path, _ = full_session(tmp_path, output_lines=50)
    jc = read_journal(path)
    r = build_report(jc, use_runbook=False)
    md = render(r, jc, "md", 10).decode()
    assert "web-1 line 0\n" in md and "web-1 line 49\n" in md and "web-1 line 25\n" not in md
    assert "40 lines not shown" in md
    web1 = task(r, "T-1").steps[0].runs[0].hosts[0]
    assert web1.output.sha256 in md and web1.output.lines == 50
    doc = render(r, jc, "json", 10).decode()
    assert "web-1 line 25" in doc  # in the report's output text and in the verbatim records
    assert "web-1 line 0" not in render(r, jc, "md", 0).decode()


def test_markdown_escapes_journal_text(tmp_path: Path) -> None:
    runbook, sha = write_runbook(tmp_path)
    path = tmp_path / "s" / "journal.jsonl"
    with Journal.create(path) as j:
        j.append(ev.SessionOpened("S-md", str(runbook), sha, "Title with [link](http://x) & <b>", operator="a|b"))
        j.append(ev.StepStarted("r1", "T-1", 1, ("h",), "echo ```\necho ~~~", who="a"))
        j.append(ev.OutputChunk("r1", "h", "stdout", "```\n\x1b[31mred\x1b[0m \u202eevil\n"))
        j.append(ev.HostFinished("r1", "h", "succeeded", exit_status=0))
        j.append(ev.StepFinished("r1", "succeeded"))
        j.append(ev.Note("<script>alert(1)</script> *bold* | pipe", task="T-1", who="a"))
    md = render_md(build_report(path, use_runbook=False))
    assert "<script>" not in md and "\\<script\\>" in md
    assert "\\[link\\](http://x) \\& \\<b\\>" in md and "a\\|b" in md
    assert "````bash\necho ```\necho ~~~\n````" in md  # fence longer than any run inside
    assert "\x1b" not in md and "red" in md and "\u202e" not in md and "<U+202E>evil" in md


def test_resolve_journal_by_path_dir_id_and_prefix(tmp_path: Path) -> None:
    path, _ = full_session(tmp_path)
    assert resolve_journal(str(path)) == path
    assert resolve_journal(str(path.parent)) == path
    assert resolve_journal(SESSION_ID, str(tmp_path)).resolve() == path.resolve()
    assert resolve_journal(SESSION_ID[:10], str(tmp_path)).resolve() == path.resolve()
    with pytest.raises(UserError):
        resolve_journal("no-such-session", str(tmp_path))


def test_cli_default_out_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from runbook.cli import main

    path, _ = full_session(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for fmt in ("md", "json", "html"):
        assert main(["export", SESSION_ID, "--session-dir", str(tmp_path), "--format", fmt]) == 0
        out = work / f"{SESSION_ID}.{fmt}"
        assert out.is_file() and (out.stat().st_mode & 0o777) == 0o600
    assert f"wrote {SESSION_ID}.html" in capsys.readouterr().out
    assert main(["export", str(path), "--out", "-"]) == 0
    assert capsys.readouterr().out.startswith("# Session report: Demo runbook")
    assert main(["export", "nope", "--session-dir", str(tmp_path)]) == 2
    assert main(["export", str(path), "--lines", "-1"]) == 2
    assert main(["export", str(path), "--sign", str(tmp_path / "missing-key")]) == 2
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    assert main(["export", str(path), "--sign-agent"]) == 2
    err = capsys.readouterr().err
    assert "no such key file" in err and "SSH_AUTH_SOCK" in err and "Traceback" not in err


def test_box_pre_checked_in_the_runbook_is_not_a_deviation(tmp_path: Path) -> None:
    """`- [x]` in the document starts ticked (as the TUI shows it); `- [ ]` never ticked is a deviation."""
    text = ("# R\n\n## Phase 1: P (1 hour)\n\n### Task T-1: Check\n\n- **Duration**: 5 minutes\n"
            "- **Risk Level**: LOW\n\n#### Prerequisites\n\n- [x] Ticket approved\n- [ ] Backup taken\n\n"
            "#### Steps\n\n1. **Look**\n\n```bash\ntrue\n```\n\n#### Acceptance Criteria\n\n- [ ] Looked\n\n"
            "#### Rollback Procedure\n\nN/A\n")
    runbook, sha = write_runbook(tmp_path, text)
    path = tmp_path / "journal.jsonl"
    with Journal.create(path) as j:
        j.append(ev.SessionOpened(SESSION_ID, str(runbook), sha, runbook_title="R", operator="alice",
                                  task_ids=("T-1",)))
        j.append(ev.TaskStarted("T-1", who="alice"))
    r = build_report(path)
    boxes = {b.text: b for b in task(r, "T-1").checkboxes}
    assert boxes["Ticket approved"].checked and "pre-checked" in boxes["Ticket approved"].evidence
    msgs = [d.message for d in r.deviations]
    assert not any("Ticket approved" in x for x in msgs)
    assert any("Backup taken" in x for x in msgs)
