"""Planning a step: which hosts, which script, what must be resolved first.

:func:`plan_step` is pure (no journal, no I/O but the inventory lookup): the engine
uses it before running, ``runbook exec --dry-run`` uses it without a session, the
TUI uses it to show what a step will do.

Where a step runs, highest first: the operator's choice (``target=``, i.e.
``--target`` or a run on one host; then the choice journaled for this step with
``TargetChosen``), an annotation in the runbook, the bindings file (the parser puts
both on ``Step.target`` / ``Block.target`` with ``TargetSpec.source``), the
operator's journaled choice for the task's untargeted steps, the document default.
Otherwise the step has **no target** (``PlannedStep.target_chosen`` is False, no
hosts): it is never run until someone chooses (the engine refuses), and
``PlannedStep.suggestions`` says what the document points at.  The pattern is
resolved through the inventory.

A step is a sequence of *segments*, in document order: consecutive command blocks
form one script (as if pasted into one terminal: variables and ``cd`` carry over;
a failing block stops the script with its status), and each file block is an
upload of its (filled) content to every target host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from runbook.errors import UserError
from runbook.model import Block, Diagnostic, Expectation, Placeholder, Runbook, Step, TargetSource, TargetSpec
from runbook.shell import errexit
from runbook.targets.inventory import Inventory, Target
from runbook.targets.suggest import Suggestion
from sessions.planning.guards import Guard, guards_for, resolve_task, step_diagnostics
from sessions.planning.secret_literals import find_literals, mask_literals, runbook_literals
from sessions.planning.substitution import fill, is_secret, mask, redact_values
from sessions.state.state import SessionState
from sessions.team.approval import approval_guard

BETWEEN_BLOCKS = errexit.BETWEEN_BLOCKS


@dataclass(frozen=True)
class Segment:
    """One thing every host does, in order: run a ``command`` script or upload a ``file``."""

    kind: str  # "command" | "file"
    text: str = field(repr=False)  # filled in with real values: never journal or print this
    redacted: str = ""
    path: str | None = None  # file: destination
    mode: int = 0o600  # file: permission bits
    lines: tuple[int, ...] = ()  # fence lines of the blocks in the runbook
    # command: the blocks of the script, and for each the code line of every line of its
    # filled text (None: the same lines), to say where a failing script stopped
    blocks: tuple[Block, ...] = field(default=(), repr=False)
    line_maps: tuple[tuple[int, ...] | None, ...] = field(default=(), repr=False)

    @property
    def mode_text(self) -> str:
        return f"{self.mode:04o}"

    def locate(self, stop: errexit.Stop) -> tuple[Block, int | None] | None:
        """The block a script stopped in and the 0-based index of the code line (None: unknown)."""
        if not 0 <= stop.block < len(self.blocks):
            return None
        block = self.blocks[stop.block]
        if stop.line is None:
            return block, None
        index = stop.line - 1
        line_map = self.line_maps[stop.block] if stop.block < len(self.line_maps) else None
        if line_map is not None:
            index = line_map[index] if index < len(line_map) else -1
        if not 0 <= index < len(block.code.splitlines()):
            return block, None
        return block, index


@dataclass(frozen=True)
class PlannedStep:
    """What running one step will do.  ``script_redacted`` is what ``StepStarted.command`` holds."""

    task: str
    step: int
    rollback: bool
    hosts: tuple[str, ...]
    spec: TargetSpec
    script_redacted: str
    blocks: tuple[Block, ...]
    missing: tuple[Placeholder, ...]
    guards: tuple[Guard, ...]
    title: str = ""
    segments: tuple[Segment, ...] = field(default=(), repr=False)
    targets: tuple[Target, ...] = field(default=(), repr=False)
    pty: bool = False
    detached: bool = False
    expected: tuple[Expectation, ...] = ()
    document: str = ""  # the runbook's path, to name lines in messages
    diagnostics: tuple[Diagnostic, ...] = ()  # lint findings inside the step
    suggestions: tuple[Suggestion, ...] = ()  # when no target was chosen: what the document points at

    @property
    def target_chosen(self) -> bool:
        """False when nobody chose where this step runs (it has no hosts and must not run)."""
        return self.spec.chosen

    @property
    def mode(self) -> str:
        return "serial" if self.spec.serial else "parallel"

    @property
    def runnable(self) -> bool:
        return bool(self.segments)


# --- PTY ------------------------------------------------------------------------

def needs_pty(script: str) -> bool:
    """A script wants a terminal (``-it``, a prompting ``sudo``, ...): ``runbook.shell.interactive.needs_pty``."""
    from runbook.shell.interactive import needs_pty as shell_needs_pty

    return shell_needs_pty(script)


# --- targets ----------------------------------------------------------------------


def check_target(target: str | TargetSpec | None, option: str = "target") -> None:
    """An operator's host pattern must name something: ``''`` or blanks are an error (exit 2)."""
    if isinstance(target, str) and not target.strip():
        raise UserError(f"{option} {target!r} is empty: give a host pattern (a host, a group, 'local')")


def step_spec(step: Step, target: str | TargetSpec | None = None, *, state: SessionState | None = None,
              task: str = "", rollback: bool = False) -> TargetSpec:
    """The effective spec of a step: the operator's pattern over the runbook's options.

    ``target``: given for this run (``--target``, one host); ``state``: the session,
    whose journaled choices (``TargetChosen``) count for ``task``.  The result's
    pattern is ``""`` when nobody chose (see the module docstring for the order).

    :raises UserError: the operator's pattern is empty or blank (never "every host")
    """
    check_target(target)
    base = step.target
    if base is None:
        base = next((b.target for b in step.blocks if b.target is not None and b.kind == "command"), None)
    if base is None:
        base = TargetSpec()
    if isinstance(target, TargetSpec):
        return target
    if target:
        return replace(base, pattern=target, source=TargetSource.OPERATOR)
    if state is not None and task:
        choice = state.target_choice(task, step.number, rollback)
        if choice is None and not base.chosen:
            choice = state.task_target_choice(task, rollback)
        if choice is not None:
            return replace(base, pattern=choice.pattern, source=TargetSource.OPERATOR)
    return base


def resolve_hosts(inventory: Inventory | None, pattern: str, only_host: str | None = None) -> tuple[Target, ...]:
    """Targets for ``pattern`` (inventory order), optionally narrowed to ``only_host``."""
    if inventory is None:
        names = [p.strip() for p in pattern.split(",") if p.strip()]
        if names != ["local"] and names != ["localhost"]:
            raise UserError(f"target {pattern!r} needs an inventory (--inventory); without one only 'local' runs")
        targets: tuple[Target, ...] = (Target.local_machine(),)
    else:
        targets = tuple(inventory.resolve(pattern))
    if not targets:
        raise UserError(f"target {pattern!r} matches no host")
    if only_host is not None:
        targets = tuple(t for t in targets if t.name == only_host)
        if not targets:
            raise UserError(f"host {only_host!r} is not a target of {pattern!r}")
    return targets


def _mode(text: str | None) -> int:
    if not text:
        return 0o600
    try:
        value = int(str(text), 8)
    except ValueError:
        raise UserError(f"file mode {text!r} is not octal (e.g. 0644)") from None
    if not 0 <= value <= 0o7777:
        raise UserError(f"file mode {text!r} out of range")
    return value


def build_segments(
    runbook: Runbook, step: Step, spec: TargetSpec, values: Mapping[str, str], secret_names: Iterable[str] = ()
) -> tuple[tuple[Segment, ...], tuple[str, ...]]:
    """The step's segments with placeholders filled; also the names of missing values."""
    segments: list[Segment] = []
    missing: list[str] = []
    pending: list[tuple[Block, str, str]] = []
    secret_names = tuple(secret_names)

    def flush() -> None:
        if not pending:
            return
        text = errexit.script((t, errexit.errexit_on(b.annotations)) for b, t, _ in pending)
        shown = ("\n" + BETWEEN_BLOCKS + "\n").join(r for _, _, r in pending)
        segments.append(Segment(
            "command", text, shown + "\n", lines=tuple(b.line for b, _, _ in pending),
            blocks=tuple(b for b, _, _ in pending),
            line_maps=tuple(_line_map(b, t, step, values, secret_names) for b, t, _ in pending)))
        pending.clear()

    for block in step.blocks:
        if block.kind not in ("command", "file"):
            continue
        filled = fill(block.code, step.placeholders, values, kind=block.kind, secret_names=secret_names)
        missing.extend(n for n in filled.missing if n not in missing)
        if block.kind == "command":
            pending.append((block, filled.text.rstrip("\n"), filled.redacted.rstrip("\n")))
            continue
        flush()
        if not block.path:
            raise UserError(f"{runbook.path}:{block.line}: file block without a destination path")
        mode_text = (block.target.mode if block.target is not None and block.target.mode else None) or spec.mode
        segments.append(Segment("file", filled.text, filled.redacted, block.path, _mode(mode_text), (block.line,)))
    flush()
    return tuple(segments), tuple(missing)


def _line_map(block: Block, text: str, step: Step, values: Mapping[str, str],
              secret_names: tuple[str, ...]) -> tuple[int, ...] | None:
    """Code line of each line of ``text`` (the filled block) when a value spans lines; else None."""
    code_lines = block.code.rstrip("\n").split("\n")
    if text.count("\n") == len(code_lines) - 1:
        return None
    out: list[int] = []
    for i, line in enumerate(code_lines):
        filled = fill(line, step.placeholders, values, kind=block.kind, secret_names=secret_names).text
        out.extend([i] * (filled.count("\n") + 1))
    return tuple(out)


def render_script(segments: Sequence[Segment]) -> str:
    """The redacted script of a whole step, as journaled and shown."""
    parts: list[str] = []
    for seg in segments:
        if seg.kind == "command":
            parts.append(seg.redacted.rstrip("\n"))
        else:
            body = seg.redacted if seg.redacted.endswith("\n") or not seg.redacted else seg.redacted + "\n"
            parts.append(f"# --- upload {seg.path} (mode {seg.mode_text}) ---\n{body}# --- end of {seg.path} ---")
    return "\n".join(parts) + ("\n" if parts else "")


def plan_step(
    runbook: Runbook,
    inventory: Inventory | None,
    task: str,
    step: int,
    *,
    rollback: bool = False,
    target: str | TargetSpec | None = None,
    only_host: str | None = None,
    values: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    secret_names: Iterable[str] = (),
    state: SessionState | None = None,
    now: datetime | None = None,
    window_end: datetime | str | None = None,
    detached: bool = False,
) -> PlannedStep:
    """Plan ``task`` step ``step`` (raises :class:`UserError` for an unknown task/step/pattern).

    ``values``: placeholder values in memory.  ``secrets``: name -> value of every
    secret known to the session, masked wherever it appears in the shown script.
    """
    values = dict(values or {})
    try:
        ref = resolve_task(runbook, task)
        st = ref.step(step, rollback)
    except KeyError as exc:
        raise UserError(f"{runbook.path}: {exc.args[0]}") from None
    spec = step_spec(st, target, state=state, task=task, rollback=rollback)
    suggestions: tuple[Suggestion, ...] = ()
    if spec.chosen:
        targets = resolve_hosts(inventory, spec.pattern, only_host)
    else:  # nobody chose: no hosts, nothing runs; say what the document points at
        from sessions.planning.targeting import suggestions_for

        targets = ()
        suggestions = tuple(suggestions_for(runbook, inventory, task, st, rollback, state))
    hosts = tuple(t.name for t in targets)
    segments, missing_names = build_segments(runbook, st, spec, values, secret_names)
    secret_values = dict(secrets or {})
    secret_values.update({p.name: values[p.name] for p in st.placeholders
                          if is_secret(p, secret_names) and p.name in values})
    literals = runbook_literals(runbook)  # `export DB_PASSWORD=hunter2` in the runbook: a secret too
    marked = set(secret_names) | set(runbook.secrets)
    segments = tuple(
        replace(s, redacted=redact_values(
            mask_literals(s.redacted, find_literals(s.redacted, marked), mask) if s.kind == "command" else s.redacted,
            secret_values, named=[(name, value) for value, name in literals.items()]))
        for s in segments
    )
    script = render_script(segments)
    missing = tuple(p for p in st.placeholders if p.name in missing_names)
    guards = guards_for(
        state if state is not None else SessionState(), runbook, task, step, hosts, now, window_end,
        rollback=rollback, values=values, secret_names=secret_names,
        commands=[s.redacted for s in segments if s.kind == "command"],
    )
    pty = spec.pty or any(needs_pty(s.text) for s in segments if s.kind == "command")
    planned = PlannedStep(
        task=task, step=step, rollback=rollback, hosts=hosts, spec=spec, script_redacted=script,
        blocks=tuple(b for b in st.blocks if b.kind in ("command", "file")), missing=missing,
        guards=tuple(guards), title=st.title, segments=segments, targets=targets, pty=pty,
        detached=detached or spec.detached, expected=st.expected, document=runbook.path, suggestions=suggestions,
        diagnostics=tuple(step_diagnostics(runbook, st)),
    )
    # last: a four-eyes approval covers the plan as it will run, once everything else is settled
    approval = approval_guard(state if state is not None else SessionState(), runbook, planned)
    return planned if approval is None else replace(planned, guards=planned.guards + (approval,))
