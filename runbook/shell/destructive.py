"""Destructive commands, found on a shell-aware reading of a block.

The guard that makes the operator type the host name before ``rm -rf`` runs must
see commands as the shell will run them, not as a line of text.  A regular
expression over lines was fooled by

* a quoted ``#`` taken for a comment: ``echo "a #"; rm -rf DIR``;
* quoting and escapes the shell removes: ``r\\m -rf``, ``'rm' -rf``, ``"r"m -rf``;
* a line continuation: ``rm \\`` + newline + ``-rf``;
* flags spelled another way: ``rm -r --force``, ``rm --rec --forc``, ``rm -r -v -f``.

:func:`find_destructive` reads ``code`` as POSIX sh/bash does: quotes, backslash
escapes and line continuations are removed, ``#`` starts a comment only at the start
of a word, ``;``, ``&``, ``|``, ``(``, ``)`` and newlines separate commands, and the
text of ``$(...)``, backticks, here-documents and ``sh -c`` / ``bash -c`` / ``eval``
arguments is read as commands too.  Each simple command (its words after quote
removal) is matched against the patterns below, and ``rm`` is checked on its parsed
flags.  A finding keeps the lines that hold the command **exactly as written**
(``text``), for the confirmation the operator answers.

What it does not do: follow variables (``$RM -rf``), aliases, functions defined
elsewhere or scripts the block calls.  Reading errs on the safe side: text that
merely looks like a destructive command inside a quoted argument (``echo "rm -rf /"``)
is reported too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SEP = r"[^\n;|&]*?"
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(rx, re.I if label == "DROP" else 0))
    for label, rx in (
        ("rm -rf", r"\brm\s+(?:-[a-zA-Z]*(?:[rR][a-zA-Z]*f|f[a-zA-Z]*[rR])[a-zA-Z]*|(?:-[rRf]\s+){1,2}-[rRf]|--recursive\s+--force|--force\s+--recursive)\b"),
        ("kubeadm reset", r"\bkubeadm\s+reset\b"),
        ("iptables -F", r"\b(?:ip6?tables|iptables-legacy|iptables-nft)\b" + _SEP + r"\s(?:-F|--flush|-X|--delete-chain)\b"),
        ("nft flush", r"\bnft\s+flush\b"),
        ("kubectl delete", r"\bkubectl\b" + _SEP + r"\sdelete\b"),
        ("kubectl drain", r"\bkubectl\b" + _SEP + r"\sdrain\b"),
        ("etcdctl snapshot restore", r"\betcdctl\b" + _SEP + r"\bsnapshot\s+restore\b"),
        ("etcdctl member remove", r"\betcdctl\b" + _SEP + r"\bmember\s+remove\b"),
        ("etcdctl del", r"\betcdctl\b" + _SEP + r"\sdel\b"),
        ("systemctl stop", r"\bsystemctl\b" + _SEP + r"\s(?:stop|disable|mask|kill)\b"),
        ("--all", r"(?<![\w-])--all\b(?!-)"),
        ("helm uninstall", r"\bhelm\s+(?:uninstall|delete|del)\b"),
        ("mkfs", r"\bmkfs(?:\.\w+)?\b"),
        ("wipefs", r"\bwipefs\b"),
        ("dd to a device", r"\bdd\b" + _SEP + r"\bof=/dev/"),
        ("shutdown/reboot", r"(?:^|[\s;&|])(?:sudo\s+)?(?:shutdown|reboot|poweroff|halt)\b"),
        ("terraform destroy", r"\bterraform\s+destroy\b"),
        ("velero delete", r"\bvelero\b" + _SEP + r"\sdelete\b"),
        ("docker/podman rm", r"\b(?:docker|podman)\s+(?:system\s+prune|volume\s+rm|rm)\b"),
        ("DROP", r"\bDROP\s+(?:TABLE|DATABASE|SCHEMA)\b"),
    )
)
LABELS = tuple(label for label, _ in PATTERNS)
_ANY = re.compile("|".join(f"(?i:{rx.pattern})" if rx.flags & re.I else f"(?:{rx.pattern})" for _, rx in PATTERNS))
_SHELLS = frozenset(["sh", "bash", "dash", "zsh", "ksh", "ash", "busybox", "su", "sudo", "doas", "runuser"])
_OPERATORS = ";&|()\n"
_MAX_DEPTH = 4
_PLAIN = re.compile(r"[^\\'\"$`#<>;&|()\n \t]+")


@dataclass(frozen=True, slots=True)
class DestructiveCommand:
    """One destructive command: its ``labels``, ``text``: the lines of the block that hold
    it, exactly as written, and ``line``, the 0-based line of the block where it starts."""

    labels: tuple[str, ...]
    text: str
    line: int


@dataclass(slots=True)
class _Command:
    words: list[str] = field(default_factory=list)
    start: int = -1
    end: int = -1
    nested: list[str] = field(default_factory=list)  # $(...), `...`, here-documents: read as commands too


def _matching(code: str, i: int, open_: str, close: str) -> int:
    """Index just after the ``close`` matching the ``open_`` at ``i`` (quotes respected)."""
    depth, j, n = 0, i, len(code)
    while j < n:
        c = code[j]
        if c == "\\":
            j += 2
            continue
        if c == "'" and open_ != "`":
            k = code.find("'", j + 1)
            j = n if k < 0 else k + 1
            continue
        if c == open_ and (open_ != close or depth == 0):
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return n


class _Splitter:
    """Reads ``code`` once, left to right, into simple commands (see :func:`_split`).

    Each ``_read_*`` method consumes one kind of token at ``i`` and returns the index after it.
    """

    def __init__(self, code: str) -> None:
        self.code = code
        self.n = len(code)
        self.commands: list[_Command] = []
        self.cmd = _Command()
        self.word: list[str] = []
        self.in_word = False
        self.heredocs: list[tuple[str, bool]] = []  # (delimiter, strip tabs) waiting for the end of the line

    def end_word(self) -> None:
        if self.in_word:
            self.cmd.words.append("".join(self.word))
        self.word, self.in_word = [], False

    def end_command(self, at: int) -> None:
        self.end_word()
        if self.cmd.words or self.cmd.nested:
            self.cmd.end = at
            self.commands.append(self.cmd)
        self.cmd = _Command()

    def begin(self, at: int) -> None:
        if self.cmd.start < 0:
            self.cmd.start = at
        self.in_word = True

    def split(self) -> list[_Command]:
        code, n, i = self.code, self.n, 0
        while i < n:
            plain = _PLAIN.match(code, i)
            if plain is not None:  # a run of ordinary characters: part of a word
                self.begin(i)
                self.word.append(plain.group())
                i = plain.end()
            else:
                i = self._read_special(i)
        self.end_command(n)
        return self.commands

    def _read_special(self, i: int) -> int:
        code, n = self.code, self.n
        c = code[i]
        if c == "\\":
            return self._read_backslash(i)
        if c == "'":
            self.begin(i)
            k = code.find("'", i + 1)
            k = n if k < 0 else k
            self.word.append(code[i + 1:k])
            return k + 1
        if c == '"':
            self.begin(i)
            return self._read_double_quoted(i + 1)
        if (c == "$" and code.startswith("$(", i)) or c == "`":
            self.begin(i)
            return self._read_substitution(i)
        if c == "$" and (code.startswith("${IFS}", i) or re.match(r"\$IFS(?![A-Za-z0-9_])", code[i:i + 5])):
            self.end_word()  # $IFS splits words as a blank does
            return i + (6 if code.startswith("${IFS}", i) else 4)
        if c == "#" and not self.in_word:  # a comment: only at the start of a word
            k = code.find("\n", i)
            return n if k < 0 else k
        if c in " \t":
            self.end_word()
            return i + 1
        if c == "<" and code.startswith("<<", i) and not code.startswith("<<<", i):
            self.end_word()
            return self._read_heredoc_operator(i + 2)
        if c in "<>":
            self.end_word()
            return i + 1
        if c in _OPERATORS:
            self.end_command(i)
            if c == "\n" and self.heredocs:
                return self._read_heredoc_bodies(i + 1)
            return i + 1
        self.begin(i)
        self.word.append(c)
        return i + 1

    def _read_backslash(self, i: int) -> int:
        code, n = self.code, self.n
        if i + 1 < n and code[i + 1] == "\n":  # line continuation: both go
            return i + 2
        self.begin(i)
        if i + 1 < n:
            self.word.append(code[i + 1])
        return i + 2

    def _read_substitution(self, i: int) -> int:
        """``$(...)`` or a backquoted command at ``i``: kept in the word, read as a command too."""
        code = self.code
        if code[i] == "$":
            end = _matching(code, i + 1, "(", ")")
            self.cmd.nested.append(code[i + 2:end - 1])
        else:
            end = _matching(code, i, "`", "`")
            self.cmd.nested.append(code[i + 1:end - 1])
        self.word.append(code[i:end])
        return end

    def _read_double_quoted(self, j: int) -> int:
        """The inside of a double-quoted string from ``j``; returns the index after its closing quote."""
        code, n = self.code, self.n
        while j < n and code[j] != '"':
            if code[j] == "\\" and j + 1 < n:
                if code[j + 1] != "\n":
                    self.word.append(code[j + 1] if code[j + 1] in '$`"\\' else code[j:j + 2])
                j += 2
            elif code.startswith("$(", j) or code[j] == "`":
                j = self._read_substitution(j)
            else:
                self.word.append(code[j])
                j += 1
        return j + 1

    def _read_heredoc_operator(self, j: int) -> int:
        """``<<WORD`` or ``<<-WORD`` (``j`` just after ``<<``): the body is read at the end of the line."""
        code, n = self.code, self.n
        strip = j < n and code[j] == "-"
        j += 1 if strip else 0
        while j < n and code[j] in " \t":
            j += 1
        m = re.match(r"""(['"]?)([^\s;&|<>()'"]+)\1""", code[j:])
        if m:
            self.heredocs.append((m.group(2).replace("\\", ""), strip))
            j += m.end()
        return j

    def _read_heredoc_bodies(self, j: int) -> int:
        """The bodies of the pending here-documents, from the line at ``j``: each is a command."""
        code, n = self.code, self.n
        for delimiter, strip in self.heredocs:
            body: list[str] = []
            body_start = body_end = j
            while j < n:
                k = code.find("\n", j)
                k = n if k < 0 else k
                line = code[j:k]
                if (line.lstrip("\t") if strip else line) == delimiter:
                    j = k + 1
                    break
                body.append(line)
                j = body_end = k + 1
            if body:
                here = _Command(start=body_start, end=min(body_end, n))
                here.nested.append("\n".join(body))
                self.commands.append(here)
        self.heredocs = []
        return j


def _split(code: str) -> list[_Command]:
    """Simple commands of ``code``, words with quotes and escapes removed."""
    return _Splitter(code).split()


def _rm_flags(words: list[str]) -> bool:
    """True when some ``rm`` in ``words`` has both a recursive and a force flag."""
    for k, w in enumerate(words):
        if w.rsplit("/", 1)[-1] != "rm":
            continue
        recursive = force = False
        for arg in words[k + 1:]:
            if arg == "--":
                break
            if arg.startswith("--"):
                recursive = recursive or (len(arg) >= 3 and "--recursive".startswith(arg))
                force = force or (len(arg) >= 3 and "--force".startswith(arg))
            elif arg.startswith("-") and len(arg) > 1:
                letters = arg[1:]
                recursive = recursive or "r" in letters or "R" in letters
                force = force or "f" in letters
        if recursive and force:
            return True
    return False


def _labels(words: list[str]) -> list[str]:
    text = " ".join(words)
    found = [label for label, rx in PATTERNS if rx.search(text)] if _ANY.search(text) else []
    if "rm -rf" not in found and _rm_flags(words):
        found.insert(0, "rm -rf")
    return found


def _inner_scripts(words: list[str]) -> list[str]:
    """Arguments the command runs as shell code: ``sh -c CODE``, ``eval ARGS``."""
    out: list[str] = []
    for k, w in enumerate(words):
        base = w.rsplit("/", 1)[-1]
        if base == "eval":
            out.append(" ".join(words[k + 1:]))
        elif base in _SHELLS:
            for j in range(k + 1, len(words) - 1):
                if words[j].startswith("-") and not words[j].startswith("--") and "c" in words[j][1:]:
                    out.append(words[j + 1])
                    break
    return out


def _scan(code: str, depth: int) -> list[tuple[list[str], int, int]]:
    """``(labels, start, end)`` of destructive commands in ``code`` (offsets into ``code``)."""
    found: list[tuple[list[str], int, int]] = []
    for cmd in _split(code):
        labels = _labels(cmd.words)
        if depth < _MAX_DEPTH:
            for inner in cmd.nested + _inner_scripts(cmd.words):
                for more, _, _ in _scan(inner, depth + 1):
                    labels.extend(x for x in more if x not in labels)
        if labels:
            ordered = [x for x in LABELS if x in labels]
            found.append((ordered, max(cmd.start, 0), cmd.end))
    return found


# A cheap first look: with quotes, backslashes and $IFS gone, a destructive command
# still spells one of these words.
_TRIGGER = re.compile(r"rm|kubeadm|tables|nft|kubectl|etcdctl|systemctl|--all|helm|mkfs|wipefs|dd|shutdown|reboot"
                      r"|poweroff|halt|terraform|velero|docker|podman|drop", re.I)
_NOISE = re.compile(r"\\\n|[\\'\"]|\$\{IFS\}|\$IFS")


def find_destructive(code: str) -> list[DestructiveCommand]:
    """The destructive commands in shell ``code``, in order (see the module docstring)."""
    out: list[DestructiveCommand] = []
    if not _TRIGGER.search(_NOISE.sub("", code)):
        return out
    for labels, start, end in _scan(code, 0):
        begin = code.rfind("\n", 0, start) + 1  # whole lines: what the operator sees in the runbook
        stop = code.find("\n", max(end - 1, start))
        text = code[begin:len(code) if stop < 0 else stop].strip("\n")
        out.append(DestructiveCommand(tuple(labels), text, code.count("\n", 0, start)))
    return out


def destructive_patterns(code: str) -> list[str]:
    """Labels of the destructive operations in ``code``, in pattern order."""
    seen: set[str] = set()
    for finding in find_destructive(code):
        seen.update(finding.labels)
    return [label for label in LABELS if label in seen]
