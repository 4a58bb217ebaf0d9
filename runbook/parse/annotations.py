"""Runbook annotations, fence attributes and the ``NAME.targets.yaml`` bindings file.

* ``<!-- runbook: target=masters[1:] serial pty timeout=30 detached pause mode=0644 -->``
  before a fence; ``errexit=off`` there runs the block as written (no ``set -e -o pipefail``); ``<!-- runbook: secret=LDAP_BIND,OTHER -->`` anywhere;
* ``<!-- runbook: approval=required -->`` (or ``approval=none``) anywhere in a task: the task needs
  (or does not need) a four-eyes approval; before the first heading: every task's default;
* ```` ```bash {target=masters serial} ```` (fence attributes);
* ``<!-- probe: k8s.nodes_ready(min=5) -->`` after a checkbox;
* ``NAME.targets.yaml`` beside ``NAME.md``: ``TASK-ID`` or ``TASK-ID.N`` (step N) ->
  ``{target, serial, pty, timeout, detached, pause, mode}`` or a plain pattern;
  ``TASK-ID.acceptance.N`` -> ``{probe: "..."}`` (N counts from 1, like steps);
  ``TASK-ID.rollback`` / ``TASK-ID.rollback.N``; ``gate:0`` / ``gate:0.N``;
  ``default`` -> the document default (like ``<!-- runbook: target=local -->``
  before the first heading).

Precedence when building a step's :class:`TargetSpec`: annotation or fence
attributes > bindings > document default; with none of them the step has no
target (``pattern == ""``).  ``TargetSpec.source`` says where the pattern came from.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from runbook.model import TargetSpec
from runbook.shell.errexit import ERREXIT_KEY, check_value

if TYPE_CHECKING:  # pragma: no cover
    from runbook.targets.bindings import Bindings

ANNOTATION_RE = re.compile(r"<!--\s*runbook\s*:\s*(.*?)\s*-->", re.S | re.I)
PROBE_RE = re.compile(r"<!--\s*probe\s*:\s*(.*?)\s*-->", re.S | re.I)
_ATTRS_RE = re.compile(r"\{([^{}]*)\}\s*$")

FLAG_KEYS = frozenset({"serial", "parallel", "pty", "no-pty", "detached", "pause"})
VALUE_KEYS = frozenset({"target", "timeout", "mode", "path", "secret", "kind", "title", "errexit", "approval"})
TARGET_KEYS = frozenset({"target", "serial", "parallel", "pty", "no-pty", "detached", "pause", "timeout", "mode"})
KINDS = ("command", "file", "output", "text")
# Runme cell attributes (https://runme.dev): ``interactive`` is a PTY; the rest is Runme's own
# business (names, ids, run-all grouping, terminal size...), knowingly ignored
RUNME_KEYS = {
    "interactive": "pty", "name": "", "id": "", "excludefromrunall": "", "cwd": "", "background": "",
    "terminalrows": "", "promptenv": "", "closeterminalonsuccess": "", "mimetype": "", "category": "",
    "skipprompts": "", "ignore": "", "interpreter": "", "description": "",
}


def split_words(text: str) -> list[str]:
    if "'" not in text and '"' not in text and "\\" not in text:
        return text.split()
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError:
        return text.split()


def parse_pairs(text: str, *, runme: bool = False) -> tuple[dict[str, str], list[str]]:
    """``target=web serial timeout=30`` -> ({"target": "web", "serial": "true", ...}, problems).

    ``runme``: Runme cell attributes (``name=x``, ``interactive=true``, ...) are understood too.
    Problems quote keys as written.
    """
    out: dict[str, str] = {}
    problems: list[str] = []
    for word in split_words(text):
        written, eq, value = word.partition("=")
        written = written.strip()
        key = written.lower()
        if not key:
            continue
        if runme and key in RUNME_KEYS:
            _runme(out, key, value if eq else "true")
            continue
        if eq:
            if key not in VALUE_KEYS and key not in FLAG_KEYS:
                problems.append(f"unknown annotation key {written!r}")
            elif key == ERREXIT_KEY and check_value(value):
                problems.append(str(check_value(value)))
                continue
            out[key] = value
        elif key in FLAG_KEYS:
            out[key] = "true"
        elif key.startswith("."):
            continue  # pandoc-style class: {.bash}
        else:
            problems.append(f"unknown annotation word {written!r}")
    return out, problems


def _runme(out: dict[str, str], key: str, value: str) -> None:
    mapped = RUNME_KEYS[key]
    if mapped == "pty":
        if _truthy(value):
            out["pty"] = "true"  # interactive=false is the default: it chooses nothing
    elif key == "name" and value:
        out.setdefault("runme-name", value)


def fence_attrs(info: str) -> tuple[dict[str, str], list[str]]:
    """Attributes in braces at the end of a fence info string (``{target=web}``, Runme's JSON cells)."""
    m = _ATTRS_RE.search(info or "")
    if not m:
        return {}, []
    inner = m.group(1).strip()
    if inner.startswith('"'):
        return _json_attrs("{" + inner + "}")
    return parse_pairs(inner, runme=True)


def _json_attrs(text: str) -> tuple[dict[str, str], list[str]]:
    """Runme's ``{"name":"vars","interactive":"false"}``: each key as ``key=value``."""
    import json

    try:
        data = json.loads(text)
    except ValueError as exc:
        return {}, [f"attributes {text!r} are not valid JSON: {exc}"]
    if not isinstance(data, dict):
        return {}, [f"attributes {text!r} are not a JSON object"]
    words = []
    for k, v in data.items():
        value = json.dumps(v) if isinstance(v, (dict, list)) else ("true" if v is True else "false" if v is False else str(v))
        words.append(f"{k}={shlex.quote(value)}")
    return parse_pairs(" ".join(words), runme=True)


def _truthy(v: Any) -> bool:
    return str(v).strip().lower() in ("1", "true", "yes", "on", "")


def spec_from(values: Mapping[str, Any], base: TargetSpec, source: str) -> tuple[TargetSpec, list[str]]:
    """Overlay annotation/binding ``values`` on ``base``; returns the spec and problems."""
    problems: list[str] = []
    changes: dict[str, Any] = {}
    if "target" in values and str(values["target"]).strip():
        changes["pattern"] = str(values["target"]).strip()
    if "serial" in values:
        changes["serial"] = _truthy(values["serial"])
    if "parallel" in values and _truthy(values["parallel"]):
        changes["serial"] = False
    if "pty" in values:
        changes["pty"] = _truthy(values["pty"])
    if "no-pty" in values:
        changes["pty"] = False
    if "detached" in values:
        changes["detached"] = _truthy(values["detached"])
    if "pause" in values:
        changes["pause"] = _truthy(values["pause"])
        if changes["pause"]:
            changes.setdefault("serial", True)
    if "timeout" in values:
        try:
            t = float(str(values["timeout"]).rstrip("s"))
            if t <= 0:
                raise ValueError
            changes["timeout"] = t
        except ValueError:
            problems.append(f"timeout must be a positive number of seconds, not {values['timeout']!r}")
    if "mode" in values:
        mode = str(values["mode"])
        if re.fullmatch(r"0?[0-7]{3,4}", mode):
            changes["mode"] = mode if mode.startswith("0") else "0" + mode
        else:
            problems.append(f"mode must be octal such as 0644, not {mode!r}")
    if not changes:
        return base, problems
    if "pattern" in changes:  # the source names where the pattern came from, not the options
        changes["source"] = source
    return replace(base, **changes), problems


def has_target_keys(values: Mapping[str, Any]) -> bool:
    return any(k in TARGET_KEYS for k in values)


def bindings_path(runbook_path: str) -> str:
    base, ext = os.path.splitext(runbook_path)
    if ext.lower() not in (".md", ".markdown", ".mdown", ".txt"):
        base = runbook_path
    return base + ".targets.yaml"


def load_bindings(runbook_path: str) -> Bindings:
    """Read and check ``NAME.targets.yaml`` beside the runbook (:mod:`runbook.targets.bindings`);
    empty when there is none.  Raises :class:`InputError` naming each problem at its line."""
    from runbook.targets.bindings import load_bindings as load

    return load(runbook_path)
