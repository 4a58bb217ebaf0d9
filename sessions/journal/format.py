"""The session journal's format, defined once: every reader and the writer use this module.

One record per line (JSON Lines), keys sorted, no spaces, UTF-8::

    {"event":{...,"type":"note"},"h":"<sha256 hex>","prev":"<h of record seq-1>","seq":1,"ts":"2026-11-27T04:32:16.123456Z"}

``seq`` counts from 1 and equals the line number; ``ts`` is UTC, RFC 3339 with
microseconds; the first record's ``prev`` is :data:`GENESIS` (64 zeros).  ``h`` is the
SHA-256 of the line without its trailing newline and without the ``,"h":"<hex>"``
member, which is exactly the canonical JSON of the record without ``h``
(:func:`record_hash`).  Changing any byte, removing or reordering records breaks the
chain at that record.

Events are ``{"type": <TYPE>, fields...}`` (:mod:`sessions.journal.events`), decoded by
:func:`decode_event`, the one decoder: every field is checked against the type its
dataclass declares and a JSON list (at any depth) becomes a tuple.

**Format version.** Each ``session_opened`` record names the format its writer wrote
(``format_version``; absent means 1, the format of every journal written before the
field existed).  The version in force from a record on is the highest named by a
``session_opened`` before it.  This build reads and writes :data:`FORMAT_VERSION`.

**Unknown event types** (the one policy, :meth:`Chain.event`):

* in a journal of a *newer* format (a ``session_opened`` named a version above
  :data:`FORMAT_VERSION` before the record): the record was written by a newer runbook,
  which may add event types.  It is not tampering: its chain is checked like any other,
  and it is kept as a :class:`ForeignEvent` (the state fold ignores it; ``journal show``
  and ``journal verify`` say "written by a newer runbook (format N)").  Such a journal is
  never opened for writing (:class:`NewerJournal`): this build cannot know what the
  records it does not understand mean for the state;
* at a version this build knows: the record is wrong (no runbook of that format wrote
  it): :class:`TamperedJournal` at its seq, like any record that chains but does not
  decode, for every reader except an export (``keep_unknown``), which hands over every
  record the chain holds, verbatim, and names the unknown types as a deviation.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import operator
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, NoReturn

from runbook.errors import UserError
from runbook.reading.files import MAX_INPUT_ENV, max_input_bytes, open_regular
from sessions.journal import events as _events
from sessions.journal.events import Event, SessionOpened

#: the format this build writes, and the newest it reads
FORMAT_VERSION = 2
#: the event types each format added.  A new event type is a new format: add it here under
#: FORMAT_VERSION + 1 and raise FORMAT_VERSION (a test checks that every registered type is
#: listed), so that an older runbook reads it as "written by a newer runbook", not as tampering.
#: New *fields* (with defaults) need no new format: every reader ignores fields it does not know.
FORMAT_TYPES: dict[int, frozenset[str]] = {
    1: frozenset((
        "checkbox_cleared", "checkbox_set", "checkpoint", "detached_started", "expectation_checked",
        "file_uploaded", "guard_overridden", "guard_passed", "host_finished", "host_key_accepted", "host_started",
        "note", "notification_failed", "notification_sent", "outcome_decided", "output", "placeholder_supplied",
        "probe_result", "recovered", "rollback_started", "runbook_changed", "session_closed", "session_opened",
        "signal_received", "step_finished", "step_outcome_unknown", "step_skipped", "step_started",
        "target_chosen", "task_completed", "task_skipped", "task_started", "window_alert",
    )),
    # four-eyes approval (sessions.team.approval)
    2: frozenset(("approval_granted", "approval_refused", "approval_requested", "approvers_set",
                  # the journal mirror (sessions.team.mirror)
                  "mirror_changed", "mirror_handover")),
}
GENESIS = "0" * 64
RECORD_KEYS = frozenset(("event", "h", "prev", "seq", "ts"))

_H_MEMBER = b',"h":"'
_H_SPAN = len(_H_MEMBER) + 64 + 1  # ,"h":"<64 hex>"
_EVENT_START = b'{"event":'
_PREV_KEY, _SEQ_KEY, _TS_KEY, _END = b'","prev":"', b'","seq":', b',"ts":"', b'"}'
_TS = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_scan_json = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # the C scanner, not in the stubs


# --- canonical JSON ----------------------------------------------------------------------

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False)
_ASCII_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, check_circular=False)


def _not_json(o: object) -> Any:
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


# The C encoder behind _ENCODER.encode(), made once instead of on every call.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_c_encode_basestring = getattr(json.encoder, "c_encode_basestring", None)
_C_ENCODE = (_c_make_encoder(None, _not_json, _c_encode_basestring, None, ":", ",", True, False, True)
             if _c_make_encoder is not None and _c_encode_basestring is not None else None)


def canonical(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8.

    A string holding an unpaired surrogate is not Unicode and cannot be UTF-8: such a
    value is written with ASCII ``\\u`` escapes instead (still valid JSON).
    """
    try:
        if _C_ENCODE is not None and type(obj) is dict:
            return "".join(_C_ENCODE(obj, 0)).encode("utf-8")
        return _ENCODER.encode(obj).encode("utf-8")
    except UnicodeEncodeError:
        return _ASCII_ENCODER.encode(obj).encode("ascii")


def record_hash(seq: int, ts: str, prev: str, event: dict[str, Any]) -> str:
    """The ``h`` of a record (see the module docstring)."""
    return hashlib.sha256(canonical({"event": event, "prev": prev, "seq": seq, "ts": ts})).hexdigest()


def encode_record(seq: int, ts: str, prev: str, event: Event) -> tuple[bytes, str]:
    """The journal line of a record (with its newline) and its ``h``."""
    body = canonical(event_json(event))
    tail = b'"prev":"%s","seq":%d,"ts":"%s"}' % (prev.encode(), seq, ts.encode())
    if len(body) < 8192:  # one hash call over a small copy is faster than three
        h = hashlib.sha256(b'{"event":%s,%s' % (body, tail)).hexdigest()
    else:  # large output chunks: no extra copy
        hasher = hashlib.sha256(_EVENT_START)
        hasher.update(body)
        hasher.update(b"," + tail)
        h = hasher.hexdigest()
    return b'{"event":%s,"h":"%s",%s\n' % (body, h.encode(), tail), h


def line_hash_ok(line: bytes, h: object) -> bool:
    """Whether a journal line (without its newline) carries ``h`` in its ``,"h":"<hex>"``
    member and ``h`` is the SHA-256 of the line without that member."""
    at = line.rfind(_H_MEMBER)
    if type(h) is not str or at < 0 or line[at + 6:at + 70] != h.encode("ascii", "replace") \
            or line[at + 70:at + 71] != b'"':
        return False
    body = memoryview(line)
    hasher = hashlib.sha256(body[:at])
    hasher.update(body[at + _H_SPAN:])
    return hasher.hexdigest() == h


# --- events <-> JSON ---------------------------------------------------------------------

_ENCODERS: dict[type, Callable[[Event], dict[str, Any]]] = {}


def _make_event_encoder(cls: type[Event]) -> Callable[[Event], dict[str, Any]]:
    names = tuple(f.name for f in dataclasses.fields(cls))
    type_name = cls.TYPE
    if len(names) == 1:
        name = names[0]
        return lambda e: {"type": type_name, name: getattr(e, name)}
    get = operator.attrgetter(*names)

    def encode(e: Event) -> dict[str, Any]:
        data = dict(zip(names, get(e), strict=True))
        data["type"] = type_name
        return data

    return encode


def event_json(event: Event) -> dict[str, Any]:
    """``event.to_json()``, without looking up the dataclass fields every time."""
    cls = type(event)
    encode = _ENCODERS.get(cls)
    if encode is None:
        if cls.to_json is not Event.to_json:
            return event.to_json()
        encode = _ENCODERS[cls] = _make_event_encoder(cls)
    return encode(event)


# field type (as declared, a string under ``from __future__ import annotations``) ->
# (expression that is true when ``v`` has a wrong type, what the type is called)
_CHECKS: dict[str, tuple[str, str]] = {
    "str": ("type(v) is not str", "a string"),
    "Outcome": ("type(v) is not str", "a string"),
    "int": ("type(v) is not int", "an integer"),
    "bool": ("type(v) is not bool", "true or false"),
    "float": ("type(v) is not float and type(v) is not int", "a number"),
    "str | None": ("v is not None and type(v) is not str", "a string or null"),
    "int | None": ("v is not None and type(v) is not int", "an integer or null"),
    "tuple[str, ...]": ("(type(v) is not tuple and type(v) is not list) or any(type(x) is not str for x in v)",
                        "a list of strings"),
}
_COMPILED: dict[str, Any] = {}


def _type_name(v: object) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list",
            dict: "an object", type(None): "null"}.get(type(v), type(v).__name__)


def _wrong_type(cls: type[Event], name: str, expected: str, v: object) -> TypeError:
    got = _type_name(v)
    if isinstance(v, list | tuple):
        bad = next((x for x in v if type(x) is not str), None)
        got = f"a list holding {_type_name(bad)}"
    return TypeError(f"{cls.TYPE}: field {name!r} must be {expected}, not {got}")


def _check_b64(event: Event) -> None:
    b64 = getattr(event, "b64", None)
    if b64 is not None:
        try:
            base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise TypeError(f"{event.TYPE}: field 'b64' is not base64") from None


def _check_fields(event: Event) -> Event:
    """Check a built event's fields against their declared types (:class:`TypeError` naming
    the field); return the event."""
    cls = type(event)
    for f in dataclasses.fields(cls):
        check = _CHECKS.get(f.type) if isinstance(f.type, str) else None
        if check is None:
            continue
        code = _COMPILED.get(check[0])
        if code is None:
            code = _COMPILED[check[0]] = compile(check[0], "<field check>", "eval")
        v = getattr(event, f.name)
        if eval(code, {}, {"v": v}):  # our own fixed expressions (_CHECKS)
            raise _wrong_type(cls, f.name, check[1], v)
    if cls is _events.OutputChunk:
        _check_b64(event)
    return event


def _tuples(v: list[Any]) -> tuple[Any, ...]:
    """A JSON list as the event holds it: a tuple, lists inside it too."""
    return tuple(_tuples(x) if type(x) is list else x for x in v)


_BUILDERS: dict[Any, Callable[[dict[str, Any]], Event]] = {}
_MISSING = object()


def _make_builder(cls: type[Event]) -> Callable[[dict[str, Any]], Event]:
    """A constructor from a JSON dict: required fields must be present, unknown keys are
    ignored (a newer writer may add fields), lists become tuples, each field is checked
    against its declared type.  Slotted classes without ``__post_init__`` or default
    factories are built without ``__init__`` (generated once per class: the journal reads
    hundreds of thousands of events); the others through it."""
    fields = dataclasses.fields(cls)
    if "__post_init__" in cls.__dict__ or "__slots__" not in cls.__dict__ or any(
            f.default_factory is not dataclasses.MISSING for f in fields):
        names = frozenset(f.name for f in fields)
        return lambda d: _check_fields(cls(**{k: (_tuples(v) if type(v) is list else v)
                                             for k, v in d.items() if k in names}))
    lines = ["def build(d):", "    new = _new(cls)"]
    defaults: dict[str, Any] = {"_new": object.__new__, "_set": object.__setattr__, "cls": cls,
                                "_MISSING": _MISSING, "_fix": _tuples, "_wrong": _wrong_type,
                                "_check_b64": _check_b64}
    for f in fields:
        if f.default is dataclasses.MISSING:
            lines.append(f"    v = d.get({f.name!r}, _MISSING)")
            lines.append(f"    if v is _MISSING: raise TypeError('{cls.TYPE}: missing field {f.name}')")
        else:
            defaults[f"_d_{f.name}"] = f.default
            lines.append(f"    v = d.get({f.name!r}, _d_{f.name})")
        check = _CHECKS.get(f.type) if isinstance(f.type, str) else None
        if check is not None:
            lines.append(f"    if {check[0]}: raise _wrong(cls, {f.name!r}, {check[1]!r}, v)")
        lines.append(f"    _set(new, {f.name!r}, _fix(v) if type(v) is list else v)")
    if cls is _events.OutputChunk:
        lines.append("    if new.b64 is not None: _check_b64(new)")
    lines.append("    return new")
    exec("\n".join(lines), defaults)  # generated from the dataclass's own fields
    build: Callable[[dict[str, Any]], Event] = defaults["build"]
    return build


def _build(data: dict[str, Any]) -> Event:
    kind = data.get("type")
    build = _BUILDERS.get(kind)
    if build is None:
        cls = _events.event_types().get(kind) if type(kind) is str else None
        if cls is None:
            raise _events.UnknownEvent(f"unknown event type {kind!r}")
        build = _BUILDERS[kind] = _make_builder(cls)
    return build(data)


def decode_event(data: object) -> Event:
    """The event of a record's ``event`` object.  Raises :class:`~sessions.journal.events.UnknownEvent`
    for a type this build does not know, ``TypeError``/``ValueError`` naming a bad field.
    ``data`` is only read."""
    if type(data) is not dict:
        raise ValueError("event is not an object")
    return _build(data)


@dataclass(frozen=True, slots=True)
class ForeignEvent(Event):
    """A record of a type this build does not know, from a journal of a newer format
    (see the module docstring): kept as read; the state fold ignores it."""

    TYPE: ClassVar[str] = ""
    type_name: str
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return dict(self.data)  # a copy: callers may change it


# --- records -----------------------------------------------------------------------------


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
    """The journal cannot be used: corrupt, locked, of a newer format, or not writable."""

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


class NewerJournal(JournalError):
    """The journal was written by a newer runbook (a newer format): it is never written to."""

    def __init__(self, path: str, version: int) -> None:
        super().__init__(
            f"{path}: written by a newer runbook (journal format {version}; this runbook reads and writes format "
            f"{FORMAT_VERSION}): refusing to write to it. Resume it with a runbook as new as the one that wrote it; "
            "`runbook journal verify` and `journal show` still read it", 2)
        self.version = version


def newer_note(version: int, foreign: dict[str, int]) -> str:
    """What a reader says about a journal of a newer format."""
    kinds = ", ".join(f"{k} ({n})" for k, n in sorted(foreign.items()))
    what = f"; records of types this runbook does not know, chained but not interpreted: {kinds}" if kinds else ""
    return f"written by a newer runbook (format {version}){what}"


def _json_object(raw: bytes) -> dict[str, Any] | None:
    """The JSON object that ``raw`` is, exactly (nothing before or after it); None when it is
    not one."""
    try:
        text = raw.decode("utf-8")
        data, end = _scan_json(text, 0)
    except (ValueError, StopIteration):
        return None
    return data if end == len(text) and type(data) is dict else None


def _layout(line: bytes) -> tuple[int, int] | None:
    """``(offset of the h member, seq)`` of a line (without its newline) in the canonical
    layout the writer produces, read by position:
    ``{"event":<json>,"h":"<64>","prev":"<64>","seq":<n>,"ts":"<27>"}``; None otherwise."""
    at = line.rfind(_H_MEMBER)
    seq_raw = line[at + 152:-36]
    if (at < 9 or not line.startswith(_EVENT_START) or line[at + 70:at + 80] != _PREV_KEY
            or line[at + 144:at + 152] != _SEQ_KEY or line[-36:-29] != _TS_KEY or line[-2:] != _END
            or not seq_raw.isdigit() or seq_raw[:1] == b"0" or len(seq_raw) > 18
            or _TS.fullmatch(line, len(line) - 29, len(line) - 2) is None):
        return None
    return at, int(seq_raw)


def last_record(fd: int, size: int) -> tuple[int, str] | None:
    """``(seq, h)`` of the last record of an open journal file of ``size`` bytes, read from
    its end and checked against its own hash only (not the chain, which only a full read
    checks); None when the file does not end in a complete record of the canonical layout."""
    window, limit = 1 << 16, max_input_bytes()
    while True:
        start = max(0, size - window)
        data = os.pread(fd, size - start, start)
        if len(data) != size - start or data[-1:] != b"\n":
            return None
        nl = data.rfind(b"\n", 0, len(data) - 1)
        if nl >= 0 or start == 0:
            break
        if window > limit:
            return None
        window *= 4
    line = data[nl + 1:-1]
    layout = _layout(line)
    if layout is None:
        return None
    at, seq = layout
    h = line[at + 6:at + 70].decode("ascii", "replace")
    return (seq, h) if line_hash_ok(line, h) else None


class Chain:
    """A reader's place in a journal's chain: checks each next line and decodes its event.

    :meth:`parse` verifies a line (layout, seq, link, hash, JSON) and decodes its event
    under the unknown-type policy (:meth:`event`, module docstring), in one pass, and moves
    the chain on; :meth:`record` returns the same as a :class:`Record`.  ``count``/``head`` are those of the last good record,
    ``version`` the format in force, ``foreign`` counts the records kept as
    :class:`ForeignEvent` by type.
    """

    def __init__(self, path: str, *, keep_unknown: bool = False) -> None:
        self.path = path
        self.keep_unknown = keep_unknown
        self.count = 0
        self.head = GENESIS
        self._head_ascii = GENESIS.encode("ascii")
        self.version = 1
        self.foreign: dict[str, int] = {}

    def _misplaced(self, line: bytes, lineno: int) -> int:
        """A line whose tail is not the one expected: raise :class:`TamperedJournal` saying
        why (or return where its h member is, when only the fast comparison missed it)."""
        prev, expected = self.head, self.count + 1
        layout = _layout(line)
        if layout is None:
            self._diagnose(line, lineno)
        at, seq = layout
        if seq != expected:
            raise TamperedJournal(self.path, expected, lineno, f"sequence number is {seq}, expected {expected} "
                                  "(a record is missing, moved or altered)")
        if line[at + 80:at + 144] != prev.encode("ascii"):
            raise TamperedJournal(self.path, seq, lineno, "does not chain to the previous record (prev hash differs)")
        return at

    def event(self, data: dict[str, Any], seq: int, lineno: int) -> Event:
        """The event of a checked record, under the unknown-type policy."""
        try:
            event = _build(data)
        except _events.UnknownEvent as exc:
            if self.version <= FORMAT_VERSION and not self.keep_unknown:
                raise TamperedJournal(self.path, seq, lineno,
                                      f"bad event: {exc} (not in journal format {self.version})") from None
            kind = str(data.get("type"))
            self.foreign[kind] = self.foreign.get(kind, 0) + 1
            return ForeignEvent(kind, data)
        except (ValueError, TypeError) as exc:
            raise TamperedJournal(self.path, seq, lineno, f"bad event: {exc}") from None
        if type(event) is SessionOpened and event.format_version > self.version:
            self.version = event.format_version
        return event

    def parse(self, line: bytes, lineno: int) -> tuple[int, str, str, dict[str, Any], Event]:
        """Check the next line (without its newline) and decode its event, in one pass:
        ``(seq, ts, h, event object, event)``; the chain moves on to it.  Raises
        :class:`TamperedJournal` naming what is wrong.

        The fast path compares the line's end with the one the chain expects (its prev and
        seq are known, its ts is checked by form), hashes the line, parses its event and
        builds it; any other line is diagnosed (:meth:`_misplaced`)."""
        seq = self.count + 1
        tail = b'","prev":"%s","seq":%d,"ts":"' % (self._head_ascii, seq)
        end = len(line) - 29
        at = end - len(tail) - 70
        if (at < 9 or line[end - len(tail):end] != tail or line[at:at + 6] != _H_MEMBER or line[-2:] != _END
                or not line.startswith(_EVENT_START) or _TS.fullmatch(line, end, len(line) - 2) is None):
            at = self._misplaced(line, lineno)
        body = memoryview(line)
        hasher = hashlib.sha256(body[:at])
        hasher.update(body[at + _H_SPAN:])
        h = line[at + 6:at + 70]
        if hasher.hexdigest().encode("ascii") != h:
            raise TamperedJournal(self.path, seq, lineno, "hash mismatch (record altered)")
        data = _json_object(line[9:at])
        if data is None:
            raise TamperedJournal(self.path, seq, lineno, "not valid JSON")
        build = _BUILDERS.get(data.get("type"))
        if build is None:  # the first of its type, or a type this build does not know
            event = self.event(data, seq, lineno)
        else:
            try:
                event = build(data)
            except (ValueError, TypeError) as exc:
                raise TamperedJournal(self.path, seq, lineno, f"bad event: {exc}") from None
            if type(event) is SessionOpened and event.format_version > self.version:
                self.version = event.format_version
        head = h.decode("ascii")
        self.count, self.head, self._head_ascii = seq, head, h
        return seq, line[-29:-2].decode("ascii"), head, data, event

    def record(self, line: bytes, lineno: int) -> Record:
        """:meth:`parse` as a :class:`Record`."""
        prev = self.head
        seq, ts, h, _, event = self.parse(line, lineno)
        return Record(seq, ts, prev, h, event, lineno)

    def _diagnose(self, line: bytes, lineno: int) -> NoReturn:
        """Raise :class:`TamperedJournal` saying what is wrong with a non-canonical line."""
        prev, expected = self.head, self.count + 1
        try:
            obj = json.loads(line)
        except ValueError:  # includes invalid UTF-8
            raise TamperedJournal(self.path, expected, lineno, "not valid JSON") from None
        if type(obj) is not dict or obj.keys() != RECORD_KEYS or type(obj["event"]) is not dict:
            raise TamperedJournal(self.path, expected, lineno, "not a journal record (wrong fields)")
        seq = obj["seq"]
        if type(seq) is not int or seq != expected:
            raise TamperedJournal(self.path, expected, lineno, f"sequence number is {seq!r}, expected {expected} "
                                  "(a record is missing, moved or altered)")
        if obj["prev"] != prev:
            raise TamperedJournal(self.path, seq, lineno, "does not chain to the previous record (prev hash differs)")
        h = obj["h"]
        if type(h) is not str or type(obj["ts"]) is not str or h.encode("ascii", "replace") not in line:
            raise TamperedJournal(self.path, seq, lineno, "malformed record (hash field)")
        if h != record_hash(seq, obj["ts"], prev, obj["event"]):
            raise TamperedJournal(self.path, seq, lineno, "hash mismatch (record altered)")
        raise TamperedJournal(self.path, seq, lineno, "record not in canonical form (altered)")


# --- reading a file ----------------------------------------------------------------------

_BLOCK = 1 << 20


def journal_lines(fh: BinaryIO, name: str, limit: int | None = None) -> Iterator[tuple[bytes, bool]]:
    """``(line without its newline, complete)`` for each line of a journal file, read in
    large blocks; only the last can be incomplete (a torn tail).  A line over the input
    limit (``$RUNBOOK_MAX_INPUT_MB``) raises :class:`JournalError` (exit 2): a journal is
    read as a stream, the limit bounds each record, not the file."""
    limit = max_input_bytes() if limit is None else limit
    lineno = 0
    partial: list[bytes] = []  # the start of a line that spans blocks
    held = 0
    while True:
        block = fh.read(_BLOCK)
        if not block:
            break
        lines = block.split(b"\n")
        last = lines.pop()
        if partial and lines:
            partial.append(lines[0])
            lines[0] = b"".join(partial)
            partial, held = [], 0
        elif partial:
            partial.append(last)
            held += len(last)
            if held > limit:
                raise _over_limit(name, lineno + 1, limit)
            continue
        for line in lines:
            lineno += 1
            if len(line) > limit:
                raise _over_limit(name, lineno, limit)
            yield line, True
        if last:
            partial.append(last)
            held = len(last)
            if held > limit:
                raise _over_limit(name, lineno + 1, limit)
    if partial:
        yield b"".join(partial), False


def _over_limit(name: str, lineno: int, limit: int) -> JournalError:
    return JournalError(f"{name}:{lineno}: a record over the {limit // (1024 * 1024)} MB input limit "
                        f"(${MAX_INPUT_ENV} raises it)", 2)


class JournalReader:
    """Iterate over the valid records of a journal file, checking the chain and decoding
    each event in the same pass.

    Raises :class:`TamperedJournal` at the first broken record.  A last line without a
    newline (a torn tail) ends the iteration; afterwards :attr:`torn` holds its length (0
    when none) and :attr:`end` the byte offset after the last good record; :attr:`version`
    is the format in force and :attr:`foreign` the records of a newer format's types this
    build kept without interpreting them (by type).
    """

    def __init__(self, path: str | os.PathLike[str], *, keep_unknown: bool = False) -> None:
        self.path = Path(path)
        self.chain = Chain(str(path), keep_unknown=keep_unknown)
        self.end = 0
        self.torn = 0
        self.torn_line = 0

    @property
    def count(self) -> int:
        return self.chain.count

    @property
    def head(self) -> str:
        return self.chain.head

    @property
    def version(self) -> int:
        return self.chain.version

    @property
    def foreign(self) -> dict[str, int]:
        return self.chain.foreign

    def __iter__(self) -> Iterator[Record]:
        record = self.chain.record
        with os.fdopen(open_regular(self.path, "journal"), "rb") as fh:
            for lineno, (line, complete) in enumerate(journal_lines(fh, self.chain.path), start=1):
                if not complete:
                    self.torn, self.torn_line = len(line), lineno
                    return
                rec = record(line, lineno)
                self.end += len(line) + 1
                yield rec
