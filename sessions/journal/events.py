"""Typed session events, each with a stable JSON form.

Every decision and every byte of output in a session becomes one of these events,
appended to the journal (``sessions.journal.journal``).  State is a pure fold over them
(``sessions.state.state.replay``).  The JSON form is ``{"type": <TYPE>, ...fields}``;
field names are part of the on-disk format: add fields with defaults, never
rename or remove them.

Identifiers used across events:

* ``task``: task id from the runbook (``PROD-K8S-001``); for phase gates
  ``gate:<phase>`` and for document sections ``section:<slug>``.
* ``step``: step number (int) inside the task; rollback steps are numbered as in
  ``Rollback.steps`` and flagged ``rollback=True`` on ``StepStarted``.
* ``run_id``: unique id of one execution of one step (a re-run gets a new one).
* ``host``: inventory host name (``local`` for the machine runbook runs on).
* ``key``: ``Checkbox.key`` from the model.

Secrets never appear here: ``StepStarted.command`` is redacted, secret
placeholder values are stored only as a salted hash, and output is redacted by
the engine before an ``OutputChunk`` is built.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

Outcome = str  # "succeeded" | "failed" | "unknown" | "cancelled" | "timeout" | "skipped"


@dataclass(frozen=True, slots=True)
class Event:
    TYPE: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.TYPE}
        for f in dataclasses.fields(self):
            data[f.name] = getattr(self, f.name)
        return data


_REGISTRY: dict[str, type[Event]] = {}


E = TypeVar("E", bound=Event)


def event_type(cls: type[E]) -> type[E]:
    """Class decorator: register an event class under its ``TYPE`` (and return it unchanged, typed)."""
    if not cls.TYPE or cls.TYPE in _REGISTRY:
        raise ValueError(f"bad or duplicate event type {cls.TYPE!r}")
    _REGISTRY[cls.TYPE] = cls
    return cls


class UnknownEvent(ValueError):
    pass


def event_types() -> dict[str, type[Event]]:
    return dict(_REGISTRY)


# --- session lifecycle -------------------------------------------------------


@event_type
@dataclass(frozen=True, slots=True)
class SessionOpened(Event):
    """Written each time a session is opened for writing (create, resume, handover)."""

    TYPE: ClassVar[str] = "session_opened"
    session_id: str
    runbook_path: str
    runbook_sha256: str
    runbook_title: str = ""
    operator: str = ""
    origin: str = ""  # SSH_CLIENT address of the operator, if any
    jump_host: str = ""  # hostname runbook runs on
    tool_version: str = ""
    inventory_digest: str = ""  # sha256 of the inventory file, "" when none
    task_ids: tuple[str, ...] = ()  # tasks in the runbook when opened (for change mapping)
    window_end: str | None = None  # RFC 3339
    resumed: bool = False
    handover_from: str | None = None  # previous operator when someone else resumes
    pid: int = 0
    #: the journal format the writer writes (``sessions.journal.format.FORMAT_VERSION``); absent: 1
    format_version: int = 1


@event_type
@dataclass(frozen=True, slots=True)
class SessionClosed(Event):
    TYPE: ClassVar[str] = "session_closed"
    reason: str = ""  # "finished" | "quit" | ...
    finished: bool = False


@event_type
@dataclass(frozen=True, slots=True)
class RunbookChanged(Event):
    """On resume: the runbook's sha256 differs from the one the session opened with."""

    TYPE: ClassVar[str] = "runbook_changed"
    old_sha256: str
    new_sha256: str
    tasks_added: tuple[str, ...] = ()
    tasks_removed: tuple[str, ...] = ()


@event_type
@dataclass(frozen=True, slots=True)
class Recovered(Event):
    """Something was repaired when the journal was opened (torn tail, stale lock)."""

    TYPE: ClassVar[str] = "recovered"
    what: str
    bytes_dropped: int = 0
    detail: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class Checkpoint(Event):
    """A (optionally signed) statement of the journal head at ``seq``."""

    TYPE: ClassVar[str] = "checkpoint"
    head: str  # hash of record seq
    seq: int
    signature: str | None = None  # armored SSH signature over "runbook-checkpoint:<session_id>:<seq>:<head>"
    namespace: str | None = None
    key_fingerprint: str | None = None


# --- tasks ----------------------------------------------------------------------


@event_type
@dataclass(frozen=True, slots=True)
class TaskStarted(Event):
    TYPE: ClassVar[str] = "task_started"
    task: str
    who: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class TaskCompleted(Event):
    TYPE: ClassVar[str] = "task_completed"
    task: str
    who: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class TaskSkipped(Event):
    TYPE: ClassVar[str] = "task_skipped"
    task: str
    reason: str
    who: str = ""


# --- steps ----------------------------------------------------------------------


@event_type
@dataclass(frozen=True, slots=True)
class StepStarted(Event):
    TYPE: ClassVar[str] = "step_started"
    run_id: str
    task: str
    step: int
    targets: tuple[str, ...]
    command: str  # the script as sent, placeholders filled, secrets redacted
    mode: str = "parallel"  # "parallel" | "serial"
    rollback: bool = False
    detached: bool = False
    pty: bool = False
    who: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class OutputChunk(Event):
    """Bytes from one host's stream.  ``data`` holds UTF-8 text; when the bytes are not
    valid UTF-8, ``data`` is empty and ``b64`` holds them base64-encoded."""

    TYPE: ClassVar[str] = "output"
    run_id: str
    host: str
    stream: str  # "stdout" | "stderr" | "pty"
    data: str = ""
    b64: str | None = None
    # bytes the command actually wrote for this chunk, when redaction changed the
    # length (a secret was masked); None means len(raw).  Lets a detached run be
    # re-attached at the right offset.  Omitted from the JSON when None.
    raw_len: int | None = None

    @classmethod
    def from_bytes(cls, run_id: str, host: str, stream: str, raw: bytes, raw_len: int | None = None) -> OutputChunk:
        if raw_len == len(raw):
            raw_len = None
        try:
            return cls(run_id, host, stream, raw.decode("utf-8"), raw_len=raw_len)
        except UnicodeDecodeError:
            return cls(run_id, host, stream, "", base64.b64encode(raw).decode("ascii"), raw_len)

    def to_json(self) -> dict[str, Any]:
        data = Event.to_json(self)
        if self.raw_len is None:
            del data["raw_len"]
        return data

    @property
    def source_len(self) -> int:
        """Bytes of command output this chunk stands for (before redaction)."""
        return self.raw_len if self.raw_len is not None else len(self.raw)

    @property
    def raw(self) -> bytes:
        if self.b64 is not None:
            return base64.b64decode(self.b64)
        return self.data.encode("utf-8")


@event_type
@dataclass(frozen=True, slots=True)
class HostStarted(Event):
    """The engine is about to start the step on ``host`` (journaled durably first), so that
    on resume a host that never started is known as not run rather than outcome unknown."""

    TYPE: ClassVar[str] = "host_started"
    run_id: str
    host: str


@event_type
@dataclass(frozen=True, slots=True)
class HostFinished(Event):
    """One host's result for a step run.  ``outcome``: succeeded, failed, timeout,
    cancelled or unknown (end not seen: connection dropped)."""

    TYPE: ClassVar[str] = "host_finished"
    run_id: str
    host: str
    outcome: Outcome
    exit_status: int | None = None
    exit_signal: str | None = None
    duration_s: float = 0.0
    error: str = ""
    # where a failed script stopped: source line in the runbook, line in its block (1-based)
    # and that line as written (redacted); None/"" when not known
    failed_line: int | None = None
    failed_block_line: int | None = None
    failed_command: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class StepFinished(Event):
    """All hosts of a run are done (or the run was stopped)."""

    TYPE: ClassVar[str] = "step_finished"
    run_id: str
    outcome: Outcome  # worst host outcome; "skipped" hosts not run after a serial failure
    duration_s: float = 0.0


@event_type
@dataclass(frozen=True, slots=True)
class StepOutcomeUnknown(Event):
    """The end of a run (on ``host``, or all unfinished hosts when None) was not seen."""

    TYPE: ClassVar[str] = "step_outcome_unknown"
    run_id: str
    why: str
    host: str | None = None
    # how long it ran as far as the journal saw (start to its last record); None: not known
    duration_s: float | None = None


@event_type
@dataclass(frozen=True, slots=True)
class SignalReceived(Event):
    """runbook itself got ``signal`` (``SIGTERM``, ``SIGHUP``): it stops the running
    commands as Ctrl-C does (INT, then TERM, then KILL), journals their outcome, closes
    the session and exits 128+n."""

    TYPE: ClassVar[str] = "signal_received"
    signal: str
    pid: int = 0
    running: tuple[str, ...] = ()  # run ids being stopped


@event_type
@dataclass(frozen=True, slots=True)
class DetachedStarted(Event):
    """A detached command (``setsid -f`` + spool) is about to start on ``host``.

    Journaled before the command starts, so that after a crash or restart the
    engine can re-attach to ``detached_id`` and learn the real outcome and the
    output it missed.  ``block`` counts the command segments of the step on that
    host (0-based); ``final`` is False when more blocks follow it."""

    TYPE: ClassVar[str] = "detached_started"
    run_id: str
    host: str
    detached_id: str
    block: int = 0
    final: bool = True
    nonce: str = ""  # of the run's failure frames (runbook.shell.errexit), to read them after a re-attach


@event_type
@dataclass(frozen=True, slots=True)
class OutcomeDecided(Event):
    """The operator decides an outcome-unknown run: ``succeeded`` (checked by hand),
    ``failed``, or ``rerun`` (a new run will follow)."""

    TYPE: ClassVar[str] = "outcome_decided"
    run_id: str
    decision: str
    reason: str = ""
    host: str | None = None
    who: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class StepSkipped(Event):
    TYPE: ClassVar[str] = "step_skipped"
    task: str
    step: int
    reason: str
    who: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class ExpectationChecked(Event):
    TYPE: ClassVar[str] = "expectation_checked"
    run_id: str
    host: str
    index: int  # index into Step.expected
    passed: bool
    evidence: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class FileUploaded(Event):
    TYPE: ClassVar[str] = "file_uploaded"
    run_id: str
    host: str
    path: str
    sha256: str  # of the content uploaded; of the content with secret values masked when ``masked``
    mode: str = "0600"
    masked: bool = False  # the content held secret values: a hash of it would let them be guessed offline


@event_type
@dataclass(frozen=True, slots=True)
class HostKeyAccepted(Event):
    """``--accept-new-host-keys`` recorded a previously unknown host key."""

    TYPE: ClassVar[str] = "host_key_accepted"
    host: str
    fingerprint: str
    who: str = ""


# --- operator decisions ---------------------------------------------------------


@event_type
@dataclass(frozen=True, slots=True)
class CheckboxSet(Event):
    TYPE: ClassVar[str] = "checkbox_set"
    key: str
    text: str = ""
    who: str = ""
    evidence: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class CheckboxCleared(Event):
    TYPE: ClassVar[str] = "checkbox_cleared"
    key: str
    text: str = ""
    who: str = ""
    reason: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class PlaceholderSupplied(Event):
    """A placeholder got a value.  For secrets ``value`` is None and only
    ``value_hash`` is kept, to notice a change on resume: ``scrypt:n:r:p:<hex>`` of the value
    with ``salt`` (hex) as written by ``Session.supply`` (``sessions.engine.session.same_secret``
    checks a value; a bare hex hash means sha256(salt + value))."""

    TYPE: ClassVar[str] = "placeholder_supplied"
    name: str
    secret: bool
    value: str | None = None
    value_hash: str = ""
    salt: str = ""
    who: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class GuardPassed(Event):
    """A guard was satisfied by the operator (confirmation, typed host name)."""

    TYPE: ClassVar[str] = "guard_passed"
    guard: str  # "risk" | "destructive" | "dependencies" | "gate" | "window"
    task: str
    step: int | None = None
    detail: str = ""
    who: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class GuardOverridden(Event):
    TYPE: ClassVar[str] = "guard_overridden"
    guard: str
    task: str
    reason: str
    step: int | None = None
    who: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class Note(Event):
    TYPE: ClassVar[str] = "note"
    text: str
    task: str | None = None
    who: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class RollbackStarted(Event):
    TYPE: ClassVar[str] = "rollback_started"
    task: str
    reason: str = ""
    who: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class TargetChosen(Event):
    """The operator chose where steps run (the TUI's target picker), before they ran.

    ``step`` None: every step of the task (of its rollback when ``rollback``) that has
    no target of its own (no annotation, binding or document default), until changed;
    a number: that step only, whatever the runbook says.  ``pattern`` is an inventory
    host pattern and ``hosts`` what it matched when chosen.  ``saved_to`` names the
    bindings file the choice was also written to ("" when it was not)."""

    TYPE: ClassVar[str] = "target_chosen"
    task: str
    pattern: str
    step: int | None = None
    rollback: bool = False
    hosts: tuple[str, ...] = ()
    saved_to: str = ""
    who: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class ProbeResult(Event):
    """A Kubernetes / cmd probe ran for an acceptance criterion."""

    TYPE: ClassVar[str] = "probe_result"
    key: str  # checkbox key
    probe: str  # probe expression
    status: str  # "pass" | "fail" | "error" | "not_configured"
    evidence: str = ""
    duration_s: float = 0.0


# --- notifications (sessions.team.notify) --------------------------------------------------


@event_type
@dataclass(frozen=True, slots=True)
class WindowAlert(Event):
    """The change window's clock got worse: ``amber`` (little slack left against the
    remaining critical path) or ``red`` (the critical path no longer fits, or the window
    ended).  Journaled once per level reached while notifications are on, so that what
    was sent about it is explained by the journal."""

    TYPE: ClassVar[str] = "window_alert"
    level: str  # "amber" | "red"
    left_s: float = 0.0  # seconds left in the window (negative: past its end)
    critical_s: float = 0.0  # the remaining critical path, in seconds


@event_type
@dataclass(frozen=True, slots=True)
class NotificationSent(Event):
    """A notification (``--notify URL``) was delivered: the server answered ``status`` (2xx).

    ``url`` is masked (scheme, host and port, and a digest of the whole URL): a webhook's
    path or credentials are secrets.  ``about_seq`` is the journal record it was about."""

    TYPE: ClassVar[str] = "notification_sent"
    trigger: str  # sessions.team.notify.Trigger
    url: str
    status: int
    attempts: int = 1
    about_seq: int | None = None


@event_type
@dataclass(frozen=True, slots=True)
class NotificationFailed(Event):
    """A notification could not be delivered after ``attempts`` tries (timeout, refused,
    an HTTP error, dropped from a full queue, or the session closed first)."""

    TYPE: ClassVar[str] = "notification_failed"
    trigger: str
    url: str
    error: str
    attempts: int = 0
    about_seq: int | None = None


# --- four-eyes approval (sessions.team.approval) ---------------------------------------


@event_type
@dataclass(frozen=True, slots=True)
class ApproversSet(Event):
    """The session's approvers: an OpenSSH allowed-signers file (``--approvers FILE``), its
    text kept whole (public keys only), so that every approval is checked, then and later,
    against exactly what was journaled.  With it, every CRITICAL task needs an approval."""

    TYPE: ClassVar[str] = "approvers_set"
    path: str
    sha256: str
    text: str
    who: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class ApprovalRequested(Event):
    """The operator asked for an approval of ``task``: ``message`` is the request file's text
    (written at ``path``), exactly the bytes an approver signs: the session, the task, the
    runbook's SHA-256 and the plan (hosts and commands, secrets masked).  ``operator_keys``
    are the fingerprints (``SHA256:...``) of the operator's own keys: never an approver's."""

    TYPE: ClassVar[str] = "approval_requested"
    request_id: str
    task: str
    path: str
    message: str
    plan_sha256: str
    operator_keys: tuple[str, ...] = ()
    who: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class ApprovalGranted(Event):
    """An approver's signature over a request was checked and accepted.  ``signature`` is the
    armored SSHSIG (namespace ``namespace``) over ``message``, so that anyone can check it again
    with ``ssh-keygen -Y verify -f APPROVERS -I principal -n namespace -s SIG < MESSAGE``."""

    TYPE: ClassVar[str] = "approval_granted"
    request_id: str
    task: str
    principal: str
    key_fingerprint: str
    signature: str
    namespace: str
    message: str
    source: str = ""  # the signature file it came from
    who: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class ApprovalRefused(Event):
    """A signature offered as an approval was refused (``reason``): not a valid signature, a key
    not in the approvers file, the operator's own key, or a plan that changed since it was signed."""

    TYPE: ClassVar[str] = "approval_refused"
    request_id: str
    task: str
    reason: str
    key_fingerprint: str = ""
    principal: str = ""
    source: str = ""
    who: str = ""


# --- the journal mirror (``--mirror DEST``, ``resume --from``) -----------------


@event_type
@dataclass(frozen=True, slots=True)
class MirrorChanged(Event):
    """The journal mirror (``--mirror DEST``) changed state: ``started`` (first connected and
    caught up), ``lost`` (a connection or write failed; the session goes on), ``restored``
    (connected again and caught up) or ``refused`` (the remote file is not a prefix of this
    journal: it is never overwritten, mirroring stops).  Acknowledgements themselves are not
    journaled (each would be a record to mirror, without end): ``acked_seq`` is the last
    record the mirror had fsynced when this was written."""

    TYPE: ClassVar[str] = "mirror_changed"
    dest: str  # the --mirror destination as given (host:path)
    state: str  # sessions.team.mirror.MirrorState
    acked_seq: int = 0
    detail: str = ""


@event_type
@dataclass(frozen=True, slots=True)
class MirrorHandover(Event):
    """The session was carried on from a mirror (``runbook resume --from DEST``), on another
    host or by another operator: where it came from, who had it, who has it now."""

    TYPE: ClassVar[str] = "mirror_handover"
    source: str  # DEST/<session id> the journal was copied from
    records: int  # complete records copied (the chain verified)
    previous_operator: str = ""
    previous_host: str = ""
    operator: str = ""
    host: str = ""
    torn_bytes: int = 0  # a torn last record on the mirror, dropped as a local torn tail is
