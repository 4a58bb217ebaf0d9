"""Small, conservative heuristics about shell text (no shell is ever run here).

Used by the parser (is a ```bash block really shell? is this stray paragraph a
command?) and by lint (which line of a block holds a destructive command).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

KNOWN_COMMANDS = frozenset(
    ["ansible", "ansible-playbook", "apt", "apt-get", "awk", "aws", "az", "base64", "bash", "bc", "cat", "cd", "chmod", "chown", "cilium", "cp", "crictl", "ctr", "curl", "cut", "date", "dd", "df", "dig", "dnf", "docker", "du", "echo", "env", "etcdctl", "exit", "export", "false", "find", "fping", "free", "gcloud", "git", "grep", "gunzip", "gzip", "head", "helm", "hostname", "hostnamectl", "id", "ip", "ip6tables", "ipvsadm", "iptables", "jq", "journalctl", "kill", "kubeadm", "kubectl", "kubelet", "ldapsearch", "less", "ln", "ls", "lsblk", "make", "mkdir", "mount", "mv", "nc", "nft", "nmcli", "nslookup", "openssl", "podman", "printf", "ps", "psql", "python", "python3", "read", "redis-cli", "rm", "rmdir", "rsync", "scp", "sed", "seq", "set", "sh", "sleep", "sort", "source", "ss", "ssh", "sudo", "swapoff", "sysctl", "systemctl", "tail", "tar", "tee", "terraform", "test", "timeout", "top", "touch", "tr", "true", "umount", "uname", "uniq", "unset", "until", "velero", "wc", "wget", "which", "while", "xargs", "yum", "zypper", "for", "if", "case", "do", "done", "then", "else", "elif", "fi", "esac", "function", "local", "readonly", "declare", "printf", "time", "watch", "nohup", "setsid", "traceroute", "mtr", "ping", "ping6", "kustomize", "argocd", "flux", "vault", "consul", "etcd", "etcdutl", "pg_dump", "mysqldump", "mysql", "cmp", "diff", "install", "useradd", "usermod", "groupadd", "passwd", "visudo", "modprobe", "lsmod", "ufw", "firewall-cmd", "getenforce", "setenforce"]
)

EXAMPLE_VALUE_RE = re.compile(r"\b(x{4,}|y{4,}|z{4,}|X{4,}|abcdef\.0123456789abcdef|changeme|CHANGEME)\b")
EXAMPLE_COMMENT_RE = re.compile(r"^\s*#.*\b(will look like|looks like|for example|example|e\.g\.|sample)\b", re.I)
_ASSIGN_START_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")
_PROSE_START_RE = re.compile(r"^[A-Z][a-z][\w.-]*\b")
_HEREDOC_RE = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")


def statement_lines(code: str) -> Iterator[tuple[int, str]]:
    """(0-based line index, text) of lines that start a shell statement.

    Skips comments, blank lines, continuation lines (after a trailing ``\\``)
    and here-document bodies.
    """
    lines = code.split("\n")
    i = 0
    continued = False
    while i < len(lines):
        raw = lines[i]
        s = raw.strip()
        if continued:
            continued = s.endswith("\\")
            i += 1
            continue
        if not s or s.startswith("#"):
            i += 1
            continue
        yield i, s
        continued = s.endswith("\\")
        m = _HEREDOC_RE.search(s)
        if m and not s.startswith(("echo", "printf")):
            delim = m.group(2)
            i += 1
            while i < len(lines) and lines[i].strip() != delim:
                i += 1
        i += 1


def first_word(statement: str) -> str:
    words = statement.split()
    for w in words:
        if _ASSIGN_START_RE.match(w):
            continue  # env prefix: FOO=1 cmd
        return w
    return words[0] if words else ""


def is_prose_line(statement: str) -> bool:
    """``Node dev-k8s-master-01: AZ-A (Rack 1A)`` -- a sentence, not a command."""
    if _ASSIGN_START_RE.match(statement):
        return False
    word = first_word(statement)
    if word.lower() in KNOWN_COMMANDS or word.startswith(("/", "./", "~/", "$", "[", "(", "{", "!")):
        return False
    return bool(_PROSE_START_RE.match(statement))


def looks_like_shell(code: str) -> bool:
    """False when every statement of a shell-tagged block reads like prose."""
    stmts = list(statement_lines(code))
    if not stmts:
        return True  # only comments: harmless
    return not all(is_prose_line(s) for _, s in stmts)


def looks_like_command(text: str) -> bool:
    """A paragraph such as ``kubectl uncordon node-1`` (outside any fence)."""
    lines = [ln.strip() for ln in text.strip().split("\n") if ln.strip()]
    if not lines or any(not ln.endswith("\\") for ln in lines[:-1]):
        return False
    s = " ".join(lines)
    if s.startswith("$ "):
        s = s[2:]
    if len(s) > 1 and s.startswith("`") and s.endswith("`"):
        s = s.strip("`")
    word = first_word(s)
    if word.lower() not in KNOWN_COMMANDS or word in ("for", "if", "while", "case", "do", "then", "time", "read", "set", "test", "source", "install", "watch", "make", "find", "sort", "true", "false"):
        return False
    if word != word.lower():
        return False
    rest = s[len(word):].strip()
    if not rest:
        return word in ("date", "df", "free", "uname", "hostname", "id")
    # "kubectl will then show..." is prose: sentences end with punctuation
    return rest.startswith("-") or not rest.endswith((".", "!", "?", ":"))


def looks_like_shell_paragraphs(code: str) -> bool:
    """A fence without language whose statements all start with known commands."""
    stmts = list(statement_lines(code))
    if not stmts:
        return False
    hits = sum(1 for _, s in stmts if first_word(s).lower() in KNOWN_COMMANDS and first_word(s) not in ("for", "if"))
    return hits == len(stmts) or (hits >= 2 and hits * 4 >= len(stmts) * 3)


def example_block(code: str) -> tuple[str, str] | None:
    """(comment, dummy value) when a block says it is an example and holds dummy values."""
    first = next((ln for ln in code.split("\n") if ln.strip()), "")
    if not EXAMPLE_COMMENT_RE.match(first):
        return None
    m = EXAMPLE_VALUE_RE.search(code)
    return (first.strip(), m.group(1)) if m else None
