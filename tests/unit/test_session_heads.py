"""``runbook sessions`` reads a cached head per session, trusted only while the journal matches it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from runbook.model import Phase, Runbook, Task
from sessions.engine.session import Session
from sessions.journal import events as ev
from sessions.journal.journal import Journal, verify
from sessions.store import HEAD, list_sessions, read_head, summarize


def book() -> Runbook:
    tasks = tuple(Task(t, f"task {t}", 10 + i) for i, t in enumerate(("T-1", "T-2")))
    return Runbook("Head RB", "/nonexistent/rb.md", "a" * 64, phases=(Phase("1", "P", 1, tasks=tasks),))


def closed_session(root: Path, output: int = 50) -> Path:
    s = Session.create(book(), root=root)
    s.start_task("T-1")
    s.record(ev.StepStarted("r1", "T-1", 1, ("m1",), "journalctl -n 100"))
    for i in range(output):
        s.record_output(ev.OutputChunk("r1", "m1", "stdout", f"line {i}\n" * 20))
    s.record(ev.HostFinished("r1", "m1", "succeeded", 0, None, 1.0))
    s.record(ev.StepFinished("r1", "succeeded", 1.0))
    s.complete_task("T-1")
    s.close()
    return s.journal.path


def full_read(journal: Path):
    """The summary from the journal alone (no head)."""
    head = journal.parent / HEAD
    saved = head.read_bytes()
    head.unlink()
    try:
        return summarize(journal)
    finally:
        head.write_bytes(saved)


def test_a_closed_session_lists_from_its_head_as_from_its_journal(tmp_path: Path) -> None:
    journal = closed_session(tmp_path)
    head = json.loads((journal.parent / HEAD).read_text())
    assert head["seq"] > 50 and head["journal_size"] == journal.stat().st_size
    assert oct((journal.parent / HEAD).stat().st_mode & 0o777) == "0o600"
    assert read_head(journal) is not None
    listed = summarize(journal)
    assert listed == full_read(journal)
    assert listed.status == "paused" and (listed.done, listed.total) == (1, 2) and listed.runbook_title == "Head RB"
    assert [s.id for s in list_sessions(tmp_path)] == [listed.id]


def test_the_listing_does_not_verify_the_chain_journal_verify_does(tmp_path: Path) -> None:
    journal = closed_session(tmp_path)
    data = bytearray(journal.read_bytes())
    at = data.index(b"line 7\\n")
    data[at] = ord("L")  # a record in the middle altered; size and last record unchanged
    journal.write_bytes(bytes(data))
    assert summarize(journal).status == "paused"  # from the head: the listing is not a verification
    assert full_read(journal).status == "broken"
    assert not verify(journal).ok


def test_a_stale_head_falls_back_to_the_journal(tmp_path: Path) -> None:
    journal = closed_session(tmp_path)
    with Journal.open(journal) as j:  # appended by something that does not write heads
        j.append(ev.Note("later", "", "bob"))
    records = json.loads((journal.parent / HEAD).read_text())["records"]
    assert read_head(journal) is None
    listed = summarize(journal)
    assert listed == full_read(journal) and listed.records == records + 1


def test_a_head_left_by_a_crashed_resume_is_stale(tmp_path: Path) -> None:
    journal = closed_session(tmp_path)
    s = Session.resume(journal)
    s.start_task("T-2")
    s.journal.sync()
    os.close(s.journal._fd)  # killed: no close, no new head
    s.journal._fd = -1
    s.journal.lock.release()
    assert read_head(journal) is None
    listed = summarize(journal)
    assert listed.status == "interrupted" and listed.records == full_read(journal).records


def test_a_missing_unreadable_or_symlinked_head_falls_back(tmp_path: Path) -> None:
    journal = closed_session(tmp_path)
    expected = full_read(journal)
    head = journal.parent / HEAD
    saved = head.read_bytes()
    for content in (b"", b"not json", b"[]", saved[: len(saved) // 2]):
        head.write_bytes(content)
        assert read_head(journal) is None and summarize(journal) == expected
    head.unlink()
    other = tmp_path / "elsewhere.json"
    other.write_bytes(saved)
    head.symlink_to(other)  # never followed
    assert read_head(journal) is None and summarize(journal) == expected


def test_a_forged_head_is_never_trusted_over_the_journal(tmp_path: Path) -> None:
    journal = closed_session(tmp_path)
    expected = full_read(journal)
    head = journal.parent / HEAD
    good = json.loads(head.read_text())
    forgeries = [
        {**good, "seq": good["seq"] + 1},  # claims more records
        {**good, "h": "0" * 64},  # another last record
        {**good, "journal_size": good["journal_size"] - 1},
        {**good, "session_id": "20261127T000000Z-0000"},  # another session's head
        {**good, "done": "1"},  # wrong types
        {**good, "extra": 1},
    ]
    for forged in forgeries:
        head.write_text(json.dumps(forged))
        assert read_head(journal) is None, forged
        assert summarize(journal) == expected
    # a head copied from another session: its journal ends in another record
    other = closed_session(tmp_path / "other", output=3)
    head.write_bytes((other.parent / HEAD).read_bytes())
    assert read_head(journal) is None and summarize(journal) == expected


def test_a_journal_whose_last_record_was_rewritten_is_read_whole(tmp_path: Path) -> None:
    journal = closed_session(tmp_path)
    data = journal.read_bytes()
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[1]
    altered = last.replace(b'"quit"', b'"QUIT"')  # same size, its own hash no longer matches
    assert altered != last
    journal.write_bytes(data[: len(data) - len(last) - 1] + altered + b"\n")
    assert read_head(journal) is None
    assert summarize(journal).status == "broken"
