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
from runbook.sanitize.terminal_text import SafeStream

Handler = str  # "package.module:function"
#: ``cmd(name, handler, help)`` adds a sub-command and returns its parser for the arguments
CommandAdder = Callable[[str, Handler, str], argparse.ArgumentParser]
#: what an entry point of the ``runbook.commands`` group names: it adds its layer's commands
Registrar = Callable[[CommandAdder], None]
ENTRY_POINTS = "runbook.commands"
#: this layer's own commands: parsing them never looks up the registered ones (a lookup costs
#: ~20 ms of every start-up, and ``runbook lint`` stays as fast as before)
OWN_COMMANDS = frozenset({"lint", "show", "plan", "probe"})


def add_session_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--session-dir",
        metavar="DIR",
        help="where sessions live (default: $RUNBOOK_SESSION_DIR, else ~/.local/state/runbook/sessions)",
    )


def add_notify(p: argparse.ArgumentParser) -> None:
    p.add_argument("--notify", action="append", default=[], metavar="URL",
                   help="POST a JSON notification (with a Slack-compatible text) to URL on a step failure, a phase "
                        "gate passed or failed, a guard overridden, the window turning amber or red, the session "
                        "closing (repeatable; also `notify:` in the front matter or bindings file)")


def add_mirror(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mirror", metavar="DEST",
                   help="replicate the session journal as it is written to DEST (HOST:PATH, over SSH/SFTP: "
                        "PATH/<session id>/journal.jsonl, append-only, each record acknowledged after the remote "
                        "fsync); losing it warns and never stops the session")


def add_approvers(p: argparse.ArgumentParser) -> None:
    p.add_argument("--approvers", metavar="FILE",
                   help="an OpenSSH allowed-signers file of the people who may approve tasks (four-eyes approval): "
                        "every CRITICAL task, and every task marked approval=required, waits for an approver's "
                        "signature (journaled; kept on resume)")
    p.add_argument("--operator-key", action="append", default=[], metavar="PUBKEY",
                   help="a public key (file or line) that is yours: an approval signed with it is refused "
                        "(repeatable; your ssh-agent's keys and ~/.ssh/*.pub always count)")


def add_format(p: argparse.ArgumentParser, choices: Sequence[str] = ("text", "json")) -> None:
    p.add_argument("--format", choices=list(choices), default=choices[0])


def registered_commands() -> list[Registrar]:
    """The ``register`` functions of the layers above (the ``runbook.commands`` entry points of
    the installed package), in entry-point name order; this module never names them."""
    from importlib.metadata import entry_points

    return [ep.load() for ep in sorted(entry_points(group=ENTRY_POINTS), key=lambda ep: ep.name)]


def build_parser(registrars: Sequence[Registrar] | None = None) -> argparse.ArgumentParser:
    """Every command: this layer's, then ``registrars`` (None: the installed entry points)."""
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
    p = cmd("lint", "runbook.commands.document:lint", "check runbooks for structural problems")
    p.add_argument("files", nargs="+", metavar="FILE")
    add_format(p)
    p.add_argument("--suggest-probes", action="store_true", help="propose probes for acceptance criteria")

    p = cmd("show", "runbook.commands.document:show", "print the parsed runbook")
    p.add_argument("file", metavar="FILE")
    add_format(p)
    p.add_argument("--inventory", metavar="INV", help="inventory used to resolve targets")

    p = cmd("plan", "runbook.commands.document:plan", "tasks in dependency order and the critical path")
    p.add_argument("file", metavar="FILE")
    add_format(p)
    p.add_argument("--tasks-only", action="store_true",
                   help="ignore the phases' Dependencies lines; only dependencies between tasks count")

    p = cmd("probe", "runbook.commands.probe:probe", "run the acceptance probes of a runbook")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--task", metavar="ID")
    p.add_argument("--kubeconfig", metavar="PATH")
    p.add_argument("--context", metavar="NAME")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--inventory", metavar="INV")
    add_format(p)

    # --- the layers above register theirs (entry points: runbook.commands) --------
    for register in registered_commands() if registrars is None else registrars:
        register(cmd)

    return parser


def resolve(handler: Handler) -> Callable[[argparse.Namespace], int]:
    module_name, _, func = handler.partition(":")
    module = importlib.import_module(module_name)
    handler_func: Callable[[argparse.Namespace], int] = getattr(module, func)
    return handler_func


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command.  Everything printed goes through :class:`~runbook.sanitize.terminal_text.SafeStream`:
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
    words = list(sys.argv[1:] if argv is None else argv)
    registrars = () if words and words[0] in OWN_COMMANDS else registered_commands()
    if not registrars and words and words[0] not in OWN_COMMANDS and not words[0].startswith("-"):
        print(f"runbook: {words[0]!r}: only {', '.join(sorted(OWN_COMMANDS))} are available; the other commands are "
              "registered when runbook is installed (pip install -e . or ./dev setup)", file=sys.stderr)
        return 2
    args = build_parser(registrars).parse_args(words)
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
