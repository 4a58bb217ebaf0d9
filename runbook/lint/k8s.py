"""Content checks for Kubernetes files a runbook uploads (``kubeadm`` configuration).

Only facts that make a step fail for sure are checked, against the
``kubernetesVersion`` the file itself names:

* the ``PodSecurityPolicy`` admission plugin was removed in Kubernetes 1.25
  (kube-apiserver refuses to start with it enabled);
* ``--pod-eviction-timeout`` was removed from kube-controller-manager in 1.27
  (unknown flag: the controller manager exits);
* ``etcdLocal`` is not a ``ClusterConfiguration`` field (kubeadm wants
  ``etcd: {local: ...}``): kubeadm ignores it with a warning, so the etcd settings
  under it never apply.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from runbook.model import Block

Add = Callable[[int, str, str, str], None]

_VERSION_RE = re.compile(r"^\s*kubernetesVersion\s*:\s*[\"']?v?(\d+)\.(\d+)", re.M)


def check_kubeadm_config(owner: str, block: Block, add: Add) -> None:
    if block.kind not in ("file", "text") or "kubeadm.k8s.io" not in block.code:
        return
    m = _VERSION_RE.search(block.code)
    minor = int(m.group(2)) if m and m.group(1) == "1" else None
    version = f"1.{minor}" if minor is not None else None
    for i, raw in enumerate(block.code.split("\n")):
        line = raw.split("#", 1)[0]
        src = block.code_line(i)
        if re.match(r"^etcdLocal\s*:", line):
            add(src, "warning", "k8s-config",
                f"kubeadm config in {owner}: 'etcdLocal' is not a ClusterConfiguration field (use 'etcd:' -> 'local:'); "
                "kubeadm ignores it, so the etcd settings under it never apply")
        if minor is not None and minor >= 25 and re.search(r"admission-plugins\s*:.*\bPodSecurityPolicy\b", line):
            add(src, "warning", "k8s-config",
                f"kubeadm config in {owner}: the PodSecurityPolicy admission plugin was removed in Kubernetes 1.25; "
                f"kube-apiserver {version} will not start with it")
        if minor is not None and minor >= 27 and re.search(r"^\s*pod-eviction-timeout\s*:", line):
            add(src, "warning", "k8s-config",
                f"kubeadm config in {owner}: kube-controller-manager has no --pod-eviction-timeout since 1.27; "
                f"it will not start on {version}")


_KUBECTL_AFTER_DASHDASH_RE = re.compile(r"(?<!\S)(--overrides|--image|--restart|--namespace|-n|--rm|--env|--labels|--serviceaccount)(?:=|\s|$)")


def check_kubectl_args(owner: str, block: Block, add: Add) -> None:
    """kubectl options written after ``--`` go to the container's command, not to kubectl."""
    if block.kind != "command" or "kubectl" not in block.code:
        return
    active = False  # inside a "kubectl run/exec ... --" command line
    after = False
    for i, raw in enumerate(block.code.split("\n")):
        text = raw.split(" #", 1)[0] if not raw.lstrip().startswith("#") else ""
        if not active:
            after = False
            if re.search(r"\bkubectl\b.*\b(run|exec|debug)\b", text):
                active = True
        if active:
            if not after and re.search(r"(?<!\S)--(?!\S)", text):
                after = True
                text = re.split(r"(?<!\S)--(?!\S)", text, maxsplit=1)[1]
            if after:
                m = _KUBECTL_AFTER_DASHDASH_RE.search(text)
                if m:
                    add(block.code_line(i), "warning", "kubectl-args",
                        f"in {owner}, kubectl option {m.group(1)} comes after '--': it is passed to the container "
                        "command, not to kubectl")
            active = text.rstrip().endswith("\\")
