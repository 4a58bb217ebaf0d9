"""The journal mirror's destination as a runbook names it (``mirror:`` in the front matter or
the bindings file): ``HOST:PATH`` or ``ssh://[USER@]HOST[:PORT]/PATH``, checked for form here;
the session layer connects to it (``sessions/team/mirror.py``, ``--mirror`` overrides it)."""

from __future__ import annotations

import re
from typing import Any

_FORM = re.compile(r"(ssh://[^/\s]+/\S*|\[?[^\s:/\[\]]+(?:\]|[^\s:]*)?:\S+)")


def mirror_destination(value: Any) -> tuple[str, str | None]:
    """``(destination, problem)`` of a ``mirror:`` value: one ``HOST:PATH`` string."""
    if not isinstance(value, str) or not value.strip():
        shown = "nothing" if value is None or value == "" else type(value).__name__
        return "", f"mirror: expected HOST:PATH (e.g. backup-jump:/var/lib/runbook/mirror), not {shown}"
    text = value.strip()
    if _FORM.fullmatch(text) is None:
        return "", f"mirror: {text!r} is not HOST:PATH or ssh://[USER@]HOST[:PORT]/PATH"
    return text, None
