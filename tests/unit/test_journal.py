"""The journal: record format, hash chain, durability, recovery, write errors."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat

import pytest

from sessions.journal import events as ev
from sessions.journal import journal as jr
from sessions.journal.journal import (
    GENESIS,
    Journal,
    JournalError,
    JournalWriteError,
    TamperedJournal,
    canonical,
    read_records,
    record_hash,
    verify,
)

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def sample_events() -> list[ev.Event]:
    """One event of every registered type, with awkward values."""
    return [
        ev.SessionOpened("sid-1", "/srv/rb.md", "a" * 64, "Title é", "alice", "192.0.2.7", "jump-1", "0.1.0", "",
                         ("T-1", "T-2"), "2026-11-27T06:00:00Z", True, "bob", 42),
        ev.SessionClosed("quit", False),
        ev.RunbookChanged("a" * 64, "b" * 64, ("T-3",), ("T-2",)),
        ev.Recovered("torn tail", 17, "line 9"),
        ev.Checkpoint("c" * 64, 9, None),
        ev.TaskStarted("T-1", "alice"),
        ev.TaskCompleted("T-1", "alice"),
        ev.TaskSkipped("T-2", "not needed", "alice"),
        ev.StepStarted("r1", "T-1", 1, ("m1", "m2"), "kubectl get nodes\necho 'done' \"quoted\" \\", "serial",
                       False, True, True, "alice"),
        ev.OutputChunk.from_bytes("r1", "m1", "stdout", "ünïcode ✓ line\n\ttab\x00nul\n".encode()),
        ev.OutputChunk.from_bytes("r1", "m2", "stderr", b"\xff\xfe not utf-8"),
        ev.HostFinished("r1", "m1", "succeeded", 0, None, 1.25),
        ev.HostFinished("r1", "m2", "failed", None, "KILL", 0.5, "killed"),
        ev.StepFinished("r1", "failed", 2.0),
        ev.StepOutcomeUnknown("r1", "connection dropped", "m2"),
        ev.OutcomeDecided("r1", "succeeded", "checked by hand", "m2", "alice"),
        ev.StepSkipped("T-1", 2, "done by hand", "alice"),
        ev.ExpectationChecked("r1", "m1", 0, True, "Ready"),
        ev.FileUploaded("r1", "m1", "/etc/x.yaml", "d" * 64, "0644"),
        ev.HostKeyAccepted("m1", "SHA256:abc", "alice"),
        ev.CheckboxSet("T-1/prerequisites/0", "box", "alice", "seen"),
        ev.CheckboxCleared("T-1/prerequisites/0", "box", "alice", "mistake"),
        ev.PlaceholderSupplied("VERSION", False, "1.29"),
        ev.PlaceholderSupplied("DB_PASS", True, None, "scrypt:1:1:1:ab", "00ff", "alice"),
        ev.GuardPassed("risk", "T-1", None, "confirmed", "alice"),
        ev.GuardOverridden("window", "T-1", "approved by CAB", 3, "alice"),
        ev.Note("a note with \u2028 separators and \"quotes\"", "T-1", "alice"),
        ev.RollbackStarted("T-1", "failed", "alice"),
        ev.ProbeResult("T-1/acceptance/0", "k8s.nodes_ready(min=3)", "pass", "3/3", 0.2),
    ] + _later_samples()


def _later_samples() -> list[ev.Event]:
    """Events added by others after the journal was written (present or not)."""
    out: list[ev.Event] = []
    out.append(ev.DetachedStarted("r1", "m1", "rb-123", 1, False))
    out.append(ev.SignalReceived("SIGTERM", 4242, ("r1",)))
    out.append(ev.HostStarted("r1", "m1"))
    out.append(ev.TargetChosen("T-1", "masters[0]", 2, True, ("m1",), "", "alice"))
    out.append(ev.WindowAlert("amber", 1200.0, 900.0))
    out.append(ev.NotificationSent("step_failed", "https://hooks.example.test/… #0a1b2c3d", 200, 2, 17))
    out.append(ev.NotificationFailed("session_closed", "http://127.0.0.1:9/… #0a1b2c3d", "HTTP 500", 4, 30))
    out.append(ev.MirrorChanged("backup-jump:/var/lib/runbook/mirror", "lost", 41, "ConnectionLost: reset"))
    out.append(ev.MirrorHandover("backup-jump:/var/lib/runbook/mirror/20261127T043216Z-3f9a", 42, "alice", "jump-1",
                                 "bob", "jump-2", 17))
    out.append(ev.ApproversSet("/srv/approvers", "e" * 64, "alice@example ssh-ed25519 AAAA\n", "bob"))
    out.append(ev.ApprovalRequested("0a1b2c3d", "T-1", "/s/approval-T-1-0a1b2c3d.json", '{"kind": "x"}\n',
                                    "f" * 64, ("SHA256:abc",), "bob"))
    out.append(ev.ApprovalGranted("0a1b2c3d", "T-1", "alice@example", "SHA256:def",
                                  "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n",
                                  "runbook-approval", '{"kind": "x"}\n', "/s/a.sig", "bob"))
    out.append(ev.ApprovalRefused("0a1b2c3d", "T-1", "signed with the operator's own key", "SHA256:abc", "", "", "bob"))
    if "raw_len" in getattr(ev.OutputChunk, "__dataclass_fields__", {}):
        out.append(ev.OutputChunk.from_bytes("r1", "m1", "stdout", b"pass=***\n", raw_len=17))
    return out


def test_sample_covers_every_registered_event_type():
    covered = {type(e).TYPE for e in sample_events()}
    # new types added later by others are reported here, so that this file grows with them
    missing = set(ev.event_types()) - covered
    assert not missing, f"add samples for {sorted(missing)}"


def test_create_modes_and_empty(tmp_path):
    j = Journal.create(tmp_path / "s" / "journal.jsonl")
    try:
        assert stat.S_IMODE(os.stat(tmp_path / "s").st_mode) == 0o700
        assert stat.S_IMODE(os.stat(j.path).st_mode) == 0o600
        assert j.path.read_bytes() == b""
        assert (j.count, j.head) == (0, GENESIS)
    finally:
        j.close()
    with pytest.raises(JournalError, match="exists already"):
        Journal.create(tmp_path / "s" / "journal.jsonl")


def test_record_format_and_hash_definition(tmp_path):
    with Journal.create(tmp_path / "journal.jsonl", lock=False) as j:
        recs = [j.append(e) for e in sample_events()]
    lines = (tmp_path / "journal.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b""
    prev = GENESIS
    for n, (raw, rec) in enumerate(zip(lines[:-1], recs, strict=True), start=1):
        obj = json.loads(raw)
        assert list(obj) == ["event", "h", "prev", "seq", "ts"]
        assert obj["seq"] == rec.seq == rec.line == n
        assert obj["prev"] == prev == rec.prev
        assert TS.match(obj["ts"])
        # canonical: sorted keys, no spaces, UTF-8 (no \u escapes for non-ASCII text)
        assert raw == canonical(obj)
        # h: the canonical JSON of the record without h == the line without its h member
        assert obj["h"] == record_hash(obj["seq"], obj["ts"], obj["prev"], obj["event"]) == rec.h
        without_h = raw.replace(b',"h":"' + obj["h"].encode() + b'"', b"")
        assert hashlib.sha256(without_h).hexdigest() == obj["h"]
        prev = obj["h"]
    assert "ünïcode".encode() in lines[9]


def test_every_event_type_round_trips(tmp_path):
    events = sample_events()
    with Journal.create(tmp_path / "journal.jsonl", lock=False) as j:
        for e in events:
            j.append(e)
    back = [r.event for r in read_records(tmp_path / "journal.jsonl")]
    assert back == events
    assert back[10].raw == b"\xff\xfe not utf-8"


def test_unpaired_surrogate_is_escaped_and_verifies(tmp_path):
    with Journal.create(tmp_path / "journal.jsonl", lock=False) as j:
        j.append(ev.Note("bad \udcff surrogate"))
    assert verify(tmp_path / "journal.jsonl").ok
    assert [r.event.text for r in read_records(tmp_path / "journal.jsonl")] == ["bad \udcff surrogate"]


def test_open_continues_the_chain(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal.create(path) as j:
        j.append(ev.Note("one"))
        head = j.head
    with Journal.open(path) as j:
        assert (j.count, j.head) == (1, head)
        rec = j.append(ev.Note("two"))
        assert (rec.seq, rec.prev) == (2, head)
    v = verify(path)
    assert (v.ok, v.count) == (True, 2)
    assert v.head == rec.h


def test_torn_tail_is_truncated_and_journaled(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal.create(path) as j:
        for i in range(3):
            j.append(ev.Note(f"n{i}"))
    good = path.read_bytes()
    torn = b'{"event":{"text":"half a rec'
    with open(path, "ab") as fh:
        fh.write(torn)
    v = verify(path)
    assert not v.ok and (v.seq, v.line, v.count) == (4, 4, 3)
    assert "torn last line" in v.message
    assert [r.seq for r in read_records(path)] == [1, 2, 3]  # readers skip it
    with pytest.raises(TamperedJournal, match="torn"):
        list(read_records(path, allow_torn_tail=False))
    seen = []
    with Journal.open(path, each=seen.append) as j:
        assert [r.seq for r in j.recovered] == [4]
    rec = seen[-1]
    assert isinstance(rec.event, ev.Recovered) and rec.event.what == "torn tail"
    assert rec.event.bytes_dropped == len(torn)
    assert path.read_bytes().startswith(good)
    assert verify(path).ok and verify(path).count == 4


def test_broken_middle_record_refuses_to_write(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal.create(path) as j:
        for i in range(5):
            j.append(ev.Note(f"note {i}"))
    data = path.read_bytes().replace(b"note 2", b"note X")
    path.write_bytes(data)
    with pytest.raises(TamperedJournal) as exc:
        Journal.open(path)
    assert (exc.value.seq, exc.value.line) == (3, 3)
    assert "refusing to write" in str(exc.value) and ":3:" in str(exc.value)
    assert path.read_bytes() == data  # nothing written, nothing truncated
    with Journal.create(tmp_path / "other" / "journal.jsonl") as j:  # and the lock was released
        j.append(ev.Note("first"))
    with Journal.open(tmp_path / "other" / "journal.jsonl"):
        pass


def _lines(path):
    return path.read_bytes().splitlines(keepends=True)


def test_deleting_or_reordering_records_is_caught(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal.create(path, lock=False) as j:
        for i in range(6):
            j.append(ev.Note(f"n{i}"))
    lines = _lines(path)
    path.write_bytes(b"".join(lines[:2] + lines[3:]))
    v = verify(path)
    assert not v.ok and (v.seq, v.line, v.count) == (3, 3, 2)
    path.write_bytes(b"".join(lines[:1] + [lines[3], lines[2], lines[1]] + lines[4:]))
    v = verify(path)
    assert not v.ok and (v.seq, v.line) == (2, 2)
    path.write_bytes(b"".join(lines[:4] + [lines[5], lines[4]]))
    v = verify(path)
    assert not v.ok and (v.seq, v.line) == (5, 5)


def test_every_sampled_single_byte_change_is_caught(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal.create(path, lock=False) as j:
        for e in sample_events():
            j.append(e)
    original = path.read_bytes()
    starts = [0]
    for line in _lines(path):
        starts.append(starts[-1] + len(line))
    # every 7th byte across the whole file, the first and last bytes of each line
    offsets = set(range(0, len(original), 7)) | set(starts[:-1]) | {s - 1 for s in starts[1:]}
    for off in sorted(offsets):
        line_no = next(n for n in range(1, len(starts)) if starts[n - 1] <= off < starts[n])
        for new in {original[off] ^ 0x01, original[off] ^ 0x20, ord("\n") if original[off] != 10 else ord(" ")}:
            data = bytearray(original)
            data[off] = new
            path.write_bytes(bytes(data))
            v = verify(path)
            assert not v.ok, f"byte {off} -> {new!r} not caught"
            assert v.line == line_no and v.seq == line_no, (off, new, v.message)
            assert f":{line_no}:" in v.message and f"record seq {line_no}" in v.message
    path.write_bytes(original)
    assert verify(path).ok


def test_group_commit(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(jr.os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    clock = [1000.0]
    monkeypatch.setattr(jr.time, "monotonic", lambda: clock[0])
    with Journal.create(tmp_path / "journal.jsonl", lock=False, group_commit_s=0.1) as j:
        calls.clear()
        j.append_output(ev.OutputChunk("r", "h", "stdout", "a"))
        j.append_output(ev.OutputChunk("r", "h", "stdout", "b"))
        assert calls == [] and j.dirty and j.durable_count == 0
        assert j.sync_due_in() == pytest.approx(0.1)
        clock[0] += 0.1
        assert j.sync_due_in() == 0
        j.append_output(ev.OutputChunk("r", "h", "stdout", "c"))  # due: committed with this one
        assert len(calls) == 1 and not j.dirty and j.durable_count == 3
        j.append_output(ev.OutputChunk("r", "h", "stdout", "d"))
        assert len(calls) == 1
        j.append(ev.StepFinished("r", "succeeded"))  # a durable record commits everything before it
        assert len(calls) == 2 and j.durable_count == 5
        j.sync()
        assert len(calls) == 2  # nothing pending
        j.append_output(ev.OutputChunk("r", "h", "stdout", "e"))
    assert len(calls) == 3  # close commits


def test_write_error_rolls_back_and_fails_the_journal(tmp_path, monkeypatch):
    path = tmp_path / "journal.jsonl"
    j = Journal.create(path, lock=False)
    j.append(ev.Note("durable"))
    j.append_output(ev.OutputChunk("r", "h", "stdout", "written, not yet fsynced"))
    real_write = os.write

    def short_then_full(fd, data):
        if fd == j._fd:
            if not getattr(short_then_full, "done", False):
                short_then_full.done = True
                return real_write(fd, bytes(data[:10]))  # a partial record reaches the file
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(jr.os, "write", short_then_full)
    with pytest.raises(JournalWriteError) as exc:
        j.append(ev.Note("this one does not fit"))
    msg = str(exc.value)
    assert "No space left on device (ENOSPC)" in msg and "record 3" in msg and "valid up to record 2" in msg
    monkeypatch.setattr(jr.os, "write", real_write)
    with pytest.raises(JournalWriteError):
        j.append(ev.Note("later"))  # the journal stays failed
    with pytest.raises(JournalWriteError):
        j.append_output(ev.OutputChunk("r", "h", "stdout", "x"))
    j.close()
    v = verify(path)
    assert v.ok and v.count == 2, v.message


def test_fsync_error_drops_what_was_not_durable(tmp_path, monkeypatch):
    path = tmp_path / "journal.jsonl"
    j = Journal.create(path, lock=False)
    j.append(ev.Note("durable"))
    j.append_output(ev.OutputChunk("r", "h", "stdout", "pending"))
    real = os.fsync
    state = {"fail": True}

    def failing(fd):
        if state["fail"]:
            state["fail"] = False
            raise OSError(errno.EIO, "Input/output error")
        return real(fd)

    monkeypatch.setattr(jr.os, "fsync", failing)
    with pytest.raises(JournalWriteError, match=r"cannot fsync journal records 2-3: Input/output error \(EIO\)"):
        j.append(ev.Note("decision"))
    j.close()
    v = verify(path)
    assert v.ok and v.count == 1


def test_closed_journal_refuses(tmp_path):
    j = Journal.create(tmp_path / "journal.jsonl")
    j.close()
    j.close()  # idempotent
    with pytest.raises(JournalError, match="closed"):
        j.append(ev.Note("x"))


def test_open_missing_journal(tmp_path):
    with pytest.raises(JournalError, match="no such journal"):
        Journal.open(tmp_path / "nope.jsonl")
