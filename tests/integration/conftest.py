"""Fixtures: a real OpenSSH fleet on loopback (see ``sshd.py``).

``ssh_fleet``: session-scoped, 3 hosts (node-1..node-3), shared by every test that
needs plain SSH; tests must not stop it or change its keys.  ``make_fleet``: a
factory for tests that need their own fleet (other sizes, tests that break
things); stopped at the end of the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest

from tests.integration.sshd import SSHFleet
from tests.tools import require


@pytest.fixture(scope="session")
def ssh_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHFleet]:
    require("sshd")
    require("ssh-keygen")
    fleet = SSHFleet.start(tmp_path_factory.mktemp("fleet"), 3)
    try:
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture
def make_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., SSHFleet]]:
    require("sshd")
    require("ssh-keygen")
    fleets: list[SSHFleet] = []

    def make(hosts: int | Sequence[str] = 2, base: int = 20) -> SSHFleet:
        fleet = SSHFleet.start(tmp_path_factory.mktemp("fleet"), hosts, base=base + len(fleets))
        fleets.append(fleet)
        return fleet

    try:
        yield make
    finally:
        for fleet in fleets:
            fleet.stop()
