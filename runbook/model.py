"""The immutable runbook model.

Everything the parser learns from a Markdown checklist ends up here.  The model
knows nothing of sessions, journals or screens: it is a faithful, read-only
picture of the document, with the source line of every piece so that errors and
audit records can point back at the file.

Line numbers are 1-based and always point inside the source file.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

Severity = Literal["error", "warning", "info"]
BlockKind = Literal["command", "file", "output", "text"]

SECRET_MARKERS = ("PASS", "TOKEN", "SECRET", "KEY", "CERT", "HASH")


def is_secret_name(name: str) -> bool:
    """True when a placeholder name marks a secret (PASS, TOKEN, SECRET, KEY, CERT, HASH)."""
    upper = name.upper()
    return any(marker in upper for marker in SECRET_MARKERS)


class Risk(enum.Enum):
    """Risk level of a task or phase.  ``UNKNOWN`` when the text is not recognised."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"
    UNKNOWN = "UNKNOWN"

    @property
    def needs_confirmation(self) -> bool:
        return self in (Risk.HIGH, Risk.CRITICAL)


class Approval(enum.Enum):
    """Whether a task needs a four-eyes approval before it starts (``approval=`` in an
    annotation, the bindings file or the front matter).  ``DEFAULT``: nothing said, so a
    CRITICAL task needs one when the session has an approvers file."""

    DEFAULT = ""
    REQUIRED = "required"
    NONE = "none"

    @classmethod
    def parse(cls, text: str) -> Approval | None:
        """``required`` / ``none`` (also yes/no, true/false, on/off); None when not understood."""
        value = text.strip().lower()
        if value in ("required", "yes", "true", "on", "1"):
            return cls.REQUIRED
        if value in ("none", "no", "false", "off", "0", "not-required"):
            return cls.NONE
        return None



class Identified(Protocol):
    """Anything a task is known by: a :class:`Task`, a phase gate's reference."""

    @property
    def id(self) -> str: ...


#: a task given by its id, or as an object that has one
TaskKey = str | Identified

@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding about the document, printed as ``file:line: severity: message``."""

    path: str
    line: int
    severity: Severity
    message: str
    code: str = ""  # short rule id, e.g. "duplicate-task-id"

    def format(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"


@dataclass(frozen=True, slots=True)
class Placeholder:
    """A value the operator must supply: ``<UPPER_CASE>``, ``$VAR`` or ``${VAR}``."""

    name: str
    secret: bool
    line: int
    token: str = ""  # as written: "<CERT-KEY>", "$PROD_LDAP_PASS", "${VAR}" (name is normalised: CERT_KEY)


class TargetSource(enum.StrEnum):
    """Where a step's target pattern came from (highest precedence first)."""

    OPERATOR = "operator"  # chosen at run time: --target, the TUI's picker
    ANNOTATION = "annotation"  # <!-- runbook: target=... --> before the block
    FENCE = "fence"  # ```bash {target=...}
    BINDINGS = "bindings"  # NAME.targets.yaml, TASK / TASK.N keys
    DOCUMENT = "document"  # document default: <!-- runbook: target=... --> before the first heading,
    #                        the front matter's ``runbook:`` key, or ``default:`` in NAME.targets.yaml
    NONE = "none"  # nobody chose: the step has no target and does not run until someone does


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """Where and how a block or step runs, as written in the runbook or a bindings file.

    ``pattern`` is an inventory host pattern (``masters[1:]``, ``local``, ``a,b``);
    ``""`` when nobody chose one (see :attr:`chosen`): there is no implicit ``local``.
    ``source`` tells where the pattern came from (a :class:`TargetSource` value;
    ``document`` covers the ``runbook:`` key of the front matter too).
    """

    pattern: str = ""
    serial: bool = False
    pty: bool = False
    detached: bool = False
    timeout: float | None = None  # seconds
    pause: bool = False  # serial: pause for the operator between hosts
    mode: str | None = None  # file blocks: octal mode such as "0644"
    source: str = TargetSource.NONE

    @property
    def chosen(self) -> bool:
        """True when someone chose where this runs (operator, annotation, bindings or document default)."""
        return bool(self.pattern.strip())


@dataclass(frozen=True, slots=True)
class Block:
    """A fenced block.

    ``kind``: ``command`` (shell to run), ``file`` (content to upload to ``path``),
    ``output`` (expected output, never run) or ``text`` (anything else: diagrams,
    plain notes in a fence).
    ``annotations`` holds raw key/values from an HTML comment or fence attributes;
    ``target`` is the parsed spec when the runbook gives one.
    """

    kind: BlockKind
    lang: str
    code: str
    line: int  # line of the opening fence
    path: str | None = None
    end_line: int | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    target: TargetSpec | None = None
    source_lines: tuple[int, ...] = ()  # source line of each code line when not simply line+1+i

    def code_line(self, index: int) -> int:
        """Source line of the ``index``-th (0-based) line of ``code``."""
        if index < len(self.source_lines):
            return self.source_lines[index]
        line = self.line + 1 + index
        return min(line, self.end_line) if self.end_line else line


@dataclass(frozen=True, slots=True)
class Expectation:
    """An ``Expected:`` line.  ``literal`` is a backticked string checkable against output."""

    text: str
    line: int
    literals: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Checkbox:
    """A ``- [ ]`` / ``- [x]`` item.

    ``key`` identifies the box stably inside the document, e.g.
    ``PROD-PRE-001/prerequisites/0``, ``PROD-PRE-001/acceptance/2`` or
    ``section:prod-acceptance-criteria-final-gate/technical-acceptance/3``.
    ``probe`` is the probe expression from a following ``<!-- probe: ... -->``.
    """

    key: str
    text: str
    checked: bool
    line: int
    probe: str | None = None
    parent: str | None = None  # key of the checkbox this one is nested under


@dataclass(frozen=True, slots=True)
class Step:
    """A numbered step (or a bold-titled test) inside ``#### Steps``."""

    number: int
    title: str
    line: int
    hint: str = ""  # e.g. "(NOT parallel - etcd requires sequential joins)"
    text: str = ""  # prose between the title and the blocks
    blocks: tuple[Block, ...] = ()
    expected: tuple[Expectation, ...] = ()
    placeholders: tuple[Placeholder, ...] = ()
    target: TargetSpec | None = None  # step-level spec (first annotated command block)
    checkbox: str | None = None  # key of the checkbox ticked when this step succeeds (a checkbox carrying a command)

    @property
    def commands(self) -> tuple[Block, ...]:
        return tuple(b for b in self.blocks if b.kind == "command")

    @property
    def files(self) -> tuple[Block, ...]:
        return tuple(b for b in self.blocks if b.kind == "file")

    @property
    def runnable(self) -> bool:
        return any(b.kind in ("command", "file") for b in self.blocks)


@dataclass(frozen=True, slots=True)
class Rollback:
    """The Rollback Procedure of a task: prose and blocks, runnable as steps."""

    text: str
    line: int
    blocks: tuple[Block, ...] = ()
    steps: tuple[Step, ...] = ()  # blocks wrapped as steps, numbered from 1
    applicable: bool = True  # False for "N/A (read-only)"


@dataclass(frozen=True, slots=True)
class Section:
    """Content outside any task: overview, tables, final gate, handoff list."""

    title: str
    level: int
    line: int
    text: str = ""
    checkboxes: tuple[Checkbox, ...] = ()
    blocks: tuple[Block, ...] = ()
    tables: tuple[tuple[tuple[str, ...], ...], ...] = ()  # rows of cells, header first
    parent: str | None = None  # title of the enclosing section
    placeholders: tuple[Placeholder, ...] = ()  # of the section's runnable blocks


@dataclass(frozen=True, slots=True)
class Gate:
    """A phase smoke test and its **Gate** rule."""

    title: str
    line: int
    text: str = ""
    gate: str = ""
    steps: tuple[Step, ...] = ()
    checkboxes: tuple[Checkbox, ...] = ()


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    title: str
    line: int
    phase: str = ""  # phase number as written ("0", "2A")
    category: str = ""
    duration_minutes: float | None = None
    duration_text: str = ""
    dependencies: tuple[str, ...] = ()
    dependencies_text: str = ""
    risk: Risk = Risk.UNKNOWN
    risk_text: str = ""
    description: str = ""
    prerequisites: tuple[Checkbox, ...] = ()
    steps: tuple[Step, ...] = ()
    acceptance: tuple[Checkbox, ...] = ()
    rollback: Rollback | None = None
    notes: tuple[str, ...] = ()
    extra: tuple[Section, ...] = ()  # sub-sections the parser did not recognise
    metadata: Mapping[str, str] = field(default_factory=dict)  # every "- **Key**: value" as written
    metadata_lines: Mapping[str, int] = field(default_factory=dict)  # key (as in metadata) -> source line
    secrets: tuple[str, ...] = ()  # names marked secret by <!-- runbook: secret=... --> in this task
    inferred: bool = False  # inferred from a section holding commands or checkboxes (no task heading)
    checklist: tuple[Checkbox, ...] = ()  # checkboxes of an inferred task's section
    approval: Approval = Approval.DEFAULT  # <!-- runbook: approval=required --> in the task, or its binding

    @property
    def checkboxes(self) -> tuple[Checkbox, ...]:
        return self.prerequisites + self.acceptance + self.checklist

    def step(self, number: int) -> Step:
        for s in self.steps:
            if s.number == number:
                return s
        raise KeyError(f"task {self.id} has no step {number}")


@dataclass(frozen=True, slots=True)
class Phase:
    number: str
    title: str
    line: int
    duration_minutes: float | None = None
    duration_text: str = ""
    purpose: str = ""
    dependencies: str = ""
    risk: Risk = Risk.UNKNOWN
    risk_text: str = ""
    tasks: tuple[Task, ...] = ()
    gates: tuple[Gate, ...] = ()
    text: str = ""


@dataclass(frozen=True, slots=True)
class Runbook:
    title: str
    path: str
    sha256: str
    overview: Mapping[str, str] = field(default_factory=dict)
    phases: tuple[Phase, ...] = ()
    sections: tuple[Section, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    line_count: int = 0
    secrets: tuple[str, ...] = ()  # names marked secret for the whole document (annotation)
    front_matter: Mapping[str, str] = field(default_factory=dict)  # top-level scalar keys of the front matter
    inferred: bool = False  # tasks were inferred from sections (the document has no task headings)
    # the document default: a comment before the first heading, the front matter's ``runbook:``
    # key, or ``default:`` in the bindings file (in that order of precedence)
    default_target: TargetSpec | None = None
    # notification URLs (``notify:`` in the front matter or the bindings file); secrets: never shown
    notify: tuple[str, ...] = ()
    # the journal mirror's destination (``mirror:`` in the front matter or the bindings file); "" none
    mirror: str = ""
    # four-eyes approval for every task that says nothing itself (front matter ``runbook: {approval: ...}``,
    # ``default: {approval: ...}`` in the bindings file, or an annotation before the first heading)
    approval: Approval = Approval.DEFAULT

    @property
    def tasks(self) -> tuple[Task, ...]:
        return tuple(t for p in self.phases for t in p.tasks)

    def task(self, task_id: str) -> Task:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)

    def checkboxes(self) -> Iterator[Checkbox]:
        """Every checkbox in the document, each exactly once, in document order."""
        boxes: list[Checkbox] = []
        for p in self.phases:
            for t in p.tasks:
                boxes.extend(t.prerequisites)
                boxes.extend(t.acceptance)
                boxes.extend(t.checklist)
                for s in t.extra:
                    boxes.extend(s.checkboxes)
            for g in p.gates:
                boxes.extend(g.checkboxes)
        for s in self.sections:
            boxes.extend(s.checkboxes)
        return iter(sorted(boxes, key=lambda b: b.line))

    def checkbox(self, key: str) -> Checkbox:
        for b in self.checkboxes():
            if b.key == key:
                return b
        raise KeyError(key)
