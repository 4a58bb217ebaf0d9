"""Inventories people already have: Ansible INI files, and anything ``ansible-inventory`` reads.

:class:`runbook.targets.inventory.Inventory` reads Ansible's YAML inventories itself; this module
feeds it the two other kinds:

* an **INI inventory** (what most Ansible shops keep)::

      mail.example.com                        # before any section: in all

      [web]
      web[01:20].example.com  ansible_user=deploy
      db-1 ansible_host=10.0.0.5 ansible_port=2222

      [web:vars]
      http_port=8080

      [prod:children]
      web

  Groups, ``[group:vars]`` (values are strings, as in Ansible), ``[group:children]``,
  host ranges (``web[01:20]``, ``db-[a:c]``), ``host:port`` and inline host variables
  (read as Python literals when they are one -- ``2222``, ``True`` -- else strings, as in
  Ansible).  Hosts before any section belong to ``all``.  Errors name the file and line.

* **any other inventory source** (a dynamic inventory script, an inventory plugin
  configuration, a directory) through ``ansible-inventory -i SRC --list`` when
  ``ansible-inventory`` is on the PATH.  Its JSON has the variables already merged per
  host, so they become host variables.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

from runbook.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from runbook.targets.inventory import Inventory

_SECTION = re.compile(r"^\[([^\[\]:\s]+)(?::([^\[\]\s]+))?\]\s*$")
_HOST_PORT = re.compile(r"^(?P<host>[^\[\]:]+|.*\[[^\]]*\][^:]*):(?P<port>\d+)$")
_YAML_START = re.compile(r"^\s*(?:---|%YAML|(?P<q>[\"']?)[\w.-]+(?P=q):\s*(?:#.*)?$|(?P<r>[\"']?)[\w.-]+(?P=r):\s+\S)")
ANSIBLE_TIMEOUT_S = 60


def looks_like_ini(text: str) -> bool:
    """True when the first meaningful line is an INI section or a host line, not YAML."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if _SECTION.match(line):
            return True
        return not _YAML_START.match(raw) and not line.startswith(("{", "-"))
    return False


def needs_ansible(path: str, text: str | None) -> bool:
    """A source only ``ansible-inventory`` can read: a directory, an executable script, a plugin config."""
    if os.path.isdir(path):
        return True
    if os.path.isfile(path) and os.access(path, os.X_OK) and text is not None and text.startswith("#!"):
        return True
    return text is not None and bool(re.search(r"^plugin:\s*\S", text, re.M))


def load_ini(inv: Inventory, text: str) -> None:
    """Fill ``inv`` (empty, as made by ``Inventory(path, digest)``) from INI ``text``."""
    from runbook.targets.inventory import _Group, expand_host_range

    path = inv.path
    section, kind = "all", "hosts"  # hosts before any section: in all (the YAML reading's "hosts of all")
    declared: dict[str, int] = {}  # group -> line of its first section
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = _SECTION.match(line)
        if line.startswith("[") and not m:
            raise UserError(f"{path}:{number}: bad section header {line!r} (expected [group], [group:vars] or [group:children])")
        if m:
            section, kind = m.group(1), m.group(2) or "hosts"
            if kind not in ("hosts", "vars", "children"):
                raise UserError(f"{path}:{number}: unknown section type {kind!r} in {line!r} (vars or children)")
            if section == "all" and kind == "children":
                pass  # [all:children] is allowed: groups are children of all anyway
            group = inv._groups.setdefault(section, _Group(section))
            if section != "all" and section not in inv._groups["all"].children:
                inv._groups["all"].children.append(section)
            declared.setdefault(section, number)
            if section in inv._host_vars:
                raise UserError(f"{path}:{number}: {section!r} is both a group and a host")
            continue
        group = inv._groups.setdefault(section, _Group(section))
        if section != "all" and section not in inv._groups["all"].children:
            inv._groups["all"].children.append(section)
        if kind == "vars":
            key, eq, value = line.partition("=")
            if not eq or not key.strip():
                raise UserError(f"{path}:{number}: expected key=value in [{section}:vars], not {line!r}")
            group.vars[key.strip()] = _unquote(value.strip())
        elif kind == "children":
            child = line.split()[0]
            if child == section:
                raise UserError(f"{path}:{number}: group {section!r} cannot be its own child")
            if child in inv._host_vars:
                raise UserError(f"{path}:{number}: {child!r} is both a group and a host")
            inv._groups.setdefault(child, _Group(child))
            if child not in group.children:
                group.children.append(child)
        else:
            _host_line(inv, group, line, number, expand_host_range)
    inv._finish()


def _host_line(inv: Inventory, group: Any, line: str, number: int, expand: Any) -> None:
    path = inv.path
    try:
        words = shlex.split(line, comments=True, posix=True)
    except ValueError as exc:
        raise UserError(f"{path}:{number}: cannot read host line {line!r}: {exc}") from None
    if not words:
        return
    name, values = words[0], {}
    for word in words[1:]:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise UserError(f"{path}:{number}: host {name!r}: expected key=value, not {word!r}")
        values[key] = _literal(value)
    hp = _HOST_PORT.match(name)
    if hp and name.count(":") == 1:
        name = hp.group("host")
        values.setdefault("ansible_port", int(hp.group("port")))
    try:
        names = expand(name)
    except ValueError as exc:
        raise UserError(f"{path}:{number}: {exc}") from None
    for host in names:
        if host in inv._groups and host != "all":
            raise UserError(f"{path}:{number}: {host!r} is both a group and a host")
        inv._host_vars.setdefault(host, {}).update(values)
        inv._line.setdefault(host, number)
        group.add_host(host)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _literal(value: str) -> Any:
    """Inline host variables are Python literals when they are one (``2222``, ``True``), else strings."""
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return value
    return parsed if isinstance(parsed, (int, float, bool, str, list, dict)) else value


def ansible_inventory_json(path: str) -> dict[str, Any]:
    """``ansible-inventory -i PATH --list`` as data; UserError when it is missing or fails."""
    exe = shutil.which("ansible-inventory")
    if exe is None:
        raise UserError(f"{path}: this inventory (a directory, a script or a plugin configuration) is read with "
                        "`ansible-inventory`, which is not on the PATH")
    try:
        done = subprocess.run([exe, "-i", path, "--list"], capture_output=True, timeout=ANSIBLE_TIMEOUT_S,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise UserError(f"{path}: ansible-inventory did not finish within {ANSIBLE_TIMEOUT_S} s") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot run ansible-inventory: {exc.strerror or exc}") from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UserError(f"{path}: ansible-inventory failed: {why[-1] if why else 'exit ' + str(done.returncode)}")
    try:
        data = json.loads(done.stdout.decode("utf-8", "replace"))
    except ValueError as exc:
        raise UserError(f"{path}: ansible-inventory printed no JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: ansible-inventory printed {type(data).__name__}, not a mapping of groups")
    return data


def load_ansible_json(inv: Inventory, data: dict[str, Any]) -> None:
    """Fill ``inv`` from ``ansible-inventory --list`` JSON (groups, children, per-host variables)."""
    from runbook.targets.inventory import _Group

    meta: dict[str, Any] = data["_meta"] if isinstance(data.get("_meta"), dict) else {}
    hostvars: dict[str, Any] = meta["hostvars"] if isinstance(meta.get("hostvars"), dict) else {}
    for name, body in data.items():
        if name == "_meta" or not isinstance(body, dict):
            continue
        group = inv._groups.setdefault(name, _Group(name))
        if isinstance(body.get("vars"), dict):
            group.vars.update(body["vars"])
        for child in body.get("children") or []:
            child = str(child)
            inv._groups.setdefault(child, _Group(child))
            if child not in group.children and child != name:
                group.children.append(child)
        for host in body.get("hosts") or []:
            host = str(host)
            inv._host_vars.setdefault(host, {})
            group.add_host(host)
    for host, values in hostvars.items():
        if isinstance(values, dict):
            inv._host_vars.setdefault(str(host), {}).update(values)
    for g in list(inv._groups):
        if g != "all" and not any(g in other.children for other in inv._groups.values()):
            inv._groups["all"].children.append(g)
    inv._groups.pop("ungrouped", None) if not inv._groups.get("ungrouped", _Group("")).hosts else None
    for group in inv._groups.values():
        if "ungrouped" in group.children and "ungrouped" not in inv._groups:
            group.children.remove("ungrouped")
    inv._finish()
