"""The TUI's commands: ``run``, ``resume``, ``watch`` and ``demo``.

Registered through the ``runbook.commands`` entry point (``pyproject.toml``); the handlers
(and Textual) are imported only when one of these commands runs.
"""

from __future__ import annotations

from runbook.cli import CommandAdder, add_approvers, add_mirror, add_notify, add_session_dir


def register(cmd: CommandAdder) -> None:
    # --- the TUI -------------------------------------------------------------
    p = cmd("run", "tui.commands:run_cmd", "open the TUI on a runbook")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--inventory", metavar="INV")
    p.add_argument("--window-end", metavar="TIME", help="end of the change window (HH:MM or RFC 3339)")
    p.add_argument("--known-hosts", metavar="FILE")
    p.add_argument("--new", action="store_true", help="start a new session even if one can be resumed")
    add_notify(p)
    add_approvers(p)
    add_mirror(p)
    add_session_dir(p)

    p = cmd("resume", "tui.commands:resume_cmd", "reopen a session in the TUI")
    p.add_argument("session", nargs="?", metavar="SESSION")
    p.add_argument("--inventory", metavar="INV")
    p.add_argument("--window-end", metavar="TIME", help="a new end of the change window (journaled)")
    p.add_argument("--known-hosts", metavar="FILE")
    p.add_argument("--from", dest="from_mirror", metavar="DEST/ID",
                   help="carry on a session from its mirror (HOST:PATH/<session id>, or HOST:PATH and SESSION), "
                        "e.g. after the jump host died: copy the journal into --session-dir, verify its chain, "
                        "resume it (the handover is journaled)")
    p.add_argument("--runbook", metavar="FILE",
                   help="the runbook file, when it is not where the journal says (another host)")
    add_notify(p)
    add_approvers(p)
    add_mirror(p)
    add_session_dir(p)

    p = cmd("watch", "tui.watching:watch_cmd",
            "follow a session another process is writing, read-only (the TUI; never takes its lock)")
    p.add_argument("session", nargs="?", metavar="SESSION", help="session id or prefix (default: the latest unfinished)")
    p.add_argument("--poll", type=float, default=0.2, metavar="SECONDS", help="how often the journal is read (0.2)")
    add_session_dir(p)

    p = cmd("demo", "tui.commands:demo_cmd", "open the TUI on the demo runbook with an embedded SSH fleet")
    add_session_dir(p)
    p.add_argument("--resume", action="store_true",
                   help="restart the fleet (same keys and addresses) and resume the latest unfinished demo session")
