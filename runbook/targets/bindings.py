"""The bindings file ``NAME.targets.yaml`` beside a runbook: read, checked, with lines.

Each top-level key (``TASK-ID``, ``TASK-ID.N``, ``TASK-ID.acceptance.N``,
``TASK-ID.rollback[.N]``, ``gate:P[.N]``, ``default``) maps to a host pattern, a
mapping of options, or nothing; ``notify`` holds the notification URLs (one or a list,
http/https only); ``mirror`` the journal mirror's ``HOST:PATH``.  Every value is checked when the file is read, so a
wrong value is never silently ignored nor reported once per step:

* keys: ``target`` (a non-empty pattern), ``serial``, ``parallel``, ``pty``, ``no-pty``,
  ``detached``, ``pause`` (true/false, yes/no, on/off, 1/0), ``timeout`` (a positive,
  finite number of seconds, ``30`` or ``30s``), ``mode`` (octal as written: ``0644``),
  ``probe`` (a probe expression), ``approval`` (``required`` or ``none``: a task's four-eyes
  approval, on ``TASK-ID`` or ``default``); any other key is refused;
* a key given twice is refused (YAML would silently keep the last one).

Every problem is named once, at its line (``file:line: KEY: message``, one line each);
any problem makes :func:`load_bindings` raise :class:`~runbook.errors.InputError`
(exit 2).  The file is read with the bounded loader (:mod:`runbook.reading.bounded_yaml`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any

import yaml

from runbook.errors import InputError
from runbook.mirror_config import mirror_destination
from runbook.model import Approval
from runbook.notify_config import notify_urls
from runbook.parse.annotations import TARGET_KEYS, bindings_path
from runbook.reading.bounded_yaml import YAMLInputError, compose_yaml, construct_yaml, read_yaml_file

__all__ = ["BINDING_KEYS", "Bindings", "load_bindings"]

FLAG_KEYS = ("serial", "parallel", "pty", "no-pty", "detached", "pause")
BINDING_KEYS = tuple(sorted(TARGET_KEYS)) + ("probe", "approval")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_MODE = re.compile(r"0?o?([0-7]{3,4})")
_TIMEOUT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*s?")


class Bindings(dict[str, dict[str, Any]]):
    """``key -> {option: value}`` as read from a bindings file, with the line of each key
    (``line(key)``; 1 when unknown, e.g. bindings built in code)."""

    def __init__(self, items: Mapping[str, Mapping[str, Any]] | None = None, *, path: str = "",
                 lines: Mapping[str, int] | None = None) -> None:
        super().__init__({k: dict(v) for k, v in (items or {}).items()})
        self.path = path
        self.lines: dict[str, int] = dict(lines or {})
        self.notify: list[str] = []  # ``notify:`` URLs (checked: http/https)
        self.mirror = ""  # ``mirror:`` HOST:PATH of the journal mirror

    def line(self, key: str) -> int:
        return self.lines.get(key, 1)


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def _check_option(option: str, value: Any, raw: yaml.Node) -> tuple[Any, str]:
    """(normalised value, problem or "") for one option of a binding."""
    if option in FLAG_KEYS:
        flag = _flag(value)
        if flag is None:
            return None, f"{option} must be true or false, not {_shown(value)}"
        return flag, ""
    if option == "timeout":
        seconds: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str) and _TIMEOUT.fullmatch(value.strip()):
            seconds = float(_TIMEOUT.fullmatch(value.strip()).group(1))  # type: ignore[union-attr]
        if seconds is None or not math.isfinite(seconds) or seconds <= 0:
            return None, f"timeout must be a positive number of seconds, not {_shown(value)}"
        return seconds, ""
    if option == "mode":
        # the text as written: YAML reads 0644 as the octal number 420
        text = raw.value.strip() if isinstance(raw, yaml.ScalarNode) else ""
        m = _MODE.fullmatch(text)
        if not m:
            return None, f"mode must be octal such as 0644, not {_shown(value)}"
        return "0" + m.group(1) if len(m.group(1)) == 3 else m.group(1), ""
    if option == "approval":  # a task's (or default's) four-eyes approval
        parsed = Approval.parse(str(value).lower() if isinstance(value, bool) else str(value)) \
            if isinstance(value, (str, bool)) else None
        if parsed is None:
            return None, f"approval must be required or none, not {_shown(value)}"
        return parsed.value, ""
    if option in ("target", "probe"):
        if not isinstance(value, str) or not value.strip():
            what = "a host pattern" if option == "target" else "a probe expression"
            return None, f"{option} must be {what} (text), not {_shown(value)}"
        return value.strip(), ""
    return None, f"unknown key {option!r} (expected {', '.join(BINDING_KEYS)})"


def _shown(value: Any) -> str:
    plain = isinstance(value, (str, int, float)) or value is None  # bool is an int
    text = repr(value) if plain else f"{type(value).__name__} {value!r}"
    return text if len(text) <= 60 else text[:57] + "..."


def load_bindings(runbook_path: str) -> Bindings:
    """Read and check ``NAME.targets.yaml`` beside ``runbook_path`` (empty when there is none).

    Values are mappings of checked options (a plain string is ``{"target": string}``).

    :raises InputError: unreadable file, bad YAML, or bad values: every problem once,
        one ``file:line: ...`` line each
    """
    path = bindings_path(runbook_path)
    if not os.path.exists(path):
        return Bindings(path=path)
    try:
        text = read_yaml_file(path, "bindings file")
        root = compose_yaml(text, path)
    except YAMLInputError as exc:
        raise InputError(f"{exc.where}: bindings file is not valid YAML: {exc.problem}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read bindings: {exc.strerror or exc}") from None
    if root is None:
        return Bindings(path=path)
    if not isinstance(root, yaml.MappingNode):
        raise InputError(f"{path}:{root.start_mark.line + 1}: bindings file must map TASK-ID or TASK-ID.N to a target")
    return _check(root, path)


def _value(node: yaml.Node, path: str) -> Any:
    try:
        return construct_yaml(node, path)
    except YAMLInputError as exc:
        raise InputError(f"{exc.where}: bindings file is not valid YAML: {exc.problem}") from None


def _pairs(node: yaml.MappingNode, path: str) -> list[tuple[yaml.Node, yaml.Node]]:
    try:
        yaml.constructor.SafeConstructor().flatten_mapping(node)  # merge keys (<<: *common)
    except yaml.YAMLError as exc:
        raise InputError(f"{path}:{node.start_mark.line + 1}: bindings file is not valid YAML: "
                         f"{getattr(exc, 'problem', None) or exc}") from None
    return list(node.value)


def _check(root: yaml.MappingNode, path: str) -> Bindings:
    out = Bindings(path=path)
    problems: list[str] = []

    def problem(node: yaml.Node, message: str) -> None:
        problems.append(f"{path}:{node.start_mark.line + 1}: {message}")

    for key_node, value_node in _pairs(root, path):
        key_value = _value(key_node, path)
        key = str(key_value).strip() if isinstance(key_value, (str, int, float)) and not isinstance(key_value, bool) else ""
        if not key:
            problem(key_node, f"a binding's key must be TASK-ID, TASK-ID.N or default, not {_shown(key_value)}")
            continue
        if key in out.lines:
            problem(key_node, f"{key}: bound twice (first at line {out.lines[key]})")
            continue
        out.lines[key] = key_node.start_mark.line + 1
        if key == "notify":  # not a task: where notifications go (a URL or a list of them)
            urls, notify_problems = notify_urls(_value(value_node, path))
            out.notify = urls
            for message in notify_problems:
                problem(value_node, message)
            continue
        if key == "mirror":  # not a task: where the journal is mirrored (HOST:PATH)
            dest, mirror_problem = mirror_destination(_value(value_node, path))
            out.mirror = dest
            if mirror_problem:
                problem(value_node, mirror_problem)
            continue
        if isinstance(value_node, yaml.ScalarNode):
            value = _value(value_node, path)
            if value is None:
                out[key] = {}
            elif isinstance(value, str) and value.strip():
                out[key] = {"target": value.strip()}
            else:
                problem(value_node, f"{key}: expected a host pattern or a mapping of options, not {_shown(value)}")
            continue
        if not isinstance(value_node, yaml.MappingNode):
            problem(value_node, f"{key}: expected a host pattern or a mapping of options, not a list")
            continue
        options: dict[str, Any] = {}
        for opt_node, raw in _pairs(value_node, path):
            opt_value = _value(opt_node, path)
            option = str(opt_value).strip().lower()
            if option in options:
                problem(opt_node, f"{key}: {option} given twice")
                continue
            checked, message = _check_option(option, _value(raw, path), raw)
            if option == "approval" and not message and ("." in key or key.startswith("gate:")):
                message = "approval is a task's (TASK-ID) or every task's (default), not a step's"
            if message:
                problem(opt_node if message.startswith("unknown key") else raw, f"{key}: {message}")
                continue
            options[option] = checked
        out[key] = options
    if problems:
        raise InputError("\n".join(problems))
    return out
