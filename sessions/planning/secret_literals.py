"""Secret values written literally in a runbook's commands.

A runbook may assign a secret in plain text (``export DB_PASSWORD=hunter2``,
``mysql --password=hunter2``, ``kubeadm join --token abc...``).  Such a value is a
secret like one the operator typed: it is masked in the command that is journaled
and shown, and in the output (the step may echo it), in every format.

A literal is the value of a variable assignment (``NAME=VALUE``) or a long option
(``--NAME VALUE``, ``--NAME=VALUE``) whose name is secret (PASS, TOKEN, SECRET, KEY,
CERT, HASH, or marked secret by the runbook).  References (``$X``, ``<X>``), paths,
already-masked values and harmless words (``true``, ``auto``, ...) are not secrets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runbook.model import is_secret_name
from runbook.sanitize.redaction import MIN_SECRET_LEN

if TYPE_CHECKING:  # pragma: no cover
    from runbook.model import Runbook

VALUE = r"(\"[^\"\n]*\"|'[^'\n]*'|[^\s;&|()`'\"]+)"
ASSIGN_RE = re.compile(r"(?<![\w-])([A-Za-z_][A-Za-z0-9_]*)=" + VALUE)
OPTION_RE = re.compile(r"(?<![\w-])(--[A-Za-z0-9][A-Za-z0-9-]*)(=|[ \t]+)" + VALUE)
HARMLESS = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null", "ask", "accept-new", "auto"})


def is_reference(value: str) -> bool:
    """A value that names a secret rather than being one (``$X``, ``<X>``, a path, a mask)."""
    v = value.strip("\"'")
    return (
        not v
        or v[0] in "$<~/.-*"
        or "[REDACTED]" in v
        or "redacted" in v.lower()
        or "«" in v
        or set(v) <= {"*", "x", "X"}
        or v.lower() in HARMLESS
    )


@dataclass(frozen=True, slots=True)
class Literal:
    """One secret written in a command: ``name`` (variable or option, ``_`` for ``-``),
    ``value`` (without its quotes) and where the value (quotes included) sits."""

    name: str
    value: str
    start: int
    end: int


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def find_literals(command: str, secret_names: Iterable[str] = ()) -> list[Literal]:
    """The secret literals in ``command``, in order."""
    marked = set(secret_names)
    found: list[Literal] = []

    def secret(name: str) -> bool:
        return is_secret_name(name) or name in marked

    if "=" in command:
        for m in ASSIGN_RE.finditer(command):
            if secret(m.group(1)) and not is_reference(m.group(2)):
                found.append(Literal(m.group(1), _unquote(m.group(2)), m.start(2), m.end(2)))
    if "--" in command:
        for m in OPTION_RE.finditer(command):
            name = m.group(1)[2:].replace("-", "_")
            if secret(name) and not is_reference(m.group(3)):
                found.append(Literal(name, _unquote(m.group(3)), m.start(3), m.end(3)))
    found.sort(key=lambda lit: lit.start)
    out: list[Literal] = []
    for lit in found:  # `--x=A=B`: keep the first of overlapping matches
        if not out or lit.start >= out[-1].end:
            out.append(lit)
    return out


def mask_literals(command: str, literals: list[Literal], mask: Callable[[str], str]) -> str:
    """``command`` with each literal's value (quotes included) replaced by ``mask(name)``."""
    if not literals:
        return command
    parts: list[str] = []
    pos = 0
    for lit in literals:
        parts.append(command[pos:lit.start])
        parts.append(mask(lit.name))
        pos = lit.end
    parts.append(command[pos:])
    return "".join(parts)


def _command_blocks(runbook: Runbook) -> Iterator[str]:
    for phase in runbook.phases:
        for task in phase.tasks:
            steps = list(task.steps) + (list(task.rollback.steps) if task.rollback else [])
            for step in steps:
                yield from (b.code for b in step.blocks if b.kind == "command")
        for gate in phase.gates:
            for step in gate.steps:
                yield from (b.code for b in step.blocks if b.kind == "command")


_CACHE: dict[tuple[str, str], dict[str, str]] = {}


def runbook_literals(runbook: Runbook) -> dict[str, str]:
    """value -> name of every secret literal in the runbook's commands long enough to be
    redacted from output (:data:`runbook.sanitize.redaction.MIN_SECRET_LEN`; shorter ones are
    masked in commands only)."""
    key = (runbook.path, runbook.sha256)
    cached = _CACHE.get(key) if runbook.sha256 else None
    if cached is not None:
        return dict(cached)
    names = set(runbook.secrets)
    for task in runbook.tasks:
        names.update(task.secrets)
    out: dict[str, str] = {}
    for code in _command_blocks(runbook):
        for lit in find_literals(code, names):
            if len(lit.value) >= MIN_SECRET_LEN:
                out.setdefault(lit.value, lit.name)
    if runbook.sha256:
        if len(_CACHE) > 16:
            _CACHE.clear()
        _CACHE[key] = dict(out)
    return out

