"""The append-only, hash-chained session journal (JSON Lines).

One record per line, keys sorted, no spaces, UTF-8::

    {"event":{...,"type":"note"},"h":"<sha256 hex>","prev":"<h of record seq-1>","seq":1,"ts":"2026-11-27T04:32:16.123456Z"}

``seq`` counts from 1 and equals the line number; ``ts`` is UTC, RFC 3339 with
microseconds; the first record's ``prev`` is 64 zeros.  ``h`` is the SHA-256 of
the line without its trailing newline and without the ``,"h":"<hex>"`` member,
which is exactly the canonical JSON of the record without ``h``::

    h = sha256(canonical({"event": event, "prev": prev, "seq": seq, "ts": ts}))

(:func:`record_hash`).  Changing any byte, removing or reordering records breaks
the chain at that record; :func:`verify` names its seq and line.

Durability: :meth:`Journal.append` (operator decisions, step start and finish)
writes and fsyncs before returning, so nothing is shown as done that is not on
disk.  :meth:`Journal.append_output` (output chunks) is group-committed: written at
once, fsynced at most every ``group_commit_s`` (100 ms), by :meth:`Journal.sync`,
and by the next durable append (a step's end).  A write or fsync error rolls the
file back to its last complete (or durable) record and fails the journal: every
later append raises :class:`JournalWriteError`.

Opening for writing takes the session lock (:mod:`sessions.lock`), truncates a torn
last line (a record cut short by a crash) and journals a ``recovered`` event for it
and for a stale lock taken over.  Any other broken record means tampering: the
journal is not opened for writing.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from runbook.errors import UserError
from runbook.input_files import MAX_INPUT_ENV, max_input_bytes, open_regular
from sessions.event_codec import _decode_owned, canonical, decode_event, event_json  # noqa: F401 - re-exported
from sessions.events import Event, Recovered
from sessions.lock import SessionLock, lock_journal
from sessions.session_dir import check_journal_file, check_session_dir, open_nofollow, same_file

GENESIS = "0" * 64
_H_MEMBER = b',"h":"'
_H_SPAN = len(_H_MEMBER) + 64 + 1  # ,"h":"<64 hex>"
_RECORD_KEYS = frozenset(("event", "h", "prev", "seq", "ts"))

def record_hash(seq: int, ts: str, prev: str, event: dict[str, Any]) -> str:
    """The ``h`` of a record (see the module docstring)."""
    return hashlib.sha256(canonical({"event": event, "prev": prev, "seq": seq, "ts": ts})).hexdigest()


_last_second: list[Any] = [None, ""]  # (second, "YYYY-MM-DDTHH:MM:SS") cache


def utc_now() -> str:
    """Now as RFC 3339 UTC with microseconds: ``2026-11-27T04:32:16.123456Z``."""
    us = time.time_ns() // 1000
    sec, frac = divmod(us, 1_000_000)
    if sec != _last_second[0]:
        _last_second[0], _last_second[1] = sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{_last_second[1]}.{frac:06d}Z"


# --- records -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    ts: str
    prev: str
    h: str
    event: Event
    line: int = 0  # line number in the journal file (1-based; equals seq)

    def to_json(self) -> dict[str, Any]:
        return {"event": event_json(self.event), "h": self.h, "prev": self.prev, "seq": self.seq, "ts": self.ts}


class JournalError(UserError):
    """The journal cannot be used: corrupt, locked, or not writable."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message, exit_code)


class TamperedJournal(JournalError):
    """A record does not parse, does not chain, or its hash does not match."""

    def __init__(self, path: str, seq: int | None, line: int, reason: str, action: str = "") -> None:
        where = f"record seq {seq}" if seq is not None else "a record"
        super().__init__(f"{path}:{line}: journal broken at {where}: {reason}{action}")
        self.path = path
        self.seq = seq
        self.line = line
        self.reason = reason


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


_EVENT_START = b'{"event":'
_PREV_KEY, _SEQ_KEY, _TS_KEY, _END = b'","prev":"', b'","seq":', b',"ts":"', b'"}\n'
_TS = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_scan_json = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set by JSONDecoder.__init__, not in the stubs


def _parse_line(path: str, raw: bytes, lineno: int, prev: str, expected_seq: int) -> Record:
    """Check one complete line (with its newline) against the chain; return its record.

    The fast path reads the canonical layout the writer produces by position:
    ``{"event":<json>,"h":"<64>","prev":"<64>","seq":<n>,"ts":"<27>"}``; any other line
    goes through :func:`_diagnose`, which names what is wrong with it.
    """
    at = raw.rfind(_H_MEMBER)
    seq_raw = raw[at + 152:-37]
    if (at < 9 or not raw.startswith(_EVENT_START) or raw[at + 70:at + 80] != _PREV_KEY
            or raw[at + 144:at + 152] != _SEQ_KEY or raw[-37:-30] != _TS_KEY or raw[-3:] != _END
            or not seq_raw.isdigit() or seq_raw[:1] == b"0" or len(seq_raw) > 18
            or _TS.fullmatch(raw, len(raw) - 30, len(raw) - 3) is None):
        _diagnose(path, raw, lineno, prev, expected_seq)
    seq = int(seq_raw)
    if seq != expected_seq:
        raise TamperedJournal(path, expected_seq, lineno, f"sequence number is {seq}, expected {expected_seq} "
                              "(a record is missing, moved or altered)")
    if raw[at + 80:at + 144] != prev.encode("ascii"):
        raise TamperedJournal(path, seq, lineno, "does not chain to the previous record (prev hash differs)")
    body = memoryview(raw)
    hasher = hashlib.sha256(body[:at])
    hasher.update(body[at + _H_SPAN:-1])
    h = hasher.hexdigest()
    if raw[at + 6:at + 70] != h.encode("ascii"):
        raise TamperedJournal(path, seq, lineno, "hash mismatch (record altered)")
    try:
        text = raw[9:at].decode("utf-8")
        data, end = _scan_json(text, 0)
    except (ValueError, StopIteration):
        raise TamperedJournal(path, seq, lineno, "not valid JSON") from None
    if end != len(text) or type(data) is not dict:
        raise TamperedJournal(path, seq, lineno, "not valid JSON")
    try:
        event = _decode_owned(data)
    except (ValueError, TypeError) as exc:
        raise TamperedJournal(path, seq, lineno, f"bad event: {exc}") from None
    return Record(seq, raw[-30:-3].decode("ascii"), prev, h, event, lineno)


def _diagnose(path: str, raw: bytes, lineno: int, prev: str, expected_seq: int) -> None:
    """Raise :class:`TamperedJournal` saying what is wrong with a non-canonical line."""
    try:
        obj = json.loads(raw)
    except ValueError:  # includes invalid UTF-8
        raise TamperedJournal(path, expected_seq, lineno, "not valid JSON") from None
    if type(obj) is not dict or obj.keys() != _RECORD_KEYS or type(obj["event"]) is not dict:
        raise TamperedJournal(path, expected_seq, lineno, "not a journal record (wrong fields)")
    seq = obj["seq"]
    if type(seq) is not int or seq != expected_seq:
        raise TamperedJournal(path, expected_seq, lineno, f"sequence number is {seq!r}, expected {expected_seq} "
                              "(a record is missing, moved or altered)")
    if obj["prev"] != prev:
        raise TamperedJournal(path, seq, lineno, "does not chain to the previous record (prev hash differs)")
    h = obj["h"]
    if type(h) is not str or type(obj["ts"]) is not str or h.encode("ascii", "replace") not in raw:
        raise TamperedJournal(path, seq, lineno, "malformed record (hash field)")
    if obj["h"] != record_hash(seq, obj["ts"], prev, obj["event"]):
        raise TamperedJournal(path, seq, lineno, "hash mismatch (record altered)")
    raise TamperedJournal(path, seq, lineno, "record not in canonical form (altered)")


class JournalReader:
    """Iterate over the valid records of a journal file, checking the chain.

    Raises :class:`TamperedJournal` at the first broken record.  A last line without
    a newline (a torn tail) ends the iteration; afterwards :attr:`torn` holds its
    length (0 when none) and :attr:`end` the byte offset after the last good record.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.count = 0
        self.head = GENESIS
        self.end = 0
        self.torn = 0
        self.torn_line = 0

    def __iter__(self) -> Iterator[Record]:
        name = str(self.path)
        parse = _parse_line
        limit = max_input_bytes()
        with os.fdopen(open_regular(self.path, "journal"), "rb") as fh:
            # a journal is read as a stream: the input limit bounds each record, not the file
            lines: Iterable[bytes] = fh if os.fstat(fh.fileno()).st_size <= limit else _bounded_lines(fh, limit, name)
            for lineno, raw in enumerate(lines, start=1):
                if raw[-1:] != b"\n":
                    self.torn, self.torn_line = len(raw), lineno
                    return
                rec = parse(name, raw, lineno, self.head, self.count + 1)
                self.count, self.head = rec.seq, rec.h
                self.end += len(raw)
                yield rec


def _bounded_lines(fh: BinaryIO, limit: int, name: str) -> Iterator[bytes]:
    """The lines of a file larger than the input limit, none longer than the limit."""
    lineno = 0
    while True:
        raw = fh.readline(limit + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) > limit and raw[-1:] != b"\n":
            raise JournalError(f"{name}:{lineno}: a record over the {limit // (1024 * 1024)} MB input limit "
                               f"(${MAX_INPUT_ENV} raises it)", 2)
        yield raw


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
    return Verification(True, reader.count, reader.head, f"ok: {reader.count} records, head {reader.head}")


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
        body = canonical(event_json(event))
        tail = b'"prev":"%s","seq":%d,"ts":"%s"}' % (prev.encode(), seq, ts.encode())
        if len(body) < 8192:  # one hash call over a small copy is faster than three
            h = hashlib.sha256(b'{"event":%s,%s' % (body, tail)).hexdigest()
        else:  # large output chunks: no extra copy
            hasher = hashlib.sha256(_EVENT_START)
            hasher.update(body)
            hasher.update(b"," + tail)
            h = hasher.hexdigest()
        line = b'{"event":%s,"h":"%s",%s\n' % (body, h.encode(), tail)
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
