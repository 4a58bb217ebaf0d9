"""Where a step nobody targeted probably runs, from what the document says about it.

Only ever a suggestion: the operator chooses (the TUI's target picker lists it first;
``show``, ``plan`` and ``exec --dry-run`` print it beside "target: not chosen"; lint
names it).  Sources, strongest first:

1. comments in the step's command blocks: ``# On prod-k8s-master-02:``,
   ``# From any master node:``, ``# Stop kubelet on all master nodes``,
   ``# Restore etcd (on first master)``;
2. the step's title, hint and prose: "on all master nodes", "from the first master",
   "Join Nodes 2-5", "on the jump host";
3. inventory host names mentioned in those comments or that prose;
4. what the commands are: ``kubectl``, ``helm``, ``ping``... are run from the jump
   host (``local``), where the tools and the kubeconfig are.

Role words map to inventory groups: "master"/"control plane" to the first of
``masters``, ``master``, ``control_plane``... the inventory has (``masters`` without
an inventory), "worker" likewise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runbook.model import Step

if TYPE_CHECKING:
    from runbook.targets.inventory import Inventory

__all__ = ["Suggestion", "not_chosen_text", "suggest_targets"]

LOCAL = "local"

ROLE_GROUPS: dict[str, tuple[str, ...]] = {
    "master": ("masters", "master", "control_plane", "control-plane", "controlplane", "kube_control_plane", "controllers"),
    "worker": ("workers", "worker", "nodes", "kube_node", "kube_nodes"),
    "etcd": ("etcd", "etcd_nodes"),
}
_ROLE = r"(?P<role>master|control[ -]?plane|worker|etcd)(?:s|\s+nodes?|\s+hosts?)?"
# "on all master nodes", "from any master node", "on the first master", "on each worker"
_ROLE_PHRASE = re.compile(
    r"\b(?:on|from|at|in)\s+(?:the\s+)?(?P<q>all|every|each|both|any|a|one|first|1st|a\s+healthy|healthy|remaining|"
    r"other|additional|new)?\s*(?:of\s+the\s+)?" + _ROLE + r"\b",
    re.I,
)
# "Join Nodes 2-5", "masters 2-5", "(Nodes 2-5)"
_RANGE_PHRASE = re.compile(r"\b(?P<role>masters?|nodes?|workers?)\s+(?P<a>\d+)\s*(?:-|–|to)\s*(?P<b>\d+)\b", re.I)
_LOCAL_PHRASE = re.compile(r"\b(?:on|from)\s+(?:the\s+|this\s+)?(?:jump[ -]?host|bastion|this\s+machine|"
                           r"workstation|admin\s+(?:host|machine))\b|\blocally\b", re.I)
# "# On prod-k8s-master-02:", "# run on db-1"
_ON_HOST = re.compile(r"^\s*(?:run\s+)?(?:on|from)\s+(?P<host>[A-Za-z0-9][A-Za-z0-9_.-]*[A-Za-z0-9])\s*:?\s*$", re.I)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*[A-Za-z0-9]")

# Tools run from the jump host (they talk to the cluster or the network) versus on a node itself.
_CLIENT_TOOLS = frozenset({"kubectl", "helm", "velero", "kustomize", "k9s", "argocd", "flux", "ping", "fping", "nslookup",
                           "dig", "host", "ldapsearch", "traceroute", "mtr", "nc", "openssl", "cilium", "hubble", "istioctl"})
_NODE_TOOLS = frozenset({"kubeadm", "etcdctl", "etcdutl", "systemctl", "journalctl", "apt", "apt-get", "yum", "dnf",
                         "iptables", "ip6tables", "crictl", "containerd", "kubelet", "modprobe", "sysctl", "swapoff",
                         "mount", "umount", "mkfs", "lvextend", "resize2fs", "xfs_growfs"})
_PREFIXES = frozenset({"sudo", "env", "time", "nohup", "exec", "command", "xargs", "watch", "timeout"})


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A host pattern the document points at, and why (quoted, with its line)."""

    pattern: str
    why: str
    line: int = 0

    def text(self) -> str:
        return f"{self.pattern} ({self.why})"


def _group(role: str, inventory: Inventory | None) -> str:
    key = "master" if role.lower().startswith(("master", "control")) else role.lower().rstrip("s")
    names = ROLE_GROUPS.get(key, (key + "s",))
    groups = inventory.groups if inventory is not None else None
    if groups:
        for name in names:
            if name in groups:
                return name
    return names[0]


def _role_pattern(q: str, role: str, inventory: Inventory | None) -> str | None:
    group = _group(role, inventory)
    q = re.sub(r"\s+", " ", (q or "").lower()).strip()
    if q in ("all", "every", "each", "both"):
        return group
    if q in ("any", "a", "one", "first", "1st", "a healthy", "healthy"):
        return f"{group}[0]"
    if q in ("remaining", "other", "additional", "new"):
        return f"{group}[1:]"
    if role.lower().endswith("s") or "nodes" in role.lower():
        return group
    return None  # "on master": which one is not said


def _comments(step: Step) -> Iterable[tuple[int, str]]:
    """(source line, comment text) of every shell comment in the step's command blocks."""
    for b in step.blocks:
        if b.kind != "command":
            continue
        for i, line in enumerate(b.code.splitlines()):
            stripped = line.strip()
            if stripped.startswith("#!"):
                continue
            if stripped.startswith("#"):
                yield b.code_line(i), stripped.lstrip("#").strip()
            elif " #" in line and "'" not in line and '"' not in line:
                yield b.code_line(i), line.split(" #", 1)[1].strip()


def _inventory_hosts(inventory: Inventory | None) -> set[str]:
    return set(inventory.hosts) if inventory is not None else set()


def _command_words(step: Step) -> list[str]:
    words: list[str] = []
    for b in step.blocks:
        if b.kind != "command":
            continue
        for line in b.code.splitlines():
            line = line.split("#", 1)[0] if line.lstrip().startswith("#") else line
            for part in re.split(r"&&|\|\||[;|(]", line):
                tokens = [t for t in part.strip().split() if "=" not in t or t.startswith("-")]
                while tokens and (tokens[0] in _PREFIXES or tokens[0].startswith("-")):
                    tokens.pop(0)
                if tokens:
                    words.append(tokens[0].rsplit("/", 1)[-1])
    return words


def suggest_targets(step: Step, inventory: Inventory | None = None) -> list[Suggestion]:
    """Suggestions for ``step`` (best first, patterns distinct); ``[]`` when the document says nothing.

    ``inventory`` (optional) maps role words to its groups and recognises its host names.
    """
    out: list[Suggestion] = []
    seen: set[str] = set()
    known = _inventory_hosts(inventory)

    def add(pattern: str | None, why: str, line: int) -> None:
        if pattern and pattern not in seen:
            seen.add(pattern)
            out.append(Suggestion(pattern, why, line))

    # 1. comments in the blocks
    on_hosts: list[tuple[str, int, str]] = []
    for line, text in _comments(step):
        m = _ON_HOST.match(text)
        if m and (m["host"] in known or (not known and re.search(r"\d|[.-]", m["host"]))):
            on_hosts.append((m["host"], line, text))
            continue
        for rm in _ROLE_PHRASE.finditer(text):
            add(_role_pattern(rm["q"], rm["role"], inventory), f"'# {text}' at line {line}", line)
        if _LOCAL_PHRASE.search(text):
            add(LOCAL, f"'# {text}' at line {line}", line)
    if on_hosts:
        hosts = list(dict.fromkeys(h for h, _, _ in on_hosts))
        first_line = on_hosts[0][1]
        quoted = "; ".join(f"'# {t}' at line {ln}" for _, ln, t in on_hosts[:2]) + (" ..." if len(on_hosts) > 2 else "")
        out.insert(0, Suggestion(",".join(hosts), quoted, first_line))
        seen.add(",".join(hosts))

    # 2. the step's own words
    prose = " ".join(x for x in (step.title, step.hint, step.text) if x)
    rng = _RANGE_PHRASE.search(prose)
    if rng:
        a, b = int(rng["a"]), int(rng["b"])
        role = "master" if rng["role"].lower().startswith(("master", "node")) else "worker"
        if 1 <= a <= b:
            add(f"{_group(role, inventory)}[{a - 1}:{b - 1}]", f"'{rng.group(0)}' in the step's title or text", step.line)
    for m in _ROLE_PHRASE.finditer(prose):
        add(_role_pattern(m["q"], m["role"], inventory), f"'{m.group(0)}' in the step's title or text", step.line)
    if local := _LOCAL_PHRASE.search(prose):
        add(LOCAL, f"'{local.group(0)}' in the step's title or text", step.line)

    # 3. inventory host names named in comments or prose
    if known:
        named = [w for w in _WORD.findall(prose + " " + " ".join(t for _, t in _comments(step))) if w in known]
        if named:
            add(",".join(dict.fromkeys(named)), "host names in the step's text or comments", step.line)

    # 4. what the commands are
    words = _command_words(step)
    node_tools = [w for w in words if w in _NODE_TOOLS]
    client_tools = [w for w in words if w in _CLIENT_TOOLS]
    if client_tools and not node_tools:
        tools = ", ".join(dict.fromkeys(client_tools))
        add(LOCAL, f"{tools}: run from the jump host", step.line)
    elif node_tools and not out:
        tools = ", ".join(dict.fromkeys(node_tools))
        if "kubeadm" in node_tools or "etcdctl" in node_tools:
            add(f"{_group('master', inventory)}[0]", f"{tools}: run on a control-plane node; which one is not said",
                step.line)
    return out


def not_chosen_text(suggestions: Iterable[Suggestion]) -> str:
    """``target: not chosen (suggested: prod-k8s-master-02 ('# On prod-k8s-master-02:' at line 451))``."""
    first = next(iter(suggestions), None)
    if first is None:
        return "target: not chosen (the document suggests none)"
    return f"target: not chosen (suggested: {first.text()})"
