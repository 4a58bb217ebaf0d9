"""Four-eyes approval (sessions.team.approval) against the real OpenSSH ``ssh-keygen``: keys made
by it, signatures made by ``ssh-keygen -Y sign`` (what ``runbook approve`` writes is the same),
verdicts checked with ``ssh-keygen -Y find-principals`` / ``-Y verify``.  Under CI a missing
ssh-keygen fails (tests.tools.require)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest

from runbook.errors import UserError
from runbook.model import Approval
from runbook.parse.parser import parse_file
from runbook.targets.inventory import Inventory
from sessions.engine.engine import Engine
from sessions.engine.session import Session
from sessions.journal import events as ev
from sessions.team.approval import NAMESPACE, Approvals, ApprovalStatus, requires_approval, status
from tests.tools import require

BOOK = """# Approvals

## Phase 1: Change

### CHG-1: Restart the database
- **Risk Level**: **CRITICAL**

#### Steps
1. **Restart**
   <!-- runbook: target=db -->
   ```bash
   echo restarting {marker}
   ```

### CHG-2: Look around
- **Risk Level**: LOW

<!-- runbook: approval=required -->

#### Steps
1. **Look**
   <!-- runbook: target=local -->
   ```bash
   echo looking
   ```

### CHG-3: Also critical, exempt
- **Risk Level**: CRITICAL

<!-- runbook: approval=none -->

#### Steps
1. **Nothing**
   <!-- runbook: target=local -->
   ```bash
   true
   ```
"""

INVENTORY = """all:
  hosts:
    db-1: {ansible_host: 127.0.0.1}
    db-2: {ansible_host: 127.0.0.1}
  children:
    db:
      hosts:
        db-1:
"""


def keygen(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([require("ssh-keygen"), *args], capture_output=True, input=input, timeout=60, check=False)


def make_key(path: Path, comment: str) -> Path:
    assert keygen("-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)).returncode == 0
    return path


def sign(key: Path, message_file: Path) -> bytes:
    """The stock tool's approval signature (``runbook approve`` writes the same kind of file)."""
    Path(str(message_file) + ".sig").unlink(missing_ok=True)  # ssh-keygen keeps an existing one
    done = keygen("-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(message_file))
    assert done.returncode == 0, done.stderr
    return Path(str(message_file) + ".sig").read_bytes()


class World:
    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp
        home = tmp / "home"
        (home / ".ssh").mkdir(parents=True)
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
        monkeypatch.delenv("RUNBOOK_SIGNING_KEY", raising=False)
        self.operator_key = make_key(home / ".ssh" / "id_ed25519", "operator")
        self.alice = make_key(tmp / "alice", "alice")
        self.mallory = make_key(tmp / "mallory", "mallory")
        self.approvers = tmp / "approvers"
        lines = [f"alice@example {' '.join(Path(f'{self.alice}.pub').read_text().split()[:2])}",
                 # the operator is an approver too (a team's file): still never for their own session
                 f"operator@example {' '.join(Path(f'{self.operator_key}.pub').read_text().split()[:2])}"]
        self.approvers.write_text("\n".join(lines) + "\n")
        self.book = tmp / "book.md"
        self.book.write_text(BOOK.format(marker="v1"))
        self.inventory_path = tmp / "inventory.yml"
        self.inventory_path.write_text(INVENTORY)
        self.inventory = Inventory.load(str(self.inventory_path))
        self.session = Session.create(parse_file(str(self.book)), root=tmp / "sessions")
        self.engine = Engine(self.session, self.inventory)
        self.approvals = Approvals(self.session, lambda task, n: self.engine.plan(task, n))
        assert self.approvals.set_approvers(str(self.approvers))

    def request(self, task: str = "CHG-1") -> Path:
        _request, path = self.approvals.request(task)
        return path

    def close(self) -> None:
        asyncio.run(self.engine.close())
        self.session.close(reason="test")


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    w = World(tmp_path, monkeypatch)
    yield w
    if not w.session.state.closed:
        w.close()


def test_which_tasks_need_an_approval(world: World) -> None:
    rb, state = world.session.runbook, world.session.state
    assert rb is not None
    assert rb.task("CHG-2").approval is Approval.REQUIRED and rb.task("CHG-3").approval is Approval.NONE
    assert requires_approval(rb, "CHG-1", state)  # CRITICAL, and the session has approvers
    assert requires_approval(rb, "CHG-2", state)  # approval=required, whatever its risk
    assert not requires_approval(rb, "CHG-3", state)  # approval=none
    assert [g.kind for g in world.engine.plan("CHG-1", 1).guards] == ["risk", "approval"]  # the approval last
    assert [g.kind for g in world.engine.plan("CHG-3", 1).guards] == ["risk"]


def test_approver_signature_is_granted_and_the_step_runs_only_then(world: World) -> None:
    path = world.request()
    request = json.loads(path.read_text())
    assert request["task"] == "CHG-1" and request["session"] == world.session.id
    assert request["runbook_sha256"] == world.session.runbook.sha256  # type: ignore[union-attr]
    assert request["plan"] == [{"step": 1, "title": "Restart", "hosts": ["db-1"], "mode": "parallel",
                                "script": "echo restarting v1\n"}]
    fp_operator = keygen("-l", "-f", f"{world.operator_key}.pub").stdout.split()[1].decode()
    assert fp_operator in request["operator_keys"]
    world.session.pass_guard("risk", "CHG-1", detail="confirmed")
    with pytest.raises(UserError, match="unresolved guards: approval"):  # the engine refuses: nothing runs
        asyncio.run(world.engine.run_step("CHG-1", 1))
    assert not world.session.state.runs
    assert status(world.session.state, world.session.runbook, "CHG-1")[0] is ApprovalStatus.REQUESTED  # type: ignore[arg-type]

    verdict = world.approvals.offer("CHG-1", sign(world.alice, path), "alice.sig")
    assert verdict.ok, verdict.reason
    assert verdict.principal == "alice@example"
    assert world.engine.plan("CHG-1", 1).guards == ()
    assert status(world.session.state, world.session.runbook, "CHG-1")[0] is ApprovalStatus.GRANTED  # type: ignore[arg-type]
    [granted] = [a for a in world.session.state.approvals if isinstance(a, ev.ApprovalGranted)]
    assert granted.principal == "alice@example" and granted.key_fingerprint.startswith("SHA256:")
    assert granted.message == path.read_text()


def test_journaled_approval_verifies_with_stock_ssh_keygen(world: World, tmp_path: Path) -> None:
    path = world.request()
    assert world.approvals.offer("CHG-1", sign(world.alice, path), "alice.sig").ok
    journal = world.session.journal.path
    world.close()
    events = [json.loads(line)["event"] for line in Path(journal).read_text().splitlines()]
    [granted] = [e for e in events if e["type"] == "approval_granted"]
    [approvers] = [e for e in events if e["type"] == "approvers_set"]
    (tmp_path / "msg").write_text(granted["message"])
    (tmp_path / "msg.sig").write_text(granted["signature"])
    (tmp_path / "allowed").write_text(approvers["text"])
    done = keygen("-Y", "verify", "-f", str(tmp_path / "allowed"), "-I", granted["principal"],
                  "-n", granted["namespace"], "-s", str(tmp_path / "msg.sig"),
                  input=(tmp_path / "msg").read_bytes())
    assert done.returncode == 0, done.stderr
    assert b"Good" in done.stdout + done.stderr
    tampered = granted["message"].replace("db-1", "db-2").encode()
    done = keygen("-Y", "verify", "-f", str(tmp_path / "allowed"), "-I", granted["principal"],
                  "-n", granted["namespace"], "-s", str(tmp_path / "msg.sig"), input=tampered)
    assert done.returncode != 0


def test_the_operators_own_key_is_refused(world: World) -> None:
    path = world.request()
    verdict = world.approvals.offer("CHG-1", sign(world.operator_key, path), "own.sig")
    assert not verdict.ok
    assert "operator's own key" in verdict.reason and "second person" in verdict.reason
    [refused] = [a for a in world.session.state.approvals if isinstance(a, ev.ApprovalRefused)]
    assert refused.reason == verdict.reason and refused.key_fingerprint == verdict.fingerprint
    assert [g.kind for g in world.engine.plan("CHG-1", 1).guards][-1] == "approval"


def test_operator_key_given_on_the_command_line_is_refused_too(world: World) -> None:
    path = world.request()
    mine = Approvals(world.session, lambda task, n: world.engine.plan(task, n), [f"{world.alice}.pub"])
    verdict = mine.offer("CHG-1", sign(world.alice, path), "alice.sig")
    assert not verdict.ok and "operator's own key" in verdict.reason


def test_a_key_not_in_the_approvers_file_is_refused(world: World) -> None:
    path = world.request()
    verdict = world.approvals.offer("CHG-1", sign(world.mallory, path), "mallory.sig")
    assert not verdict.ok
    assert "not in the approvers file" in verdict.reason


def test_a_signature_over_another_text_or_namespace_is_refused(world: World, tmp_path: Path) -> None:
    path = world.request()
    other = tmp_path / "other.json"
    other.write_text(path.read_text().replace("db-1", "db-2"))  # the approver was shown another plan
    verdict = world.approvals.offer("CHG-1", sign(world.alice, other), "alice.sig")
    assert not verdict.ok and "BAD signature" in verdict.reason
    done = keygen("-Y", "sign", "-f", str(world.alice), "-n", "file", str(path))
    assert done.returncode == 0
    verdict = world.approvals.offer("CHG-1", Path(f"{path}.sig").read_bytes(), "file.sig")
    assert not verdict.ok and "namespace 'file'" in verdict.reason


def test_a_plan_with_other_hosts_is_refused(world: World) -> None:
    path = world.request()
    signature = sign(world.alice, path)
    world.session.choose_target("CHG-1", "db-2", step=1)  # the operator now points the step elsewhere
    verdict = world.approvals.offer("CHG-1", signature, "alice.sig")
    assert not verdict.ok
    assert verdict.reason == "the plan changed since it was signed: step 1: hosts changed (db-1 -> db-2)"


def test_an_approval_stops_covering_a_step_whose_hosts_changed(world: World) -> None:
    path = world.request()
    assert world.approvals.offer("CHG-1", sign(world.alice, path), "alice.sig").ok
    world.session.choose_target("CHG-1", "db-2", step=1)
    [guard] = [g for g in world.engine.plan("CHG-1", 1).guards if g.kind == "approval"]
    assert "approved by alice@example" in guard.message and "hosts changed (db-1 -> db-2)" in guard.message


def test_an_edited_runbook_is_refused(world: World) -> None:
    path = world.request()
    signature = sign(world.alice, path)
    sid, root = world.session.id, world.tmp / "sessions"
    world.close()
    world.book.write_text(BOOK.format(marker="v2"))  # the command changes after the approver read it
    session = Session.resume(sid, root=root, runbook=parse_file(str(world.book)))
    engine = Engine(session, world.inventory)
    try:
        approvals = Approvals(session, lambda task, n: engine.plan(task, n))
        verdict = approvals.offer("CHG-1", signature, "alice.sig")
        assert not verdict.ok and verdict.reason.startswith("the runbook changed since the plan was signed")
    finally:
        asyncio.run(engine.close())
        session.close(reason="test")


def test_no_approvers_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    book = tmp_path / "book.md"
    book.write_text(BOOK.format(marker="v1"))
    (tmp_path / "inventory.yml").write_text(INVENTORY)
    session = Session.create(parse_file(str(book)), root=tmp_path / "sessions")
    engine = Engine(session, Inventory.load(str(tmp_path / "inventory.yml")))
    try:
        assert [g.kind for g in engine.plan("CHG-1", 1).guards] == ["risk"]  # CRITICAL alone: no approvers, none
        [guard] = [g for g in engine.plan("CHG-2", 1).guards if g.kind == "approval"]
        assert "no approvers file" in guard.message and "--approvers FILE" in guard.message
        with pytest.raises(UserError, match="no approvers file"):
            Approvals(session, lambda task, n: engine.plan(task, n)).request("CHG-2")
    finally:
        asyncio.run(engine.close())
        session.close(reason="test")


def test_approval_requested_and_granted_are_notified(world: World) -> None:
    from sessions.team.notify import Notifier
    from tests.webhook import Webhook

    async def scenario(hook_url: str) -> None:
        notifier = Notifier(world.session, [hook_url], window_every=0)
        notifier.start()
        path = world.request()
        assert not world.approvals.offer("CHG-1", sign(world.mallory, path), "mallory.sig").ok
        assert world.approvals.offer("CHG-1", sign(world.alice, path), "alice.sig").ok
        await notifier.finish("quit")
        await world.engine.close()

    with Webhook() as hook:
        asyncio.run(scenario(hook.url))
        world.session.close(reason="test")
        assert hook.events() == ["approval_requested", "approval_refused", "approval_granted", "session_closed"]
        requested, refused, granted, _closed = (p["json"] for p in hook.posts)
    assert "approval requested for CHG-1 (Restart the database)" in requested["text"]
    assert "runbook approve" in requested["text"] and requested["details"]["task"] == "CHG-1"
    assert "not in the approvers file" in refused["text"]
    assert "CHG-1 approved by alice@example" in granted["text"]
    assert granted["details"]["principal"] == "alice@example"


def test_every_report_shows_the_approval_and_the_json_export_verifies_with_ssh_keygen(
        world: World, tmp_path: Path) -> None:
    from sessions.commands.export import render
    from sessions.report.build import build_report, read_journal

    path = world.request()
    assert not world.approvals.offer("CHG-1", sign(world.operator_key, path), "own.sig").ok
    assert world.approvals.offer("CHG-1", sign(world.alice, path), "alice.sig").ok
    journal_path = world.session.journal.path
    world.close()
    jc = read_journal(journal_path)
    report = build_report(jc)
    md = render(report, jc, "md", 50).decode()
    html = render(report, jc, "html", 50).decode()
    exported = json.loads(render(report, jc, "json", 50))
    assert "**Approved** by alice@example with SHA256:" in md and "Approval **refused**" in md
    assert "operator's own key" in md and "-----BEGIN SSH SIGNATURE-----" in md
    assert "<strong>Approved</strong> by alice@example" in html and "-----BEGIN SSH SIGNATURE-----" in html
    assert any(d["kind"] == "approval_refused" for d in exported["report"]["deviations"])
    [task] = [t for p in exported["report"]["phases"] for t in p["tasks"] if t["id"] == "CHG-1"]
    assert [a["kind"] for a in task["approvals"]] == ["requested", "refused", "granted"]
    granted = task["approvals"][-1]
    (tmp_path / "allowed").write_text(exported["report"]["approvers"][0]["text"])
    (tmp_path / "req.sig").write_text(granted["signature"])
    done = keygen("-Y", "verify", "-f", str(tmp_path / "allowed"), "-I", granted["principal"], "-n", NAMESPACE,
                  "-s", str(tmp_path / "req.sig"), input=granted["message"].encode())
    assert done.returncode == 0, done.stderr
    from sessions.commands.export import verify_report

    (tmp_path / "report.json").write_bytes(render(report, jc, "json", 50))
    _ok, verdict = verify_report(str(tmp_path / "report.json"), None, None, None)  # unsigned: still FAILED
    assert "approvals: 1 verified with ssh-keygen (CHG-1 by alice@example)" in verdict


def _parse(tmp_path: Path, text: str, bindings: str | None = None, name: str = "doc.md"):
    path = tmp_path / name
    path.write_text(text)
    if bindings is not None:
        (tmp_path / name.replace(".md", ".targets.yaml")).write_text(bindings)
    return parse_file(str(path))


TWO_TASKS = """{front}# Doc
{before}
## Phase 1: P

### A-1: first
- **Risk Level**: LOW
{annotation}
#### Steps
1. **One**
   ```bash
   true
   ```

### A-2: second
- **Risk Level**: CRITICAL

#### Steps
1. **Two**
   ```bash
   true
   ```
"""


def _book(front: str = "", before: str = "", annotation: str = "") -> str:
    return TWO_TASKS.format(front=front, before=before, annotation=annotation)


def test_approval_from_annotation_bindings_and_front_matter(tmp_path: Path) -> None:
    rb = _parse(tmp_path, _book(annotation="<!-- runbook: approval=required -->"))
    assert (rb.task("A-1").approval, rb.task("A-2").approval, rb.approval) == \
        (Approval.REQUIRED, Approval.DEFAULT, Approval.DEFAULT)
    rb = _parse(tmp_path, _book(), "A-2: {approval: none}\ndefault: {approval: required}\n", "b.md")
    assert (rb.task("A-1").approval, rb.task("A-2").approval, rb.approval) == \
        (Approval.DEFAULT, Approval.NONE, Approval.REQUIRED)
    rb = _parse(tmp_path, _book(front="---\nrunbook: {approval: required}\n---\n"), name="c.md")
    assert rb.approval is Approval.REQUIRED
    rb = _parse(tmp_path, _book(before="<!-- runbook: approval=required -->\n"), name="d.md")
    assert rb.approval is Approval.REQUIRED and rb.task("A-1").approval is Approval.DEFAULT


def test_bad_approval_values_are_named_at_their_line(tmp_path: Path) -> None:
    from runbook.errors import InputError

    rb = _parse(tmp_path, _book(annotation="<!-- runbook: approval=maybe -->"))
    assert rb.task("A-1").approval is Approval.DEFAULT
    [diag] = [d for d in rb.diagnostics if "approval" in d.message]
    assert "approval must be required or none, not 'maybe'" in diag.message and diag.line == 7
    with pytest.raises(InputError, match=r"b.targets.yaml:1: A-1.1: approval is a task's"):
        _parse(tmp_path, _book(), "A-1.1: {approval: required}\n", "b.md")
    with pytest.raises(InputError, match=r"c.targets.yaml:1: A-1: approval must be required or none"):
        _parse(tmp_path, _book(), "A-1: {approval: 3}\n", "c.md")


def test_show_says_which_tasks_need_an_approval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runbook.cli import main

    path = tmp_path / "doc.md"
    path.write_text(_book(annotation="<!-- runbook: approval=required -->"))
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("approval required") == 1 and "risk LOW · depends on none · approval required" in out


def test_journal_verify_checks_every_journaled_approval_again(world: World, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from runbook.cli import main
    from tests.adversarial.test_journal_attacks import rechain

    path = world.request()
    assert world.approvals.offer("CHG-1", sign(world.alice, path), "alice.sig").ok
    journal = Path(world.session.journal.path)
    world.close()
    assert main(["journal", "verify", str(journal)]) == 0
    out = capsys.readouterr().out
    assert "approvals: 1 verified with ssh-keygen (CHG-1 by alice@example)" in out
    # someone who knows the format swaps the approver for mallory and re-chains: the chain holds,
    # the approval does not
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    seq = next(r["seq"] for r in lines if r["event"]["type"] == "approvers_set")
    mallory = " ".join(Path(f"{world.mallory}.pub").read_text().split()[:2])

    def swap(event: dict) -> None:
        event["text"] = f"alice@example {mallory}\n"

    rechain(journal, seq, swap)
    assert main(["journal", "verify", str(journal)]) == 1
    out = capsys.readouterr().out
    assert "FAILED: approval at record" in out and "not in the journaled approvers file" in out


def test_approve_shows_foreign_text_as_data_and_needs_yes_without_a_terminal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from runbook.cli import main
    from sessions.team.approval import PlanEntry, Request

    monkeypatch.setattr("sys.stdin", open(os.devnull))  # noqa: SIM115 - no terminal
    key = make_key(tmp_path / "approver", "approver")
    evil = "Restart \x1b]52;c;cm0gLXJmIC8=\x07 db \u202egnp.exe"
    request = Request("0a1b2c3d", "20261208T010203Z-ab12", "CHG-1", evil, "CRITICAL", "/srv/change.md", "e" * 64,
                      "bob", "jump-1", "2026-12-08T01:02:03Z", (), (PlanEntry(1, evil, ("db-1",), "parallel",
                                                                                      "echo \x1b[2J done\n"),))
    path = tmp_path / "approval-CHG-1-0a1b2c3d.json"
    path.write_text(request.render())
    assert main(["approve", str(path), "--sign", str(key)]) == 2  # no terminal, no --yes: nothing signed
    captured = capsys.readouterr()
    assert "give --yes" in captured.err and not Path(f"{path}.sig").exists()
    assert main(["approve", str(path), "--sign", str(key), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "\\x1b]52;c;cm0gLXJmIC8=\\x07" in out and "\\u202e" in out and "| echo \\x1b[2J done" in out
    done = keygen("-Y", "check-novalidate", "-n", NAMESPACE, "-s", f"{path}.sig", input=path.read_bytes())
    assert done.returncode == 0, done.stderr


def test_a_step_that_cannot_be_planned_yet_is_named_in_the_request(world: World) -> None:
    book = world.tmp / "two.md"
    book.write_text(BOOK.format(marker="v1").replace("""   echo restarting v1
   ```
""", """   echo restarting v1
   ```
2. **Elsewhere**
   <!-- runbook: target=db[7] -->
   ```bash
   echo never planned
   ```
""", 1))
    session = Session.create(parse_file(str(book)), root=world.tmp / "sessions2")
    engine = Engine(session, world.inventory)
    try:
        approvals = Approvals(session, lambda task, n: engine.plan(task, n))
        approvals.set_approvers(str(world.approvers))
        request, _path = approvals.request("CHG-1")
        first, second = request.plan
        assert first.hosts == ("db-1",) and second.hosts == () and second.mode == "unplanned"
        assert "cannot be planned now" in second.script and "db[7]" in second.script
    finally:
        asyncio.run(engine.close())
        session.close(reason="test")


def test_sigterm_ends_exec_waiting_for_an_approval(world: World) -> None:
    """`runbook exec` waiting for a signature stops on SIGTERM (as it does mid-step): exit 143,
    nothing run, the session closed -- it used to ignore the signal and wait for ever."""
    import signal
    import sys
    import time

    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from runbook.cli import main; sys.exit(main())", "exec", str(world.book), "--task", "CHG-2",
                             "--approvers", str(world.approvers), "--yes", "--session-dir", str(world.tmp / "s2")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 60
        assert proc.stderr is not None
        seen = b""
        while b"waiting for" not in seen and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
        assert b"waiting for" in seen, seen
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, (seen + err).decode()
    assert b"Traceback" not in err
    journal = next((world.tmp / "s2").glob("*/journal.jsonl")).read_text()
    assert '"session_closed"' in journal and '"step_started"' not in journal


def test_approve_shows_a_newline_in_a_one_line_field_as_an_escape(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A request whose title, operator or host holds a newline cannot add lines of its own to
    what the approver reads (a fake "step 1" line): one field stays one line."""
    from runbook.cli import main
    from sessions.team.approval import PlanEntry, Request

    key = make_key(tmp_path / "approver", "approver")
    fake = "Look\n  step 1: Look -- on 1 host(s) (parallel): web-1\n    | uptime"
    request = Request("0a1b2c3d", "20261208T010203Z-ab12", "CHG-1", fake, "LOW", "/srv/change.md", "e" * 64,
                      "bob\r\n  vetted by the CAB", "jump-1", "2026-12-08T01:02:03Z", (),
                      (PlanEntry(1, fake, ("db-1\nweb-1",), "parallel", "rm -rf /srv/db\n"),))
    path = tmp_path / "approval-CHG-1-0a1b2c3d.json"
    path.write_text(request.render())
    assert main(["approve", str(path), "--sign", str(key), "--yes"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert sum(line.startswith("  step 1:") for line in lines) == 1
    assert not any(line.startswith(("  vetted", "web-1", "    | uptime")) for line in lines)
    assert "Look\\x0a  step 1: Look" in out and "bob\\x0d\\x0a  vetted" in out and "db-1\\x0aweb-1" in out
    assert "    | rm -rf /srv/db" in out


def test_an_approvers_key_past_its_valid_before_is_refused_as_expired_not_as_unknown(world: World) -> None:
    alice = " ".join(Path(f"{world.alice}.pub").read_text().split()[:2])
    world.approvers.write_text(f'alice@example valid-before="20200101" {alice}\n')
    assert world.approvals.set_approvers(str(world.approvers))
    path = world.request()
    verdict = world.approvals.offer("CHG-1", sign(world.alice, path), "alice.sig")
    assert not verdict.ok
    assert "not valid now" in verdict.reason and "not in the approvers file" not in verdict.reason, verdict.reason


def test_approve_refuses_a_fifo_request_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runbook.cli import main

    key = make_key(tmp_path / "approver", "approver")
    fifo = tmp_path / "approval-CHG-1-0a1b2c3d.json"
    os.mkfifo(fifo)
    assert main(["approve", str(fifo), "--sign", str(key), "--yes"]) == 2  # never opened for reading, never waits
    err = capsys.readouterr().err
    assert f"{fifo}: is a FIFO (named pipe), not an approval request" in err, err


def test_a_signature_made_with_an_ssh_certificate_is_refused_saying_so(world: World) -> None:
    """A cert-authority line in the approvers file is taken by ssh-keygen, but runbook cannot
    tell a certificate's key from the operator's: refused, and the reason says why."""
    ca = make_key(world.tmp / "ca", "ca")
    assert keygen("-q", "-s", str(ca), "-I", "alice", "-n", "alice@example", f"{world.alice}.pub").returncode == 0
    ca_pub = " ".join(Path(f"{ca}.pub").read_text().split()[:2])
    world.approvers.write_text(f"*@example cert-authority {ca_pub}\n")
    assert world.approvals.set_approvers(str(world.approvers))
    path = world.request()
    Path(f"{path}.sig").unlink(missing_ok=True)
    done = keygen("-Y", "sign", "-f", f"{world.alice}-cert.pub", "-n", NAMESPACE, str(path))
    assert done.returncode == 0, done.stderr
    verdict = world.approvals.offer("CHG-1", Path(f"{path}.sig").read_bytes(), "alice-cert.sig")
    assert not verdict.ok and "signed with an SSH certificate" in verdict.reason, verdict.reason


def test_a_signature_file_given_by_path_may_be_a_symlink_never_a_fifo(world: World) -> None:
    """``exec --approval FILE`` / the TUI dialog: a typed path that is a symlink to the signature
    is read (it used to be refused as "not an SSH signature file"); a FIFO is named as one."""
    from sessions.team.approval import read_signature

    path = world.request()
    real = world.tmp / "Downloads" / "approval.sig"
    real.parent.mkdir()
    real.write_bytes(sign(world.alice, path))
    link = world.tmp / "approval.sig"
    link.symlink_to(real)
    verdict = world.approvals.offer("CHG-1", read_signature(str(link)), str(link))
    assert verdict.ok, verdict.reason
    fifo = world.tmp / "fifo.sig"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match=r"is a FIFO \(named pipe\), not a signature file"):
        read_signature(str(fifo))
