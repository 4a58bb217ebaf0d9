"""The ``runbook`` command: argument parsing and wiring, nothing else.

Each sub-command names its handler as ``"module:function"``; the module is imported
only when that command runs, so ``runbook lint`` never loads the journal or Textual,
and the core packages never import the UI.  A handler takes the parsed
``argparse.Namespace`` and returns the exit code.

Exit codes: 0 success, 1 the check failed (lint errors, verify failed, a step
failed), 2 usage or unreadable input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence

from runbook import __version__
from runbook.errors import UserError
from runbook.terminal_text import SafeStream

Handler = str  # "package.module:function"


def _add_session_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--session-dir",
        metavar="DIR",
        help="where sessions live (default: $RUNBOOK_SESSION_DIR, else ~/.local/state/runbook/sessions)",
    )


def _add_notify(p: argparse.ArgumentParser) -> None:
    p.add_argument("--notify", action="append", default=[], metavar="URL",
                   help="POST a JSON notification (with a Slack-compatible text) to URL on a step failure, a phase "
                        "gate passed or failed, a guard overridden, the window turning amber or red, the session "
                        "closing (repeatable; also `notify:` in the front matter or bindings file)")


def _add_format(p: argparse.ArgumentParser, choices: Sequence[str] = ("text", "json")) -> None:
    p.add_argument("--format", choices=list(choices), default=choices[0])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runbook",
        description="Walk through a Markdown runbook step by step, run it locally or over SSH, "
        "and keep a tamper-evident, signed record of the session.",
    )
    parser.add_argument("--version", action="version", version=f"runbook {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def cmd(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    # --- the document --------------------------------------------------------
    p = cmd("lint", "runbook.document_commands:lint", "check runbooks for structural problems")
    p.add_argument("files", nargs="+", metavar="FILE")
    _add_format(p)
    p.add_argument("--suggest-probes", action="store_true", help="propose probes for acceptance criteria")

    p = cmd("show", "runbook.document_commands:show", "print the parsed runbook")
    p.add_argument("file", metavar="FILE")
    _add_format(p)
    p.add_argument("--inventory", metavar="INV", help="inventory used to resolve targets")

    p = cmd("plan", "runbook.document_commands:plan", "tasks in dependency order and the critical path")
    p.add_argument("file", metavar="FILE")
    _add_format(p)
    p.add_argument("--tasks-only", action="store_true",
                   help="ignore the phases' Dependencies lines; only dependencies between tasks count")

    p = cmd("probe", "runbook.probes.command:probe", "run the acceptance probes of a runbook")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--task", metavar="ID")
    p.add_argument("--kubeconfig", metavar="PATH")
    p.add_argument("--context", metavar="NAME")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--inventory", metavar="INV")
    _add_format(p)

    # --- sessions ------------------------------------------------------------
    p = cmd("sessions", "sessions.journal_commands:sessions_cmd", "list sessions")
    _add_session_dir(p)
    _add_format(p)

    p = cmd("journal", "sessions.journal_commands:journal_cmd", "inspect a session journal")
    jsub = p.add_subparsers(dest="journal_command", metavar="ACTION")
    jsub.required = True
    jv = jsub.add_parser("verify", help="check the hash chain (exit 0 or 1)")
    jv.add_argument("session", metavar="SESSION", help="session id or journal path")
    jv.add_argument("--allowed-signers", metavar="FILE",
                    help="OpenSSH allowed_signers: every signed checkpoint must be signed by a key it allows "
                         "(namespace runbook-checkpoint); an unsigned or foreign checkpoint fails")
    _add_session_dir(jv)
    js = jsub.add_parser("show", help="print the journal")
    js.add_argument("session", metavar="SESSION", help="session id or journal path")
    js.add_argument("--follow", "-f", action="store_true")
    _add_session_dir(js)
    _add_format(js)

    p = cmd("exec", "sessions.exec_command:exec_cmd", "run a task's steps without the TUI")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--task", required=True, metavar="ID")
    p.add_argument("--step", type=int, metavar="N")
    p.add_argument("--target", metavar="PATTERN")
    p.add_argument("--inventory", metavar="INV")
    p.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                   help="a placeholder value (visible in ps: for secrets use --var-file or stdin)")
    p.add_argument("--var-file", action="append", default=[], metavar="FILE",
                   help="NAME=VALUE lines; the file must not be readable by group or others")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--session-dir", metavar="DIR")
    g.add_argument("--session", metavar="ID", help="append to this existing session")
    p.add_argument("--dry-run", action="store_true", help="print what would run where; run nothing")
    p.add_argument("--yes", action="store_true", help="answer yes to confirmations (never overrides a guard)")
    p.add_argument("--override", metavar="REASON",
                   help="override the guards that need a reason (dependencies, phase gate, window, lint), journaled")
    p.add_argument("--detached", action="store_true", help="run remote commands detached (survive a lost connection)")
    p.add_argument("--parallel", type=int, default=10, metavar="N", help="hosts running at once in a parallel step (default 10)")
    p.add_argument("--connect-limit", type=int, default=10, metavar="N",
                   help="SSH handshakes at once (default 10: sshd's MaxStartups drops bigger bursts)")
    p.add_argument("--accept-new-host-keys", action="store_true")
    p.add_argument("--known-hosts", metavar="FILE", help="known_hosts file (default ~/.ssh/known_hosts)")
    _add_notify(p)

    p = cmd("export", "sessions.export_commands:export_cmd", "write a (signed) session report")
    p.add_argument("session", metavar="SESSION")
    p.add_argument("--format", choices=["md", "json", "html"], default="md")
    p.add_argument("--out", metavar="FILE")
    sg = p.add_mutually_exclusive_group()
    sg.add_argument("--sign", metavar="KEYFILE", help="sign with this private key")
    sg.add_argument("--sign-agent", nargs="?", const="", default=None, metavar="KEY",
                    help="sign with a key in ssh-agent: the one whose fingerprint (SHA256:...) or comment "
                         "is KEY, else the first")
    p.add_argument("--lines", type=int, default=200, metavar="N", help="output lines per host in md/html")
    _add_session_dir(p)

    p = cmd("verify", "sessions.export_commands:verify_cmd", "verify an exported report and its signature")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--signature", metavar="FILE.sig")
    p.add_argument("--allowed-signers", metavar="F")
    p.add_argument("--identity", metavar="I")

    # --- the TUI -------------------------------------------------------------
    p = cmd("run", "tui.commands:run_cmd", "open the TUI on a runbook")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--inventory", metavar="INV")
    p.add_argument("--window-end", metavar="TIME", help="end of the change window (HH:MM or RFC 3339)")
    p.add_argument("--known-hosts", metavar="FILE")
    p.add_argument("--new", action="store_true", help="start a new session even if one can be resumed")
    _add_notify(p)
    _add_session_dir(p)

    p = cmd("resume", "tui.commands:resume_cmd", "reopen a session in the TUI")
    p.add_argument("session", nargs="?", metavar="SESSION")
    p.add_argument("--inventory", metavar="INV")
    p.add_argument("--window-end", metavar="TIME", help="a new end of the change window (journaled)")
    p.add_argument("--known-hosts", metavar="FILE")
    _add_notify(p)
    _add_session_dir(p)

    p = cmd("watch", "tui.watching:watch_cmd",
            "follow a session another process is writing, read-only (the TUI; never takes its lock)")
    p.add_argument("session", nargs="?", metavar="SESSION", help="session id or prefix (default: the latest unfinished)")
    p.add_argument("--poll", type=float, default=0.2, metavar="SECONDS", help="how often the journal is read (0.2)")
    _add_session_dir(p)

    p = cmd("demo", "tui.commands:demo_cmd", "open the TUI on the demo runbook with an embedded SSH fleet")
    _add_session_dir(p)
    p.add_argument("--resume", action="store_true",
                   help="restart the fleet (same keys and addresses) and resume the latest unfinished demo session")

    return parser


def resolve(handler: Handler) -> Callable[[argparse.Namespace], int]:
    module_name, _, func = handler.partition(":")
    module = importlib.import_module(module_name)
    handler_func: Callable[[argparse.Namespace], int] = getattr(module, func)
    return handler_func


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command.  Everything printed goes through :class:`~runbook.terminal_text.SafeStream`:
    text from documents, inventories, file names and output never reaches the terminal as
    escape sequences (bytes written to ``sys.stdout.buffer`` are cleaned by their writers)."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeStream(out), SafeStream(err)
    # cryptography >= 47 warns on every start that asyncssh still names its DSA classes
    # (a UserWarning, so always shown): noise to an operator, nothing they can act on.
    warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"asyncssh\.")
    try:
        return _main(argv)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        sys.stdout, sys.stderr = out, err


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(resolve(args.handler)(args) or 0)
    except UserError as exc:
        print(f"runbook: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("runbook: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
