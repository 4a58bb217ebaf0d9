"""What the tree lists and the detail pane shows: tasks, phase gates and checklist sections.

Identifiers follow ``sessions.journal.events``: a task's id, ``gate:<phase>`` for a phase's
(first) smoke test / gate, ``section:<n>`` for a document section with checkboxes (and, in a
runbook whose tasks were inferred, for a prose section shown as reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from runbook.model import Checkbox, Gate, Phase, Runbook, Section, Step, Task

ItemKind = Literal["task", "gate", "section"]


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    kind: ItemKind
    title: str
    phase: Phase | None = None
    task: Task | None = None
    gate: Gate | None = None
    section: Section | None = None

    @property
    def steps(self) -> tuple[Step, ...]:
        if self.task is not None:
            return self.task.steps
        if self.gate is not None:
            return self.gate.steps
        return ()

    @property
    def checkboxes(self) -> tuple[Checkbox, ...]:
        if self.task is not None:
            return self.task.checkboxes
        if self.gate is not None:
            return self.gate.checkboxes
        if self.section is not None:
            return self.section.checkboxes
        return ()


def gate_id(phase: Phase) -> str:
    """The id of a phase's gate: all its smoke tests' steps together (as ``sessions.planning.guards``)."""
    return f"gate:{phase.number}"


def display_name(item_id: str, items: dict[str, Item] | None = None) -> str:
    """What the operator reads for an item id: ``gate:1`` -> "Phase 1 gate", a section's
    title for ``section:<n>``, the id itself for a task."""
    if item_id.startswith("gate:"):
        return f"Phase {item_id[5:]} gate"
    if item_id.startswith("section:") and items is not None and item_id in items:
        return items[item_id].title
    return item_id


def _merge_gates(phase: Phase) -> Gate:
    gates = phase.gates
    return Gate(
        title=gates[0].title,
        line=gates[0].line,
        text="\n\n".join(g.text for g in gates if g.text),
        gate="\n".join(g.gate for g in gates if g.gate),
        steps=tuple(s for g in gates for s in g.steps),
        checkboxes=tuple(b for g in gates for b in g.checkboxes),
    )


def build_items(runbook: Runbook) -> dict[str, Item]:
    """Every item of the runbook by id, in document order."""
    items: dict[str, Item] = {}
    for phase in runbook.phases:
        for task in phase.tasks:
            items[task.id] = Item(task.id, "task", task.title, phase=phase, task=task)
        if phase.gates:
            gate = _merge_gates(phase)
            items[gate_id(phase)] = Item(gate_id(phase), "gate", gate.title, phase=phase, gate=gate)
    for i, section in enumerate(runbook.sections):
        # checklists; and, when the tasks were inferred, the prose sections too, as reference
        if section.checkboxes or (runbook.inferred and (section.text or section.blocks or section.tables)):
            sid = f"section:{i}"
            items[sid] = Item(sid, "section", section.title, section=section)
    return items
