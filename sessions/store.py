"""Where sessions live, and finding them again.

Layout::

    <root>/<session id>/journal.jsonl   the journal (0600; the directory is 0700)
    <root>/<session id>/lock            the writer lock (pid, host, since)
    <root>/<session id>/runbook.log     structlog JSON log

The root is ``--session-dir``, else ``$RUNBOOK_SESSION_DIR``, else
``$XDG_STATE_HOME/runbook/sessions`` (``~/.local/state/runbook/sessions``).
Session ids sort by time and carry a short random part: ``20261127T043216Z-3f9a``.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from runbook.errors import UserError

JOURNAL = "journal.jsonl"
LOCK = "lock"
LOG = "runbook.log"
#: the files a session directory holds for itself (the TUI's resume notes are ``tui.json``); an
#: export never writes over them
SESSION_FILES = frozenset((JOURNAL, LOCK, LOG, "checkpoints.sig.jsonl", "tui.json"))
_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{4,}$")


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
    now = now or datetime.now(timezone.utc)
    return f"{now.astimezone(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def is_session_id(name: str) -> bool:
    return bool(_ID.match(name))


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


def summarize(journal: Path) -> SessionSummary:
    """Read one journal (checking its chain) into a summary."""
    from sessions.journal_format import JournalReader, TamperedJournal
    from sessions.lock import current_holder, journal_holder
    from sessions.state import Replayer

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
    if problem:
        status = "broken"
    elif holder is not None:
        status = "active"
    elif st.count == 0:
        status = "empty"
    elif st.finished:
        status = "finished"
    elif st.closed:
        status = "paused"
    else:
        status = "interrupted"
    done, total = st.progress()
    return SessionSummary(
        id=st.session_id or sid, path=journal, runbook_title=st.runbook_title, runbook_path=st.runbook_path,
        operators=st.operators, started=st.opened, last_activity=st.last_activity, done=done, total=total,
        status=status, holder=holder.describe() if holder else "", unknowns=len(st.unresolved_unknowns()),
        records=st.count, problem=problem,
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
        from runbook.input_files import refuse_non_regular

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
