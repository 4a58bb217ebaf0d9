"""Values the operator must supply: ``<UPPER_CASE>``, ``$VAR`` and ``${VAR}``.

``<CERT-KEY>`` is normalised to the name ``CERT_KEY`` (the original stays in
:attr:`Placeholder.token`).  In command blocks a ``$VAR`` is a placeholder only when
the block does not set it first (assignment, ``export``, ``read``, a ``for``
loop variable), it is not a well-known environment variable, and the shell would
expand it (not in single quotes, a comment or a quoted here-document).  ``$(...)``,
``$((...))``, ``$1``, ``$?`` and friends are never placeholders.  File blocks are
uploaded as they are, so only ``<UPPER_CASE>`` counts there; output blocks have none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from runbook.model import Placeholder, is_secret_name

ANGLE_RE = re.compile(r"<([A-Z][A-Z0-9]*(?:[_-][A-Z0-9]+)*)>")
# in a shell command any <word> is a placeholder: bash would read "<node-to-drain>" as redirections,
# never valid as written ("<node-to-drain>", "<my-namespace>", "<pod_name>", "<vm name>")
SHELL_ANGLE_RE = re.compile(r"(?<![<\w])<([A-Za-z][A-Za-z0-9]*(?:[ _.-][A-Za-z0-9]+){0,5})>(?![>\w])")
# "{COCKROACHDB_DIR}", "{node address}": not brace expansion (no comma, no "..") nor ${VAR}, @{u}, {{ x }}
BRACE_RE = re.compile(r"(?<![$@{\w])\{([A-Za-z][A-Za-z0-9]*(?:[ _-][A-Za-z0-9]+){0,5})\}(?!\})")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

WELL_KNOWN_ENV = frozenset(
    ["HOME", "PATH", "USER", "PWD", "OLDPWD", "SHELL", "HOSTNAME", "HOST", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TERM", "UID", "EUID", "GID", "PPID", "RANDOM", "LINENO", "SECONDS", "IFS", "TMPDIR", "LOGNAME", "BASH", "BASH_SOURCE", "BASH_VERSION", "BASHPID", "BASH_REMATCH", "PIPESTATUS", "FUNCNAME", "OPTARG", "OPTIND", "REPLY", "KUBECONFIG", "SUDO_USER", "SUDO_UID", "SUDO_GID", "EDITOR", "VISUAL", "PAGER", "DISPLAY", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "SSH_AUTH_SOCK", "SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "HISTFILE", "PS1", "PS2", "PS4", "MACHTYPE", "OSTYPE", "HOSTTYPE", "COLUMNS", "LINES", "MAIL", "TZ", "GOPATH", "JAVA_HOME", "VIRTUAL_ENV", "RUNBOOK_HOST", "RUNBOOK_TASK", "RUNBOOK_STEP", "RUNBOOK_RUN_ID"]
)  # RUNBOOK_*: set by the engine for every run

_ASSIGN_RE = re.compile(
    r"(?:^|(?<=[\s;&|(`{!]))"
    r"(?:(?:export|local|readonly|declare|typeset)\s+(?:-\w+\s+)*)?"
    r"([A-Za-z_][A-Za-z0-9_]*)(?:\[[^\]\n]*\])?\+?=",
    re.M,
)
_DECL_RE = re.compile(r"\b(?:export|local|readonly|declare|typeset)\s+(?:-\w+\s+)*((?:[A-Za-z_]\w*\s*)+)(?=$|[;&|\n])", re.M)
_FOR_RE = re.compile(r"\b(?:for|select)\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\b")
_READ_RE = re.compile(r"\b(?:read|mapfile|readarray|getopts)\b([^;&|\n]*)")
_QUOTED_RE = re.compile(r"'[^']*'|\"[^\"]*\"")
_TOKEN_RE = re.compile(r"\\.|'|\"|\$\{|\$\(|\$[A-Za-z_][A-Za-z0-9_]*|#|\n|<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1", re.S)


def normalise(name: str) -> str:
    return re.sub(r"[-. ]", "_", name).upper()


def assignments(code: str) -> dict[str, int]:
    """Names the block sets itself -> position of the first assignment."""
    found: dict[str, int] = {}

    def note(name: str, pos: int) -> None:
        if name not in found or pos < found[name]:
            found[name] = pos

    for m in _ASSIGN_RE.finditer(code):
        note(m.group(1), m.start(1))
    for m in _DECL_RE.finditer(code):
        for w in m.group(1).split():
            note(w, m.start(1))
    for m in _FOR_RE.finditer(code):
        note(m.group(1), m.start(1))
    for m in _READ_RE.finditer(code):
        tail = _QUOTED_RE.sub(" ", m.group(1))
        for w in re.finditer(r"(?<![-\w])([A-Za-z_]\w*)\b", tail):
            note(w.group(1), m.start(1))
    return found


def dollar_uses(code: str) -> list[tuple[str, int, str]]:
    """``(name, position, token)`` for each ``$NAME`` / ``${NAME...}`` the shell would expand."""
    uses: list[tuple[str, int, str]] = []
    n = len(code)
    pos = 0
    dq = False
    heredocs: list[tuple[str, bool]] = []  # pending here-documents (delimiter, expands)
    while pos < n:
        m = _TOKEN_RE.search(code, pos)
        if not m:
            break
        tok = m.group(0)
        start = m.start()
        pos = m.end()
        if tok.startswith("\\"):
            continue
        if tok == "'":
            if dq:
                continue
            close = code.find("'", pos)
            pos = n if close < 0 else close + 1
            continue
        if tok == '"':
            dq = not dq
            continue
        if tok == "#":
            if dq or (start > 0 and not code[start - 1].isspace() and code[start - 1] not in ";&|("):
                continue
            nl = code.find("\n", pos)
            pos = n if nl < 0 else nl
            continue
        if tok == "\n":
            dq = dq and True
            for delim, expands in heredocs:
                pos = _skip_heredoc(code, pos, delim, expands, uses)
            heredocs.clear()
            continue
        if tok.startswith("<<"):
            if not dq:
                quoted = bool(m.group(1))
                heredocs.append((m.group(2), not quoted))
            continue
        if tok == "$(":
            continue  # command substitution: scan inside as usual
        if tok == "${":
            inner = code[pos:pos + 200]
            if inner.startswith("#"):
                inner = inner[1:]
            nm = _NAME_RE.match(inner)
            if not nm:
                continue
            name = nm.group(0)
            after = inner[nm.end():]
            if after.startswith((":-", "-", ":=", "=", ":+", "+")) and not after.startswith("-}"):
                continue  # ${VAR:-default}: optional
            close = code.find("}", pos)
            token = code[start:close + 1] if 0 <= close < start + 220 else "${" + name + "}"
            uses.append((name, start, token))
            continue
        # $NAME
        uses.append((tok[1:], start, tok))
    return uses


def _skip_heredoc(code: str, pos: int, delim: str, expands: bool, uses: list[tuple[str, int, str]]) -> int:
    """Skip a here-document body starting at ``pos``; record its expansions when unquoted."""
    n = len(code)
    while pos < n:
        nl = code.find("\n", pos)
        line_end = n if nl < 0 else nl
        line = code[pos:line_end]
        if line.strip() == delim:
            return line_end
        if expands and "$" in line:
            for m in re.finditer(r"(?<!\\)\$(?:\{([A-Za-z_]\w*)([^}]*)\}|([A-Za-z_]\w*))", line):
                name = m.group(1) or m.group(3)
                if m.group(1) and m.group(2).startswith((":-", "-", ":=", "=")):
                    continue
                uses.append((name, pos + m.start(), m.group(0)))
        pos = line_end + 1
    return n


def find_placeholders(
    code: str,
    kind: str,
    first_line: int,
    secret_names: Iterable[str] = (),
    line_of: Callable[[int], int] | None = None,
) -> list[Placeholder]:
    """Placeholders of one block, first occurrence each, with the line they are on.

    ``line_of(i)`` maps the 0-based line index inside ``code`` to a source line
    (default ``first_line + i``).
    """
    if kind not in ("command", "file") or not code:
        return []
    secrets = {normalise(s) for s in secret_names}
    found: dict[str, Placeholder] = {}

    def add(name: str, pos: int, token: str) -> None:
        if name in found:
            return
        idx = code.count("\n", 0, pos)
        line = line_of(idx) if line_of is not None else first_line + idx
        found[name] = Placeholder(name, is_secret_name(name) or name in secrets, line, token)

    if "<" in code:
        for m in (SHELL_ANGLE_RE if kind == "command" else ANGLE_RE).finditer(code):
            line_start = code.rfind("\n", 0, m.start()) + 1
            if code[line_start:m.start()].lstrip().startswith("#") and kind == "command":
                continue  # a comment: nothing to fill
            add(normalise(m.group(1)), m.start(), m.group(0))
    if kind == "command" and "{" in code:
        for m in BRACE_RE.finditer(code):
            line_start = code.rfind("\n", 0, m.start()) + 1
            if code[line_start:m.start()].lstrip().startswith("#"):
                continue
            add(normalise(m.group(1)), m.start(), m.group(0))
    if kind == "command" and "$" in code:
        assigned = assignments(code)
        for name, pos, token in dollar_uses(code):
            if name in WELL_KNOWN_ENV:
                continue
            at = assigned.get(name)
            if at is not None and at < pos:
                continue
            add(name, pos, token)
    return sorted(found.values(), key=lambda p: p.line)


def merge(groups: Iterable[Iterable[Placeholder]]) -> tuple[Placeholder, ...]:
    """Placeholders of several blocks, one per name, first occurrence wins."""
    seen: dict[str, Placeholder] = {}
    for group in groups:
        for p in group:
            if p.name not in seen:
                seen[p.name] = p
            elif p.secret and not seen[p.name].secret:
                seen[p.name] = Placeholder(p.name, True, seen[p.name].line, seen[p.name].token)
    return tuple(seen.values())
