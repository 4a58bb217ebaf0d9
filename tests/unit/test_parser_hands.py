"""Runbooks written by other hands: bullets, indentation, fences, line endings, headings."""

from __future__ import annotations

import textwrap

from runbook.model import Risk
from runbook.parse.parser import parse


def doc(text: str, eol: str = "\n"):
    return parse(textwrap.dedent(text).lstrip("\n").replace("\n", eol), "hands.md")


BASE = """
# Ops
## Phase 1: Setup (1 hour)
### Task OPS-001: Install
- **Duration**: 30 min
- **Risk Level**: LOW
#### Steps
{steps}
#### Acceptance Criteria
- [ ] done
#### Rollback Procedure
N/A
"""


def steps_of(steps: str, eol: str = "\n"):
    rb = doc(BASE.format(steps=textwrap.dedent(steps).strip("\n")), eol)
    return rb, rb.task("OPS-001").steps


def test_star_bullets_and_prechecked_boxes():
    rb = doc("""
    # T
    ## Phase 1: A
    ### Task A-1: One
    * **Duration**: 2 hours
    * **Risk Level**: medium
    * **Dependencies**: None
    #### Prerequisites
    * [x] already done
    * [ ] open
      * [X] nested and checked
    """)
    t = rb.task("A-1")
    assert t.duration_minutes == 120 and t.risk is Risk.MEDIUM and t.dependencies == ()
    assert [(b.text, b.checked) for b in t.prerequisites] == [
        ("already done", True), ("open", False), ("nested and checked", True)]
    assert [b.key for b in t.prerequisites] == ["A-1/prerequisites/0", "A-1/prerequisites/1", "A-1/prerequisites/2"]


def test_fences_indented_inside_list_items():
    _rb, steps = steps_of("""
    1. **Update**
       ```bash
       apt-get update
       ```
    2. **Upgrade**

       ```bash
       apt-get -y upgrade
       ```

       Expected: `0 upgraded`
    """)
    assert [(s.number, s.title) for s in steps] == [(1, "Update"), (2, "Upgrade")]
    assert steps[0].blocks[0].code == "apt-get update\n" and steps[0].blocks[0].kind == "command"
    assert steps[1].expected[0].literals == ("0 upgraded",)
    assert steps[0].blocks[0].line == 8


def test_tilde_fences_and_tabs():
    _rb, steps = steps_of("""
    1. **Tilde**

    ~~~bash
    echo tilde
    ~~~

    2. **Tab indented**

    \t```sh
    \techo tab
    \t```
    """)
    assert steps[0].blocks[0].code == "echo tilde\n"
    assert steps[1].commands and "echo tab" in steps[1].commands[0].code


def test_console_blocks_split_commands_and_output():
    _rb, steps = steps_of("""
    1. **Look**

    ```console
    $ kubectl get nodes
    NAME   STATUS
    node1  Ready
    $ echo a \\
    > b
    a b
    ```
    """)
    kinds = [(b.kind, b.code) for b in steps[0].blocks]
    assert kinds[0] == ("command", "kubectl get nodes\necho a \\\nb\n")
    assert kinds[1][0] == "output" and "node1  Ready" in kinds[1][1]
    cmd = steps[0].blocks[0]
    assert [cmd.code_line(i) for i in range(3)] == [10, 13, 14]


def test_shell_session_language():
    _rb, steps = steps_of("""
    1. **Session**

    ```shell-session
    user@host:~$ uptime
     10:00 up 1 day
    ```
    """)
    assert [b.kind for b in steps[0].blocks] == ["command", "output"]
    assert steps[0].blocks[0].code == "uptime\n"


def test_crlf_and_cr_line_endings_keep_lines():
    for eol in ("\r\n", "\r"):
        rb, steps = steps_of("""
        1. **Run**

        ```bash
        echo hi
        ```
        """, eol)
        assert steps[0].blocks[0].code == "echo hi\n"
        assert steps[0].line == 7 and steps[0].blocks[0].line == 9
        assert rb.line_count == 15


def test_headings_without_task_word():
    rb = doc("""
    # T
    ## Phase 1: A
    ### NET-010: With id
    - **Duration**: 1 hour
    ### Configure the firewall
    - **Duration**: 15 minutes
    - **Risk Level**: HIGH
    #### Steps
    1. **Apply**
    ```bash
    nft -f /etc/nftables.conf
    ```
    ### Not a task
    Plain prose.
    """)
    assert [t.id for t in rb.tasks] == ["NET-010", "CONFIGURE-THE-FIREWALL"]
    assert rb.task("CONFIGURE-THE-FIREWALL").duration_minutes == 15
    assert any(d.code == "task-id" for d in rb.diagnostics)
    assert any(s.title == "Not a task" and "Plain prose." in s.text for s in rb.sections)


def test_expected_output_fence_is_output_not_command():
    _rb, steps = steps_of("""
    1. **Init**

    ```bash
    kubeadm init
    ```

    Expected output:

    ```
    initialized successfully
    ```
    """)
    assert [b.kind for b in steps[0].blocks] == ["command", "output"]
    assert steps[0].expected[0].text == "initialized successfully"


def test_expected_followed_by_list():
    _rb, steps = steps_of("""
    1. **Check**
    ```bash
    kubectl get pods
    ```
    Expected:

    - pods `Running`
    - no `CrashLoopBackOff`
    """)
    assert [e.literals for e in steps[0].expected] == [("Running",), ("CrashLoopBackOff",)]


def test_file_block_from_path_comment_in_non_shell_language():
    _rb, steps = steps_of("""
    1. **Config**
    ```json
    // /etc/app/config.json
    {"a": "<API_TOKEN>"}
    ```
    2. **Shell with a path comment is still a command**
    ```bash
    # /tmp/script.sh
    echo run
    ```
    3. **Yaml without a path is just text**
    ```yaml
    a: 1
    ```
    """)
    b = steps[0].blocks[0]
    assert (b.kind, b.path, b.code) == ("file", "/etc/app/config.json", '{"a": "<API_TOKEN>"}\n')
    assert [(p.name, p.secret) for p in steps[0].placeholders] == [("API_TOKEN", True)]
    assert steps[1].blocks[0].kind == "command"
    assert steps[2].blocks[0].kind == "text" and not steps[2].runnable


def test_bold_paragraph_steps_and_implicit_step():
    _rb, steps = steps_of("""
    ```bash
    echo before any title
    ```

    **Test 1: first**

    ```bash
    echo one
    ```

    **Test 2: second** (slow)

    ```bash
    echo two
    ```
    """)
    assert [(s.number, s.title, s.hint) for s in steps] == [
        (1, "Step 1", ""), (2, "Test 1: first", ""), (3, "Test 2: second", "(slow)")]


def test_stray_fence_swallowing_sections_is_recovered_and_reported():
    rb = doc("""
    # T
    ## Phase 1: A
    ### Task A-1: One
    - **Risk Level**: LOW
    #### Steps
    1. **Go**
    ```bash
    echo go
    ```
    ````
    #### Acceptance Criteria
    - [ ] went
    #### Rollback Procedure
    ```bash
    echo undo
    ````
    """)
    t = rb.task("A-1")
    assert [b.text for b in t.acceptance] == ["went"] and t.acceptance[0].line == 12
    assert t.rollback.steps[0].blocks[0].code == "echo undo\n"
    errs = [d for d in rb.diagnostics if d.severity == "error"]
    assert [(d.code, d.line) for d in errs] == [("stray-fence", 10)]


def test_unclosed_bash_fence_running_into_next_step_is_split():
    rb = doc("""
    # T
    ## Phase 1: A
    ### Task A-1: One
    #### Steps
    1. **First**
    ```bash
    echo first

    2. **Second**
    ```bash
    echo second
    ```
    #### Acceptance Criteria
    - [ ] ok
    """)
    t = rb.task("A-1")
    assert [s.title for s in t.steps] == ["First", "Second"]
    assert t.step(1).blocks[0].code == "echo first\n"
    assert t.step(2).blocks[0].code == "echo second\n"
    assert [(d.code, d.line) for d in rb.diagnostics if d.severity == "error"] == [("stray-fence", 6)]
    assert [b.text for b in t.acceptance] == ["ok"]


def test_unclosed_fence_at_end_of_file():
    rb = doc("""
    # T
    ## Phase 1: A
    ### Task A-1: One
    #### Steps
    1. **First**
    ```bash
    echo first
    """)
    assert [(d.code, d.line) for d in rb.diagnostics if d.severity == "error"] == [("unclosed-fence", 6)]
    assert rb.task("A-1").step(1).blocks[0].code == "echo first\n"


def test_text_outside_tasks_becomes_sections_with_keys():
    rb = doc("""
    # T
    Intro text.
    ## Final Gate
    ### Tech
    - [ ] a
    - [x] b
    ### Tech
    - [ ] c
    """)
    keys = [b.key for b in rb.checkboxes()]
    # no task headings: the sections holding checkboxes become (inferred) tasks, ids unique
    assert keys == ["tech/checklist/0", "tech/checklist/1", "tech-2/checklist/0"]
    assert [t.id for t in rb.tasks] == ["tech", "tech-2"] and all(t.inferred for t in rb.tasks)
    assert rb.sections[0].title == "T" and rb.sections[0].text == "Intro text."


def test_duplicate_task_ids_keep_unique_checkbox_keys():
    rb = doc("""
    # T
    ## Phase 1: A
    ### Task A-1: One
    #### Prerequisites
    - [ ] x
    ### Task A-1: Again
    #### Prerequisites
    - [ ] y
    """)
    assert [b.key for b in rb.checkboxes()] == ["A-1/prerequisites/0", "A-1#2/prerequisites/0"]


def test_checkboxes_elsewhere_in_a_task_are_not_dropped():
    rb = doc("""
    # T
    ## Phase 1: A
    ### Task A-1: One
    #### Steps
    1. **Do**
    - [ ] confirm with the team
    #### Sign-off
    - [ ] signed
    """)
    keys = [b.key for b in rb.checkboxes()]
    assert keys == ["A-1/steps/0", "A-1/sign-off/0"]


def test_gate_checkboxes_and_keys():
    rb = doc("""
    # T
    ## Phase 2: A
    ### Task A-1: One
    - **Risk Level**: LOW
    ### Phase 2 Smoke Test
    ```bash
    echo ok
    ```
    - [ ] smoke looked at

    **Gate**: all green
    """)
    g = rb.phases[0].gates[0]
    assert g.gate == "all green" and [b.key for b in g.checkboxes] == ["gate:2/0"]
    assert g.steps[0].title == "Phase 2 Smoke Test"


def test_level_three_subsection_inside_task_is_kept_with_warning():
    rb = doc("""
    # T
    ## Phase 1: A
    ### Task A-1: One
    ### Steps
    1. **Do**
    ```bash
    echo x
    ```
    """)
    assert rb.task("A-1").step(1).commands
    assert any(d.code == "heading-level" and d.line == 4 for d in rb.diagnostics)


def test_not_shell_bash_block_is_text_with_warning():
    rb, steps = steps_of("""
    1. **Inventory**
    ```bash
    Node master-01: AZ-A (Rack 1A)
    Node master-02: AZ-B (Rack 2A)
    ```
    """)
    assert steps[0].blocks[0].kind == "text"
    assert [(d.code, d.line) for d in rb.diagnostics if d.code == "not-shell"] == [("not-shell", 8)]


def test_language_less_shell_fence_is_shown_not_run():
    rb, steps = steps_of("""
    1. **Look**
    ```
    kubectl get nodes
    kubectl get pods -A
    ```
    """)
    assert steps[0].blocks[0].kind == "text"
    assert any(d.code == "fence-language" for d in rb.diagnostics)


def test_command_paragraph_outside_fence_is_warned():
    rb, steps = steps_of("""
    1. **Uncordon**

    kubectl uncordon node-1
    """)
    assert not steps[0].runnable
    assert any(d.code == "command-outside-fence" and d.line == 9 for d in rb.diagnostics)


def test_notes_are_bullet_texts():
    rb = doc("""
    # T
    ## Phase 1: A
    ### Task A-1: One
    #### Notes
    - **One**: first
    - second
    """)
    assert rb.task("A-1").notes == ("**One**: first", "second")


def test_shell_comments_that_look_like_headings_are_not_structure():
    rb, steps = steps_of("""
    1. **Comments**

    ```bash
    # Steps to follow
    # Rollback if this fails:
    ## Notes: keep the old config
    echo ok
    ```

    ```yaml
    # Description of the file
    ## Task list
    a: 1
    ```
    """)
    assert not [d for d in rb.diagnostics if d.severity == "error"]
    assert steps[0].blocks[0].code.count("\n") == 4 and len(steps[0].blocks) == 2
