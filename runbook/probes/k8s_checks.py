"""Judging Kubernetes objects: plain functions from API JSON (dicts) to a :class:`Verdict`.

No I/O here: :mod:`runbook.probes.k8s` fetches the objects and calls these.
The rules follow what ``kubectl`` shows (``get nodes``, ``rollout status``),
and each verdict carries the evidence an operator would want to read before
ticking the box: counts, names and the reason for anything not healthy.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from runbook.probes.registry import ERROR, FAIL, PASS, Verdict

Obj = Mapping[str, Any]

MAX_NAMES = 12
BAD_WAITING_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return default
        obj = obj.get(key)
    return default if obj is None else obj


def _name(obj: Obj) -> str:
    return str(_get(obj, "metadata", "name", default="?"))


def names_list(names: Sequence[str], limit: int = MAX_NAMES) -> str:
    """``a, b, c`` -- at most ``limit`` names, then ``... (+N more)``."""
    shown = ", ".join(names[:limit])
    return shown + (f", ... (+{len(names) - limit} more)" if len(names) > limit else "")


def _condition(obj: Obj, kind: str) -> Obj | None:
    for cond in _get(obj, "status", "conditions", default=[]) or []:
        if isinstance(cond, Mapping) and cond.get("type") == kind:
            return cond
    return None


def _items(listing: Obj) -> list[Obj]:
    return [i for i in (listing.get("items") or []) if isinstance(i, Mapping)]


# --- nodes -------------------------------------------------------------------------------

ROLE_PREFIX = "node-role.kubernetes.io/"
CONTROL_PLANE_ROLES = frozenset({"control-plane", "master"})


def node_roles(node: Obj) -> set[str]:
    labels = _get(node, "metadata", "labels", default={}) or {}
    roles = {k[len(ROLE_PREFIX):] for k in labels if k.startswith(ROLE_PREFIX)}
    if labels.get("kubernetes.io/role"):
        roles.add(str(labels["kubernetes.io/role"]))
    return roles


def _has_role(node: Obj, role: str) -> bool:
    roles = node_roles(node)
    if role in CONTROL_PLANE_ROLES:
        return bool(roles & CONTROL_PLANE_ROLES)
    return role in roles


def _node_problem(node: Obj) -> str | None:
    cond = _condition(node, "Ready")
    if cond is None:
        return "no Ready condition"
    if cond.get("status") == "True":
        return None
    state = "Unknown" if cond.get("status") == "Unknown" else "NotReady"
    reason = cond.get("reason") or ""
    return f"{state}: {reason}" if reason else state


def judge_nodes(listing: Obj, *, min: int | None = None, role: str | None = None, selector: str | None = None) -> Verdict:
    """Ready nodes among those matching ``role`` (and the server-side ``selector``).

    Passes when at least ``min`` match and are Ready; without ``min``, when at
    least one matches and all are Ready.
    """
    nodes = _items(listing)
    total = len(nodes)
    if role:
        nodes = [n for n in nodes if _has_role(n, role)]
    what = " ".join(filter(None, [f"role={role}" if role else "", f"selector {selector!r}" if selector else ""]))
    if not nodes:
        scope = f" match {what}" if what else ""
        return Verdict(FAIL, f"no nodes{scope} ({total} nodes listed)")
    ready = [_name(n) for n in nodes if _node_problem(n) is None]
    unready = [f"{_name(n)} ({_node_problem(n)})" for n in nodes if _node_problem(n) is not None]
    cordoned = [_name(n) for n in nodes if _get(n, "spec", "unschedulable")]
    need = f" (need {min})" if min is not None else ""
    label = f"{what}: " if what else ""
    evidence = f"{label}{len(ready)}/{len(nodes)} Ready{need}"
    if ready:
        evidence += f": {names_list(ready)}"
    if unready:
        evidence += f"; not ready: {names_list(unready)}"
    if cordoned:
        evidence += f"; cordoned (SchedulingDisabled): {names_list(cordoned)}"
    ok = len(ready) >= min if min is not None else not unready
    return Verdict(PASS if ok else FAIL, evidence)


# --- pods --------------------------------------------------------------------------------


def _container_statuses(pod: Obj) -> list[Obj]:
    status = _get(pod, "status", default={}) or {}
    return [c for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []) if isinstance(c, Mapping)]


def pod_restarts(pod: Obj) -> int:
    return sum(int(c.get("restartCount") or 0) for c in _container_statuses(pod))


def _pod_problems(pod: Obj, restarts_below: int | None) -> list[str]:
    problems: list[str] = []
    phase = _get(pod, "status", "phase", default="Unknown")
    for c in _container_statuses(pod):
        reason = _get(c, "state", "waiting", "reason")
        if reason in BAD_WAITING_REASONS:
            problems.append(f"{reason} in {c.get('name', '?')}")
    if phase not in ("Running", "Succeeded"):
        why = _get(pod, "status", "reason") or ""
        scheduled = _condition(pod, "PodScheduled")
        if not why and scheduled and scheduled.get("status") == "False":
            why = scheduled.get("reason") or "not scheduled"
        problems.insert(0, f"{phase}{': ' + why if why else ''}")
    restarts = pod_restarts(pod)
    if restarts_below is not None and restarts >= restarts_below:
        problems.append(f"{restarts} restarts, limit < {restarts_below}")
    elif restarts and problems:
        problems.append(f"{restarts} restarts")
    return problems


def judge_pods(
    listing: Obj, *, namespace: str, selector: str | None = None, restarts_below: int | None = None, min: int = 1
) -> Verdict:
    """All pods Running or Succeeded, no container in CrashLoopBackOff / ImagePullBackOff
    (and kin), each with fewer than ``restarts_below`` restarts; at least ``min`` pods."""
    pods = _items(listing)
    where = f"in {namespace}" + (f" matching {selector!r}" if selector else "")
    if len(pods) < min:
        return Verdict(FAIL, f"{len(pods)} pods {where} (need at least {min})")
    bad = []
    for pod in pods:
        problems = _pod_problems(pod, restarts_below)
        if problems:
            bad.append(f"{_name(pod)} ({', '.join(problems)})")
    if bad:
        return Verdict(FAIL, f"{len(bad)}/{len(pods)} pods unhealthy {where}: {names_list(bad, 8)}")
    phases: dict[str, int] = {}
    for pod in pods:
        phase = _get(pod, "status", "phase", default="Unknown")
        phases[phase] = phases.get(phase, 0) + 1
    if not pods:
        return Verdict(PASS, f"0 pods {where} (none required)")
    counts = ", ".join(f"{n} {p}" for p, n in sorted(phases.items()))
    most = max(pods, key=pod_restarts)
    restarts = f"; most restarts: {pod_restarts(most)} ({_name(most)})" if pod_restarts(most) else "; no restarts"
    return Verdict(PASS, f"{len(pods)}/{len(pods)} pods healthy {where} ({counts}){restarts}")


def judge_pod_ready(pod: Obj | None, *, name: str, namespace: str) -> Verdict:
    """The pod exists and its Ready condition is True."""
    ref = f"pod {namespace}/{name}"
    if pod is None:
        return Verdict(FAIL, f"{ref} not found")
    phase = _get(pod, "status", "phase", default="Unknown")
    node = _get(pod, "spec", "nodeName", default="no node")
    cond = _condition(pod, "Ready")
    if cond and cond.get("status") == "True":
        return Verdict(PASS, f"{ref} Ready ({phase} on {node}, {pod_restarts(pod)} restarts)")
    details = _pod_problems(pod, None) or [phase]
    why = (cond or {}).get("reason") or "Ready condition not True"
    return Verdict(FAIL, f"{ref} not Ready: {why}; {', '.join(details)}")


# --- namespaces --------------------------------------------------------------------------


def judge_namespace(ns: Obj | None, *, name: str, present: bool) -> Verdict:
    """``present``: the namespace exists and is Active; else: it does not exist."""
    if ns is None:
        return Verdict(FAIL if present else PASS, f"namespace {name} not found")
    phase = _get(ns, "status", "phase", default="Active")
    created = _get(ns, "metadata", "creationTimestamp", default="?")
    if not present:
        return Verdict(FAIL, f"namespace {name} exists ({phase}, created {created})")
    return Verdict(PASS if phase == "Active" else FAIL, f"namespace {name} exists ({phase}, created {created})")


# --- workloads (kubectl rollout status) --------------------------------------------------


def _generation_pending(obj: Obj) -> str | None:
    generation = _get(obj, "metadata", "generation", default=0)
    observed = _get(obj, "status", "observedGeneration")
    if observed is None or int(generation) > int(observed):
        return f"waiting for the controller to observe generation {generation} (observed {observed})"
    return None


def judge_rollout(obj: Obj | None, *, kind: str, name: str, namespace: str) -> Verdict:
    """``kubectl rollout status`` for a Deployment, DaemonSet or StatefulSet."""
    ref = f"{kind} {namespace}/{name}"
    if obj is None:
        return Verdict(FAIL, f"{ref} not found")
    pending = _generation_pending(obj)
    if pending:
        return Verdict(FAIL, f"{ref}: {pending}")
    spec = _get(obj, "spec", default={}) or {}
    status = _get(obj, "status", default={}) or {}
    generation = _get(obj, "metadata", "generation", default=0)
    if kind == "deployment":
        progressing = _condition(obj, "Progressing")
        if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
            return Verdict(FAIL, f"{ref} exceeded its progress deadline")
        replicas = int(spec.get("replicas", 1))
        updated = int(status.get("updatedReplicas") or 0)
        current = int(status.get("replicas") or 0)
        available = int(status.get("availableReplicas") or 0)
        if updated < replicas:
            return Verdict(FAIL, f"{ref}: {updated} of {replicas} replicas updated")
        if current > updated:
            return Verdict(FAIL, f"{ref}: {current - updated} old replicas pending termination")
        if available < updated:
            return Verdict(FAIL, f"{ref}: {available} of {updated} updated replicas available")
        return Verdict(PASS, f"{ref} rolled out: {available}/{replicas} available (generation {generation})")
    if kind == "daemonset":
        desired = int(status.get("desiredNumberScheduled") or 0)
        updated = int(status.get("updatedNumberScheduled") or 0)
        available = int(status.get("numberAvailable") or 0)
        if updated < desired:
            return Verdict(FAIL, f"{ref}: {updated} of {desired} updated pods scheduled")
        if available < desired:
            return Verdict(FAIL, f"{ref}: {available} of {desired} updated pods available")
        return Verdict(PASS, f"{ref} rolled out: {available}/{desired} available (generation {generation})")
    if kind == "statefulset":
        replicas = int(spec.get("replicas", 1))
        ready = int(status.get("readyReplicas") or 0)
        updated = int(status.get("updatedReplicas") or 0)
        if ready < replicas:
            return Verdict(FAIL, f"{ref}: {ready} of {replicas} pods ready")
        partition = int(_get(spec, "updateStrategy", "rollingUpdate", "partition", default=0) or 0)
        if partition > 0:
            if updated < replicas - partition:
                return Verdict(FAIL, f"{ref}: {updated} of {replicas - partition} pods updated (partition {partition})")
            return Verdict(PASS, f"{ref} partitioned roll out complete: {updated} new pods updated")
        update_rev, current_rev = status.get("updateRevision"), status.get("currentRevision")
        if update_rev and update_rev != current_rev:
            return Verdict(FAIL, f"{ref}: {updated} of {replicas} pods updated to revision {update_rev}")
        return Verdict(PASS, f"{ref} rolled out: {ready}/{replicas} ready (revision {current_rev or '?'})")
    return Verdict(ERROR, f"unknown workload kind {kind}")


# --- network policies --------------------------------------------------------------------


def _is_default_deny(policy: Obj) -> bool:
    spec = _get(policy, "spec", default={}) or {}
    selects_all = not (spec.get("podSelector") or {})
    types = spec.get("policyTypes") or ["Ingress"]
    return selects_all and "Ingress" in types and not spec.get("ingress")


def judge_network_policies(
    listing: Obj, *, namespace: str, min: int = 1, names: Sequence[str] | None = None, default_deny: bool = False
) -> Verdict:
    """At least ``min`` NetworkPolicies in ``namespace``, the named ones among them, and
    (``default_deny``) one that selects every pod and allows no ingress."""
    policies = _items(listing)
    present = [_name(p) for p in policies]
    evidence = f"{len(policies)} NetworkPolicies in {namespace}"
    if present:
        evidence += f": {names_list(present)}"
    problems = []
    if len(policies) < min:
        problems.append(f"need at least {min}")
    missing = [n for n in names or () if n not in present]
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    deny = [_name(p) for p in policies if _is_default_deny(p)]
    if default_deny and not deny:
        problems.append("no default-deny ingress policy")
    elif deny:
        evidence += f" (default deny: {', '.join(deny)})"
    if problems:
        return Verdict(FAIL, f"{evidence}; {'; '.join(problems)}")
    return Verdict(PASS, evidence)


# --- TLS secrets -------------------------------------------------------------------------


def judge_tls_secret(
    secret: Obj | None, *, name: str, namespace: str, min_days: float, now: dt.datetime | None = None
) -> Verdict:
    """The first certificate in ``data["tls.crt"]`` is valid now and for more than ``min_days``.

    Only the certificate is read; ``tls.key`` is never looked at nor shown.
    """
    ref = f"secret {namespace}/{name}"
    if secret is None:
        return Verdict(FAIL, f"{ref} not found")
    raw = _get(secret, "data", "tls.crt")
    if not raw:
        return Verdict(FAIL, f"{ref} has no tls.crt (type {secret.get('type', '?')})")
    try:
        pem = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError, TypeError):
        return Verdict(ERROR, f"{ref}: tls.crt is not valid base64")
    try:
        from cryptography import x509
    except ImportError:  # pragma: no cover - asyncssh depends on cryptography
        return Verdict(ERROR, "cannot check certificates: the cryptography package is not installed")
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        return Verdict(ERROR, f"{ref}: tls.crt holds no PEM certificate")
    cert = certs[0]
    now = now or dt.datetime.now(dt.UTC)
    not_after = cert.not_valid_after_utc
    not_before = cert.not_valid_before_utc
    subject = _subject(cert)
    expires = not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    days_left = (not_after - now).total_seconds() / 86400
    if now < not_before:
        return Verdict(FAIL, f"{ref}: {subject} not valid before {not_before:%Y-%m-%dT%H:%M:%SZ}")
    if days_left <= 0:
        return Verdict(FAIL, f"{ref}: {subject} expired {expires} ({int(-days_left)} days ago)")
    evidence = f"{ref}: {subject} expires {expires}, {int(days_left)} days left"
    if days_left <= min_days:
        return Verdict(FAIL, f"{evidence} (need more than {min_days:g})")
    return Verdict(PASS, f"{evidence} (> {min_days:g})")


def _subject(cert: Any) -> str:
    from cryptography.x509.oid import NameOID

    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns:
        return f"CN={cns[0].value}"
    return cert.subject.rfc4514_string() or "certificate"


# --- /version ----------------------------------------------------------------------------


def parse_version(text: str) -> tuple[int, ...]:
    """``v1.28.5+k3s1`` -> ``(1, 28, 5)``; unparsable parts are dropped."""
    match = re.match(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", text.strip())
    if not match:
        return ()
    return tuple(int(g) for g in match.groups() if g is not None)


def judge_version(info: Obj, *, server: str, min_version: str | None = None) -> Verdict:
    """``/version``: reachable; with ``min_version``, at least that version.  A body of the
    wrong shape (``gitVersion: 5``) is an error, never a pass."""
    git_raw = info.get("gitVersion")
    major, minor = info.get("major"), info.get("minor")
    wrong = [f"{k} is {type(v).__name__} {v!r}" for k, v in (("gitVersion", git_raw), ("major", major), ("minor", minor))
             if v is not None and not isinstance(v, str)]
    if wrong:
        return Verdict(ERROR, f"malformed /version from {server}: {', '.join(wrong)}, not text")
    git = git_raw or (f"{major}.{minor}" if major and minor else "")
    platform = info.get("platform")
    shown = git or "unknown version"
    evidence = f"API server {server} reachable: Kubernetes {shown}" + (f" ({platform})" if isinstance(platform, str) and platform else "")
    if min_version:
        have, want = parse_version(git), parse_version(min_version)
        if not want:
            return Verdict(ERROR, f"min_version {min_version!r} is not a version such as 1.28")
        if not have:
            return Verdict(ERROR, f"{evidence}; cannot compare version {git!r} with {min_version}")
        if have[: len(want)] < want:
            return Verdict(FAIL, f"{evidence}; need at least {min_version}")
    return Verdict(PASS, evidence)
