"""The journal format: a journal of today's format still reads, the format version, the
unknown-event-type policy, and records read in blocks (one pass: verify and decode)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sessions.engine.session import Session
from sessions.journal import events as ev
from sessions.journal.format import (
    FORMAT_TYPES,
    FORMAT_VERSION,
    ForeignEvent,
    JournalError,
    JournalReader,
    NewerJournal,
    TamperedJournal,
    decode_event,
)
from sessions.journal.journal import Journal, read_records, verify
from sessions.report.build import build_report, read_journal
from sessions.state.state import replay

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "journal-format-1.jsonl"
#: written by the code of main at d527dde (before the format version existed): one event of
#: every type then registered (tests/unit/test_journal.py sample_events), through Journal.append
FIXTURE_HEAD = "3171cb2191dad4e1c84cdfe575c1a2bca7c907e904315423da1e398ec06af7da"
FIXTURE_TYPES = [
    "session_opened", "session_closed", "runbook_changed", "recovered", "checkpoint", "task_started",
    "task_completed", "task_skipped", "step_started", "output", "output", "host_finished", "host_finished",
    "step_finished", "step_outcome_unknown", "outcome_decided", "step_skipped", "expectation_checked",
    "file_uploaded", "host_key_accepted", "checkbox_set", "checkbox_cleared", "placeholder_supplied",
    "placeholder_supplied", "guard_passed", "guard_overridden", "note", "rollback_started", "probe_result",
    "detached_started", "signal_received", "host_started", "target_chosen", "output",
]


def _session_copy(tmp_path: Path, source: Path) -> Path:
    d = tmp_path / "sessions" / "20261127T043216Z-f1f1"
    d.mkdir(parents=True, mode=0o700)
    os.chmod(d, 0o700)
    journal = d / "journal.jsonl"
    shutil.copyfile(source, journal)
    os.chmod(journal, 0o600)
    return journal


def test_a_journal_written_by_todays_format_still_reads() -> None:
    v = verify(FIXTURE)
    assert v.ok and v.count == len(FIXTURE_TYPES) and v.head == FIXTURE_HEAD, v.message
    assert v.version == 1 and not v.note
    records = list(read_records(FIXTURE))
    assert [r.event.TYPE for r in records] == FIXTURE_TYPES
    opened = records[0].event
    assert isinstance(opened, ev.SessionOpened) and opened.format_version == 1  # absent: version 1
    assert opened.task_ids == ("T-1", "T-2") and opened.handover_from == "bob"
    out = [r.event for r in records if isinstance(r.event, ev.OutputChunk)]
    assert out[0].raw == "ünïcode ✓ line\n\ttab\x00nul\n".encode() and out[1].raw == b"\xff\xfe not utf-8"
    state = replay(records)
    assert state.count == len(FIXTURE_TYPES) and state.session_id == "sid-1"
    jc = read_journal(FIXTURE)
    assert jc.count == len(FIXTURE_TYPES) and jc.head == FIXTURE_HEAD and not jc.unknown_types
    assert build_report(jc, use_runbook=False).record_count == len(FIXTURE_TYPES)


def test_a_journal_of_todays_format_is_appended_to_in_the_same_format(tmp_path: Path) -> None:
    path = _session_copy(tmp_path, FIXTURE)
    with Journal.open(path) as j:
        assert j.count == len(FIXTURE_TYPES) and j.head == FIXTURE_HEAD
        j.append(ev.Note("appended by this build", "T-1", "alice"))
    assert path.read_bytes().startswith(FIXTURE.read_bytes())
    v = verify(path)
    assert v.ok and v.count == len(FIXTURE_TYPES) + 1 and v.version == 1


def _newer_journal(tmp_path: Path) -> Path:
    """A session written by a runbook of format FORMAT_VERSION + 1: its session_opened names the
    format, and it journals an event type this build does not know."""
    path = tmp_path / "sessions" / "20261127T043216Z-beef" / "journal.jsonl"
    with Journal.create(path) as j:
        j.append(ev.SessionOpened("20261127T043216Z-beef", "/srv/rb.md", "a" * 64, "Newer", "alice",
                                  format_version=FORMAT_VERSION + 1))
        j.append(ev.TaskStarted("T-1", "alice"))
        j.append(ForeignEvent("gpu_reserved", {"type": "gpu_reserved", "host": "m1", "count": 2}))
        j.append(ev.Note("after the new event", "T-1", "alice"))
    return path


def test_a_newer_format_is_read_as_written_by_a_newer_runbook_not_as_tampering(tmp_path: Path) -> None:
    path = _newer_journal(tmp_path)
    v = verify(path)
    newer = f"written by a newer runbook (format {FORMAT_VERSION + 1})"
    assert v.ok and v.count == 4 and v.version == FORMAT_VERSION + 1, v.message
    assert newer in v.note and "gpu_reserved (1)" in v.note and v.foreign == ("gpu_reserved",)
    kept = [r.event for r in read_records(path)]
    assert kept[2] == ForeignEvent("gpu_reserved", {"type": "gpu_reserved", "host": "m1", "count": 2})
    assert replay(kept).count == 4  # the fold passes over it
    jc = read_journal(path)  # an export hands it over verbatim
    assert jc.unknown_types == ["gpu_reserved"] and jc.count == 4


def test_a_newer_format_journal_is_refused_for_writing_with_a_clear_message(tmp_path: Path) -> None:
    path = _newer_journal(tmp_path)
    before = path.read_bytes()
    with pytest.raises(NewerJournal) as exc:
        Journal.open(path)
    message = str(exc.value)
    assert f"written by a newer runbook (journal format {FORMAT_VERSION + 1}" in message
    assert f"this runbook reads and writes format {FORMAT_VERSION}" in message and exc.value.exit_code == 2
    with pytest.raises(NewerJournal):
        Session.resume(path)
    assert path.read_bytes() == before  # nothing appended, no recovery record
    env = {**os.environ, "RUNBOOK_SESSION_DIR": str(path.parent.parent)}
    run = [sys.executable, "-m", "runbook.cli"]
    r = subprocess.run([*run, "journal", "verify", str(path.parent)], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "written by a newer runbook" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([*run, "journal", "show", str(path.parent)], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "gpu_reserved" in r.stdout and "written by a newer runbook" in r.stderr
    assert path.read_bytes() == before


def test_an_unknown_type_at_a_known_format_is_a_bad_record(tmp_path: Path) -> None:
    path = tmp_path / "s" / "journal.jsonl"
    with Journal.create(path, lock=False) as j:
        j.append(ev.SessionOpened("sid", "/srv/rb.md", "a" * 64, format_version=FORMAT_VERSION))
        j.append(ForeignEvent("gpu_reserved", {"type": "gpu_reserved"}))
    v = verify(path)
    assert not v.ok and v.seq == 2 and v.count == 1
    assert f"bad event: unknown event type 'gpu_reserved' (not in journal format {FORMAT_VERSION})" in v.message
    with pytest.raises(TamperedJournal):
        Journal.open(path, lock=False)


def test_one_decoder_turns_lists_into_tuples_at_any_depth_and_checks_fields() -> None:
    e = decode_event({"type": "step_started", "run_id": "r", "task": "T", "step": 1, "targets": ["a", "b"],
                      "command": "true", "unknown_later_field": [1, [2]]})
    assert isinstance(e, ev.StepStarted) and e.targets == ("a", "b")
    with pytest.raises(TypeError, match="field 'targets' must be a list of strings"):
        decode_event({"type": "step_started", "run_id": "r", "task": "T", "step": 1, "targets": [["a"]],
                      "command": "true"})


def test_records_longer_than_a_read_block_and_the_input_limit(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "s" / "journal.jsonl"
    big = ("x" * 99 + "\n") * 30_000  # 3 MB: spans several read blocks
    with Journal.create(path, lock=False) as j:
        j.append(ev.SessionOpened("sid", "/srv/rb.md", "a" * 64))
        j.append(ev.OutputChunk("r", "m1", "stdout", big))
        j.append(ev.Note("after", "", "alice"))
    with open(path, "ab") as fh:
        fh.write(b'{"event":{"type":"note","text":"half')  # a torn tail
    reader = JournalReader(path)
    records = list(reader)
    assert [r.seq for r in records] == [1, 2, 3] and records[1].event.data == big
    assert reader.torn == len(b'{"event":{"type":"note","text":"half') and reader.torn_line == 4
    assert reader.end == path.stat().st_size - reader.torn
    monkeypatch.setenv("RUNBOOK_MAX_INPUT_MB", "1")
    with pytest.raises(JournalError, match=r"journal.jsonl:2: a record over the 1 MB input limit"):
        list(JournalReader(path))


def test_every_event_type_belongs_to_a_format_and_a_new_type_is_a_new_format() -> None:
    """A new event type must raise the format version (FORMAT_TYPES says how): an older runbook
    then reads it as written by a newer one, instead of calling the journal tampered."""
    registered = set(ev.event_types())
    listed = set().union(*FORMAT_TYPES.values())
    assert registered - listed == set(), "event types in no format: add them to FORMAT_TYPES[FORMAT_VERSION + 1] " \
        "and raise FORMAT_VERSION"
    assert listed - registered == set()
    assert sorted(FORMAT_TYPES) == list(range(1, FORMAT_VERSION + 1))
    assert sum(len(types) for types in FORMAT_TYPES.values()) == len(listed)  # each type in one format
