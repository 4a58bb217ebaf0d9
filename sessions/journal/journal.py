"""The append-only, hash-chained session journal: reading it, and writing it.

The record format, the hash chain, event decoding, the format version and the policy
for unknown event types are defined once, in :mod:`sessions.journal.format`; this
module reads journals with it (:func:`read_records`, :func:`verify`) and appends to
them (:class:`Journal`).

Durability: :meth:`Journal.append` (operator decisions, step start and finish)
writes and fsyncs before returning, so nothing is shown as done that is not on
disk.  :meth:`Journal.append_output` (output chunks) is group-committed: written at
once, fsynced at most every ``group_commit_s`` (100 ms), by :meth:`Journal.sync`,
and by the next durable append (a step's end).  A write or fsync error rolls the
file back to its last complete (or durable) record and fails the journal: every
later append raises :class:`JournalWriteError`.

Opening for writing takes the session lock (:mod:`sessions.journal.lock`), truncates a torn
last line (a record cut short by a crash) and journals a ``recovered`` event for it
and for a stale lock taken over.  Any other broken record means tampering, and a
journal of a newer format was written by a newer runbook: neither is opened for
writing.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sessions.journal.events import Event, Recovered
from sessions.journal.format import (
    FORMAT_VERSION,
    GENESIS,
    Chain,
    JournalError,
    JournalReader,
    NewerJournal,
    Record,
    TamperedJournal,
    canonical,
    encode_record,
    newer_note,
    record_hash,
)
from sessions.journal.lock import SessionLock, lock_journal
from sessions.journal.session_dir import check_journal_file, check_session_dir, open_nofollow, same_file

#: the journal's API: what readers and tests import from here (the format's names come from
#: :mod:`sessions.journal.format`, which defines them)
__all__ = [
    "FORMAT_VERSION", "GENESIS", "Journal", "JournalError", "JournalReader", "JournalTail", "JournalWriteError", "NewerJournal",
    "Record", "TamperedJournal", "Verification", "canonical", "fsync_dir", "make_private_dir", "read_records",
    "record_hash", "utc_now", "verify",
]


_last_second: list[Any] = [None, ""]  # (second, "YYYY-MM-DDTHH:MM:SS") cache


def utc_now() -> str:
    """Now as RFC 3339 UTC with microseconds: ``2026-11-27T04:32:16.123456Z``."""
    us = time.time_ns() // 1000
    sec, frac = divmod(us, 1_000_000)
    if sec != _last_second[0]:
        _last_second[0], _last_second[1] = sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{_last_second[1]}.{frac:06d}Z"


class JournalWriteError(JournalError):
    """A write or fsync failed.  The journal is valid up to the last durable record."""


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    count: int  # valid records
    head: str  # h of the last valid record
    message: str = ""
    seq: int | None = None  # first bad record
    line: int | None = None
    version: int = 1  # the journal's format
    foreign: tuple[str, ...] = ()  # a newer format's event types, chained but not interpreted
    note: str = ""  # what a reader says about a journal of a newer format


def read_records(path: str | os.PathLike[str], *, allow_torn_tail: bool = True) -> Iterator[Record]:
    """Yield the records of a journal, checking the chain (:class:`TamperedJournal` if broken).

    A torn last line is skipped when ``allow_torn_tail`` (what a writer would drop on
    open), else it raises :class:`TamperedJournal`.
    """
    reader = JournalReader(path)
    yield from reader
    if reader.torn and not allow_torn_tail:
        raise _torn_error(reader)


def _torn_error(reader: JournalReader) -> TamperedJournal:
    return TamperedJournal(
        str(reader.path), reader.count + 1, reader.torn_line,
        f"torn last line ({reader.torn} bytes without a newline: the writer stopped mid-record, "
        "or the file was altered; opening the session for writing drops it)",
    )


def verify(path: str | os.PathLike[str]) -> Verification:
    """Check the whole chain, read-only.  A torn last line counts as broken."""
    reader = JournalReader(path)
    try:
        for _ in reader:
            pass
        if reader.torn:
            raise _torn_error(reader)
    except TamperedJournal as exc:
        return Verification(False, reader.count, reader.head, str(exc), exc.seq, exc.line)
    except OSError as exc:
        return Verification(False, reader.count, reader.head, f"{path}: {exc.strerror or exc}")
    message = f"ok: {reader.count} records, head {reader.head}"
    note = newer_note(reader.version, reader.foreign) if reader.version > FORMAT_VERSION else ""
    return Verification(True, reader.count, reader.head, message + (f"; {note}" if note else ""),
                        version=reader.version, foreign=tuple(sorted(reader.foreign)), note=note)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a directory entry (a new file or sub-directory) durable."""
    dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) with mode 0700; fsync the parent of each new one."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)  # whatever the umask
        fsync_dir(d.parent)


# --- writing -----------------------------------------------------------------------

RecordCallback = Callable[[Record], None]


class Journal:
    """A journal open for appending.  Use :meth:`create` or :meth:`open`."""

    def __init__(self, path: Path, fd: int, seq: int, head: str, size: int,
                 lock: SessionLock | None = None, group_commit_s: float = 0.1) -> None:
        self.path = path
        self.lock = lock
        self.group_commit_s = group_commit_s
        self.failed: JournalWriteError | None = None
        #: what :meth:`open` repaired (torn tail, stale lock), also journaled
        self.recovered: list[Record] = []
        self._fd = fd
        self._seq = seq
        self._head = head
        self._size = size  # bytes of complete records written
        self._durable_seq = seq
        self._durable_size = size
        self._last_sync = time.monotonic()

    # -- opening --------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str], *, lock: bool = True, operator: str = "",
               group_commit_s: float = 0.1) -> Journal:
        """Create a new, empty journal (mode 0600 in a 0700 directory) and lock it."""
        p = Path(path)
        try:
            make_private_dir(p.parent)
        except OSError as exc:
            raise JournalWriteError(f"{p.parent}: cannot create the session directory: {exc.strerror or exc}") from None
        if lock:
            check_session_dir(p.parent)
        lk = None
        fd = -1
        try:
            fd = open_nofollow(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600, "journal")
            if lock:
                lock_journal(fd, p, p.parent / "lock")
                lk = SessionLock.acquire(p.parent / "lock", operator=operator)
            os.fsync(fd)
            fsync_dir(p.parent)
        except FileExistsError:
            _cleanup(fd, lk)
            raise JournalError(f"{p}: a journal exists already") from None
        except OSError as exc:
            _cleanup(fd, lk)
            raise JournalWriteError(f"{p}: cannot create the journal: {exc.strerror or exc}") from None
        except BaseException:
            _cleanup(fd, lk)
            raise
        return cls(p, fd, 0, GENESIS, 0, lk, group_commit_s)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, lock: bool = True, operator: str = "",
             each: RecordCallback | None = None, group_commit_s: float = 0.1) -> Journal:
        """Open an existing journal for appending.

        Takes the session lock, checks the whole chain (``each`` is called with every
        record, so a caller can replay while the journal is read once), truncates a
        torn last line and journals what was recovered (also passed to ``each``).
        Raises :class:`TamperedJournal` when a record is broken.
        """
        p = Path(path)
        if not p.is_file():
            raise JournalError(f"{p}: no such journal")
        if lock:
            check_session_dir(p.parent)
        lk = None
        fd = -1
        try:
            try:
                fd = open_nofollow(p, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK, 0, "journal")
                os.set_blocking(fd, True)
            except OSError as exc:
                raise JournalWriteError(f"{p}: cannot open the journal for writing: {exc.strerror or exc}") from None
            if lock:
                check_journal_file(p, fd)
                lock_journal(fd, p, p.parent / "lock")  # the lock nobody can unlink
                lk = SessionLock.acquire(p.parent / "lock", operator=operator)
            reader = JournalReader(p)
            try:
                for rec in reader:
                    if each is not None:
                        each(rec)
            except TamperedJournal as exc:
                raise TamperedJournal(str(p), exc.seq, exc.line, exc.reason,
                                      "; refusing to write to it (see `runbook journal verify`)") from None
            if not same_file(p, fd):
                raise JournalError(f"{p}: the journal was replaced while it was read; refusing to write to it")
            if reader.version > FORMAT_VERSION:
                raise NewerJournal(str(p), reader.version)
            if reader.count == 0:
                what = f"only a torn first line ({reader.torn} bytes)" if reader.torn else "no records (empty file)"
                raise JournalError(
                    f"{p}: the journal has {what}: no valid first record, so the session's history cannot be "
                    "known; refusing to write to it (a new chain would silently replace the history). "
                    "Start a new session; keep this file for investigation")
            j = cls(p, fd, reader.count, reader.head, reader.end, lk, group_commit_s)
            if reader.torn:
                try:
                    os.ftruncate(fd, reader.end)
                    os.fsync(fd)
                except OSError as exc:
                    raise JournalWriteError(f"{p}: cannot truncate the torn last line: {exc.strerror or exc}") from None
                j._recover(Recovered("torn tail", bytes_dropped=reader.torn,
                                     detail=f"line {reader.torn_line} had no newline; truncated after record "
                                            f"{reader.count}"), each)
            if lk is not None and lk.stale is not None:
                j._recover(Recovered("stale lock", detail=lk.stale_detail), each)
        except BaseException:
            _cleanup(fd, lk)
            raise
        return j

    def _recover(self, event: Recovered, each: RecordCallback | None) -> None:
        rec = self.append(event)
        self.recovered.append(rec)
        if each is not None:
            each(rec)

    # -- state ----------------------------------------------------------------
    @property
    def head(self) -> str:
        return self._head

    @property
    def count(self) -> int:
        return self._seq

    @property
    def size(self) -> int:
        """Bytes of the complete records this process knows the file holds."""
        return self._size

    @property
    def durable_count(self) -> int:
        """Records known to be on disk (fsynced)."""
        return self._durable_seq

    @property
    def dirty(self) -> bool:
        """Records written but not yet fsynced."""
        return self._durable_seq != self._seq

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def sync_due_in(self) -> float:
        """Seconds until group commit is due for the pending output (0: due now)."""
        return max(0.0, self.group_commit_s - (time.monotonic() - self._last_sync))

    # -- appending ------------------------------------------------------------
    def _write(self, event: Event) -> Record:
        if self.failed is not None:
            raise self.failed
        if self._fd < 0:
            raise JournalError(f"{self.path}: the journal is closed")
        seq, prev = self._seq + 1, self._head
        ts = utc_now()
        line, h = encode_record(seq, ts, prev, event)
        if os.fstat(self._fd).st_size != self._size:
            self._changed_under_us(f"its size is {os.fstat(self._fd).st_size} bytes, not the {self._size} this "
                                   "process wrote (another writer appended, or it was truncated or edited)")
        try:
            done = os.write(self._fd, line)
            while done < len(line):  # short write (a file size limit, a full disk): finish or fail
                done += os.write(self._fd, line[done:])
        except OSError as exc:
            self._fail(exc, "write", f"record {seq}")
        self._seq, self._head = seq, h
        self._size += len(line)
        return Record(seq, ts, prev, h, event, seq)

    def _changed_under_us(self, why: str) -> None:
        """The file is no longer what this process wrote: fail the journal, touch nothing."""
        self.failed = JournalWriteError(
            f"{self.path}: the journal changed under this process: {why}; refusing to write to it, no new steps "
            f"can start. This process's records end at seq {self._seq} (head {self._head[:16]}); "
            "see `runbook journal verify`.")
        raise self.failed

    def check_unchanged(self) -> None:
        """Raise :class:`JournalWriteError` when the path no longer names this journal (removed,
        renamed or replaced) or the file is not the size this process left it at."""
        if self.failed is not None:
            raise self.failed
        if self._fd < 0:
            return
        if not same_file(self.path, self._fd):
            self._changed_under_us(f"{self.path.name} was removed, renamed or replaced")
        size = os.fstat(self._fd).st_size
        if size != self._size:
            self._changed_under_us(f"its size is {size} bytes, not the {self._size} this process wrote "
                                   "(another writer appended, or it was truncated or edited)")

    def _fail(self, exc: OSError, what: str, which: str) -> None:
        """Roll the file back to its last good state, fail the journal, raise."""
        keep = self._size if what == "write" else self._durable_size
        try:
            os.ftruncate(self._fd, keep)
            os.fsync(self._fd)
            if what == "write":
                self._durable_seq, self._durable_size = self._seq, self._size
        except OSError:
            pass  # opening it again truncates a torn tail
        reason = exc.strerror or str(exc)
        if exc.errno is not None:
            reason += f" ({errno.errorcode.get(exc.errno, exc.errno)})"
        self.failed = JournalWriteError(
            f"{self.path}: cannot {what} journal {which}: {reason}; no new steps can start. "
            f"The journal is valid up to record {self._durable_seq}."
        )
        raise self.failed

    def append(self, event: Event) -> Record:
        """Append and fsync.  When this returns, the record (and all before it) is durable.

        Before writing, checks that the path still names this journal and nobody else wrote
        to it (:meth:`check_unchanged`); output chunks check the size only."""
        self.check_unchanged()
        rec = self._write(event)
        self.sync()
        return rec

    def append_output(self, event: Event) -> Record:
        """Append without waiting for fsync (group commit: at most every ``group_commit_s``)."""
        rec = self._write(event)
        if time.monotonic() - self._last_sync >= self.group_commit_s:
            self.sync()
        return rec

    def sync(self) -> None:
        """Fsync what was written (no-op when nothing is pending)."""
        if self._seq == self._durable_seq or self._fd < 0:
            return
        if self.failed is not None:
            raise self.failed
        try:
            os.fsync(self._fd)
        except OSError as exc:
            first = self._durable_seq + 1
            self._fail(exc, "fsync", f"record {first}" if first == self._seq else f"records {first}-{self._seq}")
        self._durable_seq, self._durable_size = self._seq, self._size
        self._last_sync = time.monotonic()

    def close(self) -> None:
        """Fsync, close and release the lock (idempotent)."""
        if self._fd < 0:
            return
        try:
            if self.failed is None:
                self.sync()
        finally:
            os.close(self._fd)
            self._fd = -1
            if self.lock is not None:
                self.lock.release()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cleanup(fd: int, lk: SessionLock | None) -> None:
    if fd >= 0:
        os.close(fd)
    if lk is not None:
        lk.release()


class JournalTail:
    """Reads a journal incrementally and read-only, checking the chain.

    :meth:`read_new` returns the records completed since the previous call (a record
    still being written, without its newline, waits for the next call).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.chain = Chain(str(path))
        self._pending = b""
        self._broken: TamperedJournal | None = None

    @property
    def seq(self) -> int:
        """The last record read."""
        return self.chain.count

    @classmethod
    def after(cls, reader: JournalReader) -> JournalTail:
        """Following on from a reader that has read the journal to its end."""
        tail = cls(reader.path)
        tail.offset, tail.chain = reader.end, reader.chain
        return tail

    def read_all(self) -> list[Record]:
        """The records there now (the chain checked; a torn tail is left for later)."""
        reader = JournalReader(self.path)
        records = list(reader)
        self.offset, self.chain = reader.end, reader.chain
        return records

    def read_new(self) -> list[Record]:
        """Records appended since the last read.  :class:`TamperedJournal` when the file
        shrank below what was read or a new record does not chain."""
        if self._broken is not None:
            raise self._broken
        name = str(self.path)
        with open(self.path, "rb") as fh:  # read-only; the writer's lock is never looked at
            size = os.fstat(fh.fileno()).st_size
            if size < self.offset:
                raise TamperedJournal(name, self.seq, self.seq, "the journal shrank below records already read")
            if size < self.offset + len(self._pending):  # a torn tail was truncated by a resume
                self._pending = b""
            fh.seek(self.offset + len(self._pending))
            data = fh.read()
        if not data:
            return []
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        out: list[Record] = []
        for raw in lines:
            try:
                out.append(self.chain.record(raw, self.chain.count + 1))
            except TamperedJournal as exc:  # the good records before it are still returned
                self._broken = exc
                break
            self.offset += len(raw) + 1
        if self._broken is not None and not out:
            raise self._broken
        return out
