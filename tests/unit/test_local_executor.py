"""LocalExecutor against real processes: streaming, results, PTY, timeouts, detached, uploads."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import secrets
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from runbook.errors import UserError
from runbook.sanitize.redaction import Redactor
from runbook.targets.inventory import Target
from runbook.transport.executor import RunOptions, needs_pty, pty_reason, script_payload
from runbook.transport.local import LocalExecutor
from tests.output_capture import GUARD, Output, processes

LOCAL = Target.local_machine()


async def gone(marker: str) -> bool:
    for _ in range(100):
        if marker not in processes():
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.fixture
def ex(tmp_path: Path) -> LocalExecutor:
    return LocalExecutor(spool_dir=str(tmp_path / "spool"), drain=0.5, kill_grace=1.0)


async def test_streams_stdout_and_stderr_apart_as_they_arrive(ex: LocalExecutor, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    out = Output()
    script = f"echo first; echo oops >&2; i=0; while [ ! -e {gate} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; " \
             f"[ -e {gate} ] || exit 9; echo second"
    run = asyncio.ensure_future(ex.run(LOCAL, script, out, RunOptions()))
    await out.wait_for("first")  # arrives while the script still runs: it waits for the gate
    assert not run.done()
    gate.touch()
    result = await asyncio.wait_for(run, GUARD)
    assert (result.outcome, result.exit_status, result.host) == ("succeeded", 0, "local")
    assert out.text("stdout") == "first\nsecond\n"
    assert out.text("stderr") == "oops\n"


async def test_exit_status_and_signal(ex: LocalExecutor) -> None:
    result = await ex.run(LOCAL, "echo x; exit 7", Output(), RunOptions())
    assert (result.outcome, result.exit_status, result.error) == ("failed", 7, "exit status 7")
    result = await ex.run(LOCAL, "kill -TERM $$", Output(), RunOptions())
    assert (result.outcome, result.exit_status, result.exit_signal) == ("failed", None, "TERM")


async def test_commands_reading_stdin_cannot_swallow_the_script(ex: LocalExecutor) -> None:
    out = Output()
    result = await ex.run(LOCAL, "cat\nread x || echo no-input\necho after", out, RunOptions())
    assert result.outcome == "succeeded"
    assert out.text() == "no-input\nafter\n"


async def test_env_is_exported_and_secrets_redacted(ex: LocalExecutor) -> None:
    token = "tok-" + secrets.token_hex(8)
    out = Output()
    opts = RunOptions(env={"API_TOKEN": token, "QUOTED": "it's \"fine\""}, redactor=Redactor([token]))
    result = await ex.run(LOCAL, 'echo "t=$API_TOKEN"; echo "$QUOTED"; echo "$API_TOKEN" >&2', out, opts)
    assert result.outcome == "succeeded"
    assert out.text("stdout") == "t=***\nit's \"fine\"\n"
    assert out.text("stderr") == "***\n"
    assert token not in out.text()


def test_env_names_are_checked() -> None:
    with pytest.raises(ValueError):
        script_payload("true", {"BAD-NAME": "x"})


async def test_timeout_kills_the_process_group(ex: LocalExecutor) -> None:
    marker = "sleep 31.4159"
    result = await asyncio.wait_for(ex.run(LOCAL, f"{marker} & {marker}", Output(), RunOptions(timeout=0.5)), GUARD)
    assert result.outcome == "timeout" and "timed out after 0.5 s" in result.error
    assert await gone(marker)


async def test_cancel_and_interrupt(ex: LocalExecutor) -> None:
    out = Output()
    run = asyncio.ensure_future(ex.run(LOCAL, "echo ready; sleep 32.1", out, RunOptions()))
    await out.wait_for("ready")
    assert ex.running_hosts() == ["local"]
    await ex.cancel("local")
    result = await asyncio.wait_for(run, GUARD)
    assert result.outcome == "cancelled" and result.exit_signal == "INT"
    assert await gone("sleep 32.1")
    assert ex.running_hosts() == []

    out = Output()
    run = asyncio.ensure_future(ex.run(LOCAL, "echo ready; sleep 32.2", out, RunOptions()))
    await out.wait_for("ready")
    await ex.signal("local", "INT")  # Ctrl-C
    result = await asyncio.wait_for(run, GUARD)
    assert result.outcome == "cancelled" and "interrupted" in result.error


async def test_abandoning_a_run_leaves_no_unretrieved_exception(ex: LocalExecutor) -> None:
    """Cancelling the run coroutine (the TUI quitting mid-step) must not leave a cancelled
    output future for the garbage collector to report as "exception was never retrieved"."""
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        out = Output()
        run = asyncio.ensure_future(ex.run(LOCAL, "echo ready; exec sleep 32.3", out, RunOptions()))
        await out.wait_for("ready")
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        for _ in range(5):
            await asyncio.sleep(0.01)
        del run
        gc.collect()
        assert [c.get("message") for c in reported] == []
    finally:
        loop.set_exception_handler(None)
        subprocess.run(["pkill", "-f", "sleep 32.3"], check=False)


async def test_pty_with_operator_input_and_ctrl_c(ex: LocalExecutor) -> None:
    out = Output()
    run = asyncio.ensure_future(ex.run(LOCAL, "read -p 'name? ' x; echo got:$x; tty", out, RunOptions(pty=True)))
    await out.wait_for("name? ")
    await ex.write_stdin("local", b"bob\n")
    result = await asyncio.wait_for(run, GUARD)
    assert result.outcome == "succeeded"
    assert {s for _, s, _ in out.chunks} == {"pty"}
    assert "got:bob" in out.text() and "/dev/pts/" in out.text()

    out = Output()
    run = asyncio.ensure_future(ex.run(LOCAL, "echo ready; sleep 33.3", out, RunOptions(pty=True)))
    await out.wait_for("ready")
    await ex.signal("local", "INT")
    result = await asyncio.wait_for(run, GUARD)
    assert result.outcome == "cancelled"
    assert "^C" in out.text()


async def test_input_without_a_pty_is_refused(ex: LocalExecutor) -> None:
    with pytest.raises(UserError, match="local"):
        await ex.write_stdin("local", b"x\n")
    out = Output()
    run = asyncio.ensure_future(ex.run(LOCAL, "echo ready; sleep 1", out, RunOptions()))
    await out.wait_for("ready")
    with pytest.raises(UserError, match="no step with a terminal"):
        await ex.write_stdin("local", b"x\n")
    await asyncio.wait_for(run, GUARD)


async def test_background_child_holding_the_output_does_not_hang_the_run(ex: LocalExecutor) -> None:
    out = Output()
    result = await asyncio.wait_for(ex.run(LOCAL, "sleep 34.5 & echo $!", out, RunOptions()), GUARD)
    assert result.outcome == "succeeded"
    os.kill(int(out.text()), signal.SIGKILL)


async def test_secret_in_the_script_never_reaches_argv(ex: LocalExecutor) -> None:
    secret = "pw-" + secrets.token_hex(10)
    for options in (RunOptions(), RunOptions(pty=True), RunOptions(detached=True)):
        out = Output()
        script = f"PW='{secret}'; echo \"pw=$PW\"; sleep 1.5; echo done"
        run = asyncio.ensure_future(ex.run(LOCAL, script, out, RunOptions(
            pty=options.pty, detached=options.detached, redactor=Redactor([secret]))))
        while not run.done():
            assert secret not in processes()
            await asyncio.sleep(0.05)
        result = run.result()
        assert result.outcome == "succeeded", (options, result)
        assert "pw=***" in out.text() and secret not in out.text()


async def test_detached_run_and_reattach_from_offsets(ex: LocalExecutor, tmp_path: Path) -> None:
    out = Output()
    result = await asyncio.wait_for(
        ex.run(LOCAL, "echo one; echo err1 >&2; sleep 0.3; echo two; exit 3", out,
               RunOptions(detached=True, detached_id="local-det-1")), GUARD)
    assert (result.outcome, result.exit_status, result.detached_id) == ("failed", 3, "local-det-1")
    assert out.text("stdout") == "one\ntwo\n" and out.text("stderr") == "err1\n"
    spool = tmp_path / "spool" / "local-det-1"
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    assert not (spool / "script").exists()  # the script (and its secrets) is gone
    assert (spool / "rc").read_text().strip() == "3"

    again = Output()
    result = await ex.reattach(LOCAL, "local-det-1", again, offset=4, err_offset=5)
    assert (result.outcome, result.exit_status) == ("failed", 3)
    assert again.text("stdout") == "two\n" and again.text("stderr") == ""

    result = await ex.reattach(LOCAL, "no-such-run", Output())
    assert result.outcome == "unknown" and "no spool" in result.error
    with pytest.raises(ValueError):
        await ex.reattach(LOCAL, "../etc", Output())


async def test_detached_follow_without_gnu_tail(tmp_path: Path) -> None:
    from runbook.transport import detached
    from runbook.transport.local import _LocalTransport

    spool = str(tmp_path / "spool")
    await detached.start(_LocalTransport(), spool, "poll-1", script_payload("echo a; echo b >&2; sleep 0.5; echo c"))
    follow = detached.follow_command(spool, "poll-1", out_offset=2, use_tail=False)
    proc = await asyncio.create_subprocess_exec("/bin/sh", "-c", follow, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), GUARD)
    assert (out, err) == (b"c\n", b"b\n")
    state = await detached.status(_LocalTransport(), spool, "poll-1")
    assert (state.state, state.rc) == ("rc", 0)


async def test_detached_timeout_and_cancel(ex: LocalExecutor) -> None:
    result = await asyncio.wait_for(
        ex.run(LOCAL, "sleep 35.1", Output(), RunOptions(detached=True, timeout=0.5)), GUARD)
    assert result.outcome == "timeout" and result.detached_id
    assert await gone("sleep 35.1")
    out = Output()
    run = asyncio.ensure_future(ex.run(LOCAL, "echo ready; sleep 35.2", out, RunOptions(detached=True)))
    await out.wait_for("ready")
    await ex.cancel("local")
    result = await asyncio.wait_for(run, GUARD)
    assert result.outcome == "cancelled"
    assert await gone("sleep 35.2")


async def test_upload_is_atomic_with_mode(ex: LocalExecutor, tmp_path: Path) -> None:
    target = tmp_path / "conf" / "app.yaml"
    target.parent.mkdir()
    target.write_text("old\n")
    inode = target.stat().st_ino
    digest = await ex.upload(LOCAL, str(target), b"new: 1\n", 0o640)
    assert digest == hashlib.sha256(b"new: 1\n").hexdigest()
    assert target.read_bytes() == b"new: 1\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.stat().st_ino != inode  # replaced by rename, never rewritten in place
    assert os.listdir(target.parent) == ["app.yaml"]
    old_umask = os.umask(0o000)
    try:
        await ex.upload(LOCAL, str(tmp_path / "conf" / "secret.key"), b"k")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "conf" / "secret.key").stat().st_mode) == 0o600
    with pytest.raises(UserError, match=r"local: cannot write .*/nope/x: no such directory"):
        await ex.upload(LOCAL, str(tmp_path / "nope" / "x"), b"x")


@pytest.mark.parametrize(
    "script, reason",
    [
        ("sudo kubeadm init --config x.yaml", "sudo may prompt"),
        ("kubectl exec -it etcd-0 -- sh", "-it"),
        ("docker run --rm -ti alpine", "-it"),
        ("kubectl exec -i -t pod -- sh", "-i -t"),
        ("podman run --interactive --tty x", "-i -t"),
        ("read -p 'name? ' x; echo got:$x", "read prompts"),
        ("if true; then\n  sudo systemctl restart kubelet\nfi", "sudo"),
        ("echo pw | sudo -S true", None),
        ("sudo -n systemctl restart kubelet", None),
        ("sudo -u etcd -n etcdctl member list", None),
        ("sudo -n docker exec -it c sh", "-it"),
        ("ls -l | grep -i tmp", None),
        ("# sudo reboot\necho 'sudo is mentioned'", None),
        ("while read line; do echo $line; done < f", None),
        ("vi /etc/hosts", "interactive"),
    ],
)
def test_needs_pty(script: str, reason: str | None) -> None:
    assert needs_pty(script) is (reason is not None)
    if reason:
        assert reason in (pty_reason(script) or "")
