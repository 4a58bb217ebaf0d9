"""``runbook exec``: run a task's steps without the TUI, journaling exactly as the TUI does.

::

    runbook exec FILE --task ID [--step N] [--target PATTERN] [--inventory INV]
                 [--var NAME=VALUE]... [--var-file FILE]... [--session-dir D | --session ID]
                 [--dry-run] [--yes] [--detached] [--parallel N] [--connect-limit N]
                 [--known-hosts FILE] [--accept-new-host-keys]

Output streams to stdout as ``[host] line`` (stderr to stderr); runbook's own
messages (session id at start and end, step headers, results) go to stderr as
``runbook: ...``.  Stops at the first failure (exit 1): a non-zero exit, timeout,
unknown outcome or a failed ``Expected:`` check.  Ctrl-C interrupts the running
step (SIGINT on every host; again: TERM, then KILL) and exits 130.  SIGTERM or
SIGHUP stops it at once (INT, then TERM, then KILL), journals the outcome and the
signal, closes the session and exits 128+n (143, 129).

Placeholder values: ``--var``, then ``--var-file`` (NAME=VALUE lines, mode 600),
then the environment, then (non-secret) values the resumed session already has,
then a prompt when stdin is a terminal (``getpass`` for secrets), else stdin
(NAME=VALUE lines, or the one missing secret alone; :mod:`sessions.commands.var_file`).
A still missing value is an error naming it (exit 2), and so is an empty secret
value or one shorter than 4 characters.  Guards: ``--yes`` answers the
confirmations (``GuardPassed`` detail ``--yes``: risk, destructive, external
dependency, re-run); the overrides (unfinished dependencies, an earlier phase gate
that has not passed, the window's end, a block lint says cannot run as written)
need ``--override REASON``, journaled with that reason (``GuardOverridden``).  On a
terminal what is not given is asked.  Without a terminal, an override not given is
an error naming the guards (exit 1), an unanswered confirmation too (exit 2); both
are checked before anything runs.  ``--dry-run`` prints what would run where
(placeholders filled, secrets masked), the guards and the lint diagnostics of each
step, and creates no session.

Four-eyes approval (:mod:`sessions.team.approval`): ``--approvers FILE`` is journaled when
new to the session; a task that needs an approval gets, once its other guards are answered,
a request written into the session directory, and exec waits for ``REQUEST.sig`` (polled;
a refused one is reported and the wait goes on; Ctrl-C stops waiting, exit 130, nothing
run), or checks ``--approval FILE`` at once (refused: exit 1).  ``--yes`` never approves.

Targets: a step nobody targeted (no ``--target``, annotation, binding or document
default; see :mod:`sessions.planning.planning`) is refused before anything runs (exit 2,
naming ``--target`` and the bindings file); ``--dry-run`` prints "target: not
chosen (suggested: ...)" for it.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import re
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from runbook.errors import UserError
from runbook.model import Runbook
from runbook.sanitize.redaction import secret_value_problem
from sessions.planning.guards import Guard, TaskRef, answer_ok, resolve, resolve_task
from sessions.planning.planning import PlannedStep, check_target, plan_step
from sessions.planning.substitution import normalise, placeholder_names
from sessions.state.state import SessionState

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from runbook.targets.inventory import Inventory
    from sessions.commands.exec_terminal import Prompter
    from sessions.engine.engine import Engine
    from sessions.engine.session import Session
    from sessions.engine.step_runner import RunSummary
    from sessions.journal.events import Event
    from sessions.team.approval import Approvals
    from sessions.team.mirror import JournalMirror, MirrorDest
    from sessions.team.notify import Notifier

_VAR_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)=(.*)$", re.S)
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def say(text: str) -> None:
    try:
        print(f"runbook: {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # the terminal is gone (SIGHUP): the journal has it all
        pass


# --- what to run ---------------------------------------------------------------------


def _load(args: argparse.Namespace) -> tuple[Runbook, TaskRef, list[int], Inventory]:
    from runbook.parse.parser import parse_file
    from runbook.targets.inventory import Inventory

    runbook = parse_file(args.file)
    try:
        ref = resolve_task(runbook, args.task)
    except KeyError:
        known = ", ".join(t.id for t in runbook.tasks[:8]) + (", ..." if len(runbook.tasks) > 8 else "")
        raise UserError(f"{args.file}: no task {args.task!r} (tasks: {known or 'none'})", EXIT_USAGE) from None
    runnable = [s.number for s in ref.steps if s.runnable]
    if args.step is not None:
        try:
            st = ref.step(args.step)
        except KeyError:
            raise UserError(f"{args.file}: task {ref.id} has no step {args.step}", EXIT_USAGE) from None
        if not st.runnable:
            raise UserError(f"{args.file}:{st.line}: {ref.id} step {args.step} has nothing to run", EXIT_USAGE)
        steps = [args.step]
    else:
        steps = runnable
        if not steps:
            raise UserError(f"{args.file}: task {ref.id} has no step with a command or file to run", EXIT_USAGE)
    inventory = Inventory.load(args.inventory)
    return runbook, ref, steps, inventory


def _secret_names(runbook: Runbook, ref: TaskRef) -> tuple[str, ...]:
    names = list(runbook.secrets)
    try:
        names.extend(runbook.task(ref.id).secrets)
    except KeyError:
        pass
    return tuple(names)


def _needed(ref: TaskRef, steps: list[int], secret_names: tuple[str, ...]) -> dict[str, bool]:
    """Placeholder name -> secret, for every placeholder the steps' blocks use."""
    from sessions.planning.substitution import is_secret

    needed: dict[str, bool] = {}
    for n in steps:
        st = ref.step(n)
        used: set[str] = set()
        for b in st.blocks:
            if b.kind in ("command", "file"):
                used.update(placeholder_names(b.code, st.placeholders, b.kind))
        for p in st.placeholders:
            if p.name in used:
                needed[p.name] = needed.get(p.name, False) or is_secret(p, secret_names)
    return needed


def _values(args: argparse.Namespace, needed: dict[str, bool], known: dict[str, str],
            prompter: Prompter | None, *, prompt: bool) -> tuple[dict[str, str], list[str]]:
    from sessions.commands.var_file import read_var_file

    given: dict[str, str] = {}
    source: dict[str, str] = {}
    for path in getattr(args, "var_file", None) or []:
        for name, value in read_var_file(path).items():
            given[name], source[name] = value, f"--var-file {path}"
    for item in args.var or []:
        m = _VAR_RE.match(item)
        if not m:
            raise UserError(f"--var {item.split('=', 1)[0]!r}: expected NAME=VALUE", EXIT_USAGE)
        name = normalise(m.group(1))
        given[name], source[name] = m.group(2), "--var"
    unused = sorted(set(given) - set(needed))
    if unused:
        say(f"note: --var {', '.join(unused)} not used by the selected steps")
    on_argv = sorted(n for n in given if source[n] == "--var" and needed.get(n))
    if on_argv:
        say(f"note: secret {', '.join(on_argv)} given with --var is visible in 'ps' on this host; "
            "prefer --var-file FILE (mode 600) or stdin")
    values: dict[str, str] = {}
    missing: list[str] = []
    for name, secret in needed.items():
        if name in given:
            values[name] = given[name]
        elif os.environ.get(name) is not None:
            values[name] = os.environ[name]
            source[name] = "the environment"
        elif name in known:
            values[name] = known[name]
            continue  # already accepted by this session
        elif prompt and prompter is not None:
            while True:
                try:
                    value = prompter.secret(f"{name} (secret)") if secret else prompter.text(name)
                except EOFError:
                    value = ""
                if value == "":
                    raise UserError(f"no value given for {name}", EXIT_USAGE)
                problem = secret_value_problem(value) if secret else None
                if not problem:
                    break
                say(f"{name}: {problem}; try again")
            values[name] = value
            continue
        else:
            missing.append(name)
            continue
        _check_secret(name, values[name], secret, source.get(name, ""))
    return values, missing


def _check_secret(name: str, value: str, secret: bool, source: str) -> None:
    problem = secret_value_problem(value) if secret else None
    if problem:
        raise UserError(f"{name}{f' (from {source})' if source else ''}: {problem}", EXIT_USAGE)


def _values_from_stdin(needed: dict[str, bool], values: dict[str, str], missing: list[str]) -> list[str]:
    """stdin is not a terminal and values are missing: read them from it (see
    :mod:`sessions.commands.var_file`).  Returns what is still missing."""
    from sessions.commands.var_file import read_stdin_values

    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return missing
    piped = read_stdin_values(fd, [n for n in missing if needed[n]])
    for name in list(missing):
        if name in piped:
            _check_secret(name, piped[name], needed[name], "stdin")
            values[name] = piped[name]
    return [n for n in missing if n not in piped]


# --- dry run -------------------------------------------------------------------------


def _dry_run(runbook: Runbook, ref: TaskRef, steps: list[int], inventory: Inventory, args: argparse.Namespace,
             values: dict[str, str], missing: list[str], secret_names: tuple[str, ...]) -> int:
    out = sys.stdout
    print(f"# dry run: {ref.id} {ref.title} ({runbook.path}); nothing runs, no session is created", file=out)
    shown: set[str] = set()
    plans = []
    state = SessionState()
    if getattr(args, "approvers", None):  # show the approval the run would wait for
        from sessions.journal.events import ApproversSet
        from sessions.state.state import apply
        from sessions.team.approval import read_approvers

        text, sha = read_approvers(args.approvers)
        state = apply(state, ApproversSet(args.approvers, sha, text))
    for n in steps:
        plan = plan_step(runbook, inventory, ref.id, n, target=args.target, values=values,
                         secret_names=secret_names, state=state, detached=args.detached)
        plans.append(plan)
        _print_plan(plan, out, shown)
    if missing:
        print(f"# missing values (give --var NAME=VALUE or set the environment): {', '.join(missing)}", file=out)
    untargeted = [p for p in plans if not p.target_chosen]
    if untargeted:
        print(f"# {len(untargeted)} step(s) have no target: exec refuses them; {_how_to_choose(runbook, untargeted)}",
              file=out)
    return 0


def _how_to_choose(runbook: Runbook, plans: list[PlannedStep]) -> str:
    from runbook.parse.annotations import bindings_path
    from sessions.planning.targeting import binding_key

    p = plans[0]
    example = f"{binding_key(p.task, p.step, p.rollback)}: {p.suggestions[0].pattern if p.suggestions else 'PATTERN'}"
    return (f"give --target PATTERN, or bind them in {bindings_path(runbook.path)} (e.g. \"{example}\"; "
            "\"default: local\" for every step without one)")


def _refuse_untargeted(runbook: Runbook, plans: list[PlannedStep]) -> None:
    """No step runs on a host nobody chose: exit 2 before anything runs, naming every such step."""
    from sessions.planning.targeting import not_chosen_text

    untargeted = [p for p in plans if not p.target_chosen]
    if not untargeted:
        return
    lines = [f"{p.task} step {p.step} ({p.title}): {not_chosen_text(p.suggestions)}" for p in untargeted]
    raise UserError(f"{runbook.path}: no target chosen; nothing was run:\n  " + "\n  ".join(lines)
                    + f"\n{_how_to_choose(runbook, untargeted)}", EXIT_USAGE)


def _print_plan(plan: PlannedStep, out: TextIO, shown: set[str]) -> None:
    spec = plan.spec
    if not plan.target_chosen:
        from sessions.planning.targeting import not_chosen_text

        print(f"\n== {plan.task} step {plan.step}: {plan.title}", file=out)
        print(f"   {not_chosen_text(plan.suggestions)}", file=out)
        for s in plan.suggestions[1:]:
            print(f"   also suggested: {s.text()}", file=out)
        for line in plan.script_redacted.rstrip("\n").splitlines():
            print(f"   | {line}", file=out)
        return
    opts = [plan.mode]
    if plan.pty:
        opts.append("pty")
    if spec.timeout:
        opts.append(f"timeout {spec.timeout:g}s")
    if plan.detached:
        opts.append("detached")
    if spec.serial and spec.pause:
        opts.append("pause between hosts")
    print(f"\n== {plan.task} step {plan.step}: {plan.title}", file=out)
    print(f"   on {len(plan.hosts)} host(s): {', '.join(plan.hosts)}  [{', '.join(opts)}; "
          f"target {spec.pattern!r} from {spec.source}]", file=out)
    for g in plan.guards:
        key = f"{g.kind} {g.task} {g.step}"  # task guards once (their text names the first step's hosts)
        if g.kind != "placeholder" and key not in shown:
            shown.add(key)
            print(f"   guard: {g.describe()}", file=out)
    for d in plan.diagnostics:
        print(f"   lint: {d.format()}", file=out)
    for line in plan.script_redacted.rstrip("\n").splitlines():
        print(f"   | {line}", file=out)


# --- guards --------------------------------------------------------------------------


def _ask(guard: Guard, prompter: Prompter, session: Session) -> None:
    """Resolve one guard on the terminal, or raise UserError (exit 1) when refused."""
    where = f"{guard.task} step {guard.step}" if guard.step is not None else guard.task
    if guard.needs == "confirm":
        if not prompter.confirm(f"{where}: {guard.message}"):
            raise UserError(f"{where}: not confirmed; nothing run", EXIT_FAILED)
        resolve(session, guard, "yes")
    elif guard.needs == "type_host":
        _show_commands(guard, f"{where}: these commands will run exactly as written:")
        for _ in range(3):
            answer = prompter.text(f"{where}: {guard.message}")
            if answer_ok(guard, answer):
                resolve(session, guard, answer)
                return
            say(f"that is not {guard.expected!r}")
        raise UserError(f"{where}: destructive command not confirmed; nothing run", EXIT_FAILED)
    elif guard.needs == "reason":
        reason = prompter.text(f"{where}: {guard.message}\nreason (empty to stop)").strip()
        if not reason:
            raise UserError(f"{where}: {guard.kind} guard not overridden; nothing run", EXIT_FAILED)
        resolve(session, guard, reason)
    else:
        for _ in range(3):
            value = prompter.secret(guard.expected) if guard.secret else prompter.text(guard.expected)
            if answer_ok(guard, value):
                resolve(session, guard, value)
                return
            say(f"{guard.expected}: {secret_value_problem(value) if guard.secret else 'a value is required'}")
        raise UserError(f"{where}: no usable value for {guard.expected}; nothing run", EXIT_USAGE)


def _show_commands(guard: Guard, heading: str) -> None:
    """The destructive commands of ``guard`` exactly as they will run, control characters visible."""
    if not guard.commands:
        return
    from runbook.sanitize.terminal_text import visible

    say(heading)
    for command in guard.commands:
        for line in visible(command).splitlines() or [""]:
            print(f"runbook:   | {line}", file=sys.stderr, flush=True)


def _override(args: argparse.Namespace) -> str:
    return (getattr(args, "override", None) or "").strip()


class TerminalAsker:
    """:class:`~sessions.engine.flow.Asker` of ``runbook exec``: the command line answers first
    (``--override``, ``--yes``, ``--approval``), then the terminal; without one, an error.  It
    never asks where a step runs (a step nobody targeted is refused before anything runs)."""

    def __init__(self, session: Session, args: argparse.Namespace, prompter: Prompter | None, approvals: Approvals,
                 stopped: asyncio.Event | None = None) -> None:
        self.session = session
        self.args = args
        self.prompter = prompter
        self.approvals = approvals
        self.stopped = stopped  # set on SIGTERM/SIGHUP: the approval wait ends too

    async def choose_target(self, task: str, step: int, rollback: bool) -> bool:
        return False

    async def resolve(self, guard: Guard) -> None:
        session, args = self.session, self.args
        if guard.needs == "reason" and _override(args):
            resolve(session, guard, _override(args))
        elif args.yes and guard.needs in ("confirm", "type_host"):
            where = f"{guard.task} step {guard.step}"
            _show_commands(guard, f"{where}: --yes confirms these destructive commands, as written:")
            resolve(session, guard, "", yes=True)
        elif self.prompter is not None:
            _ask(guard, self.prompter, session)
        elif guard.needs == "reason":
            raise UserError(f"{guard.describe()} (give --override REASON)", EXIT_FAILED)
        else:
            raise UserError(f"unresolved guard: {guard.describe()} (use a terminal, or --yes)", EXIT_USAGE)

    async def approve(self, guard: Guard, *, target: str | None, only_host: str | None) -> None:
        await _approve(self.approvals, self.session, guard.task, self.args, self.stopped)


def _precheck(plans: list[PlannedStep], args: argparse.Namespace, tty: bool) -> None:
    """Without a terminal: every guard not answered on the command line, and every pause, is an
    error naming them, before anything runs (exit 1 when an override is missing, else 2)."""
    if tty:
        return
    overrides: list[str] = []
    problems: list[str] = []
    for plan in plans:
        for g in plan.guards:
            text = g.describe()
            if g.needs == "approval":  # an approver's signature: waited for (or --approval), never asked
                continue
            if g.needs == "reason":
                if not _override(args) and text not in overrides:
                    overrides.append(text)
            elif g.needs != "value" and not args.yes and text not in problems:
                problems.append(text)
        if plan.spec.serial and plan.spec.pause and len(plan.hosts) > 1 and not args.yes:
            problems.append(f"pause ({plan.task} step {plan.step}): the operator is asked between hosts")
    if overrides:
        more = ("\n  also (--yes answers them):\n  " + "\n  ".join(problems)) if problems else ""
        raise UserError("guards need an override with a reason (--override REASON; --yes does not override):\n  "
                        + "\n  ".join(overrides) + more, EXIT_FAILED)
    if problems:
        raise UserError("unresolved guards (no terminal to ask; --yes accepts them):\n  " + "\n  ".join(problems),
                        EXIT_USAGE)


# --- running -------------------------------------------------------------------------


def exec_cmd(args: argparse.Namespace) -> int:
    """Handler of ``runbook exec`` (see the module docstring)."""
    from sessions.commands.exec_terminal import Prompter, stdin_is_tty

    for flag, value in (("--parallel", getattr(args, "parallel", None)),
                        ("--connect-limit", getattr(args, "connect_limit", None))):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be 1 or more (got {value})", EXIT_USAGE)
    check_target(args.target, "--target")
    runbook, ref, steps, inventory = _load(args)
    notify = notify_urls(args, runbook)
    mirror = _mirror_dest(args, runbook)
    announce: tuple[Event, ...] = ()
    if getattr(args, "from_mirror", None) and not args.dry_run:
        if args.session is not None:
            raise UserError("--from and --session: give one (--from copies the session from its mirror)", EXIT_USAGE)
        journal, announce = _from_mirror(args)
        args.session = str(journal)
    tty = stdin_is_tty()
    prompter = Prompter() if tty else None
    secret_names = _secret_names(runbook, ref)
    needed = _needed(ref, steps, secret_names)
    if args.dry_run:
        known, unknown = _values(args, needed, {}, None, prompt=False)
        return _dry_run(runbook, ref, steps, inventory, args, known, unknown, secret_names)
    values: dict[str, str] | None = None
    if args.session is None:
        values, missing = _values(args, needed, {}, prompter, prompt=tty)
        if missing and not tty:
            missing = _values_from_stdin(needed, values, missing)
        if missing:
            raise UserError(f"missing values for {', '.join(missing)} (no terminal to ask: give --var-file FILE, "
                            "NAME=VALUE lines on stdin, --var NAME=VALUE, or the environment)", EXIT_USAGE)
        plans = [plan_step(runbook, inventory, ref.id, n, target=args.target, values=values,
                           secret_names=secret_names, state=SessionState(), detached=args.detached) for n in steps]
        _refuse_untargeted(runbook, plans)
        _precheck(plans, args, tty)
    return asyncio.run(_run(args, runbook, ref, steps, inventory, tty, prompter, needed, values, notify,
                            mirror, announce))


def _mirror_dest(args: argparse.Namespace, runbook: Runbook) -> MirrorDest | None:
    """``--mirror DEST``, else the runbook's ``mirror:`` (front matter, bindings), checked (a bad
    one: exit 2).  The mirror module (asyncssh) is imported only when there is one."""
    if not getattr(args, "mirror", None) and not runbook.mirror:
        return None
    from sessions.team.mirror import MirrorDest

    if getattr(args, "mirror", None):
        return MirrorDest.parse(args.mirror)
    return MirrorDest.parse(runbook.mirror, f"{runbook.path}: mirror:")


def _from_mirror(args: argparse.Namespace) -> tuple[Path, tuple[Event, ...]]:
    """``--from DEST/ID``: the session copied from its mirror into the local store (its chain
    verified) and the handover event its resume journals."""
    from sessions.engine.operator import current_operator
    from sessions.store import session_root
    from sessions.team.mirror import fetch_from_mirror, split_from

    dest, sid = split_from(args.from_mirror, None)
    fetched = asyncio.run(fetch_from_mirror(dest, sid, session_root(args.session_dir),
                                            known_hosts=args.known_hosts))
    who = current_operator()
    say(f"copied {fetched.records} records of session {sid} from {fetched.source}; the chain verifies"
        + (f" (a torn last record of {fetched.torn_bytes} bytes is dropped)" if fetched.torn_bytes else ""))
    return fetched.journal, (fetched.handover(who.name, who.host),)


def _start_mirror(session: Session, dest: MirrorDest | None, args: argparse.Namespace) -> JournalMirror | None:
    if dest is None:
        return None
    from sessions.team.mirror import JournalMirror, change_text

    mirror = JournalMirror(session, dest, known_hosts=args.known_hosts, accept_new_host_keys=args.accept_new_host_keys,
                           on_change=lambda st: say(change_text(st)))
    mirror.start()
    return mirror


def notify_urls(args: argparse.Namespace, runbook: Runbook) -> list[str]:
    """``--notify`` URLs then the runbook's (front matter, bindings), checked: a bad one is exit 2.
    The notifier module is imported only when there is one."""
    urls = list(getattr(args, "notify", None) or []) + list(runbook.notify)
    if not urls:
        return []
    from sessions.team.notify import check_urls

    return check_urls(urls)


def _supply_values(session: Session, args: argparse.Namespace, needed: dict[str, bool], values: dict[str, str] | None,
                   prompter: Prompter | None, tty: bool) -> None:
    """Journal the values the steps need (hashes only for secrets); ``values`` None: a resumed
    session, which may know some already; the rest are asked for or read."""
    if values is None:
        values, missing = _values(args, needed, dict(session.values), prompter, prompt=tty)
        if missing and not tty:
            missing = _values_from_stdin(needed, values, missing)
        if missing:
            raise UserError(f"missing values for {', '.join(missing)} (no terminal to ask: give --var-file "
                            "FILE, NAME=VALUE lines on stdin, --var NAME=VALUE, or the environment)", EXIT_USAGE)
    for name, value in values.items():
        if session.values.get(name) != value or name not in session.state.placeholders:
            session.supply(name, value, needed[name])


async def _run(args: argparse.Namespace, runbook: Runbook, ref: TaskRef, steps: list[int], inventory: Inventory, tty: bool,
               prompter: Prompter | None, needed: dict[str, bool], values: dict[str, str] | None,
               notify: list[str] | None = None, mirror_dest: MirrorDest | None = None,
               announce: tuple[Event, ...] = ()) -> int:
    from sessions.commands.exec_terminal import HostPrinter
    from sessions.engine.engine import Engine
    from sessions.engine.session import Session
    from sessions.engine.stop_signals import StopSignals

    if args.session is not None:
        session = Session.resume(args.session, runbook=runbook, announce=announce)
    else:
        session = Session.create(runbook, root=args.session_dir, inventory_path=args.inventory)
    say(f"session {session.id} ({session.journal.path})")
    for w in session.warnings:
        say(w)
    notifier: Notifier | None = None
    if notify:
        from sessions.team.notify import Notifier

        notifier = Notifier(session, notify)
        notifier.start()
        say(f"notifications to {', '.join(t.shown for t in notifier.targets)}")
    mirror = _start_mirror(session, mirror_dest, args)
    engine: Engine | None = None
    code = EXIT_FAILED
    reason = "exec failed"
    main = asyncio.current_task()
    ctl: dict[str, Any] = {"interrupts": 0, "recovering": False}

    stop_event = asyncio.Event()

    def stopped(_code: int) -> None:
        """Every step is stopped: _steps sees the signal and returns (a wait for an approval
        ends); while re-attaching detached runs (they go on without us) the main task is
        cancelled instead."""
        stop_event.set()
        if ctl["recovering"] and main is not None:
            main.cancel()

    stopper = StopSignals(lambda: session, lambda: engine, stopped)
    stopper.install()
    session.on_write_error(lambda exc: say(f"{exc}: the journal cannot be written; stopping the running step"))
    ctl["stopper"] = stopper
    ctl["stop_event"] = stop_event
    try:
        _supply_values(session, args, needed, values, prompter, tty)

        async def on_pause(done: str, next_host: str) -> bool:
            if args.yes:
                return True
            if prompter is None:
                return False
            return bool(prompter.confirm(f"{done} done; continue with {next_host}?"))

        engine = Engine(session, inventory, known_hosts=args.known_hosts,
                        accept_new_host_keys=args.accept_new_host_keys, detached=args.detached,
                        parallel_limit=getattr(args, "parallel", None) or 10,
                        connect_limit=getattr(args, "connect_limit", None) or 10, on_pause=on_pause,
                        on_warning=say)
        approvals = _approvals(session, engine, args)
        ctl["approvals"] = approvals
        if args.session is not None:
            ctl["recovering"] = True
            await engine.recover()
            ctl["recovering"] = False
            plans = [engine.plan(ref.id, n, target=args.target) for n in steps if not _done(session, ref, n, args)]
            _refuse_untargeted(runbook, plans)
            _precheck(plans, args, tty)
        session.subscribe(HostPrinter())
        code, reason = await _steps(engine, session, ref, steps, args, prompter, tty, ctl)
    except UserError as exc:
        if stopper.signum is not None:  # e.g. the wait for an approval, ended by SIGTERM/SIGHUP
            say(str(exc))
            code, reason = stopper.code, f"exec stopped by {stopper.name}"
        else:
            code = exc.exit_code
            reason = f"exec stopped: {exc}"
            raise
    except asyncio.CancelledError:
        if stopper.signum is None:
            reason = "exec interrupted"
            raise
        code, reason = stopper.code, f"exec stopped by {stopper.name}"
    except BaseException:
        reason = "exec interrupted"
        raise
    finally:
        ctl["recovering"] = False
        if stopper.signum is not None and code != stopper.code:  # the signal came as the last step ended
            code, reason = stopper.code, f"exec stopped by {stopper.name}"
        try:
            if engine is not None:
                await engine.close()
            if notifier is not None:  # the closing message, and what is still waiting (bounded)
                await notifier.finish(reason if code else "exec finished")
        finally:
            session.close(reason=reason if code else "exec finished")
            stopper.remove()
            if mirror is not None:  # the last records (session_closed), bounded
                await mirror.finish()
            say(f"session {session.id}: {reason if code else 'all steps succeeded'}")
    return code


async def _steps(engine: Engine, session: Session, ref: TaskRef, steps: list[int], args: argparse.Namespace,
                 prompter: Prompter | None, tty: bool, ctl: dict[str, Any]) -> tuple[int, str]:
    """Each step along the one path (:class:`~sessions.engine.flow.StepFlow`), asking here."""
    from sessions.engine.flow import Declined, StepFlow, StepRequest

    flow = StepFlow(engine, TerminalAsker(session, args, prompter, ctl["approvals"], ctl.get("stop_event")))
    for n in steps:
        stopper = ctl.get("stopper")
        if stopper is not None and stopper.signum is not None:  # SIGTERM/SIGHUP between steps
            return stopper.code, f"exec stopped by {stopper.name}"
        if _done(session, ref, n, args):
            say(f"{ref.id} step {n}: already succeeded in this session; skipped")
            continue
        request = StepRequest(ref.id, n, target=args.target)
        try:
            plan = await flow.prepare(request)
        except Declined as exc:
            raise UserError(f"{request.what}: {exc}", EXIT_FAILED) from None
        say(f"{ref.id} step {n}: {plan.title} -- on {', '.join(plan.hosts)} ({plan.mode})")
        summary = await _run_one(engine, functools.partial(flow.run_prepared, request, plan), tty and plan.pty, ctl)
        stopper = ctl.get("stopper")
        if stopper is not None and stopper.signum is not None:
            _report_failure(ref.id, n, summary)
            return stopper.code, f"exec stopped by {stopper.name}"
        if summary.outcome == "cancelled" and ctl["interrupts"]:
            return EXIT_INTERRUPTED, f"{ref.id} step {n} interrupted"
        if not summary.ok:
            _report_failure(ref.id, n, summary)
            what = {"succeeded": "failed", "expectation_failed": "failed (expectation)"}.get(summary.outcome,
                                                                                          summary.outcome)
            return EXIT_FAILED, f"{ref.id} step {n} {what}"
        say(f"{ref.id} step {n}: succeeded on {len(summary.hosts)} host(s)")
    return 0, "all steps succeeded"


def _approvals(session: Session, engine: Engine, args: argparse.Namespace) -> Approvals:
    """The session's approvals; ``--approvers FILE`` journaled when it is new to the session."""
    from sessions.team.approval import Approvals

    approvals = Approvals(session, lambda task, n: engine.plan(task, n, target=args.target),
                          getattr(args, "operator_key", None) or ())
    approvers = getattr(args, "approvers", None)
    if approvers and approvals.set_approvers(approvers):
        say(f"approvers: {approvers} (journaled; every CRITICAL task and every task marked approval=required "
            "waits for one of them)")
    return approvals


async def _approve(approvals: Approvals, session: Session, task: str, args: argparse.Namespace,
                   stopped: asyncio.Event | None = None) -> None:
    """A four-eyes approval for ``task``: ``--approval FILE`` checked at once, else a request
    written into the session directory and its signature waited for (Ctrl-C stops waiting)."""
    from sessions.team.approval import read_signature, signature_path

    given = getattr(args, "approval", None)
    if given:
        data = read_signature(given)
        if approvals.latest_request(task) is None:
            raise UserError(f"{given}: no approval was requested for {task} in session {session.id}: an approval "
                            f"signs one session's request (resume that session with --session ID)", EXIT_FAILED)
        verdict = approvals.offer(task, data, given)
        if not verdict.ok:
            raise UserError(f"{task}: approval {given} refused: {verdict.reason}; nothing run", EXIT_FAILED)
        say(f"{task}: approved by {verdict.principal} ({verdict.fingerprint})")
        return
    pending = approvals.latest_request(task)
    if pending is not None and approvals.reusable(pending):
        request_path = Path(pending.path)
        say(f"{task}: waiting again for the approval requested in {request_path}")
    else:
        _request, request_path = approvals.request(task)
        pending = approvals.latest_request(task)
    assert pending is not None
    sig = signature_path(request_path)
    say(f"{task} needs a four-eyes approval. Give an approver the request {request_path}; they run:")
    say(f"  runbook approve {request_path} --sign ~/.ssh/id_ed25519      (or --sign-agent)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    relay: asyncio.Task[bool] | None = None
    if stopped is not None:  # SIGTERM/SIGHUP (StopSignals) ends the wait as Ctrl-C does
        relay = loop.create_task(stopped.wait())
        relay.add_done_callback(lambda _t: stop.set())
    try:
        loop.add_signal_handler(signal.SIGINT, stop.set)
    except (NotImplementedError, RuntimeError):
        pass
    say(f"waiting for {sig} (Ctrl-C stops waiting; later: runbook exec ... --session {session.id} "
        f"--approval FILE)")
    try:
        waited = await approvals.wait(task, pending, sig, stop=stop,
                                       on_refused=lambda v: say(f"{task}: approval {sig} refused: {v.reason}; "
                                                                "still waiting"))
    finally:
        if relay is not None:
            relay.cancel()
        try:
            loop.remove_signal_handler(signal.SIGINT)
        except (NotImplementedError, RuntimeError):
            pass
    if waited is None:
        raise UserError(f"{task}: stopped waiting for the approval; nothing run (request {request_path})",
                        EXIT_INTERRUPTED)
    say(f"{task}: approved by {waited.principal} ({waited.fingerprint})")


def _done(session: Session, ref: TaskRef, step: int, args: argparse.Namespace) -> bool:
    """A whole task run in an existing session skips the steps that already succeeded."""
    return args.step is None and args.session is not None and session.state.step_status(ref.id, step) == "succeeded"


async def _run_one(engine: Engine, run: Callable[[], Awaitable[RunSummary]], raw_input: bool,
                   ctl: dict[str, Any]) -> RunSummary:
    """``run()`` with Ctrl-C interrupting the step (and raw input sent on for a PTY step)."""
    loop = asyncio.get_running_loop()
    background: set[asyncio.Task[Any]] = set()  # the loop keeps only weak references to tasks

    def spawn(coro: Any) -> None:
        task = loop.create_task(coro)
        background.add(task)
        task.add_done_callback(background.discard)

    def on_sigint() -> None:
        ctl["interrupts"] += 1
        n = ctl["interrupts"]
        say("interrupting the running step (Ctrl-C again to stop it harder)" if n == 1 else "stopping the step")
        spawn(engine.cancel())

    raw = None
    if raw_input:
        from sessions.commands.exec_terminal import RawInput

        def send(data: bytes) -> None:
            for run_id in engine.running():
                for host in engine.hosts_running(run_id):
                    spawn(engine.send_input(run_id, host, data))

        raw = RawInput(loop, send)
        raw.start()
    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError):
        pass
    try:
        return await run()
    finally:
        try:
            loop.remove_signal_handler(signal.SIGINT)
        except (NotImplementedError, RuntimeError):
            pass
        if raw is not None:
            raw.stop()


def _report_failure(task: str, step: int, summary: RunSummary) -> None:
    for host, h in summary.hosts.items():
        r = h.result
        if r.outcome == "unknown":
            say(f"{host}: {task} step {step}: outcome UNKNOWN: {r.error or 'the end was not seen'}; "
                "check the host by hand and decide in the session")
        elif r.outcome != "succeeded":
            say(f"{host}: {task} step {step} {r.outcome}: {r.error or f'exit status {r.exit_status}'}")
        for c in h.checks:
            if not c.passed:
                say(f"{host}: {task} step {step} failed (expectation): Expected #{c.index + 1} not met: "
                    f"{c.evidence}; decide it in the session (TUI: o)")
    if summary.skipped:
        why = f" ({summary.stopped})" if summary.stopped else ""
        say(f"{task} step {step}: not run on {', '.join(summary.skipped)}{why}")
