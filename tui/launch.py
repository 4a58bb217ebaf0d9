"""How the app gets its session and engine: a new session, a resume, or an offer to resume.

Kept apart from the app so that tests and ``runbook demo`` build the same objects
the CLI does, with their own session directory, inventory and clock.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook.errors import UserError

if TYPE_CHECKING:
    from runbook.model import Runbook
    from sessions.engine.engine import Engine
    from sessions.engine.session import Session
    from sessions.journal.events import Event
    from sessions.store import SessionSummary
    from sessions.team.mirror import JournalMirror, MirrorDest, OnChange
    from sessions.team.notify import Notifier

Clock = Callable[[], datetime]
SIDECAR = "tui.json"  # inventory and known_hosts of the session, so a resume finds them again


def utc_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Launch:
    """What to open.  ``mode``: ``new``, ``resume`` (``ref`` or the latest) or ``offer``
    (ask with the resume prompt when ``offer_summary`` is set, else new)."""

    runbook: Runbook | None = None  # None for resume (the journal names it)
    root: Path | None = None
    mode: str = "new"
    ref: str | None = None
    inventory_path: str | None = None
    window_end: str | None = None
    known_hosts: str | None = None
    accept_new_host_keys: bool = False
    offer_summary: SessionSummary | None = None
    clock: Clock = utc_clock
    engine_options: dict[str, Any] = field(default_factory=dict)
    notify: tuple[str, ...] = ()  # --notify URLs (checked); the runbook's own are added
    mirror: MirrorDest | None = None  # --mirror DEST
    announce: tuple[Event, ...] = ()  # journaled after the resume's session_opened (a handover from a mirror)
    approvers: str | None = None  # --approvers FILE (four-eyes approval), journaled when new to the session
    operator_keys: tuple[str, ...] = ()  # --operator-key PUBKEY: never an approver's

    def open_session(self, choice: str) -> Session:
        """``choice``: ``new`` or ``resume``.  Raises ``UserError`` (lock held, no session)."""
        from sessions.engine.session import Session

        if choice == "new":
            if self.runbook is None:
                raise UserError("a new session needs a runbook file")
            session = Session.create(self.runbook, root=self.root, inventory_path=self.inventory_path,
                                     window_end=self.window_end)
            self._write_sidecar(session.dir)
            return session
        ref = self.ref
        if ref is None and self.offer_summary is not None:
            ref = self.offer_summary.id
        session = Session.resume(ref, root=self.root, runbook=self.runbook, window_end=self.window_end,
                                 announce=self.announce)
        if session.runbook is None:
            why = "; ".join(session.warnings) or "the runbook file cannot be read"
            session.close("runbook unavailable")
            raise UserError(f"session {session.id}: {why} (the journal is intact: runbook journal show / export; "
                            "runbook resume --runbook FILE names the runbook when it is elsewhere)")
        self._read_sidecar(session.dir)
        from sessions.journal.events import MirrorHandover

        for event in self.announce:  # said on opening, like a recovered torn tail
            if isinstance(event, MirrorHandover):
                session.warnings.append(
                    f"carried on from the mirror {event.source}: {event.records} records copied, the chain verified; "
                    f"{event.previous_operator or '?'} had it on {event.previous_host or '?'}")
        return session

    def _write_sidecar(self, directory: Path) -> None:
        data = {
            "inventory": os.path.abspath(self.inventory_path) if self.inventory_path else None,
            "known_hosts": os.path.abspath(self.known_hosts) if self.known_hosts else None,
        }
        try:
            fd = os.open(directory / SIDECAR, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh)
        except OSError:
            pass  # a convenience only: resume can be given --inventory

    def _read_sidecar(self, directory: Path) -> None:
        try:
            data = json.loads((directory / SIDECAR).read_text())
        except (OSError, ValueError):
            return
        if self.inventory_path is None and data.get("inventory"):
            self.inventory_path = data["inventory"]
        if self.known_hosts is None and data.get("known_hosts"):
            self.known_hosts = data["known_hosts"]

    def notifier_for(self, session: Session) -> Notifier | None:
        """Start sending the session's notifications (``--notify`` and the runbook's ``notify:``),
        or None when there is nowhere to send them.  Needs the running loop."""
        from sessions.team.notify import Notifier, check_urls

        urls = check_urls(list(self.notify) + list(session.runbook.notify if session.runbook is not None else ()))
        if not urls:
            return None
        notifier = Notifier(session, urls, clock=self.clock)
        notifier.start()
        return notifier

    def mirror_for(self, session: Session, on_change: OnChange) -> JournalMirror | None:
        """Start replicating the journal to ``--mirror DEST`` (else the runbook's ``mirror:``), or
        None without one.  Needs the running loop.  A bad ``mirror:`` in the runbook: ``UserError``."""
        from sessions.team.mirror import JournalMirror, MirrorDest

        dest = self.mirror
        runbook = session.runbook
        if dest is None and runbook is not None and runbook.mirror:
            dest = MirrorDest.parse(runbook.mirror, f"{runbook.path}: mirror:")
        if dest is None:
            return None
        mirror = JournalMirror(session, dest, known_hosts=self.known_hosts,
                               accept_new_host_keys=self.accept_new_host_keys, on_change=on_change)
        mirror.start()
        return mirror

    def set_approvers(self, session: Session) -> None:
        """Journal ``--approvers FILE`` unless the session has it already (raises ``UserError``)."""
        if not self.approvers:
            return
        from sessions.team.approval import set_approvers

        set_approvers(session, self.approvers)

    def engine_for(self, session: Session) -> Engine:
        from runbook.targets.inventory import Inventory
        from sessions.engine.engine import Engine

        inventory = Inventory.load(self.inventory_path)
        return Engine(session, inventory, known_hosts=self.known_hosts,
                      accept_new_host_keys=self.accept_new_host_keys, **self.engine_options)
