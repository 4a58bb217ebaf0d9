"""Inventory: which machines a step runs on.

The inventory is an Ansible-style YAML file::

    all:
      vars: {ansible_user: ops}
      children:
        masters:
          hosts:
            prod-k8s-master-0[1:5]: {}            # ranges expand: 01..05
          vars: {ansible_ssh_private_key_file: ~/.ssh/prod_ed25519}
        workers:
          hosts:
            prod-k8s-worker-01: {ansible_host: 10.1.2.11, ansible_port: 2222}

Host patterns (``Inventory.resolve``) follow Ansible: ``all`` or ``*``, a group or
host name, globs (``prod-k8s-master-0*``), regexes (``~master-0[12]``),
subscripts on any term (``masters[0]``, ``masters[-1]``, ``masters[1:]``; a
range's end is *inclusive* as in Ansible: ``masters[0:2]`` is three hosts),
unions ``a,b``, intersections ``&x`` and exclusions ``!x`` (``masters,!masters[0]``
or ``masters:!masters[0]``).  Unions come first, then intersections, then
exclusions, whatever the written order.

``local`` (or ``localhost``, unless the inventory defines it) is the machine
runbook runs on.  A name that is not in the inventory is an SSH destination
(``db-backup``, ``ops@db-backup:2222``): its :class:`Target` keeps the name as
written, and the SSH executor lets asyncssh apply ``~/.ssh/config`` to it
(``Host`` aliases, ``HostName``, ``User``, ``Port``, ``IdentityFile``,
``ProxyJump``), as ``ssh`` would.

Variable precedence: ``all`` vars, then group vars from parents to children
(same depth: by group name), then host vars.  Relative key file paths are
relative to the inventory file's directory.  INI inventories, and whatever
``ansible-inventory`` reads (scripts, plugins, directories), come through
:mod:`runbook.targets.inventory_ini`.  Jinja templates are not evaluated.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import yaml

from runbook.errors import UserError
from runbook.reading.bounded_yaml import YAMLInputError, compose_yaml, construct_yaml, decode_yaml, read_yaml_bytes

LOCAL_NAMES = ("local", "localhost")
_GROUP_KEYS = ("hosts", "children", "vars")
_DESTINATION = re.compile(
    r"^(?:ssh://)?(?:(?P<user>[^@\s/:]+)@)?(?:(?P<host>[A-Za-z0-9_.-]+)|\[(?P<ip6>[0-9A-Fa-f:.]+)\])(?::(?P<port>\d+))?$"
)
_SUBSCRIPT = re.compile(r"^(?P<base>.+?)\[(?P<start>-?\d+)?(?P<colon>:)?(?P<end>-?\d+)?\]$")
_RANGE = re.compile(r"\[([0-9a-zA-Z]+):([0-9a-zA-Z]+)(?::(\d+))?\]")


@dataclass(frozen=True, slots=True)
class Target:
    """One machine a step runs on.

    ``name`` is what the operator and the journal see (inventory name, ``local``, or
    the SSH destination as written).  ``host`` is what to connect to: the
    ``ansible_host`` or, for a destination not in the inventory, the alias that
    ``~/.ssh/config`` may map (``port``/``user`` None: config or defaults decide).
    """

    name: str
    host: str
    port: int | None = None
    user: str | None = None
    key_file: str | None = None
    vars: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    local: bool = False
    groups: tuple[str, ...] = field(default=(), compare=False)
    in_inventory: bool = field(default=True, compare=False)

    @property
    def destination(self) -> str:
        """``user@host:port`` as far as known (for messages)."""
        if self.local:
            return "local"
        host = f"[{self.host}]" if ":" in self.host else self.host
        text = f"{self.user}@{host}" if self.user else host
        return f"{text}:{self.port}" if self.port else text

    def __str__(self) -> str:
        return self.name

    @classmethod
    def local_machine(cls, name: str = "local") -> Target:
        """The machine runbook runs on."""
        return cls(name=name, host="localhost", local=True, in_inventory=False)

    @classmethod
    def ssh_destination(cls, text: str) -> Target:
        """A destination not in the inventory: ``host``, ``user@host``, ``user@host:port``,
        ``ssh://user@host:port`` or ``[v6addr]:port``.  Raises :class:`ValueError`."""
        m = _DESTINATION.match(text.strip())
        if not m:
            raise ValueError(f"not an SSH destination: {text!r}")
        port = int(m["port"]) if m["port"] else None
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port out of range in {text!r}")
        return cls(name=text.strip(), host=m["host"] or m["ip6"], port=port, user=m["user"], in_inventory=False)


@dataclass(slots=True)
class _Group:
    name: str
    hosts: list[str] = field(default_factory=list)  # in file order; add with add_host
    children: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    _host_set: set[str] = field(default_factory=set, repr=False)

    def add_host(self, host: str) -> None:
        """Append ``host`` unless it is already there (a set lookup: loading stays linear)."""
        if host not in self._host_set:
            self._host_set.add(host)
            self.hosts.append(host)


def expand_host_range(name: str) -> list[str]:
    """Expand Ansible host ranges: ``web[01:03]`` -> web01, web02, web03; ``db-[a:c]``; ``[0:10:5]``."""
    m = _RANGE.search(name)
    if not m:
        return [name]
    start, end, stride = m.group(1), m.group(2), int(m.group(3) or 1)
    head, tail = name[: m.start()], name[m.end() :]
    if start.isdigit() and end.isdigit():
        width = len(start) if start.startswith("0") and len(start) > 1 else 0
        values = [str(i).zfill(width) for i in range(int(start), int(end) + 1, stride)]
    elif len(start) == 1 and len(end) == 1 and start.isalpha() and end.isalpha():
        letters = string.ascii_letters
        values = [letters[i] for i in range(letters.index(start), letters.index(end) + 1, stride)]
    else:
        raise ValueError(f"bad host range [{m.group(0)[1:-1]}] in {name!r}")
    if not values:
        raise ValueError(f"empty host range in {name!r}")
    return [expanded for v in values for expanded in expand_host_range(head + v + tail)]


class Inventory:
    """Hosts and groups from an Ansible-style YAML inventory.

    ``Inventory.load(None)`` gives the inventory named by ``$RUNBOOK_INVENTORY``, or an
    empty one where only ``local`` and SSH destinations resolve.
    """

    def __init__(self, path: str | None = None, digest: str = "") -> None:
        self.path = path
        self.digest = digest  # sha256 hex of the file, "" without one
        self._groups: dict[str, _Group] = {"all": _Group("all")}
        self._host_vars: dict[str, dict[str, Any]] = {}  # insertion order = file order
        self._line: dict[str, int] = {}
        self.hosts: dict[str, Target] = {}

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None) -> Inventory:
        """Read an inventory file (``None``: ``$RUNBOOK_INVENTORY`` or empty).

        :raises UserError: unreadable file, bad YAML or structure (file and line named)
        """
        if path is None:
            path = os.environ.get("RUNBOOK_INVENTORY") or None
            if path is None:
                return cls()
        path = os.fspath(path)
        from runbook.targets import inventory_ini

        if os.path.isdir(path):
            return cls._from_ansible(path)
        try:
            raw = read_yaml_bytes(path, "inventory file")
            text = decode_yaml(raw, path)
        except FileNotFoundError:
            raise UserError(f"{path}: no such inventory file") from None
        except IsADirectoryError:
            raise UserError(f"{path}: is a directory, not an inventory file") from None
        except OSError as exc:
            raise UserError(f"{path}: cannot read inventory: {exc.strerror or exc}") from None
        except YAMLInputError as exc:
            raise UserError(f"{exc.where}: cannot read inventory: {exc.problem}") from None
        if inventory_ini.needs_ansible(path, text):
            return cls._from_ansible(path)
        return cls.from_text(text, path=path, digest=hashlib.sha256(raw).hexdigest())

    @classmethod
    def _from_ansible(cls, path: str) -> Inventory:
        from runbook.targets import inventory_ini

        data = inventory_ini.ansible_inventory_json(path)
        inv = cls(path, hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest())
        inventory_ini.load_ansible_json(inv, data)
        return inv

    @classmethod
    def from_text(cls, text: str, path: str = "<inventory>", digest: str | None = None) -> Inventory:
        """Parse inventory YAML given as text (``path`` only names it in errors)."""
        inv = cls(path, hashlib.sha256(text.encode()).hexdigest() if digest is None else digest)
        from runbook.targets import inventory_ini

        if inventory_ini.looks_like_ini(text):
            inventory_ini.load_ini(inv, text)
            return inv
        try:
            root = compose_yaml(text, path)
        except YAMLInputError as exc:
            raise UserError(f"{exc.where}: invalid inventory YAML: {exc.problem}") from None
        if root is None:
            inv._finish()
            return inv
        if not isinstance(root, yaml.MappingNode):
            raise UserError(f"{path}:{root.start_mark.line + 1}: inventory must be a YAML mapping of groups "
                            "(or an Ansible INI inventory)")
        for key_node, value_node in inv._pairs(root):
            name = inv._scalar(key_node, "group name")
            inv._parse_group(name, value_node, parent=None if name == "all" else "all")
        inv._finish()
        return inv

    def _err(self, node: yaml.Node, message: str) -> UserError:
        return UserError(f"{self.path}:{node.start_mark.line + 1}: {message}")

    def _pairs(self, node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
        try:
            yaml.constructor.SafeConstructor().flatten_mapping(node)  # merge keys (<<: *defaults)
        except yaml.YAMLError as exc:
            raise self._err(node, f"invalid inventory YAML: {getattr(exc, 'problem', None) or exc}") from None
        return list(node.value)

    def _scalar(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.value == "":
            raise self._err(node, f"{what} must be a non-empty string")
        return str(node.value)

    def _value(self, node: yaml.Node) -> Any:
        try:
            return construct_yaml(node, str(self.path))
        except YAMLInputError as exc:
            raise self._err(node, f"invalid inventory YAML: {exc.problem}") from None

    def _mapping_or_empty(self, node: yaml.Node, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return []
        if not isinstance(node, yaml.MappingNode):
            raise self._err(node, f"{what} must be a mapping")
        return self._pairs(node)

    def _parse_group(self, name: str, node: yaml.Node, parent: str | None) -> None:
        group = self._groups.setdefault(name, _Group(name))
        if name == "all" and parent is not None:
            raise self._err(node, "group 'all' cannot be a child of another group")
        if parent is not None and name not in self._groups[parent].children:
            self._groups[parent].children.append(name)
        for key_node, value_node in self._mapping_or_empty(node, f"group {name!r}"):
            key = self._scalar(key_node, "key")
            if key == "hosts":
                for host_node, vars_node in self._mapping_or_empty(value_node, f"hosts of group {name!r}"):
                    self._parse_host(group, host_node, vars_node)
            elif key == "children":
                for child_node, child_value in self._mapping_or_empty(value_node, f"children of group {name!r}"):
                    child = self._scalar(child_node, "group name")
                    if child == name:
                        raise self._err(child_node, f"group {name!r} cannot be its own child")
                    self._parse_group(child, child_value, parent=name)
            elif key == "vars":
                values = self._value(value_node)
                if values is not None and not isinstance(values, dict):
                    raise self._err(value_node, f"vars of group {name!r} must be a mapping")
                group.vars.update(values or {})
            else:
                expected = ", ".join(_GROUP_KEYS)
                raise self._err(key_node, f"group {name!r}: unexpected key {key!r} (expected {expected})")

    def _parse_host(self, group: _Group, host_node: yaml.Node, vars_node: yaml.Node) -> None:
        pattern = self._scalar(host_node, "host name")
        try:
            names = expand_host_range(pattern)
        except ValueError as exc:
            raise self._err(host_node, str(exc)) from None
        values = self._value(vars_node)
        if values is not None and not isinstance(values, dict):
            raise self._err(vars_node, f"host {pattern!r}: host variables must be a mapping")
        for host in names:
            if host in self._groups and host != "all":
                raise self._err(host_node, f"{host!r} is both a group and a host")
            self._host_vars.setdefault(host, {}).update(values or {})
            self._line.setdefault(host, host_node.start_mark.line + 1)
            group.add_host(host)

    def _finish(self) -> None:
        for host in self._host_vars:
            if host in self._groups:
                raise UserError(f"{self.path}:{self._line[host]}: {host!r} is both a group and a host")
        self._check_cycles()
        depth = self._depths()
        host_groups: dict[str, list[str]] = {host: [] for host in self._host_vars}
        for g in self._groups:  # each group's members once (was once per host: quadratic)
            if g != "all":
                for host in self._members(g):
                    if host in host_groups:
                        host_groups[host].append(g)
        for host, groups in host_groups.items():
            ordered = sorted(groups, key=lambda g: (depth[g], g))
            merged: dict[str, Any] = dict(self._groups["all"].vars)
            for g in ordered:
                merged.update(self._groups[g].vars)
            merged.update(self._host_vars[host])
            self.hosts[host] = self._target(host, merged, tuple(ordered))

    def _check_cycles(self) -> None:
        state: dict[str, int] = {}

        def visit(g: str, chain: list[str]) -> None:
            if state.get(g) == 1:
                raise UserError(f"{self.path}: group cycle: {' -> '.join(chain + [g])}")
            if state.get(g) == 2:
                return
            state[g] = 1
            for child in self._groups[g].children:
                visit(child, chain + [g])
            state[g] = 2

        for g in list(self._groups):
            visit(g, [])

    def _depths(self) -> dict[str, int]:
        depth = {g: 0 for g in self._groups}
        changed = True
        while changed:  # longest path from a root; acyclic, so this terminates
            changed = False
            for g, group in self._groups.items():
                for child in group.children:
                    if depth[child] < depth[g] + 1:
                        depth[child] = depth[g] + 1
                        changed = True
        return depth

    def _members(self, group: str) -> list[str]:
        """Hosts of a group: its own in file order, then its children's, deduplicated."""
        if group == "all":
            return list(self._host_vars)
        seen: dict[str, None] = {}
        stack_seen: set[str] = set()

        def walk(g: str) -> None:
            if g in stack_seen:
                return
            stack_seen.add(g)
            for h in self._groups[g].hosts:
                seen.setdefault(h, None)
            for child in self._groups[g].children:
                walk(child)

        walk(group)
        return list(seen)

    def _target(self, name: str, merged: dict[str, Any], groups: tuple[str, ...]) -> Target:
        where = f"{self.path}:{self._line.get(name, 0)}: host {name!r}"

        def var(*keys: str) -> Any:
            for key in keys:
                if merged.get(key) is not None:
                    value = merged[key]
                    if isinstance(value, str) and "{{" in value:
                        raise UserError(f"{where}: {key} uses a Jinja template; runbook does not evaluate templates")
                    return value
            return None

        connection = var("ansible_connection")
        local = connection == "local"
        if connection not in (None, "ssh", "smart", "paramiko", "local"):
            raise UserError(f"{where}: ansible_connection {connection!r} is not supported (ssh or local)")
        host = var("ansible_host", "ansible_ssh_host") or name
        port = var("ansible_port", "ansible_ssh_port")
        if port is not None:
            try:
                port = int(port)
            except (TypeError, ValueError):
                raise UserError(f"{where}: ansible_port {port!r} is not a number") from None
            if not 0 < port < 65536:
                raise UserError(f"{where}: ansible_port {port} is out of range")
        user = var("ansible_user", "ansible_ssh_user")
        key_file = var("ansible_ssh_private_key_file", "ansible_private_key_file")
        if key_file is not None:
            key_file = os.path.expanduser(str(key_file))
            if not os.path.isabs(key_file) and self.path and not self.path.startswith("<"):
                key_file = os.path.join(os.path.dirname(os.path.abspath(self.path)), key_file)
        return Target(
            name=name,
            host="localhost" if local and host == name else str(host),
            port=port,
            user=str(user) if user is not None else None,
            key_file=key_file,
            vars=MappingProxyType(dict(merged)),
            local=local,
            groups=groups,
        )

    # ----------------------------------------------------------------- queries

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Group name -> its hosts (children's included), in inventory order."""
        return {g: tuple(self._members(g)) for g in self._groups}

    def __contains__(self, name: str) -> bool:
        return name in self.hosts or name in self._groups

    def _where(self) -> str:
        return f"inventory {self.path}" if self.path else "the inventory (none loaded: use --inventory)"

    def resolve(self, pattern: str) -> list[Target]:
        """Hosts matching an Ansible host pattern, in inventory order, without duplicates.

        :raises UserError: naming the pattern (and the inventory file) when a term
            or the whole pattern matches nothing, or the pattern is malformed
        """
        text = (pattern or "").strip()
        if not text:
            raise UserError(f"empty host pattern ({self._where()})")
        positive: list[Target] = []
        has_positive = False
        intersect: list[list[Target]] = []
        exclude: list[list[Target]] = []
        for term in _split_pattern(text):
            op, body = (term[0], term[1:].strip()) if term[0] in "!&" else ("", term)
            if not body:
                raise UserError(f"host pattern {pattern!r}: {term!r} names nothing")
            matched = self._match_term(body, pattern)
            if op == "&":
                intersect.append(matched)
            elif op == "!":
                exclude.append(matched)
            else:
                has_positive = True
                if not matched:
                    raise UserError(f"host pattern {pattern!r}: {body!r} matches no host in {self._where()}{self._hint()}")
                positive.extend(matched)
        if not has_positive:  # only "!x" / "&x": start from all hosts, as Ansible does
            positive = list(self.hosts.values())
        result = _dedupe(positive)
        for group in intersect:
            names = {t.name for t in group}
            result = [t for t in result if t.name in names]
        for group in exclude:
            names = {t.name for t in group}
            result = [t for t in result if t.name not in names]
        if not result:
            raise UserError(f"host pattern {pattern!r} matches no host in {self._where()}{self._hint()}")
        return result

    def _hint(self) -> str:
        groups = [g for g in self._groups if g != "all"]
        if not groups and not self.hosts:
            return ""
        shown = ", ".join(groups[:12]) + (", ..." if len(groups) > 12 else "")
        return f" (groups: {shown})" if groups else f" ({len(self.hosts)} hosts)"

    def _match_term(self, term: str, pattern: str) -> list[Target]:
        subscript = None
        m = _SUBSCRIPT.match(term)
        if m and not term.startswith("~") and term not in self.hosts and term not in self._groups:
            base = m["base"]
            if m["start"] is None and m["end"] is None and not m["colon"]:
                raise UserError(f"host pattern {pattern!r}: empty subscript in {term!r}")
            subscript = (m["start"], m["colon"], m["end"])
            term = base
        targets = self._match_base(term, pattern, subscripted=subscript is not None)
        if subscript is None:
            return targets
        start_s, colon, end_s = subscript
        start = int(start_s) if start_s is not None else 0
        if not colon:
            try:
                return [targets[start]]
            except IndexError:
                raise UserError(
                    f"host pattern {pattern!r}: {term!r} has {len(targets)} host(s), no index {start} ({self._where()})"
                ) from None
        end = int(end_s) if end_s is not None else len(targets) - 1
        n = len(targets)
        start = start + n if start < 0 else start
        end = end + n if end < 0 else end
        return targets[start : end + 1]  # Ansible: the end is inclusive

    def _match_base(self, term: str, pattern: str, subscripted: bool) -> list[Target]:
        if term in ("all", "*"):
            return list(self.hosts.values())
        if term in self._groups:
            return [self.hosts[h] for h in self._members(term)]
        if term in self.hosts:
            return [self.hosts[term]]
        if term in LOCAL_NAMES:
            return [Target.local_machine()]
        if term.startswith(("[", "ssh://")) or "@" in term:
            try:
                return [Target.ssh_destination(term)]
            except ValueError:
                pass
        if term.startswith("~"):
            try:
                regex = re.compile(term[1:])
            except re.error as exc:
                raise UserError(f"host pattern {pattern!r}: bad regular expression {term[1:]!r}: {exc}") from None
            return self._names_matching(lambda name: bool(regex.match(name)))
        if any(c in term for c in "*?["):
            return self._names_matching(lambda name: fnmatch.fnmatchcase(name, term))
        if subscripted:
            raise UserError(f"host pattern {pattern!r}: {term!r} is not a group in {self._where()}{self._hint()}")
        try:
            return [Target.ssh_destination(term)]
        except ValueError:
            raise UserError(
                f"host pattern {pattern!r}: {term!r} is not an inventory host or group, nor an SSH destination "
                f"({self._where()}){self._non_ascii_note(term)}"
            ) from None

    def _non_ascii_note(self, term: str) -> str:
        """Which characters of ``term`` are not ASCII (a homoglyph such as Cyrillic 'а' looks
        like 'a'), and the inventory name it imitates when there is one."""
        note = non_ascii_note(term)
        if not note:
            return ""
        lookalike = term.translate(_LOOKALIKES)
        if lookalike != term and lookalike.isascii() and lookalike in self:
            note += f"; did you mean {lookalike!r}?"
        return note

    def _names_matching(self, predicate: Any) -> list[Target]:
        names: list[str] = []
        for g in self._groups:
            if g != "all" and predicate(g):
                names.extend(self._members(g))
        names.extend(h for h in self.hosts if predicate(h))
        order = {h: i for i, h in enumerate(self.hosts)}
        return [self.hosts[h] for h in sorted(set(names), key=order.__getitem__)]


# Letters that look like ASCII ones in most fonts (Cyrillic and Greek), for "did you mean".
_LOOKALIKES = str.maketrans(
    "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u0501\u051b\u051d\u0410\u0412\u0415\u041a"
    "\u041c\u041d\u041e\u0420\u0421\u0422\u0425\u03bf\u03b1\u03bd\u0391\u0392\u0395\u0396\u0397\u0399"
    "\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7\u2010\u2011\u2012\u2013\uff0d",
    "aeopcyxijsdqwABEKMHOPCTXoavABEZHIKMNOPTYX-----",
)


def non_ascii_note(text: str) -> str:
    """``"; not ASCII: 'а' (U+0430 CYRILLIC SMALL LETTER A) at position 10"`` for the
    non-ASCII characters of a host name or pattern (at most 5 named), else ``""``."""
    from runbook.sanitize.terminal_text import char_name, visible

    found = [(i, ch) for i, ch in enumerate(text) if not ch.isascii()]
    if not found:
        return ""
    named = ", ".join(f"{visible(ch, multiline=False)!r} ({char_name(ch)}) at position {i + 1}" for i, ch in found[:5])
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    return f"; not ASCII: {named}{more}"


def _split_pattern(text: str) -> list[str]:
    """Split on commas, and on ``:`` before ``!``/``&`` (Ansible's older separator), outside brackets."""
    terms: list[str] = []
    depth = 0
    current = ""
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        if depth == 0 and (ch == "," or (ch == ":" and text[i + 1 : i + 2] in ("!", "&"))):
            terms.append(current.strip())
            current = ""
            continue
        current += ch
    terms.append(current.strip())
    terms = [t for t in terms if t]
    if not terms:
        raise UserError(f"empty host pattern {text!r}")
    return terms


def _dedupe(targets: Iterable[Target]) -> list[Target]:
    seen: dict[str, Target] = {}
    for t in targets:
        seen.setdefault(t.name, t)
    return list(seen.values())
