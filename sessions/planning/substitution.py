"""Placeholder values into scripts and files, with a redacted twin for the journal.

A runbook writes a value the operator must supply as ``<UPPER_CASE>``, ``$VAR`` or
``${VAR}``; the parser lists them on :attr:`runbook.model.Step.placeholders`.  This
module fills them in:

* ``<NAME>`` (also ``<CERT-KEY>``, whose name is normalised to ``CERT_KEY``) is
  replaced by the value, as the operator would have typed it;
* ``$NAME`` / ``${NAME}`` in a *command* block are left to the shell: the script
  starts with a prelude assigning ``NAME='value'`` (single-quoted, so any value is
  safe; exported unless secret, so a secret never reaches child environments);
  ``${NAME:-default}`` and friends then work as the shell defines them;
* a *file* block is uploaded as written except for ``<NAME>`` (as the parser
  finds placeholders there: ``$VAR`` in a config file is the file's business).

Every substitution is done twice: once with the real values (the script that
travels on stdin to ``bash -s``) and once with secret values masked (the copy that
is journaled in ``StepStarted.command`` and shown in ``--dry-run``).  Names that are
not placeholders of the step are never touched, so ``$HOME`` or ``$(date)`` stay.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from runbook.model import Placeholder, is_secret_name
from runbook.parse.placeholders import BRACE_RE, SHELL_ANGLE_RE

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
ANGLE_RE = re.compile(r"<([A-Z][A-Z0-9]*(?:[_-][A-Z0-9]+)*)>")  # as runbook.parse.placeholders.ANGLE_RE
_DOLLAR_RE = re.compile(r"(?<!\\)\$(?:\{(" + _NAME + r")\}|(" + _NAME + r"))")


# set by the engine for every run (RunOptions.env): never placeholders to ask for
ENGINE_VARS = frozenset({"RUNBOOK_HOST", "RUNBOOK_TASK", "RUNBOOK_STEP", "RUNBOOK_RUN_ID"})


def mask(name: str) -> str:
    """What a secret value looks like in the journal and on screen."""
    return f"<redacted:{name}>"


def shell_quote(value: str) -> str:
    """Single-quote ``value`` for POSIX sh (works for every byte sequence but NUL)."""
    return "'" + value.replace("'", "'\\''") + "'"


def is_secret(ph: Placeholder, secret_names: Iterable[str] = ()) -> bool:
    """A placeholder is secret when the parser says so, its name says so, or the runbook marks it."""
    return ph.secret or is_secret_name(ph.name) or ph.name in set(secret_names)


@dataclass(frozen=True, slots=True)
class Filled:
    """One text with placeholders filled: ``text`` to send, ``redacted`` to journal/show."""

    text: str
    redacted: str
    missing: tuple[str, ...] = ()
    used: tuple[str, ...] = ()


def normalise(name: str) -> str:
    """``CERT-KEY`` -> ``CERT_KEY``, ``vm name`` -> ``VM_NAME`` (as the parser names placeholders)."""
    return re.sub(r"[-. ]", "_", name).upper()


_COMMAND_TOKEN_RE = re.compile(f"{SHELL_ANGLE_RE.pattern}|{BRACE_RE.pattern}")


def _token_re(kind: str) -> re.Pattern[str]:
    """Placeholder forms filled in place: ``<UPPER>`` in files; any ``<word>`` and ``{word}`` in commands."""
    return _COMMAND_TOKEN_RE if kind == "command" else ANGLE_RE


def _token_name(m: re.Match[str]) -> str:
    return normalise(next(g for g in m.groups() if g is not None))


def _angle_names(code: str, names: set[str], kind: str = "command") -> list[str]:
    found: list[str] = []
    for m in _token_re(kind).finditer(code):
        name = _token_name(m)
        if name in names and name not in found:
            found.append(name)
    return found


def _dollar_names(code: str, names: set[str]) -> list[str]:
    seen: list[str] = []
    for m in _DOLLAR_RE.finditer(code):
        name = m.group(1) or m.group(2)
        if name in names and name not in seen:
            seen.append(name)
    return seen


def fill(
    code: str,
    placeholders: Iterable[Placeholder],
    values: Mapping[str, str],
    *,
    kind: str = "command",
    secret_names: Iterable[str] = (),
) -> Filled:
    """Fill the step's ``placeholders`` in ``code`` (a ``command`` or ``file`` block).

    Placeholders without a value are left as written and reported in ``missing``
    (the engine refuses to run a step with missing values; ``--dry-run`` shows them).
    """
    phs = {p.name: p for p in placeholders if p.name not in ENGINE_VARS}
    secret_set = set(secret_names)
    secrets = {n for n, p in phs.items() if is_secret(p, secret_set)}
    used: list[str] = []
    missing: list[str] = []

    def note(name: str) -> None:
        if name not in used:
            used.append(name)
        if name not in values and name not in missing:
            missing.append(name)

    def sub_angle(text: str, redact: bool) -> str:
        if not phs or ("<" not in text and "{" not in text):
            return text

        def repl(m: re.Match[str]) -> str:
            name = _token_name(m)
            if name not in phs:
                return m.group(0)
            note(name)
            if name not in values:
                return m.group(0)
            return mask(name) if (redact and name in secrets) else values[name]

        return _token_re(kind).sub(repl, text)

    if kind == "file":
        return Filled(sub_angle(code, False), sub_angle(code, True), tuple(missing), tuple(used))

    text = sub_angle(code, False)
    redacted = sub_angle(code, True)
    dollar = _dollar_names(code, set(phs))
    prelude: list[str] = []
    prelude_redacted: list[str] = []
    for name in dollar:
        note(name)
        if name not in values:
            continue
        export = "" if name in secrets else "export "
        prelude.append(f"{export}{name}={shell_quote(values[name])}")
        shown = mask(name) if name in secrets else values[name]
        prelude_redacted.append(f"{export}{name}={shell_quote(shown)}")
    if prelude:
        text = "\n".join(prelude) + "\n" + text
        redacted = "\n".join(prelude_redacted) + "\n" + redacted
    return Filled(text, redacted, tuple(missing), tuple(used))


def placeholder_names(code: str, placeholders: Iterable[Placeholder], kind: str = "command") -> list[str]:
    """Names of ``placeholders`` that ``code`` uses (``$`` forms only in command blocks)."""
    names = {p.name for p in placeholders} - ENGINE_VARS
    found = _angle_names(code, names, kind)
    if kind == "command":
        for name in _dollar_names(code, names):
            if name not in found:
                found.append(name)
    return found


_MASK_RE = r"<redacted:[A-Za-z0-9_]+>"


def redact_values(text: str, secrets: Mapping[str, str], others: Iterable[str] = (), *,
                  named: Iterable[tuple[str, str]] = ()) -> str:
    """Replace every occurrence of each secret value (``secrets``: name -> value, and
    ``named``: (name, value) pairs) by its mask, and of each value in ``others`` by
    ``***``, in one pass: masks already in ``text`` are left as they are (a secret that
    happens to occur inside a mask never garbles it)."""
    pairs: dict[str, str] = {}
    for name, value in [*secrets.items(), *named]:
        if value:
            pairs.setdefault(value, mask(name))
    for value in others:
        if value:
            pairs.setdefault(value, "***")
    if not pairs or not text:
        return text
    alternatives = [re.escape(v) for v in sorted(pairs, key=len, reverse=True)]
    pattern = re.compile(_MASK_RE + "|" + "|".join(alternatives))
    return pattern.sub(lambda m: pairs.get(m.group(0), m.group(0)), text)
