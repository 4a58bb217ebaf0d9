"""Four-eyes approval: a task that needs one does not start until a second person signed its plan.

Which tasks (:func:`requires_approval`): ``approval=required`` on the task (annotation or
``TASK-ID: {approval: required}`` in the bindings file), else the document's default (an
annotation before the first heading, the front matter's ``runbook: {approval: required}``, or
``default: {approval: required}`` in the bindings file), else every CRITICAL task when the
session has an approvers file (``--approvers FILE``, journaled as ``approvers_set``).
``approval=none`` exempts a task.

The flow:

1. **Request.**  :meth:`Approvals.request` writes ``approval-TASK-ID.json`` into the session
   directory and journals ``approval_requested``.  The file is the message an approver signs:
   JSON naming the session, the task, the runbook's SHA-256 and the plan of every runnable
   step of the task (hosts, mode, the script exactly as it will run with secrets masked),
   the operator and the fingerprints of the operator's own keys.
2. **Sign.**  An approver runs ``runbook approve REQUEST --sign KEY`` (or ``--sign-agent``):
   it shows the plan, asks, and writes ``REQUEST.sig``, an SSHSIG in namespace
   :data:`NAMESPACE` over the request's bytes (the same signature ``ssh-keygen -Y sign -n
   runbook-approval`` makes).
3. **Check.**  :meth:`Approvals.offer` checks a signature with the stock tool:
   ``ssh-keygen -Y find-principals`` against the journaled approvers file gives the principal,
   ``ssh-keygen -Y verify -I PRINCIPAL -n runbook-approval`` the verdict.  Refused: a key that
   is the operator's own (its fingerprint is one recorded in the request or one the operator
   holds now, :func:`operator_fingerprints`), a key not in the approvers file, a bad
   signature, another session or task, a runbook whose SHA-256 changed, a plan that changed.
   The verdict is journaled: ``approval_granted`` (principal, fingerprint, the signature and
   the message) or ``approval_refused`` (why).
4. **Guard.**  :func:`approval_guard` is pure over the state: a step of such a task is
   guarded (kind ``approval``) until an ``approval_granted`` of this session for the task
   holds exactly the step's current plan entry and the runbook's current SHA-256.  The
   engine refuses to run a guarded step, so nothing runs unapproved, whatever the front end.

The operator's own keys (what an approval is never signed with): every key in the
operator's ssh-agent (``$SSH_AUTH_SOCK``), every ``~/.ssh/*.pub``, the public half of
``$RUNBOOK_SIGNING_KEY`` and each ``--operator-key PUBKEY``; recorded in the request when it is
made and computed again when an approval is checked.
"""

from __future__ import annotations

import asyncio
import base64
import glob
import hashlib
import json
import os
import re
import secrets as _secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from runbook.errors import UserError
from runbook.model import Approval, Risk, Runbook
from sessions.journal import events as ev
from sessions.planning.guards import Guard, resolve_task

if TYPE_CHECKING:
    from sessions.journal.format import Record
    from sessions.planning.planning import PlannedStep
    from sessions.state.state import SessionState

NAMESPACE = "runbook-approval"
REQUEST_KIND = "runbook-approval-request"
REQUEST_VERSION = 1
SIGNATURE_SUFFIX = ".sig"
MAX_REQUEST_BYTES = 8 * 1024 * 1024
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_BEGIN = b"-----BEGIN SSH SIGNATURE-----"
_END = b"-----END SSH SIGNATURE-----"


class ApprovalStatus(StrEnum):
    """Where a task stands with its approval (the tree, the task view, the reports)."""

    NOT_REQUIRED = "not_required"
    REQUIRED = "required"  # needed, not asked for yet
    REQUESTED = "requested"  # asked for, no good signature yet
    REFUSED = "refused"  # the last signature offered was refused
    GRANTED = "granted"  # granted, and the plan has not changed since


# --- what needs an approval -------------------------------------------------------------


def requires_approval(runbook: Runbook, task_id: str, state: SessionState) -> bool:
    """Whether ``task_id`` needs a four-eyes approval (a phase gate never does)."""
    try:
        task = runbook.task(task_id)
    except KeyError:
        return False
    if task.approval is not Approval.DEFAULT:
        return task.approval is Approval.REQUIRED
    if runbook.approval is not Approval.DEFAULT:
        return runbook.approval is Approval.REQUIRED
    return task.risk is Risk.CRITICAL and state.approvers is not None


# --- the plan an approver signs ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanEntry:
    """One step as it will run: the hosts, the mode and the script (secrets masked)."""

    step: int
    title: str
    hosts: tuple[str, ...]
    mode: str
    script: str

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "title": self.title, "hosts": list(self.hosts), "mode": self.mode,
                "script": self.script}

    @classmethod
    def from_json(cls, data: Any) -> PlanEntry:
        if not isinstance(data, dict):
            raise ValueError("a plan entry is not an object")
        step, title, hosts, mode, script = (data.get(k) for k in ("step", "title", "hosts", "mode", "script"))
        if type(step) is not int or not isinstance(title, str) or not isinstance(mode, str) \
                or not isinstance(script, str) or not isinstance(hosts, list) \
                or not all(isinstance(h, str) for h in hosts):
            raise ValueError("a plan entry needs step (integer), title, hosts (list), mode and script")
        return cls(step, title, tuple(hosts), mode, script)


def entry_of(plan: PlannedStep) -> PlanEntry:
    return PlanEntry(plan.step, plan.title, plan.hosts, plan.mode, plan.script_redacted)


def task_plan(runbook: Runbook, task_id: str, planner: Callable[[int], PlannedStep]) -> tuple[PlanEntry, ...]:
    """Every runnable step of the task (not its rollback), planned by ``planner(step)``."""
    ref = resolve_task(runbook, task_id)
    out: list[PlanEntry] = []
    for s in ref.steps:
        if not s.runnable:
            continue
        try:
            out.append(entry_of(planner(s.number)))
        except UserError as exc:  # e.g. a later step's pattern matches no host: said, not hidden
            out.append(PlanEntry(s.number, s.title, (), "unplanned", f"# cannot be planned now: {exc}\n"))
    return tuple(out)


def plan_sha256(entries: Sequence[PlanEntry]) -> str:
    data = json.dumps([e.to_json() for e in entries], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(data.encode("ascii")).hexdigest()


# --- the request ------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """An approval request, as written to its file and signed (``text``)."""

    request_id: str
    session: str
    task: str
    title: str
    risk: str
    runbook_path: str
    runbook_sha256: str
    operator: str
    jump_host: str
    requested_at: str
    operator_keys: tuple[str, ...]
    plan: tuple[PlanEntry, ...]
    text: str = field(default="", compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": REQUEST_KIND, "version": REQUEST_VERSION, "namespace": NAMESPACE,
            "request_id": self.request_id, "session": self.session, "task": self.task, "title": self.title,
            "risk": self.risk, "runbook": self.runbook_path, "runbook_sha256": self.runbook_sha256,
            "operator": self.operator, "jump_host": self.jump_host, "requested_at": self.requested_at,
            "operator_keys": list(self.operator_keys), "plan": [e.to_json() for e in self.plan],
        }

    def render(self) -> str:
        """The request file's text (the exact bytes an approver signs)."""
        return json.dumps(self.to_json(), sort_keys=True, indent=2, ensure_ascii=True) + "\n"

    @property
    def plan_sha256(self) -> str:
        return plan_sha256(self.plan)

    def summary(self) -> list[str]:
        """What the approver reads before signing (each line plain text; print it with
        ``terminal_text.visible``)."""
        from runbook.sanitize.terminal_text import visible

        def one(text: str) -> str:  # a one-line field: a newline in it must not make a line of its own
            return visible(text, multiline=False)

        lines = [
            f"Approve task {one(self.task)}: {one(self.title)} ({one(self.risk)} risk)",
            f"  session {one(self.session)}, operator {one(self.operator)} on {one(self.jump_host)}, "
            f"requested {one(self.requested_at)}",
            f"  runbook {one(self.runbook_path)} (sha256 {one(self.runbook_sha256)})",
            f"  {len(self.plan)} step(s):",
        ]
        for e in self.plan:
            hosts = ", ".join(one(h) for h in e.hosts) if e.hosts else "no target chosen yet"
            lines.append(f"  step {e.step}: {one(e.title)} -- on {len(e.hosts)} host(s) ({one(e.mode)}): {hosts}")
            lines.extend(f"    | {line}" for line in e.script.rstrip("\n").split("\n"))
        return lines


def parse_request(data: bytes, source: str) -> Request:
    """Read a request file's bytes; :class:`UserError` naming ``source`` when it is not one."""
    if len(data) > MAX_REQUEST_BYTES:
        raise UserError(f"{source}: too large for an approval request")
    try:
        text = data.decode("ascii")
        obj = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{source}: not an approval request (not ASCII JSON: {exc})") from None
    if not isinstance(obj, dict) or obj.get("kind") != REQUEST_KIND:
        raise UserError(f"{source}: not an approval request (kind is not {REQUEST_KIND!r})")
    if obj.get("version") != REQUEST_VERSION:
        raise UserError(f"{source}: approval request version {obj.get('version')!r} is not {REQUEST_VERSION}")
    try:
        strings = {k: obj[k] for k in ("request_id", "session", "task", "title", "risk", "runbook", "runbook_sha256",
                                       "operator", "jump_host", "requested_at")}
        if not all(isinstance(v, str) for v in strings.values()):
            raise ValueError("a field that should be text is not")
        keys = obj["operator_keys"]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValueError("operator_keys is not a list of fingerprints")
        if not isinstance(obj["plan"], list):
            raise ValueError("plan is not a list")
        plan = tuple(PlanEntry.from_json(e) for e in obj["plan"])
    except (KeyError, ValueError) as exc:
        raise UserError(f"{source}: not a valid approval request ({exc})") from None
    return Request(strings["request_id"], strings["session"], strings["task"], strings["title"], strings["risk"],
                   strings["runbook"], strings["runbook_sha256"], strings["operator"], strings["jump_host"],
                   strings["requested_at"], tuple(keys), plan, text)


@lru_cache(maxsize=256)
def _parsed(message: str) -> Request | None:
    try:
        return parse_request(message.encode("ascii", "replace"), "journal")
    except UserError:
        return None


def request_file_name(task: str, request_id: str) -> str:
    return f"approval-{_SAFE.sub('_', task)[:80]}-{request_id}.json"


def signature_path(request_path: str | os.PathLike[str]) -> Path:
    return Path(str(request_path) + SIGNATURE_SUFFIX)


# --- the operator's own keys ------------------------------------------------------------


def operator_fingerprints(extra: Iterable[str] = (), env: dict[str, str] | None = None) -> tuple[str, ...]:
    """Fingerprints (``SHA256:...``) of the keys the operator holds: the agent's, every
    ``~/.ssh/*.pub``, ``$RUNBOOK_SIGNING_KEY``'s public half, and ``extra`` (public key files
    or lines, ``--operator-key``).  Unreadable keys are skipped; a bad ``extra`` is an error."""
    import asyncssh
    from asyncssh.public_key import decode_ssh_public_key

    from sessions.signing import SigningError, agent_identities, load_public_keys

    env = dict(os.environ) if env is None else env
    found: list[str] = []

    def add(key: Any) -> None:
        fp = key.get_fingerprint("sha256")
        if fp not in found:
            found.append(fp)

    if env.get("SSH_AUTH_SOCK"):
        try:
            for blob, _comment in agent_identities(env["SSH_AUTH_SOCK"], timeout=5.0):
                try:
                    add(decode_ssh_public_key(blob))
                except (asyncssh.KeyImportError, ValueError):
                    continue
        except SigningError:
            pass
    home = env.get("HOME") or os.path.expanduser("~")
    pubs = sorted(glob.glob(os.path.join(home, ".ssh", "*.pub")))
    signing = env.get("RUNBOOK_SIGNING_KEY")
    if signing:
        pubs.append(os.path.expanduser(signing) + ".pub")
    for pub in pubs:
        try:
            for key in asyncssh.read_public_key_list(pub):
                add(key)
        except (OSError, asyncssh.KeyImportError, ValueError):
            continue
    items = list(extra)
    if items:
        for key in load_public_keys(items):
            add(key)
    return tuple(found)


# --- checking a signature ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str
    principal: str = ""
    fingerprint: str = ""


def _ssh_keygen() -> str:
    path = shutil.which("ssh-keygen")
    if path is None:
        raise UserError("ssh-keygen (OpenSSH) is needed to check approvals and was not found on the PATH")
    return path


def check_signature(message: bytes, signature: bytes, approvers_text: str, operator_keys: Iterable[str],
                    approvers_name: str = "the approvers file") -> Verdict:
    """Check ``signature`` over ``message`` with ``ssh-keygen``: signed in :data:`NAMESPACE`, not
    by one of ``operator_keys``, by a key of the approvers file (its principal), and good."""
    from sessions.signing import SignatureFormatError, dearmor, parse_signature

    try:
        sig = parse_signature(signature)
    except SignatureFormatError as exc:
        try:
            certificate = b"-cert-v01@openssh.com" in dearmor(signature)
        except (SignatureFormatError, ValueError):
            certificate = False
        if certificate:
            return Verdict(False, "signed with an SSH certificate: an approval needs a plain key listed in the "
                                  "approvers file (cert-authority lines are not supported)")
        return Verdict(False, f"not an SSH signature ({exc})")
    fp = sig.public_key.get_fingerprint("sha256")
    if sig.namespace != NAMESPACE:
        return Verdict(False, f"signed for namespace {sig.namespace!r}, not {NAMESPACE!r}: not an approval",
                       fingerprint=fp)
    if fp in set(operator_keys):
        return Verdict(False, f"signed with the operator's own key {fp}: an approval needs a second person",
                       fingerprint=fp)
    keygen = _ssh_keygen()
    with tempfile.TemporaryDirectory(prefix="runbook-approval-") as tmp:
        allowed = os.path.join(tmp, "approvers")
        sig_file = os.path.join(tmp, "request.sig")
        Path(allowed).write_text(approvers_text, encoding="utf-8")
        Path(sig_file).write_bytes(signature)
        try:
            found = subprocess.run([keygen, "-Y", "find-principals", "-s", sig_file, "-f", allowed],
                                   capture_output=True, timeout=30, check=False)
            # one principal per line; a line may hold a list of them (``a@x,b@x``)
            principals = [p.strip() for line in found.stdout.decode("utf-8", "replace").splitlines()
                          for p in line.split(",") if p.strip()]
            if found.returncode != 0 or not principals:
                if base64.b64encode(sig.public_data).decode("ascii") in approvers_text.split():
                    # listed, but ssh-keygen finds no principal for it now: its options rule it out
                    return Verdict(False, f"signed with {fp}, a key of {approvers_name} that is not valid now "
                                          "(its valid-after/valid-before options)", fingerprint=fp)
                return Verdict(False, f"signed with {fp}, a key that is not in {approvers_name}", fingerprint=fp)
            problems: list[str] = []
            for principal in principals:
                done = subprocess.run([keygen, "-Y", "verify", "-f", allowed, "-I", principal, "-n", NAMESPACE,
                                       "-s", sig_file], input=message, capture_output=True, timeout=30, check=False)
                if done.returncode == 0:
                    return Verdict(True, f"good signature by {principal} ({fp})", principal, fp)
                said = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
                problems.append(said[-1] if said else f"exit {done.returncode}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Verdict(False, f"ssh-keygen could not check the signature: {exc}", fingerprint=fp)
    return Verdict(False, f"BAD signature by {fp} ({'; '.join(problems)}): the request was changed after signing, "
                          f"or the key is not allowed in namespace {NAMESPACE}", principals[0], fp)


def plan_difference(signed: Sequence[PlanEntry], now: Sequence[PlanEntry]) -> str:
    """How the plan changed, in words ("" when it did not)."""
    before = {e.step: e for e in signed}
    after = {e.step: e for e in now}
    out: list[str] = []
    for n in sorted(set(before) | set(after)):
        a, b = before.get(n), after.get(n)
        if a is None:
            out.append(f"step {n} was not in the signed plan")
        elif b is None:
            out.append(f"step {n} is no longer in the plan")
        elif a != b:
            what = [name for name, x, y in (("hosts", a.hosts, b.hosts), ("mode", a.mode, b.mode),
                                            ("commands", a.script, b.script), ("title", a.title, b.title)) if x != y]
            detail = f" ({', '.join(a.hosts) or 'none'} -> {', '.join(b.hosts) or 'none'})" if "hosts" in what else ""
            out.append(f"step {n}: {' and '.join(what)} changed{detail}")
    return "; ".join(out)


def check_request(request: Request, session_id: str, task: str, runbook: Runbook,
                  current: Sequence[PlanEntry] | None) -> str:
    """Why ``request`` does not fit this session and task now ("" when it does)."""
    if request.session != session_id:
        return f"the request is for session {request.session}, not {session_id}"
    if request.task != task:
        return f"the request is for task {request.task}, not {task}"
    if request.runbook_sha256 != runbook.sha256:
        return (f"the runbook changed since the plan was signed (sha256 {request.runbook_sha256[:12]}... then, "
                f"{runbook.sha256[:12]}... now)")
    if current is not None:
        diff = plan_difference(request.plan, current)
        if diff:
            return f"the plan changed since it was signed: {diff}"
    return ""


# --- the guard (pure) -------------------------------------------------------------------


def granted(state: SessionState, task: str) -> list[ev.ApprovalGranted]:
    return [a for a in state.approvals if isinstance(a, ev.ApprovalGranted) and a.task == task]


def covering_grant(state: SessionState, runbook: Runbook, task: str, entry: PlanEntry) -> ev.ApprovalGranted | None:
    """The latest grant of this session for ``task`` whose signed plan holds ``entry`` exactly,
    for the runbook as it is now."""
    for grant in reversed(granted(state, task)):
        request = _parsed(grant.message)
        if request is None or request.session != state.session_id or request.task != task:
            continue
        if request.runbook_sha256 == runbook.sha256 and entry in request.plan:
            return grant
    return None


def approval_guard(state: SessionState, runbook: Runbook, plan: PlannedStep) -> Guard | None:
    """The ``approval`` guard of a planned step, or None (not needed, or granted for this plan)."""
    if plan.rollback or plan.task.startswith("gate:") or not requires_approval(runbook, plan.task, state):
        return None
    entry = entry_of(plan)
    if covering_grant(state, runbook, plan.task, entry) is not None:
        return None
    grants = granted(state, plan.task)
    if state.approvers is None:
        message = (f"{plan.task} needs a four-eyes approval, and this session has no approvers file: "
                   "give --approvers FILE (an OpenSSH allowed-signers file)")
    elif grants:
        last = grants[-1]
        request = _parsed(last.message)
        why = (check_request(request, state.session_id, plan.task, runbook, None)
               or plan_difference([e for e in request.plan if e.step == plan.step], [entry])) \
            if request is not None else "its request cannot be read"
        message = (f"{plan.task} was approved by {last.principal} ({last.key_fingerprint}), but not this: "
                   f"{why or 'step ' + str(plan.step) + ' changed'}; a new approval is needed")
    else:
        message = f"{plan.task} needs a four-eyes approval: an approver must sign its plan before it starts"
    return Guard("approval", plan.task, plan.step, message, "approval", detail=plan_sha256([entry]))


def status(state: SessionState, runbook: Runbook, task: str) -> tuple[ApprovalStatus, ev.Event | None]:
    """The task's approval status and the event that says so (for the tree, the task view)."""
    if not requires_approval(runbook, task, state):
        return ApprovalStatus.NOT_REQUIRED, None
    last: ev.Event | None = None
    for a in state.approvals:
        if a.task == task:
            last = a
    if last is None:
        return ApprovalStatus.REQUIRED, None
    if isinstance(last, ev.ApprovalGranted):
        request = _parsed(last.message)
        if request is not None and request.runbook_sha256 == runbook.sha256:
            return ApprovalStatus.GRANTED, last
        return ApprovalStatus.REQUIRED, last
    if isinstance(last, ev.ApprovalRefused):
        return ApprovalStatus.REFUSED, last
    return ApprovalStatus.REQUESTED, last


def status_text(state: SessionState, runbook: Runbook, task: str) -> tuple[ApprovalStatus, str]:
    """The task's approval status and one line saying it (the task view; plain text)."""
    st, event = status(state, runbook, task)
    if st is ApprovalStatus.NOT_REQUIRED:
        return st, ""
    if isinstance(event, ev.ApprovalGranted) and st is ApprovalStatus.GRANTED:
        return st, f"approved by {event.principal} ({event.key_fingerprint})"
    if isinstance(event, ev.ApprovalRefused):
        return st, f"approval refused: {event.reason}; waiting for another signature"
    if isinstance(event, ev.ApprovalRequested):
        return st, f"approval requested: waiting for {event.path}{SIGNATURE_SUFFIX}"
    if isinstance(event, ev.ApprovalGranted):
        return st, f"approved by {event.principal}, but the runbook changed since: a new approval is needed"
    if state.approvers is None:
        return st, "needs a four-eyes approval, and the session has no approvers file (--approvers FILE)"
    return st, "needs a four-eyes approval: requested when its first step runs"


def pending_request(state: SessionState, task: str) -> ev.ApprovalRequested | None:
    """The latest request for ``task`` with no grant after it."""
    out: ev.ApprovalRequested | None = None
    for a in state.approvals:
        if a.task != task:
            continue
        if isinstance(a, ev.ApprovalRequested):
            out = a
        elif isinstance(a, ev.ApprovalGranted) and out is not None and a.request_id == out.request_id:
            out = None
    return out


# --- the session side -------------------------------------------------------------------


def read_approvers(path: str) -> tuple[str, str]:
    """(text, sha256) of an approvers (allowed-signers) file; :class:`UserError` when unreadable
    or without one usable entry."""
    from runbook.reading.files import read_input
    from sessions.signing import read_allowed_signers

    try:
        data = read_input(path, "approvers file")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such approvers file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the approvers file: {getattr(exc, 'strerror', None) or exc}") from None
    entries, problems = read_allowed_signers(path)
    if not entries:
        raise UserError(f"{path}: no approver in it (an OpenSSH allowed-signers file: PRINCIPAL KEYTYPE KEY)"
                        + (f"; {'; '.join(problems)}" if problems else ""))
    return text, hashlib.sha256(data).hexdigest()


class ApprovalSession(Protocol):
    """What approvals need of a session: where it lives, who runs it, its runbook and state,
    and ``record`` to journal requests, grants and refusals."""

    id: str
    dir: Path
    runbook: Runbook | None

    @property
    def operator(self) -> str: ...

    @property
    def state(self) -> SessionState: ...

    def record(self, event: ev.Event) -> Record: ...


def set_approvers(session: ApprovalSession, path: str) -> bool:
    """Journal the approvers file (``approvers_set``) unless ``session`` has it already."""
    text, sha = read_approvers(path)
    current = session.state.approvers
    if current is not None and current.sha256 == sha:
        return False
    session.record(ev.ApproversSet(os.path.abspath(path), sha, text, session.operator))
    return True


class Approvals:
    """Requests, checks and journals approvals for one open session.

    :param planner: ``planner(task, step)`` -> the step's :class:`PlannedStep` (``Engine.plan``)
    :param operator_keys: ``--operator-key`` public keys (files or lines), added to the ones found
    """

    def __init__(self, session: ApprovalSession, planner: Callable[[str, int], PlannedStep],
                 operator_keys: Sequence[str] = ()) -> None:
        self.session = session
        self.planner = planner
        self.operator_keys = tuple(operator_keys)

    @property
    def runbook(self) -> Runbook:
        rb: Runbook | None = self.session.runbook
        if rb is None:
            raise UserError("the runbook of this session could not be loaded: no approval can be requested")
        return rb

    def set_approvers(self, path: str) -> bool:
        """Journal the approvers file (``approvers_set``) unless the session has it already."""
        return set_approvers(self.session, path)

    def current_plan(self, task: str) -> tuple[PlanEntry, ...]:
        return task_plan(self.runbook, task, lambda n: self.planner(task, n))

    def request(self, task: str) -> tuple[Request, Path]:
        """Write a request for ``task`` into the session directory and journal it."""
        from sessions.journal.session_dir import open_nofollow

        state = self.session.state
        if state.approvers is None:
            raise UserError(f"{task} needs a four-eyes approval, and this session has no approvers file: "
                            "give --approvers FILE (an OpenSSH allowed-signers file)")
        ref = resolve_task(self.runbook, task)
        who = getattr(self.session, "operator_info", None)
        request = Request(
            request_id=_secrets.token_hex(4), session=self.session.id, task=task, title=ref.title,
            risk=ref.risk.value, runbook_path=self.runbook.path, runbook_sha256=self.runbook.sha256,
            operator=self.session.operator, jump_host=getattr(who, "host", "") or "",
            requested_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            operator_keys=operator_fingerprints(self.operator_keys), plan=self.current_plan(task))
        text = request.render()
        request = parse_request(text.encode("ascii"), "request")
        path = Path(os.path.abspath(self.session.dir)) / request_file_name(task, request.request_id)
        fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, "approval request")
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("ascii"))
            f.flush()
            os.fsync(f.fileno())
        self.session.record(ev.ApprovalRequested(request.request_id, task, str(path), text, request.plan_sha256,
                                                 request.operator_keys, self.session.operator))
        return request, path

    def reusable(self, req_event: ev.ApprovalRequested) -> bool:
        """Whether a journaled request still describes the task as it would run now (so the
        approver's work on it is not thrown away)."""
        request = _parsed(req_event.message)
        return request is not None and not check_request(request, self.session.state.session_id, req_event.task,
                                                         self.runbook, self.current_plan(req_event.task))

    def latest_request(self, task: str) -> ev.ApprovalRequested | None:
        return pending_request(self.session.state, task)

    def offer(self, task: str, signature: bytes, source: str, request_event: ev.ApprovalRequested | None = None) -> Verdict:
        """Check a signature for ``task`` against its request (the latest pending one unless
        given) and journal the verdict."""
        req_event = request_event or self.latest_request(task)
        if req_event is None:
            verdict = Verdict(False, f"no approval was requested for {task} in this session")
            self.session.record(ev.ApprovalRefused("", task, verdict.reason, "", "", source, self.session.operator))
            return verdict
        verdict = self.check(task, req_event, signature)
        if verdict.ok:
            self.session.record(ev.ApprovalGranted(
                req_event.request_id, task, verdict.principal, verdict.fingerprint,
                signature.decode("ascii", "replace"), NAMESPACE, req_event.message, source, self.session.operator))
        else:
            self.session.record(ev.ApprovalRefused(req_event.request_id, task, verdict.reason, verdict.fingerprint,
                                                   verdict.principal, source, self.session.operator))
        return verdict

    def check(self, task: str, req_event: ev.ApprovalRequested, signature: bytes) -> Verdict:
        """The verdict on ``signature`` for a journaled request (journals nothing)."""
        state = self.session.state
        if state.approvers is None:
            return Verdict(False, "this session has no approvers file (--approvers FILE)")
        request = _parsed(req_event.message)
        if request is None:
            return Verdict(False, "the journaled request cannot be read")
        mine = tuple(dict.fromkeys(req_event.operator_keys + operator_fingerprints(self.operator_keys)))
        verdict = check_signature(req_event.message.encode("ascii"), signature, state.approvers.text, mine,
                                  f"the approvers file ({state.approvers.path})")
        if not verdict.ok:
            return verdict
        why = check_request(request, state.session_id, task, self.runbook, self.current_plan(task))
        if why:
            return Verdict(False, why, verdict.principal, verdict.fingerprint)
        return verdict

    async def wait(self, task: str, req_event: ev.ApprovalRequested, sig_path: Path, *, poll: float = 0.5,
                   stop: asyncio.Event | None = None, on_refused: Callable[[Verdict], None] | None = None) -> Verdict | None:
        """Poll for ``sig_path`` until a signature in it is granted (its verdict), or ``stop`` is
        set (None).  A refused signature is journaled and reported to ``on_refused``; the
        same bytes are not checked twice."""
        seen: set[str] = set()
        while stop is None or not stop.is_set():
            data = read_signature_file(sig_path)
            if data is not None:
                digest = hashlib.sha256(data).hexdigest()
                if digest not in seen:
                    seen.add(digest)
                    verdict = self.offer(task, data, str(sig_path), req_event)
                    if verdict.ok:
                        return verdict
                    if on_refused is not None:
                        on_refused(verdict)
            try:
                if stop is not None:
                    await asyncio.wait_for(stop.wait(), poll)
                else:
                    await asyncio.sleep(poll)
            except TimeoutError:
                pass
        return None


def verify_journaled(records: Iterable[Any]) -> tuple[bool, str]:
    """Check every ``approval_granted`` of a journal again, with ``ssh-keygen``, against the
    approvers file journaled before it (``journal verify``).  (ok, what was found)."""
    approvers: ev.ApproversSet | None = None
    requests: dict[str, ev.ApprovalRequested] = {}
    good: list[str] = []
    for rec in records:
        e = rec.event
        if isinstance(e, ev.ApproversSet):
            approvers = e
        elif isinstance(e, ev.ApprovalRequested):
            requests[e.request_id] = e
        elif isinstance(e, ev.ApprovalGranted):
            where = f"record {rec.seq} (approval of {e.task} by {e.principal})"
            if approvers is None:
                return False, f"{where}: no approvers file journaled before it"
            request = requests.get(e.request_id)
            if request is None or request.message != e.message:
                return False, f"{where}: it does not sign the request journaled as {e.request_id}"
            verdict = check_signature(e.message.encode("ascii", "replace"), e.signature.encode("ascii", "replace"),
                                      approvers.text, request.operator_keys, "the journaled approvers file")
            if not verdict.ok:
                return False, f"{where}: {verdict.reason}"
            if verdict.fingerprint != e.key_fingerprint:
                return False, f"{where}: signed with {verdict.fingerprint}, journaled as {e.key_fingerprint}"
            good.append(f"{e.task} by {verdict.principal}")
    return True, f"{len(good)} verified with ssh-keygen ({'; '.join(good)})" if good else "none granted"


def read_signature_file(path: str | os.PathLike[str]) -> bytes | None:
    """A complete armored signature in ``path``, or None (missing, still being written, not a
    regular file)."""
    import stat as _stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not _stat.S_ISREG(st.st_mode) or st.st_size > 64 * 1024:
            return None
        data = b""
        while chunk := os.read(fd, 65536):
            data += chunk
    finally:
        os.close(fd)
    stripped = data.strip()
    if not stripped.startswith(_BEGIN) or not stripped.endswith(_END):
        return None
    return data


def read_signature(path: str) -> bytes:
    """A signature file given on the command line or in a dialog; :class:`UserError` when it is not one."""
    from runbook.reading.files import read_input

    try:  # a path someone typed: a symlink to the file is fine; a FIFO, a device or a huge file is not
        data = read_input(path, "signature file", limit=64 * 1024)
    except FileNotFoundError:
        raise UserError(f"{path}: no such signature file") from None
    except UserError:
        raise
    except OSError as exc:
        raise UserError(f"{path}: cannot read the signature file: {exc.strerror or exc}") from None
    stripped = data.strip()
    if not stripped.startswith(_BEGIN) or not stripped.endswith(_END):
        raise UserError(f"{path}: not an SSH signature file (-----BEGIN SSH SIGNATURE----- ... -----END SSH "
                        "SIGNATURE-----)")
    return data
