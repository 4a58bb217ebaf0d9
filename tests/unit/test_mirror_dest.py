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


BOOK = """# Doc

### Task T-1: One

#### Steps

1. **Say**

```bash
echo one
```
"""


def test_the_mirror_from_front_matter_or_bindings_file(tmp_path) -> None:
    from runbook.errors import InputError
    from runbook.parse.parser import parse_file

    path = tmp_path / "doc.md"
    path.write_text("---\ntitle: T\nmirror: backup-jump:/srv/front\n---\n" + BOOK)
    (tmp_path / "doc.targets.yaml").write_text("T-1: local\nmirror: ops@backup-jump:/srv/bound\n")
    assert parse_file(str(path)).mirror == "backup-jump:/srv/front"  # the document's own first
    path.write_text(BOOK)
    assert parse_file(str(path)).mirror == "ops@backup-jump:/srv/bound"
    (tmp_path / "doc.targets.yaml").write_text("T-1: local\nmirror: [a, b]\n")
    with pytest.raises(InputError, match=r"doc.targets.yaml:2: mirror: expected HOST:PATH"):
        parse_file(str(path))
    (tmp_path / "doc.targets.yaml").unlink()
    path.write_text("---\ntitle: T\nmirror: just-a-host\n---\n" + BOOK)
    rb = parse_file(str(path))
    assert rb.mirror == ""
    assert [(d.line, d.severity, d.code) for d in rb.diagnostics if d.code == "mirror"] == [(3, "error", "mirror")]
    assert parse_file(str(tmp_path / "doc.md")).mirror == "" and MirrorDest.parse("a:/b").path == "/b"


def test_a_bad_front_matter_approval_default_is_reported_too(tmp_path) -> None:
    """Found beside the mirror's: the document-level values read while the runbook is frozen must
    be read before its diagnostics are collected, or their warnings are lost."""
    from runbook.parse.parser import parse_file

    path = tmp_path / "doc.md"
    path.write_text("---\ntitle: T\nrunbook: {approval: maybe}\n---\n" + BOOK)
    assert any("approval must be required or none" in d.message for d in parse_file(str(path)).diagnostics)


def test_what_the_operator_is_told_at_close() -> None:
    from sessions.team.mirror import change_text

    done = MirrorStatus("b:/m/S", MirrorState.STOPPED, 12, local_seq=12)
    assert change_text(done) == "mirror b:/m/S: all 12 records acknowledged"
    never = MirrorStatus("b:/m/S", MirrorState.STOPPED, 0, local_seq=9)
    assert change_text(never) == ("warning: mirror b:/m/S: 9 record(s) not acknowledged when the session closed "
                                  "(the mirror has none of them)")
