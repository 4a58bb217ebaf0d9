"""Durations as people write them in runbooks.

``45 minutes``, ``1 hour``, ``2 hours (4 nodes, parallelizable)``, ``2 days -
accelerated``, ``1.5 days``, ``1h30m``, ``1-2 hours`` (the upper bound counts),
``~25 days``.  A day is ``day_hours`` working hours (8 by default), a week five
days.  Whatever is not the duration itself is kept as a note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUM = r"\d+(?:[.,]\d+)?"
_UNIT = r"(?:minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|wks?|w|seconds?|secs?|s)"
_PART_RE = re.compile(
    rf"(?P<a>{_NUM})(?:\s*(?:-|–|—|to)\s*(?P<b>{_NUM}))?\s*(?P<unit>{_UNIT})(?![A-Za-z])",
    re.I,
)
_JOIN_RE = re.compile(r"^[\s,]*(?:and\s+)?$", re.I)


@dataclass(frozen=True, slots=True)
class Duration:
    minutes: float | None
    note: str = ""
    ranged: bool = False


def _unit_minutes(unit: str, day_hours: float) -> float:
    u = unit.lower()
    if u.startswith("w"):
        return 5 * day_hours * 60
    if u.startswith("d"):
        return day_hours * 60
    if u.startswith("h"):
        return 60.0
    if u.startswith("s"):
        return 1 / 60
    return 1.0


def parse_duration(text: str, day_hours: float = 8) -> Duration:
    """Minutes in ``text`` (``None`` when there is no duration) and the rest as a note."""
    clean = text.replace("*", "").strip()
    if not clean:
        return Duration(None, "")
    total = 0.0
    ranged = False
    first = last = None
    for m in _PART_RE.finditer(clean):
        if last is not None and not _JOIN_RE.match(clean[last:m.start()]):
            break  # "2 hours (4 nodes ...)": stop at the first unrelated number
        a = float(m.group("a").replace(",", "."))
        b = m.group("b")
        value = a
        if b is not None:
            value = max(a, float(b.replace(",", ".")))
            ranged = True
        total += value * _unit_minutes(m.group("unit"), day_hours)
        if first is None:
            first = m.start()
        last = m.end()
    if first is None:
        return Duration(None, clean)
    note = (clean[:first].strip(" ~≈<>") + " " + clean[last:]).strip()
    note = re.sub(r"^[\s\-–—:,;(]+|[\s)\-–—:,;]+$", "", note)
    if note.startswith("(") is False and note.endswith(")") and "(" not in note:
        note = note[:-1]
    return Duration(round(total, 4), note, ranged)


def format_minutes(minutes: float | None, day_hours: float = 8) -> str:
    """``45 min``, ``2 h``, ``2 h 30 min``, ``16 h (2 d)``; ``?`` when unknown."""
    if minutes is None:
        return "?"
    m = round(minutes)
    h, rest = divmod(m, 60)
    if h == 0:
        out = f"{rest} min"
    elif rest == 0:
        out = f"{h} h"
    else:
        out = f"{h} h {rest} min"
    day = day_hours * 60
    if day > 0 and m >= day:
        days = m / day
        out += f" ({days:g} d)" if days == int(days) else f" ({days:.2f}".rstrip("0").rstrip(".") + " d)"
    return out
