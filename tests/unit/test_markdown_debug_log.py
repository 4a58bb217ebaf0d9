"""markdown-it's block rules log at DEBUG only when someone listens (the parse skips the calls otherwise)."""

from __future__ import annotations

import logging

from runbook.parse.markdown_blocks import normalize, parse_blocks

TEXT = "# Title\n\n- [ ] one\n\n```bash\necho hi\n```\n"


def test_rule_debug_lines_reach_a_debug_listener_and_nodes_are_the_same(caplog):
    quiet = parse_blocks(normalize(TEXT), [])
    with caplog.at_level(logging.DEBUG, logger="markdown_it"):
        loud = parse_blocks(normalize(TEXT), [])
    assert any(r.name.startswith("markdown_it.rules_block.") and "entering" in r.getMessage() for r in caplog.records)
    assert loud == quiet
    caplog.clear()
    parse_blocks(normalize(TEXT), [])  # DEBUG off again: nothing logged
    assert not [r for r in caplog.records if r.name.startswith("markdown_it.")]
