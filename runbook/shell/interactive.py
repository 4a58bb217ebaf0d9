"""Which scripts want a terminal: ``-it``/``-ti`` (``kubectl exec``, ``docker run``), a ``sudo``
that may prompt for a password, ``read -p``/``-s``, or an interactive program (``vi``, ``less``,
``passwd``).

Shell text read without running it (no asyncio here): ``runbook lint`` warns with
:func:`pty_reason`, the planner and the executors use :func:`needs_pty`.
"""

from __future__ import annotations

import re
import shlex

_INTERACTIVE = frozenset(["vi", "vim", "nvim", "nano", "emacs", "less", "more", "top", "htop", "passwd", "su", "visudo", "vipw"])
_SUDO_ARG_OPTS = set("ugphCDRTUrt")
_KEYWORDS = frozenset(["if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"])
_WRAPPERS = frozenset(["time", "nohup", "exec", "command", "builtin", "env", "stdbuf", "nice", "ionice"])


def _logical_lines(script: str) -> list[str]:
    out: list[str] = []
    current = ""
    for line in script.splitlines():
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        out.append(current + line)
        current = ""
    if current:
        out.append(current)
    return out


def _words_of(line: str) -> list[list[str]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError:
        tokens = line.split()
    commands: list[list[str]] = [[]]
    for tok in tokens:
        if set(tok) <= set(";&|()"):
            commands.append([])
        else:
            commands[-1].append(tok)
    return [c for c in commands if c]


def _short_flags(word: str) -> str:
    return word[1:] if word.startswith("-") and not word.startswith("--") and word[1:].isalpha() else ""


def _command_reason(words: list[str]) -> str | None:
    while words and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]) or words[0] in _WRAPPERS | _KEYWORDS):
        words = words[1:]
    if not words:
        return None
    prog, args = words[0].rsplit("/", 1)[-1], words[1:]
    if prog == "sudo":
        i, quiet = 0, False
        while i < len(args) and args[i].startswith("-"):
            word = args[i]
            if word == "--":
                i += 1
                break
            if word in ("--non-interactive", "--stdin", "--askpass") or set(_short_flags(word)) & set("nSA"):
                quiet = True
            flags = _short_flags(word)
            if flags and flags[-1] in _SUDO_ARG_OPTS and len(args) > i + 1:
                i += 1
            i += 1
        if not quiet:
            return "sudo may prompt for a password"
        return _command_reason(args[i:])
    short = "".join(_short_flags(a) for a in args if len(_short_flags(a)) <= 4)
    longs = set(a for a in args if a.startswith("--"))
    if any(_short_flags(a) and {"i", "t"} <= set(_short_flags(a)) and len(_short_flags(a)) <= 4 for a in args):
        return f"{prog} asks for a terminal (-it)"
    if ("i" in short or "--interactive" in longs or "--stdin" in longs) and ("t" in short or "--tty" in longs):
        return f"{prog} asks for a terminal (-i -t)"
    if prog == "read" and ("p" in short or "s" in short) and "u" not in short:
        return "read prompts the operator"
    if prog in _INTERACTIVE:
        return f"{prog} is interactive"
    return None


def pty_reason(script: str) -> str | None:
    """Why ``script`` wants a terminal, or None: ``-it``/``-ti`` (``kubectl exec``,
    ``docker run``), a ``sudo`` without ``-n``/``-S``/``-A`` (it may prompt for a
    password), ``read -p``/``-s``, or an interactive program (``vi``, ``less``, ``passwd``)."""
    for line in _logical_lines(script):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        for words in _words_of(line):
            reason = _command_reason(words)
            if reason:
                return reason
    return None


def needs_pty(script: str) -> bool:
    """True when ``script`` should run with a terminal (see :func:`pty_reason`)."""
    return pty_reason(script) is not None
