"""Proposing probes for acceptance criteria (``runbook lint --suggest-probes``).

Each rule recognises a common phrasing of a checkable criterion and proposes
the probe that checks it::

    All 5 control plane nodes show `Ready` status   ->  k8s.nodes_ready(min=5, role="control-plane")
    All kube-system pods healthy                    ->  k8s.pods_healthy(namespace="kube-system")
    Network policies in enforcing mode              ->  k8s.network_policies(namespace="default")
    Certificate expiry > 365 days                   ->  k8s.tls_cert_days(name=..., min=365)
    etcd cluster has 5 healthy members              ->  cmd(target="masters[0]", run="... etcdctl endpoint health ...")

Suggestions are ``info`` diagnostics on the checkbox's line, with the message
``suggest: <!-- probe: EXPR -->`` ready to paste.  Names the text cannot tell
(a secret's name) are left as UPPER-CASE placeholders.  Every proposed
expression is valid (checked by the tests) and contains no ``--``, so it is
safe inside an HTML comment.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from runbook.model import Checkbox, Diagnostic, Runbook
from runbook.probes.expression import format_probe

CODE = "suggest-probe"

_NUMBERS = {
    "one": 1, "first": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}
_NUMBER = r"(?P<n>\d+|" + "|".join(_NUMBERS) + r")"
_NAME = r"[`'\"]?(?P<name>[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)[`'\"]?"

ETCD_HEALTH = (
    "sudo ETCDCTL_API=3 ETCDCTL_CLUSTER=true ETCDCTL_ENDPOINTS=https://127.0.0.1:2379"
    " ETCDCTL_CACERT=/etc/kubernetes/pki/etcd/ca.crt ETCDCTL_CERT=/etc/kubernetes/pki/etcd/server.crt"
    " ETCDCTL_KEY=/etc/kubernetes/pki/etcd/server.key etcdctl endpoint health 2>&1 | grep -c 'is healthy'"
)


def _number(word: str | None) -> int | None:
    if not word:
        return None
    return int(word) if word.isdigit() else _NUMBERS.get(word.lower())


def clean_text(text: str) -> str:
    """Checkbox text without Markdown emphasis, code ticks or a leading ``PROD:`` label."""
    text = re.sub(r"[*_]{1,3}([^*_]+)[*_]{1,3}", r"\1", text)
    text = text.replace("`", "")
    text = re.sub(r"^\s*(?:PROD(?:-specific)?|IMPORTANT|CRITICAL)\s*:\s*", "", text, flags=re.I)
    return " ".join(text.split())


Rule = Callable[[str], "str | None"]
_RULES: list[Rule] = []


def _rule(fn: Rule) -> Rule:
    _RULES.append(fn)
    return fn


@_rule
def _etcd_members(text: str) -> str | None:
    m = re.search(r"\betcd\b.*?\b" + _NUMBER + r"\s+healthy\s+members?\b", text, re.I)
    if not m:
        return None
    n = _number(m.group("n"))
    return format_probe("cmd", target="masters[0]", run=f"test $({ETCD_HEALTH}) -ge {n}")


@_rule
def _nodes_ready(text: str) -> str | None:
    m = re.search(
        r"\b(?:(?P<all>all)\s+)?(?:" + _NUMBER + r"\s+)?(?P<role>control[- ]?plane|master|worker)?\s*nodes?\b"
        r"(?:\s+\w+){0,3}?\s+(?:are\s+|is\s+|show\w*\s+|report\w*\s+|in\s+)?ready\b",
        text,
        re.I,
    )
    if not m:
        return None
    kwargs: dict[str, object] = {}
    n = _number(m.group("n"))
    if n is not None:
        kwargs["min"] = n
    role = (m.group("role") or "").lower().replace(" ", "-")
    if role in ("control-plane", "controlplane", "master"):
        kwargs["role"] = "control-plane"
    elif role:
        kwargs["role"] = role
    return format_probe("k8s.nodes_ready", **kwargs)


@_rule
def _pods_healthy(text: str) -> str | None:
    m = re.search(r"\ball\s+" + _NAME + r"\s+pods?\b.*?\b(?:healthy|running|ready)\b", text, re.I)
    if not m:
        m = re.search(r"\bpods?\s+in\s+(?:namespace\s+)?" + _NAME + r"\b.*?\b(?:healthy|running|ready)\b", text, re.I)
    if not m:
        return None
    return format_probe("k8s.pods_healthy", namespace=m.group("name").lower())


@_rule
def _api_reachable(text: str) -> str | None:
    if re.search(r"\b(?:kube-?)?api[- ]?server\b.*?\b(?:reachable|responding|responsive|available|up)\b", text, re.I):
        return format_probe("k8s.api_reachable")
    return None


@_rule
def _network_policies(text: str) -> str | None:
    if re.search(
        r"\bnetwork\s*polic(?:y|ies)\b.*?\b(?:enforc\w*|present|applied|in place|exists?|deployed|created|active)\b",
        text,
        re.I,
    ):
        return format_probe("k8s.network_policies", namespace="default")
    return None


@_rule
def _certificate_days(text: str) -> str | None:
    m = re.search(
        r"\bcert(?:ificate)?s?\b.*?\b(?:expir\w*|valid\w*)\b.*?(?:>|≥|>=|more than|over|at least|beyond)\s*(?P<days>\d+)\s*days?",
        text,
        re.I,
    )
    if not m:
        return None
    return format_probe("k8s.tls_cert_days", name="SECRET-NAME", namespace="NAMESPACE", min=int(m.group("days")))


@_rule
def _namespace(text: str) -> str | None:
    m = re.search(r"\bnamespace\s+" + _NAME + r"\s+(?:is\s+|was\s+|has been\s+)?(?P<verb>\w+)", text, re.I) or re.search(
        _NAME + r"\s+namespace\s+(?:is\s+|was\s+|has been\s+)?(?P<verb>\w+)", text, re.I
    )
    if not m:
        return None
    verb = m.group("verb").lower()
    if verb in ("exists", "created", "present", "active"):
        return format_probe("k8s.namespace_exists", name=m.group("name"))
    if verb in ("deleted", "removed", "absent", "gone"):
        return format_probe("k8s.namespace_absent", name=m.group("name"))
    return None


@_rule
def _workload(text: str) -> str | None:
    m = re.search(
        r"\b(?P<kind>deployment|daemonset|statefulset)\s+" + _NAME + r".*?\b(?:rolled out|available|ready|complete\w*)\b",
        text,
        re.I,
    )
    if not m:
        return None
    return format_probe(f"k8s.{m.group('kind').lower()}_rolled_out", name=m.group("name"), namespace="default")


@_rule
def _cilium(text: str) -> str | None:
    if re.search(r"\bcilium\b.*?\b(?:installed|running|healthy|ready)\b", text, re.I):
        return format_probe("k8s.daemonset_rolled_out", name="cilium", namespace="kube-system")
    return None


@_rule
def _service_active(text: str) -> str | None:
    m = re.search(r"\b(?P<svc>kubelet|containerd|crio|docker|chronyd?)\b(?:\s+service)?\s+(?:is\s+)?(?:active|running|started)\b", text, re.I)
    if not m:
        return None
    return format_probe("cmd", target="all", run=f"systemctl is-active {m.group('svc').lower()}")


def suggest_for_text(text: str) -> str | None:
    """The probe expression proposed for a criterion's text, or ``None``."""
    cleaned = clean_text(text)
    for rule in _RULES:
        expr = rule(cleaned)
        if expr:
            return expr
    return None


def suggest_for_checkboxes(path: str, boxes: Iterable[Checkbox]) -> list[Diagnostic]:
    out = []
    for box in boxes:
        if box.probe:
            continue
        expr = suggest_for_text(box.text)
        if expr:
            out.append(Diagnostic(path=path, line=box.line, severity="info", message=f"suggest: <!-- probe: {expr} -->", code=CODE))
    return out


def suggest(runbook: Runbook) -> list[Diagnostic]:
    """Info diagnostics proposing probes for checkboxes without one, in document order."""
    return suggest_for_checkboxes(runbook.path, runbook.checkboxes())
