"""No step runs on a host nobody chose: resolution order, suggestions, exec refusal, dry-run."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runbook.lint.lint import lint
from runbook.parse.parser import parse, parse_file
from runbook.targets.inventory import Inventory
from runbook.targets.suggest import suggest_targets
from sessions.journal import events as ev
from sessions.planning.guards import guards_for
from sessions.planning.planning import plan_step
from sessions.planning.targeting import damaged_hosts, hosts_text
from sessions.state.state import SessionState, replay
from tests.conftest import PROD

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = [sys.executable, "-m", "runbook.cli"]
PROD_INVENTORY = ROOT / "checklists" / "prod-inventory.example.yml"

DOC = """\
# T
## Phase 1: A
### Task A-1: One
- **Risk Level**: HIGH
#### Steps
1. **annotated**
<!-- runbook: target=web -->
```bash
echo 1
```
2. **bound**
```bash
echo 2
```
3. **nothing**
```bash
# On db-1:
echo 3
```
4. **options only**
<!-- runbook: serial timeout=5 -->
```bash
echo 4
```
#### Rollback Procedure
```bash
echo undo
```
"""

INVENTORY = """
all:
  children:
    web:
      hosts:
        web-1: {ansible_connection: local}
        web-2: {ansible_connection: local}
    db:
      hosts:
        db-1: {ansible_host: 127.0.0.9, ansible_user: dba}
    masters:
      hosts:
        m-1: {ansible_connection: local}
        m-2: {ansible_connection: local}
"""


def write(tmp_path: Path, doc: str = DOC, bindings: str | None = None, name: str = "t.md") -> Path:
    md = tmp_path / name
    md.write_text(doc)
    if bindings is not None:
        (tmp_path / name.replace(".md", ".targets.yaml")).write_text(textwrap.dedent(bindings))
    return md


def specs(rb, task="A-1"):
    t = rb.task(task)
    return {s.number: (s.target.pattern, str(s.target.source)) for s in t.steps}


# --- resolution -------------------------------------------------------------------------


def test_without_annotation_binding_or_default_a_step_has_no_target(tmp_path):
    rb = parse_file(str(write(tmp_path)))
    assert specs(rb) == {1: ("web", "annotation"), 2: ("", "none"), 3: ("", "none"), 4: ("", "none")}
    four = rb.task("A-1").step(4).target
    assert (four.serial, four.timeout, four.chosen) == (True, 5.0, False)  # options kept, still no target
    assert rb.task("A-1").rollback.steps[0].target.chosen is False


def test_bindings_then_document_default(tmp_path):
    md = write(tmp_path, bindings="""
        A-1.2: db
        default: web[0]
    """)
    rb = parse_file(str(md))
    assert specs(rb) == {1: ("web", "annotation"), 2: ("db", "bindings"), 3: ("web[0]", "document"),
                         4: ("web[0]", "document")}
    assert rb.task("A-1").step(4).target.serial  # the annotation's options over the default's pattern
    assert rb.task("A-1").rollback.steps[0].target.pattern == "web[0]"  # a rollback follows the same rules
    assert rb.default_target is not None and rb.default_target.pattern == "web[0]"
    assert not [d for d in rb.diagnostics if d.code == "bindings"]  # "default" is not an unknown key


def test_document_comment_before_the_first_heading_beats_the_bindings_default(tmp_path):
    md = write(tmp_path, "<!-- runbook: target=local -->\n" + DOC, bindings="default: web\n")
    rb = parse_file(str(md))
    assert specs(rb)[3] == ("local", "document")
    assert not [d for d in rb.diagnostics if d.severity != "info"]


def test_a_comment_after_the_first_heading_is_not_a_document_default():
    rb = parse("# T\n<!-- runbook: target=local -->\n" + DOC.split("\n", 1)[1], "t.md")
    assert specs(rb)[3] == ("", "none")


def test_a_task_key_binds_the_steps_not_the_rollback(tmp_path):
    rb = parse_file(str(write(tmp_path, bindings="A-1: db\n")))
    assert specs(rb)[3] == ("db", "bindings")
    assert rb.task("A-1").rollback.steps[0].target.chosen is False
    rb = parse_file(str(write(tmp_path, bindings="A-1: db\nA-1.rollback: web\n")))
    assert rb.task("A-1").rollback.steps[0].target.pattern == "web"


def test_operator_choices_journaled_then_given(tmp_path):
    rb = parse_file(str(write(tmp_path, bindings="A-1.2: db\n")))
    inv = Inventory.from_text(INVENTORY)
    state = SessionState()

    def where(step, rollback=False, target=None, st=None):
        p = plan_step(rb, inv, "A-1", step, rollback=rollback, target=target, state=st or state)
        return (p.hosts, str(p.spec.source)) if p.target_chosen else "not chosen"

    assert where(3) == "not chosen"
    # the task-wide choice fills the untargeted steps only (annotation and bindings stay)
    state = replay([ev.TargetChosen("A-1", "masters", None, False, ("m-1", "m-2"))])
    assert where(3) == (("m-1", "m-2"), "operator")
    assert where(1) == (("web-1", "web-2"), "annotation")
    assert where(2) == (("db-1",), "bindings")
    assert where(1, rollback=True) == "not chosen"  # the rollback has its own choice
    # a choice for one step wins over everything the runbook says
    state = replay([ev.TargetChosen("A-1", "masters", None, False), ev.TargetChosen("A-1", "web-2", 1, False),
                    ev.TargetChosen("A-1", "m-2", 2, False)])
    assert where(1) == (("web-2",), "operator") and where(2) == (("m-2",), "operator")
    assert where(3) == (("m-1", "m-2"), "operator")
    # changed later: the latest choice counts
    state = replay([ev.TargetChosen("A-1", "masters", None, False), ev.TargetChosen("A-1", "db", None, False)])
    assert where(3) == (("db-1",), "operator")
    # given for this run (--target, one host) beats the journal
    assert where(1, target="m-1") == (("m-1",), "operator")


def test_the_engine_refuses_a_step_without_target(tmp_path):
    import asyncio

    from runbook.errors import UserError
    from sessions.engine.engine import Engine
    from sessions.engine.session import Session

    rb = parse_file(str(write(tmp_path)))
    session = Session.create(rb, root=tmp_path / "sessions")
    try:
        engine = Engine(session, Inventory.from_text(INVENTORY))
        with pytest.raises(UserError, match=r"A-1 step 3: target: not chosen \(suggested: db-1") as info:
            asyncio.run(engine.run_step("A-1", 3))
        assert info.value.exit_code == 2
        assert not session.state.runs
    finally:
        session.close("test over")


# --- suggestions -------------------------------------------------------------------------


def test_suggestions_from_comments_prose_inventory_names_and_commands():
    prod = parse_file(str(PROD), bindings=False)
    inv = Inventory.load(PROD_INVENTORY)
    join = [s.pattern for s in suggest_targets(prod.task("PROD-K8S-002").step(2), inv)]
    assert join[0] == "prod-k8s-master-02,prod-k8s-master-03"  # '# On prod-k8s-master-02:' ...
    assert "masters[1:4]" in join  # "Join Nodes 2-5"
    assert suggest_targets(prod.task("PROD-K8S-002").step(3), inv)[0].pattern == "masters[0]"  # from any master node
    dr = [s.pattern for s in suggest_targets(prod.task("PROD-VAL-001").step(1), inv)]
    assert dr[:2] == ["masters", "masters[0]"]  # on all master nodes; (on first master)
    assert suggest_targets(prod.task("PROD-K8S-001").step(5))[0].pattern == "local"  # kubectl
    assert suggest_targets(prod.task("PROD-PRE-001").step(1))[0].pattern == "local"  # ping
    first = suggest_targets(prod.task("PROD-K8S-002").step(2))[0]
    assert "line 451" in first.why and "# On prod-k8s-master-02:" in first.why

    doc = parse(textwrap.dedent("""\
        # T
        ## Phase 1: A
        ### Task B-1: x
        #### Steps
        1. **Restart the database on db-1 and on the jump host**
        ```bash
        sudo systemctl restart postgresql
        ```
        """), "b.md")
    got = [s.pattern for s in suggest_targets(doc.task("B-1").step(1), Inventory.from_text(INVENTORY))]
    assert got == ["local", "db-1"]  # "on the jump host"; an inventory host name in the title


def test_a_rollback_suggests_the_damaged_hosts_first(tmp_path):
    rb = parse_file(str(write(tmp_path, bindings="A-1: masters\n")))
    state = replay([
        ev.StepStarted("r1", "A-1", 3, ("m-1", "m-2"), "echo 3"),
        ev.HostFinished("r1", "m-1", "succeeded", 0), ev.HostFinished("r1", "m-2", "failed", 1),
        ev.StepFinished("r1", "failed"),
        ev.StepStarted("r2", "A-1", 4, ("m-1",), "echo 4"), ev.StepOutcomeUnknown("r2", "connection lost"),
    ])
    assert damaged_hosts(state, "A-1") == [("m-2", "step 3 failed"), ("m-1", "step 4 unknown")]
    plan = plan_step(rb, Inventory.from_text(INVENTORY), "A-1", 1, rollback=True, state=state)
    assert not plan.target_chosen and plan.hosts == ()
    assert plan.suggestions[0].pattern == "m-2,m-1"
    assert "failed or are unknown" in plan.suggestions[0].why


# --- what the operator is told ---------------------------------------------------------------


def test_every_confirmation_names_the_hosts(tmp_path):
    rb = parse_file(str(write(tmp_path)))
    [risk] = guards_for(SessionState(), rb, "A-1", 1, ["web-1", "web-2", "m-1", "m-2"])
    assert "on 4 hosts (web-1, web-2, m-1, ...)" in risk.message
    assert hosts_text(["a"]) == "1 host (a)"
    dep = parse(DOC.replace("- **Risk Level**: HIGH", "- **Dependencies**: A-0\n- **Risk Level**: LOW")
                .replace("## Phase 1: A", "## Phase 1: A\n### Task A-0: zero\n#### Steps\n1. **z**\n```bash\necho\n```"),
                "d.md")
    [g] = [g for g in guards_for(SessionState(), dep, "A-1", 2, ["db-1"]) if g.kind == "dependencies"]
    assert "step 2 runs on 1 host (db-1)" in g.message
    rm = parse(DOC.replace("echo 3", "rm -rf /tmp/x"), "r.md")
    [d] = [g for g in guards_for(SessionState(), rm, "A-1", 3, ["db-1"]) if g.kind == "destructive"]
    assert "on db-1" in d.message


def test_lint_reports_steps_without_target_once_per_task(tmp_path):
    diags = [d for d in lint(parse_file(str(write(tmp_path)))) if d.code == "no-target"]
    assert len(diags) == 1 and diags[0].severity == "info" and diags[0].line == 3
    assert "4 step(s) have no target (step 2, step 3, step 4, rollback step 1)" in diags[0].message
    assert "suggested for step 3: db-1 ('# On db-1:' at line 17)" in diags[0].message
    diags = [d for d in lint(parse_file(str(write(tmp_path, bindings="default: local\n")))) if d.code == "no-target"]
    assert diags == []


def run(*args, cwd=ROOT):
    return subprocess.run(RUNBOOK + [str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          stdin=subprocess.DEVNULL, timeout=120, env={**os.environ, "NO_COLOR": "1"})


def test_show_plan_and_dry_run_say_not_chosen_with_the_suggestion(tmp_path):
    md = write(tmp_path)
    show = run("show", md)
    assert show.returncode == 0
    assert "→ target: not chosen (suggested: db-1 ('# On db-1:' at line 17))" in show.stdout
    plan = run("plan", md)
    assert plan.returncode == 0 and "step 3: target: not chosen (suggested: db-1" in plan.stdout
    dry = run("exec", md, "--task", "A-1", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "== A-1 step 3: nothing\n   target: not chosen (suggested: db-1 ('# On db-1:' at line 17))" in dry.stdout
    assert "exec refuses them; give --target PATTERN, or bind them in" in dry.stdout


def test_exec_refuses_steps_without_target_exit_2_before_anything_runs(tmp_path):
    md = write(tmp_path)
    sessions = tmp_path / "sessions"
    r = run("exec", md, "--task", "A-1", "--yes", "--session-dir", sessions)
    assert r.returncode == 2, r.stderr
    assert "no target chosen; nothing was run" in r.stderr
    assert "A-1 step 2 (bound): target: not chosen" in r.stderr and "A-1 step 3 (nothing)" in r.stderr
    assert "--target PATTERN" in r.stderr and str(tmp_path / "t.targets.yaml") in r.stderr
    assert "Traceback" not in r.stderr and not sessions.exists()  # nothing journaled, no session
    ok = run("exec", md, "--task", "A-1", "--step", "3", "--target", "local", "--yes", "--session-dir", sessions)
    assert ok.returncode == 0, ok.stderr


def test_prod_dry_run_puts_each_step_on_its_intended_host():
    r = run("exec", "checklists/prod-k8s-deployment.md", "--task", "PROD-K8S-001",
            "--inventory", "checklists/prod-inventory.example.yml", "--dry-run")
    assert r.returncode == 0, r.stderr
    hosts = [line.strip() for line in r.stdout.splitlines() if line.startswith("   on ")]
    assert [h.split("  [")[0] for h in hosts] == [
        "on 1 host(s): prod-k8s-master-01",  # 1. kubeadm config uploaded to the first master
        "on 1 host(s): prod-k8s-master-01",  # 2. kubeadm init
        "on 1 host(s): local",  # 3. cilium CLI (like kubectl)
        "on 1 host(s): prod-k8s-master-01",  # 4. etcdctl snapshot
        "on 1 host(s): local",  # 5. kubectl
    ]
    assert "not chosen" not in r.stdout
    assert "guard: risk (PROD-K8S-001): CRITICAL risk task PROD-K8S-001" in r.stdout
    assert "on 1 host (prod-k8s-master-01): start it?" in r.stdout


def test_shipped_prod_files_bind_every_step_but_two_rollbacks():
    rb = parse_file(str(PROD))
    inv = Inventory.load(PROD_INVENTORY)
    assert not [d for d in rb.diagnostics if d.code == "bindings"]
    unbound = []
    for t in rb.tasks:
        steps = [(s, False) for s in t.steps] + [(s, True) for s in (t.rollback.steps if t.rollback else ())]
        for s, rollback in steps:
            if not s.runnable:
                continue
            if not s.target.chosen:
                unbound.append((t.id, rollback, s.number))
                continue
            hosts = [h.name for h in inv.resolve(s.target.pattern)]
            kind = " ".join(b.code for b in s.commands)
            if "kubeadm" in kind or "etcdctl" in kind:
                assert all(h.startswith("prod-k8s-master-") for h in hosts), (t.id, s.number, hosts)
            elif "kubectl" in kind or "ping" in kind:
                assert hosts == ["local"], (t.id, s.number, hosts)
    assert unbound == [("PROD-K8S-002", True, 1), ("PROD-VAL-001", True, 1)]
    assert [h.name for h in inv.resolve("masters")] == [f"prod-k8s-master-0{i}" for i in range(1, 6)]
    assert inv.resolve("masters[0]")[0].host == "10.1.1.10"
    assert [h.host for h in inv.resolve("workers")] == [f"10.1.1.{n}" for n in range(20, 30)]
    digest = hashlib.sha256((ROOT / "checklists" / "prod-k8s-deployment.md").read_bytes()).hexdigest()
    assert digest == "29ee630288c107c1b22cbce67faf406fdf0e52c08334c0d22ea2076537e8eb76"  # byte for byte unmodified


# --- journaled choices: resume keeps them; saving writes the bindings file only ------------------


def test_a_journaled_choice_survives_resume(tmp_path):
    from sessions.engine.session import Session

    md = write(tmp_path)
    before = md.read_bytes()
    inv = Inventory.from_text(INVENTORY)
    session = Session.create(parse_file(str(md)), root=tmp_path / "sessions")
    session.choose_target("A-1", "masters", hosts=("m-1", "m-2"))
    session.choose_target("A-1", "m-2", step=1, rollback=True, hosts=("m-2",), save=True)
    sid = session.id
    session.close("test")
    resumed = Session.resume(sid, root=tmp_path / "sessions")
    try:
        plan = plan_step(resumed.runbook, inv, "A-1", 3, state=resumed.state)
        assert plan.hosts == ("m-1", "m-2") and plan.spec.source == "operator"
        rb_plan = plan_step(resumed.runbook, inv, "A-1", 1, rollback=True, state=resumed.state)
        assert rb_plan.hosts == ("m-2",)
        saved = resumed.state.target_choice("A-1", 1, rollback=True)
        assert saved.saved_to == str(tmp_path / "t.targets.yaml") and saved.who
    finally:
        resumed.close("test")
    assert md.read_bytes() == before  # the Markdown is never touched
    text = (tmp_path / "t.targets.yaml").read_text()
    assert text.startswith('A-1.rollback.1: "m-2"  # chosen by ')
    assert parse_file(str(md)).task("A-1").rollback.steps[0].target.pattern == "m-2"  # the next session reads it


def test_saving_keeps_the_bindings_file_comments_and_options(tmp_path):
    from runbook.parse.annotations import load_bindings
    from runbook.targets.bindings_write import save_target

    md = write(tmp_path, bindings="""\
        # where things run
        A-1: web   # the task
        A-1.2:
          target: db
          serial: true

        # a comment after a block entry
        A-1.3: db
    """)
    save_target(str(md), "A-1.2", "masters[1:]")
    save_target(str(md), "A-1.rollback", "m-2,m-3", note="chosen by alice")
    text = (tmp_path / "t.targets.yaml").read_text()
    assert text.splitlines() == [
        "# where things run", "A-1: web   # the task", 'A-1.2: {"target": "masters[1:]", "serial": true}', "",
        "# a comment after a block entry", "A-1.3: db", 'A-1.rollback: "m-2,m-3"  # chosen by alice']
    assert load_bindings(str(md))["A-1.2"] == {"target": "masters[1:]", "serial": True}
    (tmp_path / "t.targets.yaml").write_text("A-1: [unclosed\n")
    with pytest.raises(Exception, match=r"t.targets.yaml:\d+: bindings file is not valid YAML; not saved"):
        save_target(str(md), "A-1", "web")
