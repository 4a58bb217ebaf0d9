"""Which probes exist, what arguments they take, and checking an expression against them.

Every probe registers itself with :func:`register` (``runbook.probes.k8s`` and
``runbook.probes.cmd``); :func:`bind` turns an expression into a
:class:`BoundProbe` with every argument checked and defaults filled in, or
raises :class:`~runbook.probes.expression.ProbeSyntaxError`.  :func:`check_probe`
is the one-line check for lint.

Every probe accepts ``timeout=SECONDS`` on top of its own parameters.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from runbook.probes.expression import ProbeCall, ProbeSyntaxError, format_value, parse_probe

ProbeFunc = Callable[..., Any]  # func(api, **args) -> Verdict, or an async func(ctx, **args) -> Verdict

PASS = "pass"
FAIL = "fail"
ERROR = "error"
NOT_CONFIGURED = "not_configured"
STATUSES = (PASS, FAIL, ERROR, NOT_CONFIGURED)

ParamKind = Literal["str", "int", "float", "bool", "strings"]
ProbeKind = Literal["k8s", "cmd"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one probe found: ``status`` (``pass``/``fail``/``error``/``not_configured``) and evidence."""

    status: str
    evidence: str


@dataclass(frozen=True, slots=True)
class Param:
    """One probe parameter.  ``kind`` ``strings`` takes a list of strings (or one string)."""

    name: str
    kind: ParamKind
    required: bool = False
    default: Any = None
    help: str = ""
    minimum: float | None = None
    choices: tuple[str, ...] = ()

    def check(self, probe: str, value: Any) -> Any:
        """Return ``value`` normalised, or raise :class:`ProbeSyntaxError`."""

        def bad(expected: str) -> ProbeSyntaxError:
            return ProbeSyntaxError(f"{probe}: {self.name} must be {expected}, not {format_value(value)}")

        if value is None:
            if self.required:
                raise bad("given")
            return None
        if self.kind == "str":
            if not isinstance(value, str) or not value.strip():
                raise bad("a non-empty string")
            if self.choices and value not in self.choices:
                raise bad("one of " + ", ".join(self.choices))
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise bad("true or false")
            return value
        if self.kind == "strings":
            items = (value,) if isinstance(value, str) else value
            if not isinstance(items, tuple) or not items or not all(isinstance(v, str) and v for v in items):
                raise bad("a string or a list of strings")
            return tuple(items)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        if self.kind == "int" and not isinstance(value, int):
            raise bad("a whole number")
        if self.minimum is not None and value < self.minimum:
            raise bad(f">= {format_value(self.minimum)}")
        if self.kind == "float" and self.name == "timeout" and value <= 0:
            raise bad("> 0")
        return value


TIMEOUT = Param("timeout", "float", help="seconds before the probe gives up (default: the caller's timeout)")


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """A registered probe.  ``func`` is a plain function for ``k8s`` probes
    (``func(api, **args) -> Verdict``, run in a thread) and a coroutine function
    for ``cmd`` probes (``func(ctx, **args) -> Verdict``)."""

    name: str
    kind: ProbeKind
    summary: str
    params: tuple[Param, ...]
    func: Callable[..., Any] = field(compare=False, repr=False)

    def signature(self) -> str:
        """``k8s.pod_ready(name=<str>, namespace="default", [timeout=<float>])``."""
        parts = []
        for p in self.params:
            kind = "list of str" if p.kind == "strings" else p.kind
            if p.required:
                parts.append(f"{p.name}=<{kind}>")
            elif p.default is None:
                parts.append(f"[{p.name}=<{kind}>]")
            else:
                parts.append(f"{p.name}={format_value(p.default)}")
        return f"{self.name}({', '.join(parts)})"


@dataclass(frozen=True, slots=True)
class BoundProbe:
    """A probe expression checked against its spec: ``args`` holds every parameter
    (defaults filled in, ``timeout`` excluded), ``timeout`` the per-probe override."""

    spec: ProbeSpec
    call: ProbeCall
    args: Mapping[str, Any]
    timeout: float | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def text(self) -> str:
        return self.call.text or self.call.format()


_PROBES: dict[str, ProbeSpec] = {}
_LOADED = False


def register(name: str, kind: ProbeKind, summary: str, *params: Param) -> Callable[[ProbeFunc], ProbeFunc]:
    """Decorator: register ``func`` as probe ``name`` with ``params`` (plus ``timeout``)."""

    def decorate(func: ProbeFunc) -> ProbeFunc:
        _PROBES[name] = ProbeSpec(name=name, kind=kind, summary=summary, params=tuple(params) + (TIMEOUT,), func=func)
        return func

    return decorate


def probes() -> dict[str, ProbeSpec]:
    """All built-in probes by name (imports the probe modules on first use; cheap)."""
    global _LOADED
    if not _LOADED:
        import runbook.probes.cmd
        import runbook.probes.k8s  # noqa: F401  (registers k8s.*)

        _LOADED = True
    return dict(_PROBES)


def get_spec(name: str) -> ProbeSpec:
    """The spec of probe ``name``; unknown names raise with a did-you-mean hint."""
    known = probes()
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=1)
    if not close and "." not in name:
        close = difflib.get_close_matches(f"k8s.{name}", list(known), n=1)
    hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(sorted(known))})"
    raise ProbeSyntaxError(f"unknown probe {name}{hint}")


def bind(expr: str | ProbeCall) -> BoundProbe:
    """Parse ``expr`` (if text) and check its arguments; raise :class:`ProbeSyntaxError`."""
    call = parse_probe(expr) if isinstance(expr, str) else expr
    spec = get_spec(call.name)
    by_name = {p.name: p for p in spec.params}
    positional = [p for p in spec.params if p.name != "timeout"]
    if len(call.args) > len(positional):
        raise ProbeSyntaxError(f"{spec.name}: too many positional arguments; use {spec.signature()}")
    given: dict[str, Any] = {}
    for param, value in zip(positional, call.args, strict=False):  # fewer args than parameters: the rest default
        given[param.name] = value
    for key, value in call.kwargs:
        if key not in by_name:
            close = difflib.get_close_matches(key, list(by_name), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ProbeSyntaxError(f"{spec.name}: unknown argument {key}{hint}; use {spec.signature()}")
        if key in given:
            raise ProbeSyntaxError(f"{spec.name}: {key} given twice")
        given[key] = value
    args: dict[str, Any] = {}
    for param in spec.params:
        if param.name not in given:
            if param.required:
                raise ProbeSyntaxError(f"{spec.name}: missing {param.name}; use {spec.signature()}")
            value = param.default
        else:
            value = param.check(spec.name, given[param.name])
        args[param.name] = value
    timeout = args.pop("timeout", None)
    return BoundProbe(spec=spec, call=call, args=args, timeout=timeout)


def check_probe(text: str) -> str | None:
    """``None`` when ``text`` is a usable probe expression, else a one-line reason (for lint)."""
    try:
        bind(text)
    except ProbeSyntaxError as exc:
        return str(exc)
    return None
