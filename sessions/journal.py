"""The append-only, hash-chained session journal (JSON Lines).

One record per line::

    {"event": {...}, "h": "<sha256>", "prev": "<sha256 of previous record>", "seq": 1,
     "ts": "2026-11-27T04:32:16.123456Z"}

``h`` is the SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of the
record without ``h``.  The first record's ``prev`` is 64 zeros.  Changing, removing
or reordering any record breaks the chain at that record.

Durability: :meth:`Journal.append` (operator decisions, step start/finish) writes and
fsyncs before returning, so nothing is shown as done that is not on disk.
:meth:`Journal.append_output` (output chunks) is group-committed: written at once,
fsynced at most every ``group_commit_s`` (100 ms) and on :meth:`sync` / any durable
append.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from runbook.errors import UserError
from sessions.events import Event, event_from_json

GENESIS = "0" * 64


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(seq: int, ts: str, prev: str, event: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({"event": event, "prev": prev, "seq": seq, "ts": ts})).hexdigest()


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    ts: str
    prev: str
    h: str
    event: Event
    line: int = 0  # line number in the journal file (1-based)

    def to_json(self) -> dict[str, Any]:
        return {"event": self.event.to_json(), "h": self.h, "prev": self.prev, "seq": self.seq, "ts": self.ts}


class JournalError(UserError):
    """The journal cannot be used: corrupt, locked, or not writable."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message, exit_code)


class TamperedJournal(JournalError):
    def __init__(self, path: str, seq: int | None, line: int, reason: str) -> None:
        where = f"record seq {seq}" if seq is not None else "a record"
        super().__init__(f"{path}:{line}: journal broken at {where}: {reason}")
        self.seq = seq
        self.line = line
        self.reason = reason


class JournalWriteError(JournalError):
    """A write or fsync failed.  The journal is valid up to the last durable record."""


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    count: int
    head: str
    message: str = ""
    seq: int | None = None  # first bad record
    line: int | None = None


def _parse_line(path: str, raw: bytes, lineno: int, prev: str, expected_seq: int) -> Record:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise TamperedJournal(path, expected_seq, lineno, "not valid JSON") from None
    if not isinstance(obj, dict) or not {"seq", "ts", "prev", "h", "event"} <= obj.keys():
        raise TamperedJournal(path, expected_seq, lineno, "missing fields")
    seq = obj["seq"]
    if seq != expected_seq:
        raise TamperedJournal(path, expected_seq, lineno, f"sequence number is {seq!r}, expected {expected_seq}")
    if obj["prev"] != prev:
        raise TamperedJournal(path, seq, lineno, "does not chain to the previous record")
    if record_hash(seq, obj["ts"], obj["prev"], obj["event"]) != obj["h"]:
        raise TamperedJournal(path, seq, lineno, "hash mismatch (record altered)")
    try:
        event = event_from_json(obj["event"])
    except (ValueError, TypeError) as exc:
        raise TamperedJournal(path, seq, lineno, f"bad event: {exc}") from None
    return Record(seq, obj["ts"], obj["prev"], obj["h"], event, lineno)


def read_records(path: str | os.PathLike[str], *, allow_torn_tail: bool = True) -> Iterator[Record]:
    """Yield verified records.  Raises :class:`TamperedJournal` at the first broken one.

    A last line without its newline is a torn write (crash mid-append): it is ignored
    when ``allow_torn_tail``; every other broken line is tampering.
    """
    p = str(path)
    prev, seq = GENESIS, 1
    with open(p, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                if allow_torn_tail:
                    return
                raise TamperedJournal(p, seq, lineno, "torn last line")
            rec = _parse_line(p, raw, lineno, prev, seq)
            yield rec
            prev, seq = rec.h, seq + 1


def verify(path: str | os.PathLike[str]) -> Verification:
    count, head = 0, GENESIS
    try:
        for rec in read_records(path, allow_torn_tail=False):
            count, head = rec.seq, rec.h
    except TamperedJournal as exc:
        return Verification(False, count, head, str(exc), exc.seq, exc.line)
    except OSError as exc:
        return Verification(False, count, head, f"{path}: {exc.strerror or exc}")
    return Verification(True, count, head, f"ok: {count} records, head {head}")


class Journal:
    """A journal open for appending.  Use :meth:`create` or :meth:`open`."""

    def __init__(self, path: Path, fd: int, seq: int, head: str, group_commit_s: float = 0.1) -> None:
        self.path = path
        self._fd = fd
        self._seq = seq
        self._head = head
        self._dirty = False
        self._last_sync = time.monotonic()
        self.group_commit_s = group_commit_s
        self.failed: JournalWriteError | None = None

    # -- opening --------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> "Journal":
        p = Path(path)
        p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        os.fsync(fd)
        dfd = os.open(p.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return cls(p, fd, 0, GENESIS)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "Journal":
        p = Path(path)
        seq, head, good_end = 0, GENESIS, 0
        for rec in read_records(p):
            seq, head = rec.seq, rec.h
        with open(p, "rb") as fh:
            data = fh.read()
        good_end = data.rfind(b"\n") + 1
        torn = len(data) - good_end
        fd = os.open(p, os.O_WRONLY | os.O_APPEND)
        j = cls(p, fd, seq, head)
        if torn:
            os.truncate(p, good_end)
            os.fsync(fd)
            from sessions.events import Recovered

            j.append(Recovered("torn last record truncated", bytes_dropped=torn))
        return j

    # -- appending ------------------------------------------------------------
    @property
    def head(self) -> str:
        return self._head

    @property
    def count(self) -> int:
        return self._seq

    def _write(self, event: Event) -> Record:
        if self.failed is not None:
            raise self.failed
        seq, prev = self._seq + 1, self._head
        ts = utc_now()
        ev = event.to_json()
        h = record_hash(seq, ts, prev, ev)
        line = canonical({"event": ev, "h": h, "prev": prev, "seq": seq, "ts": ts}) + b"\n"
        try:
            n = os.write(self._fd, line)
            if n != len(line):
                raise OSError(28, "short write")
        except OSError as exc:
            self._fail(exc, seq)
        self._seq, self._head = seq, h
        self._dirty = True
        return Record(seq, ts, prev, h, event, seq)

    def _fail(self, exc: OSError, seq: int) -> None:
        self.failed = JournalWriteError(
            f"{self.path}: cannot write journal record {seq}: {exc.strerror or exc}; "
            f"no further steps will start (journal valid up to record {self._seq})"
        )
        raise self.failed

    def append(self, event: Event) -> Record:
        """Append and fsync.  When this returns, the record is durable."""
        rec = self._write(event)
        self.sync()
        return rec

    def append_output(self, event: Event) -> Record:
        """Append without waiting for fsync (group commit every ``group_commit_s``)."""
        rec = self._write(event)
        if time.monotonic() - self._last_sync >= self.group_commit_s:
            self.sync()
        return rec

    def sync(self) -> None:
        if not self._dirty:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self._fail(exc, self._seq)
        self._dirty = False
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fd >= 0:
            try:
                if self.failed is None:
                    self.sync()
            finally:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
