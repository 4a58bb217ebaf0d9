"""CLI handlers for the TUI: ``runbook run``, ``runbook resume`` and ``runbook demo``.

Each parses what it needs, builds a :class:`~tui.launch.Launch` and runs the app
on one asyncio loop (the demo fleet shares it).  User errors become
:class:`~runbook.errors.UserError` (one line, no traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from runbook.errors import UserError
from tui.launch import Launch

if TYPE_CHECKING:
    from runbook.model import Runbook
    from sessions.journal.events import Event
    from sessions.store import SessionSummary
    from sessions.team.mirror import MirrorDest

DEMO_RUNBOOK = Path(__file__).resolve().parent.parent / "checklists" / "demo.md"
RESUMABLE = ("interrupted", "paused")
EXIT_CRASHED = 70  # the TUI failed with an unexpected error (EX_SOFTWARE); the session stays resumable
CRASHED = "crashed"  # the session_closed reason of a crash (a quit is "quit")


def parse_window_end(text: str | None, now: datetime | None = None) -> str | None:
    """``HH:MM`` (local time: the nearest such time, up to 12 hours back) or RFC 3339 -> RFC 3339 UTC."""
    if not text:
        return None
    now = now or datetime.now().astimezone()
    value = text.strip()
    try:
        if len(value) <= 5 and ":" in value:
            hh, mm = (int(x) for x in value.split(":"))
            local = now.astimezone()
            end = local.replace(hour=hh, minute=mm, second=0, microsecond=0)
            if end < local - timedelta(hours=12):
                end += timedelta(days=1)
            elif end > local + timedelta(hours=12):
                end -= timedelta(days=1)
        else:
            end = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if end.tzinfo is None:
                end = end.astimezone()
    except ValueError:
        raise UserError(f"--window-end {text!r}: expected HH:MM or an RFC 3339 time such as 2026-11-27T04:00:00Z") from None
    return end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def resumable_session(root: Path, runbook_path: str) -> SessionSummary | None:
    """The latest interrupted or paused session of this runbook file, or None."""
    from sessions.store import list_sessions

    want = os.path.realpath(runbook_path)
    found = None
    for summary in list_sessions(root):
        if summary.status in RESUMABLE and summary.runbook_path and os.path.realpath(summary.runbook_path) == want:
            found = summary
    return found


def need_terminal(command: str, instead: str) -> None:
    """The TUI draws on a terminal and reads keys from one: without one (a pipe, a file,
    ``ssh`` without ``-t``) it would write its escape sequences there and wait for ever.
    :class:`UserError` (exit 2) naming what to do instead, before anything opens."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        return
    raise UserError(f"the TUI (runbook {command}) needs a terminal: stdin and stdout are not one (over SSH give "
                    f"-t: ssh -t HOST runbook {command} ...); {instead}", 2)


def _parse(path: str | os.PathLike[str]) -> Runbook:
    from runbook.parse.parser import parse_file

    return parse_file(str(path))


def _notify(args: argparse.Namespace, runbook: Runbook | None) -> tuple[str, ...]:
    """``--notify`` URLs and the runbook's, checked before the screen opens (a bad one: exit 2)."""
    from sessions.team.notify import check_urls

    return tuple(check_urls(list(getattr(args, "notify", None) or []) + list(runbook.notify if runbook is not None else ())))


def _approvers(args: argparse.Namespace) -> str | None:
    """``--approvers FILE``, read once before the screen opens (unreadable, or no approver in it: exit 2)."""
    path: str | None = getattr(args, "approvers", None)
    if path:
        from sessions.team.approval import read_approvers

        read_approvers(path)
    return path


def _mirror(args: argparse.Namespace, runbook: Runbook | None) -> MirrorDest | None:
    """``--mirror DEST``, else the runbook's ``mirror:``, checked before the screen opens (a bad
    one: exit 2)."""
    from sessions.team.mirror import MirrorDest

    if getattr(args, "mirror", None):
        return MirrorDest.parse(args.mirror)
    if runbook is not None and runbook.mirror:
        return MirrorDest.parse(runbook.mirror, f"{runbook.path}: mirror:")
    return None


def _from_mirror(args: argparse.Namespace, root: Path) -> tuple[Path, tuple[Event, ...]]:
    """``resume --from DEST/ID``: copy the session from its mirror into ``root`` (its chain
    verified, or a clear refusal) and the handover event the resume journals."""
    from sessions.engine.operator import current_operator
    from sessions.team.mirror import fetch_from_mirror, split_from

    dest, sid = split_from(args.from_mirror, args.session)
    fetched = asyncio.run(fetch_from_mirror(dest, sid, root, known_hosts=args.known_hosts))
    print(f"runbook: copied {fetched.records} records of session {sid} from {fetched.source}; the chain verifies",
          file=sys.stderr)
    who = current_operator()
    return fetched.journal, (fetched.handover(who.name, who.host),)


def _check_inventory(path: str | None) -> None:
    """Load the inventory once before the screen opens: a bad file is one line on stderr, exit 2."""
    from runbook.targets.inventory import Inventory

    Inventory.load(path)


def _make_root(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise UserError(f"{root}: cannot create the session directory: Not a directory")
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{root}: cannot create the session directory: {exc.strerror or exc}") from None


def resume_hint(session_id: str, root: Path | None, *, demo: bool = False) -> str:
    """The exact command that reopens ``session_id`` (printed when the TUI exits)."""
    from sessions.store import session_root

    command = ["runbook", "demo", "--resume"] if demo else ["runbook", "resume", session_id]
    if root is not None and Path(root).resolve() != session_root(None).resolve():
        command += ["--session-dir", str(root)]
    return f"runbook: session {session_id} is resumable: {shlex.join(command)}"


async def run_app(launch: Launch, *, before: Callable[[], Awaitable[None]] | None = None,
                  after: Callable[[], Awaitable[None]] | None = None, demo: bool = False) -> int:
    """Run the TUI until it exits; close the engine and session whatever happens.

    When a session was open, its id and the command that resumes it are printed
    once the terminal is restored (or that it finished).

    A crash (an unexpected exception: Textual ends the app with return code 1 and prints
    the traceback) is journaled as ``session_closed reason=crashed``, never as a quit; the
    session stays resumable and the exit code is :data:`EXIT_CRASHED`.
    """
    from tui.app import RunbookApp

    if before is not None:
        await before()
    app = RunbookApp(launch)
    crashed = False
    try:
        code = await app.run_async()
        crashed = app.return_code not in (0, None)
    except Exception:
        crashed = True
        raise
    finally:
        try:
            await app.shutdown(CRASHED if crashed else "quit")
        finally:
            if after is not None:
                await after()
    session = app.session
    if session is not None:
        if session.state.finished:
            print(f"runbook: session {session.id} finished: runbook export {session.id}", file=sys.stderr)
        else:
            print(resume_hint(session.id, launch.root, demo=demo), file=sys.stderr)
    if crashed:
        return EXIT_CRASHED
    if app.error is not None:
        raise app.error
    return int(code or 0)


def run_cmd(args: argparse.Namespace) -> int:
    """``runbook run FILE``: a new session, or the resume prompt when one can be resumed."""
    from sessions.store import session_root

    runbook = _parse(args.file)
    _check_inventory(args.inventory)
    window_end = parse_window_end(args.window_end)
    root = session_root(args.session_dir)
    offer = None if args.new else resumable_session(root, runbook.path)
    launch = Launch(
        runbook=runbook, root=root, mode="offer" if offer is not None else "new", offer_summary=offer,
        inventory_path=args.inventory, window_end=window_end,
        known_hosts=args.known_hosts, notify=_notify(args, runbook), mirror=_mirror(args, runbook),
        approvers=_approvers(args), operator_keys=tuple(getattr(args, "operator_key", None) or ()),
    )
    need_terminal("run", "without one: runbook exec FILE --task ID")
    return asyncio.run(run_app(launch))


def resume_cmd(args: argparse.Namespace) -> int:
    """``runbook resume [SESSION]``: reopen a session (the latest unfinished one by default)."""
    from sessions.store import find_session, session_root

    root = session_root(args.session_dir)
    runbook = _parse(args.runbook) if getattr(args, "runbook", None) else None
    mirror = _mirror(args, runbook)
    window_end = parse_window_end(getattr(args, "window_end", None))
    if args.inventory:
        _check_inventory(args.inventory)
    instead = "without one: runbook exec FILE --task ID --session ID (or --from DEST/ID)"
    announce: tuple[Event, ...] = ()
    if getattr(args, "from_mirror", None):
        need_terminal("resume", instead)  # before anything is copied into the store
        journal, announce = _from_mirror(args, root)
    else:
        journal = find_session(args.session, root)  # a clear error before the screen opens
        need_terminal("resume", instead)
    launch = Launch(runbook=runbook, root=root, mode="resume", ref=str(journal), inventory_path=args.inventory,
                    window_end=window_end, known_hosts=args.known_hosts, notify=_notify(args, runbook),
                    mirror=mirror, announce=announce, approvers=_approvers(args),
                    operator_keys=tuple(getattr(args, "operator_key", None) or ()))
    return asyncio.run(run_app(launch))


def demo_cmd(args: argparse.Namespace) -> int:
    """``runbook demo``: the embedded fleet on loopback and the TUI on ``checklists/demo.md``.

    ``--resume``: restart the fleet with the keys and addresses kept in the session
    directory and resume the latest unfinished demo session.
    """
    from sessions.store import session_root
    from tui.demo_fleet import DemoFleet

    if not DEMO_RUNBOOK.is_file():
        raise UserError(f"{DEMO_RUNBOOK}: the demo runbook is missing")
    runbook = _parse(DEMO_RUNBOOK)
    root = session_root(args.session_dir)
    _make_root(root)
    need_terminal("demo", "it is the TUI only")
    fleet = DemoFleet(root / "demo-fleet")
    try:
        fleet.prepare()
    except OSError as exc:
        raise UserError(f"demo fleet: cannot set up {fleet.files.root}: {exc.strerror or exc}") from None
    offer = resumable_session(root, runbook.path)
    if getattr(args, "resume", False):
        if offer is None:
            raise UserError(f"no unfinished demo session in {root}")
        launch = Launch(runbook=runbook, root=root, mode="resume", ref=offer.id)
    else:
        launch = Launch(runbook=runbook, root=root, mode="offer" if offer is not None else "new", offer_summary=offer)
    launch.inventory_path = str(fleet.files.inventory)
    launch.known_hosts = str(fleet.files.known_hosts)
    return asyncio.run(run_app(launch, before=fleet.start, after=fleet.stop, demo=True))
