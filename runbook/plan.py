"""Dependency order and critical path of a runbook's tasks.

Only dependencies between tasks of the document count; external ones (tasks of
another document, ``PROD-OS-002``) are listed but ignored.  Tasks are ordered
topologically, ties broken by document order.  The critical path is the longest
chain of dependent tasks by duration (a task without a duration counts 0 and is
listed in ``unknown_durations``).  Tasks in a dependency cycle are appended in
document order and listed in ``cycles``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Mapping

from runbook.lint import find_cycles
from runbook.model import Runbook


@dataclass(frozen=True, slots=True)
class PlannedTask:
    id: str
    title: str
    phase: str
    duration_minutes: float | None
    dependencies: tuple[str, ...]  # internal ones
    earliest_start: float  # minutes from the start, all tasks as early as their dependencies allow
    earliest_finish: float
    critical: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    order: tuple[PlannedTask, ...]
    critical_path: tuple[str, ...]
    total_minutes: float  # sum of all task durations (one engineer, one task at a time)
    critical_minutes: float  # length of the critical path (unlimited parallelism)
    external: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # task -> external dependencies
    unknown_durations: tuple[str, ...] = ()
    cycles: tuple[tuple[str, ...], ...] = ()

    def to_json(self) -> dict:
        return {
            "order": [
                {"id": t.id, "title": t.title, "phase": t.phase, "duration_minutes": t.duration_minutes,
                 "dependencies": list(t.dependencies), "earliest_start": t.earliest_start,
                 "earliest_finish": t.earliest_finish, "critical": t.critical}
                for t in self.order
            ],
            "critical_path": list(self.critical_path),
            "total_minutes": self.total_minutes,
            "critical_minutes": self.critical_minutes,
            "external": {k: list(v) for k, v in self.external.items()},
            "unknown_durations": list(self.unknown_durations),
            "cycles": [list(c) for c in self.cycles],
        }


def plan(rb: Runbook) -> Plan:
    tasks = {}
    position = {}
    for i, t in enumerate(rb.tasks):
        if t.id not in tasks:  # duplicate ids: the first one counts (lint reports the rest)
            tasks[t.id] = t
            position[t.id] = i
    deps = {tid: tuple(d for d in t.dependencies if d in tasks and d != tid) for tid, t in tasks.items()}
    external = {tid: tuple(d for d in t.dependencies if d not in tasks) for tid, t in tasks.items()}
    external = {k: v for k, v in external.items() if v}
    dependents: dict[str, list[str]] = {tid: [] for tid in tasks}
    indegree = {tid: len(set(ds)) for tid, ds in deps.items()}
    for tid, ds in deps.items():
        for d in set(ds):
            dependents[d].append(tid)
    heap = [(position[tid], tid) for tid, n in indegree.items() if n == 0]
    heapq.heapify(heap)
    order: list[str] = []
    while heap:
        _, tid = heapq.heappop(heap)
        order.append(tid)
        for nxt in dependents[tid]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(heap, (position[nxt], nxt))
    stuck = sorted((tid for tid in tasks if tid not in set(order)), key=position.__getitem__)
    cycles = tuple(tuple(c) for c in find_cycles({k: list(v) for k, v in deps.items()})) if stuck else ()
    order.extend(stuck)
    finish: dict[str, float] = {}
    start: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for tid in order:
        best, best_dep = 0.0, None
        for d in deps[tid]:
            if d in finish and finish[d] > best:
                best, best_dep = finish[d], d
        start[tid] = best
        finish[tid] = best + (tasks[tid].duration_minutes or 0.0)
        via[tid] = best_dep
    path: list[str] = []
    if finish:
        end = max(order, key=lambda t: (finish[t], -position[t]))
        cur: str | None = end
        while cur is not None and cur not in path:
            path.append(cur)
            cur = via[cur]
        path.reverse()
    crit = set(path)
    planned = tuple(
        PlannedTask(tid, tasks[tid].title, tasks[tid].phase, tasks[tid].duration_minutes, deps[tid],
                    start[tid], finish[tid], tid in crit)
        for tid in order
    )
    return Plan(
        order=planned,
        critical_path=tuple(path),
        total_minutes=sum(t.duration_minutes or 0.0 for t in tasks.values()),
        critical_minutes=max(finish.values()) if finish else 0.0,
        external=external,
        unknown_durations=tuple(tid for tid in order if tasks[tid].duration_minutes is None),
        cycles=cycles,
    )
