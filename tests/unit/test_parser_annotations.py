"""Annotations, fence attributes, secrets, probes and the NAME.targets.yaml bindings file."""

from __future__ import annotations

import textwrap

import pytest

from runbook.errors import InputError
from runbook.parse.parser import load_bindings, parse, parse_file

DOC = """
# T
## Phase 1: A
### Task APP-001: Deploy
- **Risk Level**: MEDIUM
#### Steps
1. **Annotated**

<!-- runbook: target=masters[1:] serial pty timeout=30 detached pause -->
```bash
echo one
```

2. **Fence attributes**

```bash {target=workers serial}
echo two
```

3. **Plain**

```bash
echo three $DB_LOGIN
```

4. **File with mode**

<!-- runbook: mode=0600 target=db -->
```ini
# /etc/app.ini
a = 1
```

#### Acceptance Criteria
- [ ] five nodes ready <!-- probe: k8s.nodes_ready(min=5) -->
- [ ] second
<!-- probe: k8s.pods_running(namespace="kube-system") -->
- [ ] third

#### Rollback Procedure
```bash
echo undo
```
<!-- runbook: secret=DB_LOGIN -->
"""


def rb_of(text: str = DOC, **kw):
    return parse(textwrap.dedent(text).lstrip("\n"), "app.md", **kw)


def test_annotation_before_fence():
    step = rb_of().task("APP-001").step(1)
    spec = step.target
    assert (spec.pattern, spec.serial, spec.pty, spec.timeout, spec.detached, spec.pause, spec.source) == (
        "masters[1:]", True, True, 30.0, True, True, "annotation")
    assert step.blocks[0].target == spec
    assert step.blocks[0].annotations["target"] == "masters[1:]"


def test_fence_attributes():
    step = rb_of().task("APP-001").step(2)
    assert step.blocks[0].lang == "bash"
    assert (step.target.pattern, step.target.serial, step.target.source) == ("workers", True, "fence")


def test_no_target_without_annotation_binding_or_document_default():
    step = rb_of().task("APP-001").step(3)
    assert (step.target.pattern, step.target.source, step.target.chosen) == ("", "none", False)


def test_file_block_mode_and_target():
    step = rb_of().task("APP-001").step(4)
    b = step.blocks[0]
    assert (b.kind, b.path, b.target.mode, b.target.pattern) == ("file", "/etc/app.ini", "0600", "db")


def test_probe_annotations_on_checkboxes():
    t = rb_of().task("APP-001")
    assert [b.probe for b in t.acceptance] == [
        "k8s.nodes_ready(min=5)", 'k8s.pods_running(namespace="kube-system")', None]
    assert t.acceptance[0].text == "five nodes ready"


def test_secret_annotation_anywhere_in_task_marks_placeholders():
    t = rb_of().task("APP-001")
    assert t.secrets == ("DB_LOGIN",)
    assert [(p.name, p.secret) for p in t.step(3).placeholders] == [("DB_LOGIN", True)]


def test_document_level_secret():
    rb = rb_of("""
    <!-- runbook: secret=LDAP_BIND -->
    # T
    ## Phase 1: A
    ### Task A-1: One
    #### Steps
    1. **Bind**
    ```bash
    ldapsearch -w "$LDAP_BIND"
    ```
    """)
    assert rb.secrets == ("LDAP_BIND",)
    assert rb.task("A-1").step(1).placeholders[0].secret


def test_bad_annotations_are_warnings():
    rb = rb_of("""
    # T
    ## Phase 1: A
    ### Task A-1: One
    #### Steps
    1. **x**
    <!-- runbook: target=web frobnicate timeout=soon -->
    ```bash
    echo
    ```
    <!-- runbook: target=db -->
    Some prose instead of a block.
    """)
    messages = [(d.line, d.code, d.message) for d in rb.diagnostics]
    assert any(line == 6 and "frobnicate" in m for line, _, m in messages)
    assert any(line == 7 and "timeout" in m for line, _, m in messages)  # reported at the fence it configures
    assert any(line == 10 and "not followed by a code block" in m for line, _, m in messages)


BINDINGS = """
APP-001: masters
APP-001.3: {target: "workers[0]", serial: true, timeout: 60}
APP-001.1: {target: ignored-because-annotated}
APP-001.acceptance.3: {probe: "k8s.api_healthy()"}
APP-001.rollback: {target: "masters[0]"}
NOPE-999: web
"""


def test_bindings_file_beside_runbook(tmp_path):
    md = tmp_path / "app.md"
    md.write_text(textwrap.dedent(DOC).lstrip("\n"))
    (tmp_path / "app.targets.yaml").write_text(BINDINGS)
    assert load_bindings(str(md))["APP-001"] == {"target": "masters"}
    rb = parse_file(str(md))
    t = rb.task("APP-001")
    # annotation > bindings: step 1 keeps its annotation; fields it does not set come from bindings
    assert (t.step(1).target.pattern, t.step(1).target.source) == ("masters[1:]", "annotation")
    assert (t.step(3).target.pattern, t.step(3).target.serial, t.step(3).target.timeout, t.step(3).target.source) == (
        "workers[0]", True, 60.0, "bindings")
    assert t.step(2).target.pattern == "workers"  # fence attributes win
    assert t.acceptance[2].probe == "k8s.api_healthy()"
    assert t.acceptance[0].probe == "k8s.nodes_ready(min=5)"  # annotation wins
    assert t.rollback.steps[0].target.pattern == "masters[0]"
    unused = [d for d in rb.diagnostics if d.code == "bindings"]
    assert len(unused) == 1 and "NOPE-999" in unused[0].message and unused[0].path.endswith("app.targets.yaml")


def test_no_bindings_file_is_fine(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("# x\n")
    assert load_bindings(str(md)) == {}


@pytest.mark.parametrize("content, message", [("a: [1\n", "not valid YAML"), ("- a\n- b\n", "must map"),
                                              ("A-1: 5\n", "host pattern or a mapping")])
def test_invalid_bindings_file(tmp_path, content, message):
    md = tmp_path / "x.md"
    md.write_text("# x\n")
    (tmp_path / "x.targets.yaml").write_text(content)
    with pytest.raises(InputError) as exc:
        parse_file(str(md))
    assert message in str(exc.value) and "x.targets.yaml" in str(exc.value)
