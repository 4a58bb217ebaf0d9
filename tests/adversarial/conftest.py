"""The adversarial suite: each test spells out an attack and runs it against the real CLI
(a subprocess) and, where hosts are involved, the real OpenSSH fleet on loopback.

The fleet fixtures are those of ``tests/integration`` (``ssh_fleet``: shared, 3 hosts;
``make_fleet``: a private fleet per test).
"""

from __future__ import annotations

from tests.integration.conftest import make_fleet, ssh_fleet  # noqa: F401  (fixtures)
