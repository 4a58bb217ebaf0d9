"""Ansible INI inventories, and any inventory through ``ansible-inventory --list``."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from runbook.errors import UserError
from runbook.targets.inventory import Inventory

INI = """\
# hosts before any section are ungrouped
bastion.example.com ansible_port=2200

[masters]
master-[01:03] ansible_user=admin
master-04:2222

[workers]
worker[1:2].dc ansible_host=127.0.0.1 rack="r 1" gpu=True

[masters:vars]
ansible_ssh_private_key_file=/keys/masters
role = control-plane

[k8s:children]
masters
workers

[k8s:vars]
ansible_user=ops
cluster='prod'

[all:vars]
env=prod
"""

YAML = """\
all:
  vars: {env: prod}
  hosts:
    bastion.example.com: {ansible_port: 2200}
  children:
    k8s:
      vars: {ansible_user: ops, cluster: prod}
      children:
        masters:
          hosts:
            master-[01:03]: {ansible_user: admin}
            master-04: {ansible_port: 2222}
          vars: {ansible_ssh_private_key_file: /keys/masters, role: control-plane}
        workers:
          hosts:
            worker[1:2].dc: {ansible_host: 127.0.0.1, rack: r 1, gpu: true}
"""


def _load(tmp_path: Path, name: str, text: str) -> Inventory:
    path = tmp_path / name
    path.write_text(text)
    return Inventory.load(path)


def _picture(inv: Inventory) -> dict:
    return {
        name: (t.host, t.port, t.user, t.key_file, t.local, dict(t.vars), tuple(sorted(t.groups)))
        for name, t in inv.hosts.items()
    }


def test_ini_inventory_gives_the_same_hosts_and_variables_as_its_yaml_twin(tmp_path: Path) -> None:
    ini = _load(tmp_path, "hosts.ini", INI)
    yml = _load(tmp_path, "hosts.yaml", YAML)
    assert sorted(ini.hosts) == sorted(yml.hosts) == sorted(
        ["bastion.example.com", "master-01", "master-02", "master-03", "master-04", "worker1.dc", "worker2.dc"])
    assert _picture(ini) == _picture(yml)
    for pattern in ("all", "k8s", "masters", "workers", "masters[1:]", "k8s:!workers", "~worker\\d"):
        assert [t.name for t in ini.resolve(pattern)] == [t.name for t in yml.resolve(pattern)], pattern
    m1 = ini.hosts["master-01"]
    assert (m1.user, m1.key_file, m1.vars["role"], m1.vars["env"], m1.vars["cluster"]) == (
        "admin", "/keys/masters", "control-plane", "prod", "prod")  # host vars beat group vars, children beat parents
    assert ini.hosts["master-04"].port == 2222 and ini.hosts["master-04"].user == "ops"
    w = ini.hosts["worker2.dc"]
    assert (w.host, w.vars["rack"], w.vars["gpu"]) == ("127.0.0.1", "r 1", True)  # inline vars are literals


def test_yaml_is_not_mistaken_for_ini_nor_ini_for_yaml() -> None:
    from runbook.targets.inventory_ini import looks_like_ini

    for yaml_text in ("all:\n  hosts: {}\n", '"all":\n  hosts: {}\n', "---\nall:\n", "# c\nweb: {hosts: {a: }}\n"):
        assert not looks_like_ini(yaml_text), yaml_text
    for ini_text in ("[web]\nw1\n", "w1 ansible_host=127.0.0.1\n", "; c\nw1:2222\n"):
        assert looks_like_ini(ini_text), ini_text


def test_ini_errors_name_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        _load(tmp_path, "hosts", "[web]\nweb1\n[web:children]\nweb1\n")
    assert "hosts:4" in str(err.value) and "both a group and a host" in str(err.value)
    with pytest.raises(UserError) as err:
        _load(tmp_path, "hosts2", "[a:children]\nb\n[b:children]\na\n")
    assert "cycle" in str(err.value)
    with pytest.raises(UserError) as err:
        _load(tmp_path, "hosts3", "[web]\nweb1 ansible_port='unterminated\n")
    assert "hosts3:2" in str(err.value)


def _fake_ansible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: dict, rc: int = 0) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "ansible-inventory"
    out = tmp_path / "payload.json"
    out.write_text(json.dumps(payload))
    exe.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/argv\ncat {out}\n" + (f"echo boom >&2\nexit {rc}\n" if rc else ""))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    return exe


def test_dynamic_inventory_is_read_through_ansible_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = {
        "_meta": {"hostvars": {"db-1": {"ansible_host": "127.0.0.2", "ansible_port": 2201, "tier": "db"},
                               "web-1": {"ansible_user": "deploy"}}},
        "all": {"children": ["ungrouped", "prod"]},
        "prod": {"children": ["db", "web"]},
        "db": {"hosts": ["db-1"]},
        "web": {"hosts": ["web-1"]},
    }
    _fake_ansible(tmp_path, monkeypatch, payload)
    script = tmp_path / "inventory.py"
    script.write_text("#!/usr/bin/env python3\nprint('{}')\n")
    script.chmod(0o755)
    inv = Inventory.load(script)
    assert (tmp_path / "argv").read_text().split() == ["-i", str(script), "--list"]
    assert [t.name for t in inv.resolve("prod")] == ["db-1", "web-1"]
    db = inv.hosts["db-1"]
    assert (db.host, db.port, db.vars["tier"], inv.hosts["web-1"].user) == ("127.0.0.2", 2201, "db", "deploy")
    plugin = tmp_path / "aws_ec2.yaml"
    plugin.write_text("plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n")
    assert sorted(Inventory.load(plugin).hosts) == ["db-1", "web-1"]


def test_ansible_inventory_failure_or_absence_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "inventory.sh"
    script.write_text("#!/bin/sh\necho '{}'\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match=r"ansible-inventory.*not on the PATH"):
        Inventory.load(script)
    _fake_ansible(tmp_path, monkeypatch, {}, rc=3)
    with pytest.raises(UserError, match="ansible-inventory failed: boom"):
        Inventory.load(script)
