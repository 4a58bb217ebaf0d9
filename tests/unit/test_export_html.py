"""The HTML export parses as HTML, every tag is closed, and journal text cannot inject markup."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

from sessions.journal import events as ev
from sessions.journal.journal import Journal
from sessions.report.as_html import render_html
from sessions.report.build import build_report
from tests.unit.export_journals import full_session, opened, resume, write_runbook

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
HOSTILE = '<script>alert("x")</script></pre></td><img src=x onerror=alert(1)> & &amp; \' "'


class WellFormed(HTMLParser):
    """Tracks open elements; records every problem instead of guessing like a browser."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        if tag not in VOID:
            self.problems.append(f"self-closed non-void <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.problems.append(f"end tag for void </{tag}>")
        elif not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check(page: str) -> WellFormed:
    p = WellFormed()
    p.feed(page)
    p.close()
    assert not p.problems, p.problems[:5]
    assert not p.stack, f"unclosed: {p.stack}"
    assert p.tags[0] == "html" and "body" in p.tags
    # also well-formed XML (the doctype aside): every element closed, attributes quoted, entities known
    ET.fromstring(page.removeprefix("<!DOCTYPE html>\n"))
    return p


def test_full_session_page_is_well_formed(tmp_path: Path) -> None:
    path, runbook = full_session(tmp_path, finished=False, output_lines=30)
    import hashlib

    resume(path, runbook, hashlib.sha256(runbook.read_bytes()).hexdigest())
    page = render_html(build_report(path, use_runbook=False), lines=10)
    p = check(page)
    text = "".join(p.text)
    assert "Deviations" in text and "T-2" in text and "web-1 line 29" in text and "web-1 line 15" not in text


def test_hostile_journal_text_is_escaped(tmp_path: Path) -> None:
    runbook, sha = write_runbook(tmp_path)
    path = tmp_path / "s" / "journal.jsonl"
    with Journal.create(path) as j:
        j.append(opened(runbook, sha, operator=HOSTILE))
        j.append(ev.TaskStarted(HOSTILE, who=HOSTILE))
        j.append(ev.StepStarted("r<1>", HOSTILE, 1, (HOSTILE,), HOSTILE, who=HOSTILE))
        j.append(ev.OutputChunk("r<1>", HOSTILE, "stdout", HOSTILE + "\n\x1b[2J\x07\x00\x0b\u202eend\n"))
        j.append(ev.HostFinished("r<1>", HOSTILE, "failed", exit_status=1, error=HOSTILE))
        j.append(ev.StepFinished("r<1>", "failed"))
        j.append(ev.StepSkipped(HOSTILE, 2, reason=HOSTILE, who=HOSTILE))
        j.append(ev.GuardOverridden("risk", HOSTILE, reason=HOSTILE, who=HOSTILE))
        j.append(ev.CheckboxCleared(f"{HOSTILE}/acceptance/0", text=HOSTILE, who=HOSTILE, reason=HOSTILE))
        j.append(ev.Note(HOSTILE, task=HOSTILE, who=HOSTILE))
        j.append(ev.Note(HOSTILE, who=HOSTILE))
        j.append(ev.PlaceholderSupplied(HOSTILE, secret=False, value=HOSTILE, who=HOSTILE))
    page = render_html(build_report(path, use_runbook=False))
    p = check(page)
    assert "script" not in p.tags and "img" not in p.tags
    text = "".join(p.text)
    assert HOSTILE in text  # shown literally, not interpreted
    assert "\x1b" not in page and "\x00" not in page and "\x07" not in page and "\u202e" not in page
    assert "<U+202E>end" in text
