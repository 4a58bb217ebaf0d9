"""Structure inference and the other readings of runbooks written elsewhere (issue 12)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from runbook.lint.lint import lint
from runbook.parse.annotations import fence_attrs
from runbook.parse.parser import parse
from runbook.parse.placeholders import find_placeholders
from sessions.engine.engine import Engine
from sessions.engine.session import Session


def doc(text: str, path: str = "doc.md"):
    return parse(textwrap.dedent(text).lstrip("\n"), path)


def steps_of(rb, tid):
    return [(s.number, s.title, len(s.commands)) for s in rb.task(tid).steps]


def test_sections_holding_blocks_become_tasks_the_deepest_heading_wins():
    rb = doc("""
    # etcdMembersDown
    ## Meaning
    Prose only.
    ## Diagnosis
    Check the nodes:
    ```console
    $ oc get nodes
    ```
    ### General etcd health
    Validate that the `etcdctl` command is available:
    ```console
    $ etcdctl version
    ```
    Run the following command to get the health of etcd:
    ```console
    $ etcdctl endpoint health -w table
    ```
    ## Mitigation
    Reboot it by hand.
    """)
    assert rb.inferred and rb.title == "etcdMembersDown"
    assert [t.id for t in rb.tasks] == ["diagnosis", "general-etcd-health"]
    assert steps_of(rb, "general-etcd-health") == [
        (1, "Validate that the etcdctl command is available", 1),
        (2, "Run the following command to get the health of etcd", 1),
    ]
    assert rb.task("diagnosis").steps[0].commands[0].code == "oc get nodes\n"  # the prompt is not the command
    assert [s.title for s in rb.sections] == ["Meaning", "Mitigation"]  # prose stays
    assert not [d for d in lint(rb) if d.severity != "info"]  # no seed-dialect noise


def test_task_ids_are_stable_slugs_made_unique():
    rb = doc("""
    ## Week 1
    ### For Lead
    - [ ] a
    ## Week 2
    ### For Lead
    - [ ] b
    """)
    assert [t.id for t in rb.tasks] == ["for-lead", "for-lead-2"]
    assert [t.title for t in rb.tasks] == ["For Lead", "For Lead"]


def test_step_n_headings_are_the_steps_of_their_parent():
    rb = doc("""
    # Upgrade
    ## Step 1: check
    ```bash
    etcdctl endpoint health
    ```
    ## Step 2: back up
    ### From the leader
    ```bash
    etcdctl snapshot save backup.db
    ```
    ## 3. Restart
    Restart it.
    ## Notes
    Prose.
    """)
    assert [t.id for t in rb.tasks] == ["upgrade"]
    assert steps_of(rb, "upgrade") == [(1, "Step 1: check", 1), (2, "Step 2: back up", 1), (3, "3. Restart", 0)]
    assert [s.title for s in rb.sections] == ["Notes"]  # the H1's own content belongs to its task


def test_numbered_items_then_bold_paragraphs_then_blocks():
    rb = doc("""
    ## Numbered
    1. Identify the node:

       ```shell
       oc get nodes <NODE_NAME>
       ```

    2. Check the disk:

       ```shell
       df -h
       ```
    ## Bold
    **Drain the node**
    ```bash
    kubectl drain x
    ```
    **Uncordon it**
    ```bash
    kubectl uncordon x
    ```
    """)
    assert steps_of(rb, "numbered") == [(1, "Identify the node:", 1), (2, "Check the disk:", 1)]
    assert steps_of(rb, "bold") == [(1, "Drain the node", 1), (2, "Uncordon it", 1)]


def test_checkboxes_carrying_a_command_are_steps_that_tick_them():
    rb = doc("""
    ## Preflight checks
    - [ ] Verify storage class supports expansion `kubectl get storageclass`
    - [ ] Make sure the MR is ready
      - [x] reviewed
    """)
    task = rb.task("preflight-checks")
    assert [b.key for b in task.checklist] == [
        "preflight-checks/checklist/0", "preflight-checks/checklist/1", "preflight-checks/checklist/2"]
    assert task.checklist[2].parent == "preflight-checks/checklist/1"  # nested boxes keep their parent
    (step,) = task.steps
    assert step.commands[0].code == "kubectl get storageclass\n"
    assert step.checkbox == "preflight-checks/checklist/0"
    assert len(list(rb.checkboxes())) == 3  # each box once


async def test_a_checkbox_step_ticks_its_box_when_it_succeeds(tmp_path: Path):
    path = tmp_path / "pre.md"
    path.write_text("## Preflight\n- [ ] Shell works `echo ready`\n- [ ] Directory exists `ls /nonexistent-corpus-dir`\n")
    rb = parse(path.read_text(), str(path))
    session = Session.create(rb, root=tmp_path / "sessions")
    engine = Engine(session, None)
    assert await engine.run_step("preflight", 1, target="local") == "succeeded"
    assert await engine.run_step("preflight", 2, target="local") == "failed"
    boxes = session.state.checkboxes
    assert boxes["preflight/checklist/0"].checked and "step 1 succeeded" in boxes["preflight/checklist/0"].evidence
    assert "preflight/checklist/1" not in boxes or not boxes["preflight/checklist/1"].checked


def test_a_document_without_headings_is_one_task_named_after_it():
    rb = doc("""
    ---
    runme:
      id: 01HF7BT3HCDS1X1WJJHAG7S8YG
    ---

    ```sh {"id":"01HF7BT3HBDTRGQAQMHNSXB9K2"}
    $ export ENV="<insert-env-here>"
    $ echo "ENV=$ENV"
    ```
    """, "notes/ENABLED.md")
    assert rb.title == "ENABLED" and [t.id for t in rb.tasks] == ["enabled"]
    (step,) = rb.task("enabled").steps
    assert step.commands[0].code == 'export ENV="<insert-env-here>"\necho "ENV=$ENV"\n'
    assert [p.token for p in step.placeholders] == ["<insert-env-here>"]
    assert not [d for d in lint(rb) if d.code == "annotation"]


def test_front_matter_is_metadata_and_its_title_is_the_title_without_h1():
    yaml_doc = doc("""
    ---
    title: Kube Node Not Ready
    weight: 20
    runbook:
      target: local
      timeout: 30
    ---

    ## Diagnosis
    ```shell
    kubectl get nodes
    ```
    """)
    assert yaml_doc.title == "Kube Node Not Ready" and yaml_doc.front_matter["weight"] == "20"
    step = yaml_doc.task("diagnosis").steps[0]
    assert (step.target.pattern, step.target.timeout, step.target.source) == ("local", 30.0, "document")
    assert yaml_doc.task("diagnosis").line == 9  # lines keep their numbers
    toml_doc = doc("""
    +++
    title = "Restore from snapshot"
    +++
    {{< note >}}
    Careful.
    {{< /note >}}
    ## {{% heading "prerequisites" %}}
    Text.
    """)
    assert toml_doc.title == "Restore from snapshot"
    assert all("{{" not in s.title for s in toml_doc.sections)
    with_h1 = doc("---\ntitle: From front matter\n---\n# The H1\n")
    assert with_h1.title == "The H1"
    broken = doc("---\ntitle: [unclosed\n---\n# T\n")
    assert [(d.code, d.line) for d in broken.diagnostics if d.code != "no-tasks"] == [("front-matter", 2)]  # where [ opened


def test_prompts_in_shell_fences_and_console_blocks_without_one():
    rb = doc("""
    ## Check
    ```bash
    $ kubectl get storageclass \\
        -o wide
    NAME       PROVISIONER
    standard   kubernetes.io/gce-pd
    ```
    ```console
    (etcd_mvcc_db_total_size_in_bytes / etcd_server_quota_backend_bytes) * 100
    ```
    """)
    (step,) = rb.task("check").steps
    assert step.commands[0].code == "kubectl get storageclass \\\n    -o wide\n"
    assert [b.kind for b in step.blocks] == ["command", "output", "output"]  # shown, never run
    assert "standard" in step.blocks[1].code
    notes = [d for d in rb.diagnostics if d.code == "console-without-prompt"]
    assert [(d.line, d.severity) for d in notes] == [(8, "warning")]


def test_placeholder_styles_real_documents_use():
    code = ("kubectl drain <node-to-drain> -n <my-namespace>\nvirtctl console <vm name>\nkubectl logs <pod_name>\n"
            "cp -i {COCKROACHDB_DIR}/cockroach /usr/local/bin\ncockroach start --join={node1 address},{node2 address}\n"
            "echo {a,b} ${HOME} @{u} {{ .Values }} 2>&1 < in.txt > out.txt\n")
    found = [(p.name, p.token) for p in find_placeholders(code, "command", 1)]
    assert found == [("NODE_TO_DRAIN", "<node-to-drain>"), ("MY_NAMESPACE", "<my-namespace>"), ("VM_NAME", "<vm name>"),
                     ("POD_NAME", "<pod_name>"), ("COCKROACHDB_DIR", "{COCKROACHDB_DIR}"),
                     ("NODE1_ADDRESS", "{node1 address}"), ("NODE2_ADDRESS", "{node2 address}")]
    assert find_placeholders("<node-name> {X}\n", "file", 1) == []  # files: only <UPPER_CASE>
    rb = doc("## Drain\n```shell\nkubectl drain <node name>\n```\n")
    assert [p.token for p in rb.task("drain").steps[0].placeholders] == ["<node name>"]


def test_placeholders_are_found_in_section_blocks_too():
    rb = doc("""
    # T
    ## Phase 1: A
    ### Task A-1: One
    #### Steps
    1. **x**
    ```bash
    echo
    ```
    ## Appendix
    ```bash
    kubectl get pod <pod_name>
    ```
    """)
    appendix = next(s for s in rb.sections if s.title == "Appendix")
    assert [p.token for p in appendix.placeholders] == ["<pod_name>"]


def test_runme_cell_attributes_are_understood_or_knowingly_ignored():
    assert fence_attrs('sh {"id":"01HW","name":"vars","promptEnv":"yes","excludeFromRunAll":"true"}') == (
        {"runme-name": "vars"}, [])
    assert fence_attrs("sh { interactive=true background=true terminalRows=26 cwd=/tmp }")[0]["pty"] == "true"
    assert fence_attrs("sh { interactive=false }") == ({}, [])
    _, problems = fence_attrs("bash {target=web FooBar=1 Weird}")
    assert problems == ["unknown annotation key 'FooBar'", "unknown annotation word 'Weird'"]  # as written


def test_less_noise_several_h1_h3_phases_and_notes_that_are_no_duration():
    rb = doc("""
    # Scale Down
    ## Overview
    Prose.
    # Execution
    ### Phase 1: Preflight (10 minutes)
    #### Check
    ```bash
    gitlab-patronictl list
    ```
    ### Phase 2: Cleanup (If Applicable)
    #### Remove
    ```bash
    rm -f /tmp/x
    ```
    """)
    assert [(p.number, p.title, p.duration_minutes) for p in rb.phases] == [
        ("1", "Preflight", 10), ("2", "Cleanup (If Applicable)", None)]
    assert [t.phase for t in rb.tasks] == ["1", "2"]
    assert not [d for d in lint(rb) if d.severity == "warning"]


def test_seed_dialect_documents_do_not_infer():
    rb = doc("""
    # T
    ## Phase 1: A (If Applicable)
    ### Task A-1: One
    #### Steps
    1. **x**
    ```bash
    echo
    ```
    ## Checklist
    - [ ] outside
    """)
    assert not rb.inferred and [t.id for t in rb.tasks] == ["A-1"]
    assert rb.phases[0].title == "A (If Applicable)" and rb.phases[0].duration_text == ""
    assert [b.key for b in rb.checkboxes()] == ["section:checklist/0"]


def test_a_runme_cell_name_titles_its_step_when_no_sentence_introduces_it():
    rb = doc('```sh {"id":"01HW","name":"vars"}\nexport A=1\n```\n\nThen:\n\n```sh {name=second}\necho $A\n```\n',
             "envs.md")
    assert [s.title for s in rb.task("envs").steps] == ["vars", "Then"]
