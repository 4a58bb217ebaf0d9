"""Real external tools the tests need.  A missing one is a failure, never a skip:
the README's test command installs them (DEVELOPERS.md: under CI=true a missing
sshd, ssh-keygen or tmux is a failure)."""

from __future__ import annotations

import os
import shutil

import pytest

_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")


def require(tool: str) -> str:
    """Return the absolute path of ``tool`` or fail the test naming what to install."""
    path = shutil.which(tool) or next(
        (os.path.join(d, tool) for d in _SBIN if os.access(os.path.join(d, tool), os.X_OK)), None
    )
    if path is None:
        pytest.fail(f"{tool} not found: run the README's test command (it installs it)", pytrace=False)
    return path
