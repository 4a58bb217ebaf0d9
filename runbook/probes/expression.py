"""Probe expressions: ``k8s.nodes_ready(min=5, role="control-plane")``.

A probe expression is written in a runbook inside an HTML comment after an
acceptance criterion, or in a bindings file.  It looks like a Python call, and
it is parsed with :mod:`ast` -- never evaluated.  Only this shape is accepted::

    NAME(VALUE, ..., KEY=VALUE, ...)

where ``NAME`` is a dotted name (``k8s.pods_healthy``, ``cmd``) and every
``VALUE`` is a literal: a string, an integer, a float, ``True``/``False``
(``true``/``false`` too), ``None``, or a list/tuple of those.  Anything else
(names, attribute access, nested calls, ``*args``, f-strings, operators) is
rejected with a :class:`ProbeSyntaxError` that says what is wrong and where.

This module knows nothing of which probes exist: see :mod:`runbook.probes.registry`.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any

MAX_EXPRESSION_LENGTH = 4000

Value = str | int | float | bool | None | tuple[Any, ...]

_BOOL_NAMES = {"true": True, "false": False, "True": True, "False": False, "None": None, "null": None}


class ProbeSyntaxError(ValueError):
    """A probe expression that cannot be used.

    ``column`` is the 1-based column inside the expression when known (0 otherwise).
    """

    def __init__(self, message: str, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.column = column

    def __str__(self) -> str:
        return f"{self.message} (column {self.column})" if self.column else self.message


@dataclass(frozen=True, slots=True)
class ProbeCall:
    """A parsed probe expression.

    ``name`` is the dotted probe name, ``args`` the positional values and
    ``kwargs`` the keyword values in the order written.  Lists become tuples so
    that a call is hashable.  ``text`` is the expression as written (stripped).
    """

    name: str
    args: tuple[Value, ...] = ()
    kwargs: tuple[tuple[str, Value], ...] = ()
    text: str = ""

    @property
    def kw(self) -> dict[str, Value]:
        return dict(self.kwargs)

    def format(self) -> str:
        """The canonical spelling, e.g. ``k8s.nodes_ready(min=5, role="control-plane")``."""
        return format_probe(self.name, *self.args, **dict(self.kwargs))


def _column(node: ast.AST) -> int:
    return getattr(node, "col_offset", -1) + 1


def _dotted_name(node: ast.expr) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise ProbeSyntaxError("probe name must be a dotted name such as k8s.nodes_ready", _column(node))
    parts.append(node.id)
    return ".".join(reversed(parts))


def _literal(node: ast.expr, depth: int = 0) -> Value:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, (str, bool, int, float)) or node.value is None:
            return node.value
        raise ProbeSyntaxError(f"unsupported value {node.value!r}: use a string, number, true/false or a list", _column(node))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = node.operand
        if isinstance(inner, ast.Constant) and isinstance(inner.value, (int, float)) and not isinstance(inner.value, bool):
            return -inner.value if isinstance(node.op, ast.USub) else inner.value
    if isinstance(node, ast.Name) and node.id in _BOOL_NAMES:
        return _BOOL_NAMES[node.id]
    if isinstance(node, (ast.List, ast.Tuple)) and depth == 0:
        return tuple(_literal(elt, depth + 1) for elt in node.elts)
    if isinstance(node, ast.Name):
        raise ProbeSyntaxError(f"{node.id} is not a value: quote strings, e.g. \"{node.id}\"", _column(node))
    if isinstance(node, ast.JoinedStr):
        raise ProbeSyntaxError("f-strings are not allowed in probes", _column(node))
    if isinstance(node, ast.Call):
        raise ProbeSyntaxError("nested calls are not allowed in probes", _column(node))
    raise ProbeSyntaxError(
        f"unsupported value ({type(node).__name__}): use a string, number, true/false or a list", _column(node)
    )


def parse_probe(text: str) -> ProbeCall:
    """Parse a probe expression into a :class:`ProbeCall`; raise :class:`ProbeSyntaxError`.

    A bare name (``k8s.api_reachable``) is accepted as a call without arguments.
    """
    if not isinstance(text, str):
        raise ProbeSyntaxError("probe expression must be text")
    source = text.strip()
    if not source:
        raise ProbeSyntaxError("empty probe expression")
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ProbeSyntaxError(f"probe expression longer than {MAX_EXPRESSION_LENGTH} characters")
    if "\n" in source or "\r" in source:
        # Multi-line expressions would make line numbers in diagnostics lie.
        source = " ".join(source.split())
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        msg = (exc.msg or "invalid syntax").replace("Perhaps you forgot a comma?", "").strip()
        raise ProbeSyntaxError(f"not a probe expression: {msg}", exc.offset or 0) from None
    except (ValueError, RecursionError, MemoryError, OverflowError, SystemError) as exc:
        raise ProbeSyntaxError(f"not a probe expression: {exc}") from None
    body = tree.body
    if isinstance(body, (ast.Name, ast.Attribute)):
        return ProbeCall(name=_dotted_name(body), text=source)
    if not isinstance(body, ast.Call):
        raise ProbeSyntaxError("a probe is a call such as k8s.nodes_ready(min=3)", _column(body))
    name = _dotted_name(body.func)
    args: list[Value] = []
    for arg in body.args:
        if isinstance(arg, ast.Starred):
            raise ProbeSyntaxError("*args is not allowed in probes", _column(arg))
        args.append(_literal(arg))
    kwargs: list[tuple[str, Value]] = []
    for kw in body.keywords:
        if kw.arg is None:
            raise ProbeSyntaxError("**kwargs is not allowed in probes", _column(kw.value))
        if any(kw.arg == seen for seen, _ in kwargs):
            raise ProbeSyntaxError(f"{kw.arg} given twice", _column(kw.value))
        kwargs.append((kw.arg, _literal(kw.value)))
    return ProbeCall(name=name, args=tuple(args), kwargs=tuple(kwargs), text=source)


def format_value(value: Any) -> str:
    """Spell one value as a probe literal (strings in double quotes when possible)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        if '"' in value and "'" not in value:
            return repr(value)
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return repr(value)


def format_probe(probe_name: str, /, *args: Any, **kwargs: Any) -> str:
    """Spell a probe expression: ``format_probe("k8s.nodes_ready", min=5)``."""
    parts = [format_value(a) for a in args]
    parts += [f"{k}={format_value(v)}" for k, v in kwargs.items()]
    return f"{probe_name}({', '.join(parts)})"

