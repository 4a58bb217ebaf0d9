"""The adversarial suite: attacks spelled out, against the real CLI (a subprocess), the real
OpenSSH fleet on loopback and the TUI through Pilot.  Fixtures are the integration and TUI
suites' own."""

from __future__ import annotations

from tests.integration.conftest import make_fleet, ssh_fleet  # noqa: F401  (fixtures)
from tests.tui.conftest import frozen, make_app, operator_env, session_root, workdir  # noqa: F401
