"""Saving an operator's target choice into ``NAME.targets.yaml``; the Markdown stays untouched.

The file is edited as text, so its comments and layout survive: an existing
top-level entry for the key is replaced in place (a mapping keeps its other
options, only ``target`` changes), a new key is appended.  The write is atomic
(a temporary file renamed over the old one) and keeps the file's mode.
"""

from __future__ import annotations

import json
import os
import re
import tempfile

import yaml

from runbook.errors import InputError, UserError
from runbook.parse.annotations import bindings_path

__all__ = ["save_target"]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/#-]*$")


def _key_text(key: str) -> str:
    return key if _PLAIN_KEY.match(key) and ": " not in key else json.dumps(key)


def _value_text(existing: object, pattern: str) -> str:
    if isinstance(existing, dict):
        merged = {str(k): v for k, v in existing.items()}
        merged["target"] = pattern
        return json.dumps(merged, ensure_ascii=False)  # JSON is a YAML flow mapping
    return json.dumps(pattern, ensure_ascii=False)


def save_target(runbook_path: str, key: str, pattern: str, note: str = "") -> str:
    """Bind ``key`` (``TASK``, ``TASK.N``, ``TASK.rollback``, ``gate:0.N`` ...) to ``pattern``
    in the bindings file beside ``runbook_path``; returns the file's path.

    Raises :class:`UserError` (file and line) when the file cannot be read, parsed or written.
    """
    if not pattern.strip() or "\n" in pattern:
        raise UserError(f"cannot save an empty or multi-line target for {key}")
    path = bindings_path(runbook_path)
    text = ""
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read bindings: {getattr(exc, 'strerror', None) or exc}") from None
    lines = text.splitlines(keepends=True)
    span: tuple[int, int] | None = None
    existing: object = None
    if text.strip():
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else path
            raise InputError(f"{where}: bindings file is not valid YAML; not saved") from None
        if root is not None and not isinstance(root, yaml.MappingNode):
            raise InputError(f"{path}:1: bindings file must map TASK-ID or TASK-ID.N to a target; not saved")
        for key_node, value_node in (root.value if root is not None else []):
            if str(key_node.value).strip() == key:
                start = key_node.start_mark.line
                end = value_node.end_mark.line - (1 if value_node.end_mark.column == 0 else 0)
                while end > start and (not lines[end].strip() or lines[end].lstrip().startswith("#")):
                    end -= 1  # comments and blank lines after the entry belong to the file, not to it
                span = (start, max(end, start))
                existing = yaml.safe_load(yaml.serialize(value_node))
    entry = f"{_key_text(key)}: {_value_text(existing, pattern)}" + (f"  # {note}" if note else "") + "\n"
    if span is not None:
        lines[span[0]:span[1] + 1] = [entry]
    else:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(entry)
    directory = os.path.dirname(os.path.abspath(path))
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
    try:
        fd, tmp = tempfile.mkstemp(prefix=".targets-", suffix=".yaml", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("".join(lines))
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise UserError(f"{path}: cannot save the target: {exc.strerror or exc}") from None
    return path
