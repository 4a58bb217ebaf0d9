"""Dependency order, start offsets and critical path of a runbook's tasks.

Two rules decide what a task waits for:

``phases`` (the default)
    A task waits for the tasks its ``**Dependencies**`` names and, if it is one of
    the first tasks of its phase (no dependency on a task of the same phase), for
    every task of the phases its phase's ``**Dependencies**`` names.  A phase's
    dependency text is read as follows (:func:`phase_dependencies`):

    * ``Phase 3 complete``, ``Phases 3 and 4``, ``Phase 2A`` -- those phases.
    * ``Phases 1-3`` -- the phases of the document numbered 1 to 3.
    * ``Phase N complete`` where the document has no phase N (the PROD checklist
      is an excerpt: phase 3 says ``Phase 2 complete`` and phase 2 is not in it)
      -- every phase that comes before this one in the document and is numbered
      up to N (``2A`` and ``2B`` count as part of ``2``): the phases are sequential,
      so what the missing phase waited for is waited for here.  If there is no
      such phase, the phase is independent.
    * ``All phases complete`` / ``All previous phases`` -- every earlier phase of
      the document; ``Previous phase complete`` -- the nearest earlier one.
    * No text, ``None``, or text naming no phase (``DEV deployment complete``,
      something outside the document) -- independent.

    Tasks outside any phase are never waited for by phase rules.  A phase named
    with itself is ignored.

``tasks`` (``runbook plan --tasks-only``)
    Only dependencies between tasks count.

Either way, dependencies on tasks of another document (``PROD-OS-002``) are
listed in ``external`` but ignored.  Tasks are ordered topologically, ties
broken by document order; every task starts as early as what it waits for
allows (unlimited parallelism).  The critical path is the longest chain by
duration (a task without a duration counts 0 and is listed in
``unknown_durations``).  Tasks in a cycle are appended in document order and
listed in ``cycles``.

:func:`remaining_critical_path_minutes` applies the same rules to the work left
in a session.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from runbook.lint.lint import find_cycles
from runbook.model import Phase, Runbook, Task

RULE_PHASES = "phases"
RULE_TASKS = "tasks"

RULE_TEXT = {
    RULE_PHASES: "phase dependencies honoured: the first tasks of a phase wait for every task of the "
                 "phases its Dependencies line names (--tasks-only: task dependencies only)",
    RULE_TASKS: "task dependencies only (--tasks-only): phase Dependencies lines ignored",
}


@dataclass(frozen=True, slots=True)
class PlannedTask:
    id: str
    title: str
    phase: str
    duration_minutes: float | None
    dependencies: tuple[str, ...]  # internal ones
    earliest_start: float  # minutes from the start, all tasks as early as what they wait for allows
    earliest_finish: float
    critical: bool = False
    after_phases: tuple[str, ...] = ()  # phases whose tasks this one waits for (phase rule, first tasks only)


@dataclass(frozen=True, slots=True)
class PhaseDependency:
    """How a phase's ``**Dependencies**`` text was read."""

    phase: str  # number as written
    title: str
    line: int
    text: str  # as written; "" when the phase states none
    after: tuple[str, ...]  # numbers of the phases of this document it waits for, in document order
    reading: str  # for people: "Phase 2 is not in this document: every earlier phase up to it (0)"


@dataclass(frozen=True, slots=True)
class Plan:
    order: tuple[PlannedTask, ...]
    critical_path: tuple[str, ...]
    total_minutes: float  # sum of all task durations (one engineer, one task at a time)
    critical_minutes: float  # length of the critical path (unlimited parallelism)
    external: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # task -> external dependencies
    unknown_durations: tuple[str, ...] = ()
    cycles: tuple[tuple[str, ...], ...] = ()
    rule: str = RULE_PHASES
    phases: tuple[PhaseDependency, ...] = ()  # empty with the tasks rule

    def to_json(self) -> dict[str, Any]:
        return {
            "order": [
                {"id": t.id, "title": t.title, "phase": t.phase, "duration_minutes": t.duration_minutes,
                 "dependencies": list(t.dependencies), "after_phases": list(t.after_phases),
                 "earliest_start": t.earliest_start, "earliest_finish": t.earliest_finish, "critical": t.critical}
                for t in self.order
            ],
            "critical_path": list(self.critical_path),
            "total_minutes": self.total_minutes,
            "critical_minutes": self.critical_minutes,
            "external": {k: list(v) for k, v in self.external.items()},
            "unknown_durations": list(self.unknown_durations),
            "cycles": [list(c) for c in self.cycles],
            "rule": self.rule,
            "rule_text": RULE_TEXT[self.rule],
            "phases": [
                {"phase": p.phase, "title": p.title, "line": p.line, "text": p.text, "after": list(p.after),
                 "reading": p.reading}
                for p in self.phases
            ],
        }


# --- reading a phase's Dependencies text ------------------------------------------------

_NONE_RE = re.compile(r"^[\s*_.]*(?:none|n/?a|nothing|-+|–|—)?[\s*_.]*$", re.I)
_ALL_RE = re.compile(r"\ball\s+(?:the\s+)?(?:(?:previous|prior|earlier|preceding|other)\s+)?phases\b", re.I)
_PREVIOUS_RE = re.compile(r"\b(?:the\s+)?(?:previous|prior|preceding)\s+phase\b", re.I)
_NUM = r"\d+[A-Za-z]?\b"
_REF_RE = re.compile(
    rf"\bphases?\s+({_NUM}(?:\s*(?:,|&|/|\band\b|\bor\b|-|–|—|\bto\b|\bthrough\b)\s*{_NUM})*)", re.I)
_TOKEN_RE = re.compile(r"(\d+[A-Za-z]?)|(-|–|—|\bto\b|\bthrough\b)", re.I)
_KEY_RE = re.compile(r"(\d+)([A-Za-z]?)")


def _key(number: str) -> tuple[int, str] | None:
    m = _KEY_RE.fullmatch(number.strip())
    return (int(m.group(1)), m.group(2).upper()) if m else None


def _up_to(key: tuple[int, str] | None, bound: tuple[int, str]) -> bool:
    """``key`` sorts at or before ``bound``; ``2A``/``2B`` are part of a bound ``2``."""
    if key is None:
        return False
    return key <= bound or (key[0] == bound[0] and not bound[1])


def _from(key: tuple[int, str] | None, bound: tuple[int, str]) -> bool:
    return key is not None and (key >= bound or (key[0] == bound[0] and not bound[1]))


def _names(phases: list[Phase], indexes: Collection[int]) -> str:
    return ", ".join(phases[i].number for i in sorted(indexes))


def _read(phases: list[Phase], at: int) -> tuple[set[int], str]:
    """Indexes (into ``phases``, the numbered ones) that phase ``at`` waits for, and how that was read."""
    text = phases[at].dependencies
    earlier = list(range(at))
    if _NONE_RE.match(text):
        return set(), "no dependency: independent"
    if _ALL_RE.search(text):
        return set(earlier), (f"all earlier phases ({_names(phases, earlier)})" if earlier
                              else "all earlier phases: none, independent")
    after: set[int] = set()
    parts: list[str] = []
    if _PREVIOUS_RE.search(text):
        if earlier:
            after.add(earlier[-1])
            parts.append(f"the previous phase ({phases[earlier[-1]].number})")
        else:
            parts.append("the previous phase: none")
    for m in _REF_RE.finditer(text):
        tokens = _TOKEN_RE.findall(m.group(1))
        i = 0
        while i < len(tokens):
            number = tokens[i][0].upper()
            if i + 2 < len(tokens) and tokens[i + 1][1] and tokens[i + 2][0]:  # a range "1-3"
                low, high = _key(number), _key(tokens[i + 2][0].upper())
                i += 3
                found = {j for j, p in enumerate(phases) if j != at and low is not None and high is not None
                         and _from(_key(p.number), low) and _up_to(_key(p.number), high)}
                after |= found
                label = f"Phases {number}-{tokens[i - 1][0].upper()}"
                parts.append(f"{label} ({_names(phases, found)})" if found else f"{label}: none in this document")
                continue
            i += 1
            if not number:
                continue
            same = {j for j, p in enumerate(phases) if p.number.upper() == number}
            if same:
                same.discard(at)
                after |= same
                parts.append(f"Phase {number}" if same else f"Phase {number} (itself: ignored)")
                continue
            bound = _key(number)
            assert bound is not None  # _NUM always has digits
            found = {j for j in earlier if _up_to(_key(phases[j].number), bound)}
            after |= found
            parts.append(f"Phase {number} is not in this document: every earlier phase up to it ({_names(phases, found)})"
                         if found else f"Phase {number} is not in this document and no earlier phase is: independent")
    if not parts:
        return set(), "names no phase of this document: independent"
    return after, "; ".join(parts)


def phase_dependencies(rb: Runbook) -> tuple[PhaseDependency, ...]:
    """How each numbered phase's ``**Dependencies**`` text is read (see the module docstring)."""
    phases = [p for p in rb.phases if p.number]
    out = []
    for at, phase in enumerate(phases):
        after, reading = _read(phases, at)
        out.append(PhaseDependency(phase.number, phase.title, phase.line, phase.dependencies,
                                   tuple(phases[i].number for i in sorted(after)), reading))
    return tuple(out)


# --- the schedule -----------------------------------------------------------------------

@dataclass(slots=True)
class _Graph:
    tasks: dict[str, Task]
    position: dict[str, int]
    deps: dict[str, tuple[str, ...]]  # task dependencies inside the document
    waits: dict[str, tuple[str, ...]]  # everything a task waits for: deps, then tasks of earlier phases
    after_phases: dict[str, tuple[str, ...]]
    external: dict[str, tuple[str, ...]]
    phases: tuple[PhaseDependency, ...]


def _graph(rb: Runbook, tasks_only: bool) -> _Graph:
    tasks: dict[str, Task] = {}
    position: dict[str, int] = {}
    members: list[list[str]] = []  # task ids of each numbered phase (first occurrences)
    for p in rb.phases:
        ids = []
        for t in p.tasks:
            if t.id not in tasks:  # duplicate ids: the first one counts (lint reports the rest)
                tasks[t.id] = t
                position[t.id] = len(position)
                ids.append(t.id)
        if p.number:
            members.append(ids)
    deps = {tid: tuple(dict.fromkeys(d for d in t.dependencies if d in tasks and d != tid)) for tid, t in tasks.items()}
    external = {tid: tuple(d for d in t.dependencies if d not in tasks) for tid, t in tasks.items()}
    waits = dict(deps)
    after_phases: dict[str, tuple[str, ...]] = {tid: () for tid in tasks}
    rules: tuple[PhaseDependency, ...] = ()
    if not tasks_only:
        rules = phase_dependencies(rb)
        number_index: dict[str, list[int]] = {}
        for i, rule in enumerate(rules):
            number_index.setdefault(rule.phase, []).append(i)
        for i, rule in enumerate(rules):
            own = set(members[i])
            first = [tid for tid in members[i] if not own.intersection(deps[tid])] or members[i]
            before = [tid for n in dict.fromkeys(rule.after) for j in number_index[n] for tid in members[j]]
            before = sorted(set(before) - own, key=position.__getitem__)
            for tid in first:
                if before:
                    waits[tid] = tuple(dict.fromkeys(deps[tid] + tuple(before)))
                    after_phases[tid] = rule.after
    return _Graph(tasks, position, deps, waits, after_phases, {k: v for k, v in external.items() if v}, rules)


def _order(g: _Graph) -> tuple[list[str], list[str]]:
    """Topological order (ties by document order) and the tasks stuck in cycles."""
    dependents: dict[str, list[str]] = {tid: [] for tid in g.tasks}
    indegree = {tid: len(ws) for tid, ws in g.waits.items()}
    for tid, ws in g.waits.items():
        for w in ws:
            dependents[w].append(tid)
    heap = [(g.position[tid], tid) for tid, n in indegree.items() if n == 0]
    heapq.heapify(heap)
    order: list[str] = []
    while heap:
        _, tid = heapq.heappop(heap)
        order.append(tid)
        for nxt in dependents[tid]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(heap, (g.position[nxt], nxt))
    placed = set(order)
    stuck = sorted((tid for tid in g.tasks if tid not in placed), key=g.position.__getitem__)
    return order + stuck, stuck


def _schedule(g: _Graph, order: list[str], minutes: Callable[[Task], float]
              ) -> tuple[dict[str, float], dict[str, float], dict[str, str | None]]:
    start: dict[str, float] = {}
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for tid in order:
        best, best_by = 0.0, None
        for w in g.waits[tid]:
            if w in finish and finish[w] > best:
                best, best_by = finish[w], w
        start[tid] = best
        finish[tid] = best + minutes(g.tasks[tid])
        via[tid] = best_by
    return start, finish, via


def plan(rb: Runbook, *, tasks_only: bool = False) -> Plan:
    """Order, start offsets and critical path of ``rb``'s tasks (phase rule unless ``tasks_only``)."""
    g = _graph(rb, tasks_only)
    order, stuck = _order(g)
    cycles = tuple(tuple(c) for c in find_cycles({k: list(v) for k, v in g.waits.items()})) if stuck else ()
    start, finish, via = _schedule(g, order, lambda t: t.duration_minutes or 0.0)
    path: list[str] = []
    if finish:
        cur: str | None = max(order, key=lambda t: (finish[t], -g.position[t]))
        while cur is not None and cur not in path:
            path.append(cur)
            cur = via[cur]
        path.reverse()
    crit = set(path)
    planned = tuple(
        PlannedTask(tid, g.tasks[tid].title, g.tasks[tid].phase, g.tasks[tid].duration_minutes, g.deps[tid],
                    start[tid], finish[tid], tid in crit, g.after_phases[tid])
        for tid in order
    )
    return Plan(
        order=planned,
        critical_path=tuple(path),
        total_minutes=sum(t.duration_minutes or 0.0 for t in g.tasks.values()),
        critical_minutes=max(finish.values()) if finish else 0.0,
        external=g.external,
        unknown_durations=tuple(tid for tid in order if g.tasks[tid].duration_minutes is None),
        cycles=cycles,
        rule=RULE_TASKS if tasks_only else RULE_PHASES,
        phases=g.phases,
    )


def remaining_critical_path_minutes(runbook: Runbook, done_task_ids: Collection[str], *,
                                    elapsed: Mapping[str, float] | None = None, tasks_only: bool = False) -> float:
    """Minutes of the longest chain of work left, by the same rules as :func:`plan`.

    ``done_task_ids`` (done or skipped tasks) count 0; a task in ``elapsed`` (minutes
    already spent on a task in progress) counts its estimate minus that, never below
    0; every other task counts its estimate (0 when it has none).  Ids not in the
    runbook are ignored.
    """
    g = _graph(runbook, tasks_only)
    order, _ = _order(g)
    spent = elapsed or {}

    def left(task: Task) -> float:
        if task.id in done_task_ids:
            return 0.0
        return max(0.0, (task.duration_minutes or 0.0) - spent.get(task.id, 0.0))

    _, finish, _ = _schedule(g, order, left)
    return max(finish.values(), default=0.0)
