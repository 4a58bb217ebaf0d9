"""``--mirror DEST`` and ``--from DEST/ID``: what a destination is, and clear refusals."""

from __future__ import annotations

import pytest

from runbook.errors import UserError
from sessions.team.mirror import MirrorDest, MirrorState, MirrorStatus, split_from


@pytest.mark.parametrize(("text", "host", "user", "port", "path"), [
    ("backup-jump:/var/lib/runbook/mirror", "backup-jump", None, None, "/var/lib/runbook/mirror"),
    ("ops@backup-jump:/srv/mirror/", "backup-jump", "ops", None, "/srv/mirror"),
    ("backup-jump:mirror", "backup-jump", None, None, "mirror"),
    ("ssh://ops@10.0.0.7:2222/srv/mirror", "10.0.0.7", "ops", 2222, "/srv/mirror"),
    ("[::1]:/srv/mirror", "::1", None, None, "/srv/mirror"),
])
def test_a_destination_is_host_and_path(text: str, host: str, user: str | None, port: int | None, path: str) -> None:
    dest = MirrorDest.parse(text)
    assert (dest.target.host, dest.target.user, dest.target.port, dest.path) == (host, user, port, path)
    assert dest.session_path("S1") == f"{path}/S1"


@pytest.mark.parametrize("text", ["backup-jump", "backup-jump:", ":/srv", "", "a:b\nc"])
def test_a_destination_without_host_or_path_is_a_usage_error(text: str) -> None:
    with pytest.raises(UserError, match="expected HOST:PATH") as exc:
        MirrorDest.parse(text)
    assert exc.value.exit_code == 2


def test_from_names_the_session_in_its_path_or_beside_it() -> None:
    dest, sid = split_from("backup-jump:/srv/mirror/20261127T043216Z-3f9a", None)
    assert (dest.path, sid, dest.shown(sid)) == ("/srv/mirror", "20261127T043216Z-3f9a",
                                                 "backup-jump:/srv/mirror/20261127T043216Z-3f9a")
    dest, sid = split_from("backup-jump:/srv/mirror", "20261127T043216Z-3f9a")
    assert (dest.path, sid) == ("/srv/mirror", "20261127T043216Z-3f9a")
    dest, sid = split_from("backup-jump:20261127T043216Z-3f9a", None)  # in the remote home
    assert (dest.path, sid) == (".", "20261127T043216Z-3f9a")
    with pytest.raises(UserError, match="name the session"):
        split_from("backup-jump:/srv/mirror/..", None)


def test_the_header_says_the_head_and_the_lag_in_words() -> None:
    st = MirrorStatus("b:/m/S", MirrorState.STARTED, acked_seq=1240, local_seq=1240)
    assert st.text() == "mirror ✔ 1240" and st.lag == 0
    assert MirrorStatus("b:/m/S", MirrorState.RESTORED, 1234, local_seq=1240).text() == "mirror ⚠ 1234 (6 behind)"
    assert MirrorStatus("b:/m/S", MirrorState.LOST, 1234, local_seq=1240).text() == "mirror ✘ lost at 1234 (6 behind)"
