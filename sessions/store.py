"""Where sessions live, and finding them again.

Layout::

    <root>/<session id>/journal.jsonl   the journal (0600; the directory is 0700)
    <root>/<session id>/lock            the writer lock (pid, host, since)
    <root>/<session id>/runbook.log     structlog JSON log
    <root>/<session id>/head.json       what ``runbook sessions`` shows, cached by the writer
                                        when it closes the session (:func:`write_head`)

The root is ``--session-dir``, else ``$RUNBOOK_SESSION_DIR``, else
``$XDG_STATE_HOME/runbook/sessions`` (``~/.local/state/runbook/sessions``).
Session ids sort by time and carry a short random part: ``20261127T043216Z-3f9a``.

Listing sessions does not read whole journals: the writer leaves a small head
(``head.json``: the journal's size, its last record's seq and hash, and the summary the
listing shows) when it closes a session, and :func:`summarize` uses it only while the
journal is exactly that size, ends in that record (read from the end of the file and
checked against its own hash) and starts with the session the head names.  Any other
head (missing, stale, unreadable, forged) is ignored and the journal is read whole, as
before.  The full chain is checked by ``runbook journal verify`` (and by every resume).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook.errors import UserError

if TYPE_CHECKING:
    from sessions.state.state import SessionState

JOURNAL = "journal.jsonl"
LOCK = "lock"
LOG = "runbook.log"
HEAD = "head.json"
#: the files a session directory holds for itself (the TUI's resume notes are ``tui.json``); an
#: export never writes over them
SESSION_FILES = frozenset((JOURNAL, LOCK, LOG, HEAD, "checkpoints.sig.jsonl", "tui.json"))
_HEAD_MAX = 1 << 20


def refuse_session_file(path: str | os.PathLike[str], what: str = "the report") -> None:
    """Raise ``UserError`` (exit 2) when ``path`` names one of a session directory's own files
    (``--out SESSION/journal.jsonl`` would replace the journal with a report)."""
    p = Path(path)
    if p.name not in SESSION_FILES:
        return
    parent = Path(os.path.realpath(p.parent))
    if (parent / JOURNAL).exists() or p.name == JOURNAL:
        raise UserError(f"{path}: is a session's own {p.name}; writing {what} there would destroy it. "
                        "Name another file", 2)


def session_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--session-dir`` > ``$RUNBOOK_SESSION_DIR`` > ``$XDG_STATE_HOME/runbook/sessions``
    > ``~/.local/state/runbook/sessions``."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("RUNBOOK_SESSION_DIR")
    if env:
        return Path(env).expanduser()
    state = os.environ.get("XDG_STATE_HOME")
    base = Path(state).expanduser() if state and os.path.isabs(os.path.expanduser(state)) else (
        Path.home() / ".local" / "state")
    return base / "runbook" / "sessions"


def new_session_id(now: datetime | None = None) -> str:
    """``20261127T043216Z-3f9a``: UTC start time, then 4 random hex digits."""
    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


@dataclass(frozen=True, slots=True)
class SessionSummary:
    id: str
    path: Path  # the journal
    runbook_title: str = ""
    runbook_path: str = ""
    operators: tuple[str, ...] = ()
    started: str | None = None
    last_activity: str | None = None
    done: int = 0  # tasks done or skipped
    total: int = 0  # tasks in the runbook
    status: str = ""  # active | interrupted | paused | finished | broken | empty
    holder: str = ""  # who has it open (status active)
    unknowns: int = 0  # outcome-unknown hosts awaiting a decision
    records: int = 0
    problem: str = ""  # why it is broken

    @property
    def progress(self) -> str:
        return f"{self.done}/{self.total}" if self.total else "-"

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id, "journal": str(self.path), "runbook_title": self.runbook_title,
            "runbook_path": self.runbook_path, "operators": list(self.operators), "started": self.started,
            "last_activity": self.last_activity, "done": self.done, "total": self.total,
            "status": self.status, "holder": self.holder, "unknowns": self.unknowns,
            "records": self.records, "problem": self.problem,
        }


def _session_dirs(root: Path) -> list[Path]:
    try:
        entries = sorted(root.iterdir(), key=lambda p: p.name)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UserError(f"{root}: cannot list sessions: {exc.strerror or exc}", 2) from None
    return [p for p in entries if (p / JOURNAL).is_file()]


def _status(problem: str, holder: object, count: int, finished: bool, closed: bool) -> str:
    if problem:
        return "broken"
    if holder is not None:
        return "active"
    if count == 0:
        return "empty"
    if finished:
        return "finished"
    return "paused" if closed else "interrupted"


def _head_of(st: SessionState) -> dict[str, Any]:
    """The summary fields of a folded session (what the head caches)."""
    done, total = st.progress()
    return {"session_id": st.session_id, "runbook_title": st.runbook_title, "runbook_path": st.runbook_path,
            "operators": list(st.operators), "started": st.opened, "last_activity": st.last_activity,
            "done": done, "total": total, "unknowns": len(st.unresolved_unknowns()), "records": st.count,
            "finished": st.finished, "closed": st.closed}


_HEAD_TYPES: dict[str, Any] = {
    "session_id": str, "runbook_title": str, "runbook_path": str, "operators": list, "started": (str, type(None)),
    "last_activity": (str, type(None)), "done": int, "total": int, "unknowns": int, "records": int,
    "finished": bool, "closed": bool, "journal_size": int, "seq": int, "h": str,
}


def write_head(session_dir: Path, journal_size: int, seq: int, h: str, state: SessionState) -> None:
    """Cache the session's summary for ``runbook sessions`` (the writer calls this when it closes
    the session, holding the lock): written to a new file, then renamed over ``head.json``.
    Raises ``OSError`` (the head is only a cache: a caller may ignore it)."""
    from sessions.journal.session_dir import open_nofollow

    head = {**_head_of(state), "journal_size": journal_size, "seq": seq, "h": h}
    tmp = session_dir / (HEAD + ".tmp")
    try:
        os.unlink(tmp)  # left by a crash; never written through (O_EXCL, O_NOFOLLOW)
    except FileNotFoundError:
        pass
    fd = open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, "head")
    try:
        os.write(fd, json.dumps(head, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    finally:
        os.close(fd)
    os.replace(tmp, session_dir / HEAD)


def read_head(journal: Path) -> dict[str, Any] | None:
    """The cached head of a session when the journal still matches it (see the module
    docstring); None to read the journal instead."""
    from runbook.reading.files import max_input_bytes, open_regular
    from sessions.journal.format import Chain, last_record
    from sessions.journal.session_dir import open_nofollow

    try:
        fd = open_nofollow(journal.parent / HEAD, os.O_RDONLY | os.O_NONBLOCK, 0, "head")
        with os.fdopen(fd, "rb") as fh:
            head = json.loads(fh.read(_HEAD_MAX))
        if type(head) is not dict or head.keys() != _HEAD_TYPES.keys() or not all(
                isinstance(head[k], t) and (t is not int or type(head[k]) is int) for k, t in _HEAD_TYPES.items()):
            return None
        with os.fdopen(open_regular(journal, "journal"), "rb") as jf:
            size = os.fstat(jf.fileno()).st_size
            if size != head["journal_size"] or last_record(jf.fileno(), size) != (head["seq"], head["h"]):
                return None
            first = jf.readline(max_input_bytes() + 1)  # the session the journal is of
        if first[-1:] != b"\n":
            return None
        opened = Chain(str(journal)).record(first[:-1], 1).event
    except (OSError, ValueError, UserError):
        return None
    if getattr(opened, "session_id", None) != head["session_id"]:
        return None
    return head


def summarize(journal: Path) -> SessionSummary:
    """A session's summary: from its head when the journal still matches it, else by reading
    the journal (checking its chain)."""
    from sessions.journal.lock import current_holder, journal_holder

    sid = journal.parent.name
    head = read_head(journal)
    if head is None:
        return _read_summary(journal)
    holder = current_holder(journal.parent / LOCK) or journal_holder(journal)
    return SessionSummary(
        id=head["session_id"] or sid, path=journal, runbook_title=head["runbook_title"],
        runbook_path=head["runbook_path"], operators=tuple(head["operators"]), started=head["started"],
        last_activity=head["last_activity"], done=head["done"], total=head["total"],
        status=_status("", holder, head["records"], head["finished"], head["closed"]),
        holder=holder.describe() if holder else "", unknowns=head["unknowns"], records=head["records"],
    )


def _read_summary(journal: Path) -> SessionSummary:
    """Read one journal (checking its chain) into a summary."""
    from sessions.journal.format import JournalReader, TamperedJournal
    from sessions.journal.lock import current_holder, journal_holder
    from sessions.state.state import Replayer

    sid = journal.parent.name
    reader = JournalReader(journal)
    rep = Replayer()
    problem = ""
    try:
        for rec in reader:
            rep.feed(rec.ts, rec.event)
    except TamperedJournal as exc:
        problem = str(exc)
    except OSError as exc:
        problem = f"{journal}: {exc.strerror or exc}"
    st = rep.result()
    holder = current_holder(journal.parent / LOCK) or journal_holder(journal)
    head = _head_of(st)
    return SessionSummary(
        id=st.session_id or sid, path=journal, runbook_title=st.runbook_title, runbook_path=st.runbook_path,
        operators=st.operators, started=st.opened, last_activity=st.last_activity, done=head["done"],
        total=head["total"], status=_status(problem, holder, st.count, st.finished, st.closed),
        holder=holder.describe() if holder else "", unknowns=head["unknowns"], records=st.count, problem=problem,
    )


def list_sessions(root: str | os.PathLike[str] | None = None) -> list[SessionSummary]:
    """Every session under ``root`` (default :func:`session_root`), oldest first."""
    return [summarize(d / JOURNAL) for d in _session_dirs(session_root(root))]


def find_session(ref: str | os.PathLike[str] | None, root: str | os.PathLike[str] | None = None) -> Path:
    """The journal path of a session.

    ``ref``: a session id, a unique prefix of one, a session directory or a journal
    file.  None: the unfinished session with the latest activity.  Raises ``UserError``
    naming what was tried.
    """
    base = session_root(root)
    if ref is None:
        candidates = [s for s in (summarize(d / JOURNAL) for d in _session_dirs(base))
                      if s.status in ("interrupted", "paused", "active")]
        if not candidates:
            raise UserError(f"no unfinished session in {base}", 2)
        latest = max(candidates, key=lambda s: (s.last_activity or "", s.id))  # the one worked in last
        return latest.path
    text = str(ref)
    p = Path(text).expanduser()
    if p.is_file():
        return p
    if p.is_dir() and (p / JOURNAL).is_file():
        return p / JOURNAL
    if p.exists() and not p.is_dir():  # a FIFO, a device: never read from it
        from runbook.reading.files import refuse_non_regular

        refuse_non_regular(p, p.stat(), "journal")
    if os.sep not in text:
        names = [d.name for d in _session_dirs(base)]
        if text in names:
            return base / text / JOURNAL
        matches = [n for n in names if n.startswith(text)]
        if len(matches) == 1:
            return base / matches[0] / JOURNAL
        if len(matches) > 1:
            shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
            raise UserError(f"session {text!r} is ambiguous in {base}: {shown}", 2)
    if p.is_dir():
        raise UserError(f"{text}: a directory without a {JOURNAL} (not a session directory)", 2)
    raise UserError(f"no session {text!r} in {base} (and no such journal file)", 2)
