"""One line under the header when the runbook has lint errors: how many, and the first one.

Each step shows its own diagnostics beside it (:class:`~tui.widgets.step_view.StepView`);
the banner is for what an operator must know before starting at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.text import Text
from textual.widgets import Static

from runbook.model import Diagnostic


def banner_text(path: str, diagnostics: Sequence[Diagnostic]) -> Text | None:
    """``✘ 2 lint errors in prod.md, 25 warnings: line 203: ...`` or None without errors."""
    errors = [d for d in diagnostics if d.severity == "error"]
    if not errors:
        return None
    warnings = sum(1 for d in diagnostics if d.severity == "warning")
    first = errors[0]
    text = Text()
    text.append(f"✘ {len(errors)} lint error{'s' if len(errors) != 1 else ''}", "bold")
    text.append(f" in {Path(path).name}" + (f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""))
    text.append(f": line {first.line}: {first.message}")
    text.append("  (runbook lint FILE lists them; each step shows its own)", "dim")
    return text


class LintBanner(Static):
    """Shown only when there are lint errors (the ``-shown`` class)."""

    def __init__(self, path: str, diagnostics: Sequence[Diagnostic], *, id: str | None = None) -> None:
        text = banner_text(path, diagnostics)
        super().__init__(text if text is not None else "", id=id, classes="-shown" if text is not None else "")
        self.text = text
