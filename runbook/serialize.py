"""The runbook model as plain JSON-ready data (``runbook show --format json``).

Every dataclass field is kept under its own name; enums become their value,
tuples lists, mappings dicts.  A few derived values are added for readers that
do not have the model: ``steps[].runnable``, ``steps[].target`` resolved, and a
flat ``checkboxes`` list (each box once, in document order) at the top.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from typing import Any

from runbook.model import Diagnostic, Runbook, Step, TargetSpec


def to_data(value: Any) -> Any:
    """Dataclasses, enums, tuples and mappings -> dicts, strings and lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Step):
            out["runnable"] = value.runnable
            if out.get("target") is None and value.runnable:
                out["target"] = to_data(TargetSpec())
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_data(v) for v in value]
    return value


def diagnostics_to_json(diags: Iterable[Diagnostic]) -> list[dict[str, Any]]:
    return [
        {"path": d.path, "line": d.line, "severity": d.severity, "code": d.code, "message": d.message}
        for d in diags
    ]


def runbook_to_json(rb: Runbook, diagnostics: Iterable[Diagnostic] | None = None) -> dict[str, Any]:
    """``rb`` as a dict; ``diagnostics`` (e.g. the full lint) replaces the parser's own."""
    data: dict[str, Any] = to_data(rb)
    data["diagnostics"] = diagnostics_to_json(rb.diagnostics if diagnostics is None else diagnostics)
    data["checkboxes"] = [to_data(b) for b in rb.checkboxes()]
    data["task_count"] = len(rb.tasks)
    return data
