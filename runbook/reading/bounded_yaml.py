"""Reading YAML that may be hostile: bounded in bytes, nesting depth and alias expansion.

Every YAML file runbook reads (bindings ``NAME.targets.yaml``, inventories, kubeconfigs,
front matter) goes through here, because PyYAML alone is not safe against small files:

* an *alias bomb* (``a: &a [x, x]``, ``b: &b [*a, *a]``, ... nine levels deep) is a few
  hundred bytes that PyYAML loads at once as shared references, but any code that walks
  the result (``str(value)``, a comparison, a deep copy) expands it to billions of items
  and hangs above gigabytes; a *recursive* alias (``&a [*a]``) never ends;
* a deeply nested document (``[[[[...]]]]``) exhausts Python's recursion in the composer;
* a huge or endless input (``/dev/zero``, a FIFO) is read without limit.

So: :func:`read_yaml_file` reads regular files only, within the input limit
(:mod:`runbook.reading.files`: 64 MB unless ``$RUNBOOK_MAX_INPUT_MB``);
the node graph is walked once before anything uses it, counting every node an alias stands
for, and the document is refused once aliases stand for more than :data:`MAX_ALIAS_NODES`
nodes, an alias refers to its own anchor, or nesting exceeds :data:`MAX_DEPTH`.  Anchors and aliases used as people use them
(``vars: *defaults``) load as before.

Every problem is a :class:`YAMLInputError` (an :class:`~runbook.errors.InputError`, exit 2)
whose ``where`` is ``file:line`` (``line`` counts in the enclosing file: pass
``first_line`` for YAML embedded in another file, such as front matter) and ``problem``
one line of text; callers put their own words around them::

    try:
        data = load_yaml_file(path)
    except YAMLInputError as exc:
        raise InputError(f"{exc.where}: bindings file is not valid YAML: {exc.problem}") from None
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from runbook.errors import InputError
from runbook.reading.files import max_input_bytes, read_input

MAX_ALIAS_NODES = 1_000_000
"""Most nodes all aliases of one document may stand for together."""
MAX_DEPTH = 100
"""Deepest nesting of sequences and mappings."""

__all__ = [
    "MAX_ALIAS_NODES", "MAX_DEPTH", "YAMLInputError",
    "compose_yaml", "construct_yaml", "decode_yaml", "load_yaml", "load_yaml_file", "read_yaml_bytes",
    "read_yaml_file",
]


class YAMLInputError(InputError):
    """A YAML input refused: ``where`` (``file:line`` or ``file``), ``line`` (0 when
    unknown), ``problem`` (one line)."""

    def __init__(self, path: str, line: int, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        self.where = f"{path}:{line}" if line else path
        super().__init__(f"{self.where}: {problem}")


def read_yaml_bytes(path: str, what: str = "YAML file") -> bytes:
    """The bytes of a YAML file, through :func:`runbook.reading.files.read_input`: a regular
    file (never a FIFO or a device, which could hang or never end) within the input limit.

    :raises OSError: the file cannot be opened (``FileNotFoundError``, ``PermissionError``...):
        callers word these themselves
    :raises InputError: not a regular file, over the limit (the message names the file)
    """
    return read_input(path, what)


def decode_yaml(raw: bytes, path: str) -> str:
    """UTF-8 text (a BOM dropped); :raises YAMLInputError: not UTF-8, at its line."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YAMLInputError(path, line, f"not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None


def read_yaml_file(path: str, what: str = "YAML file") -> str:
    """:func:`read_yaml_bytes` then :func:`decode_yaml`."""
    return decode_yaml(read_yaml_bytes(path, what), path)


_Loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader  # libyaml: 4x faster, nesting capped at 1000


def _children(node: yaml.Node) -> Iterator[tuple[yaml.Node, int]]:
    """A collection's child nodes in document order, each with the 0-based line to blame
    when it is an alias (a mapping value: its key's line; else the collection's line)."""
    line = node.start_mark.line
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key, line
            yield value, key.start_mark.line
    else:
        yield from ((item, line) for item in node.value)


def _check_bounds(root: yaml.Node, path: str, first_line: int) -> None:
    """Walk the node graph once (iteratively, in document order) and refuse it when aliases
    stand for more than MAX_ALIAS_NODES nodes, an alias is inside its own anchor, or nesting
    is deeper than MAX_DEPTH.  A node met a second time is an alias: it stands for as many
    nodes as it expands to (``sizes``, computed when it was finished)."""
    if isinstance(root, yaml.ScalarNode):
        return
    sizes: dict[int, int] = {}
    open_ids = {id(root)}
    stack: list[tuple[yaml.Node, Iterator[tuple[yaml.Node, int]]]] = [(root, _children(root))]
    totals = [1]
    aliased = 0
    while stack:
        node, children = stack[-1]
        for child, line in children:
            key = id(child)
            size = sizes.get(key)
            if size is not None:  # an alias
                aliased += size
                totals[-1] += size
                if aliased > MAX_ALIAS_NODES:
                    raise YAMLInputError(path, line + first_line, f"aliases expand to more than {MAX_ALIAS_NODES} "
                                         "nodes (refused: an alias bomb?)")
                continue
            if key in open_ids:
                raise YAMLInputError(path, line + first_line, "an alias refers to the node that contains it "
                                     "(a recursive alias is refused)")
            if isinstance(child, yaml.ScalarNode):
                sizes[key] = 1
                totals[-1] += 1
                continue
            if len(stack) >= MAX_DEPTH:
                raise YAMLInputError(path, child.start_mark.line + first_line,
                                     f"nested more than {MAX_DEPTH} levels deep (refused)")
            open_ids.add(key)
            stack.append((child, _children(child)))
            totals.append(1)
            break
        else:
            stack.pop()
            open_ids.discard(id(node))
            total = totals.pop()
            sizes[id(node)] = total
            if totals:
                totals[-1] += total


def _error(exc: yaml.YAMLError, text: str, path: str, first_line: int) -> YAMLInputError:
    if isinstance(exc, yaml.reader.ReaderError):  # a control character: binary file?
        line = text[: exc.position].count("\n") + first_line
        return YAMLInputError(path, line, f"unacceptable character #x{exc.character:04x} (binary file?)")
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or (str(exc).strip().splitlines() or ["invalid YAML"])[0]
    context = getattr(exc, "context_mark", None)
    if mark is not None and context is not None and text and mark.index >= len(text):
        # found at the end of the input: blame where the unclosed bracket or quote opened
        mark, problem = context, f"{problem} (still open at the end)"
    line = mark.line + first_line if mark is not None else 0
    return YAMLInputError(path, line, problem)


def compose_yaml(text: str, path: str, *, first_line: int = 1) -> yaml.Node | None:
    """The node tree of one YAML document (``None`` for an empty one), bounded as the module
    says.  Nodes keep their ``start_mark``: ``node.start_mark.line + first_line`` is the line.

    :raises YAMLInputError: bad YAML or a bound exceeded, at its line
    """
    if len(text) > max_input_bytes():
        raise YAMLInputError(path, 0, f"YAML text too large ({len(text)} characters, limit {max_input_bytes()})")
    loader = None
    try:
        loader = _Loader(text)  # the pure-Python reader checks for control characters at once
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _error(exc, text, path, first_line) from None
    except RecursionError:  # the pure-Python composer only; libyaml caps nesting itself
        raise YAMLInputError(path, 0, f"nested more than {MAX_DEPTH} levels deep (refused)") from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is not None:
        _check_bounds(root, path, first_line)
    return root


def construct_yaml(node: yaml.Node, path: str, *, first_line: int = 1) -> Any:
    """Python values (dicts, lists, str, int, float, bool, None, dates) of a node from
    :func:`compose_yaml`; shared (aliased) values stay shared, as PyYAML makes them.

    :raises YAMLInputError: a value that cannot be constructed (``!!python/...`` tags, a bad
        merge key), at its line
    """
    try:
        return yaml.constructor.SafeConstructor().construct_document(node)
    except yaml.YAMLError as exc:
        raise _error(exc, "", path, first_line) from None


def load_yaml(text: str, path: str, *, first_line: int = 1) -> Any:
    """``yaml.safe_load`` of ``text``, bounded (``path`` and ``first_line`` only name places).

    :raises YAMLInputError: at its line
    """
    node = compose_yaml(text, path, first_line=first_line)
    return None if node is None else construct_yaml(node, path, first_line=first_line)


def load_yaml_file(path: str, what: str = "YAML file") -> Any:
    """:func:`read_yaml_file` then :func:`load_yaml`.

    :raises OSError: cannot open; :raises InputError: not a regular file, too large;
    :raises YAMLInputError: not UTF-8, bad YAML, a bound exceeded
    """
    return load_yaml(read_yaml_file(path, what), path)
