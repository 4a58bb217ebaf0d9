"""Front matter at the top of a document: metadata, never Markdown.

YAML between ``---`` lines (Hugo, Jekyll, Runme, ...) or TOML between ``+++``
lines (Hugo).  :func:`split_front_matter` returns what it found and the text with
those lines blanked, so that every later line keeps its number and markdown-it
never reads ``title: X`` followed by ``---`` as a heading.

``title`` becomes the document title when there is no H1; a ``runbook:`` mapping
holds document defaults (``target``, ``serial``, ``pty``, ``timeout`` ...), applied
to every runnable step that neither the document nor a bindings file places.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_YAML_OPEN = "---"
_TOML_OPEN = "+++"
_YAML_CLOSE = ("---", "...")
MAX_LINES = 500  # a "front matter" longer than this is not one: leave the document alone


@dataclass(frozen=True, slots=True)
class FrontMatter:
    """What the front matter said.  ``end`` is the line of the closing delimiter (0: none)."""

    kind: str = ""  # "yaml", "toml" or "" (none)
    end: int = 0
    title: str = ""
    defaults: dict[str, str] = field(default_factory=dict)  # the ``runbook:`` mapping, values as text
    data: dict[str, Any] = field(default_factory=dict)
    problem: str = ""  # why it could not be read (the lines are still metadata)
    problem_line: int = 1


def split_front_matter(norm: str) -> tuple[FrontMatter, str]:
    """(front matter, text with the front matter lines blanked) of normalised text."""
    if not norm.startswith((_YAML_OPEN, _TOML_OPEN)):
        return FrontMatter(), norm
    lines = norm.split("\n")
    opener = lines[0].rstrip()
    if opener not in (_YAML_OPEN, _TOML_OPEN):
        return FrontMatter(), norm
    closers = _YAML_CLOSE if opener == _YAML_OPEN else (_TOML_OPEN,)
    end = next((i for i in range(1, min(len(lines), MAX_LINES)) if lines[i].rstrip() in closers), None)
    if end is None:
        return FrontMatter(), norm
    body = "\n".join(lines[1:end])
    if opener == _YAML_OPEN and not _looks_like_yaml_mapping(body):
        return FrontMatter(), norm  # "---" as a thematic break followed by prose
    kind = "yaml" if opener == _YAML_OPEN else "toml"
    data, problem, line = _load(kind, body)
    blanked = "\n" * (end + 1) + "\n".join(lines[end + 1:])
    title = data.get("title") if isinstance(data.get("title"), str) else ""
    defaults: dict[str, str] = {}
    raw = data.get("runbook")
    if isinstance(raw, dict):
        for k, v in raw.items():
            if isinstance(v, (str, int, float, bool)):
                defaults[str(k).strip().lower()] = str(v).lower() if isinstance(v, bool) else str(v)
    elif raw is not None:
        problem, line = problem or "the 'runbook' key must hold a mapping of document defaults", line or 2
    return FrontMatter(kind, end + 1, " ".join(str(title).split()), defaults, data, problem, line if problem else 1), blanked


_KEY_LINE_RE = re.compile(r"^[\w.\"' -]+:(\s|$)")


def _looks_like_yaml_mapping(body: str) -> bool:
    first = next((ln for ln in body.split("\n") if ln.strip() and not ln.lstrip().startswith("#")), None)
    return first is not None and bool(_KEY_LINE_RE.match(first))


def _load(kind: str, body: str) -> tuple[dict[str, Any], str, int]:
    """(mapping, problem, document line of the problem); the body starts on line 2."""
    if kind == "toml":
        import tomllib

        try:
            data = tomllib.loads(body)
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"line (\d+)", str(exc))
            return {}, f"front matter is not valid TOML: {exc}", int(m.group(1)) + 1 if m else 1
        return data, "", 0
    from runbook.reading.bounded_yaml import YAMLInputError, load_yaml  # aliases, depth and size bounded

    try:
        data = load_yaml(body, "front matter", first_line=2)
    except YAMLInputError as exc:
        return {}, f"front matter is not valid YAML: {exc.problem}", exc.line or 1
    if not isinstance(data, dict):
        return {}, "", 0
    return data, "", 0
