"""runbook.sanitize.terminal_text: what may reach a terminal, by construction."""

from __future__ import annotations

import io
import json
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from runbook.sanitize.terminal_text import UNSAFE_CATEGORIES, UNSAFE_RANGES, OutputCleaner, SafeStream, invisible_chars, segments, visible


def test_the_ranges_are_the_unicode_categories():
    ranges: list[tuple[int, int]] = []
    for cp in range(0x110000):
        if unicodedata.category(chr(cp)) in UNSAFE_CATEGORIES:
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    assert tuple(ranges) == UNSAFE_RANGES


@settings(max_examples=300)
@given(st.text())
def test_nothing_unsafe_survives_and_json_stays_json(text):
    for multiline in (True, False):
        shown = visible(text, multiline=multiline)
        assert all(unicodedata.category(c) not in UNSAFE_CATEGORIES or (multiline and c in "\n\t") for c in shown)
    dumped = json.dumps({"t": text}, ensure_ascii=False)
    assert json.loads(visible(dumped)) == {"t": text}


def test_escapes_are_readable():
    assert visible("a\x1b]52;c;eA==\x07b") == "a\\x1b]52;c;eA==\\x07b"
    assert visible("x\u202ey\u200bz\u009b\x7f") == "x\\u202ey\\u200bz\\u009b\\u007f"
    assert visible("a\tb\nc") == "a\tb\nc"
    assert visible("a\tb\nc", multiline=False) == "a\\x09b\\x0ac"
    assert visible("caf\u00e9 \u65e5\u672c \U0001f600") == "caf\u00e9 \u65e5\u672c \U0001f600"
    assert list(segments("ab\x1bc")) == [("ab", False), ("\\x1b", True), ("c", False)]
    assert invisible_chars("x\u2066y\n") == [(1, "\u2066")]


def test_output_cleaner_decodes_across_chunks_and_shows_controls():
    c = OutputCleaner()
    assert c.feed(b"caf\xc3") == "caf"
    assert c.feed(b"\xa9 \x1b[31mred\r") == "\u00e9 \\x1b[31mred"
    assert c.feed(b"\nprogress 1\rprogress 2\xff\n") == "\nprogress 1\\x0dprogress 2\\xff\n"
    assert c.feed(b"\xc3") == ""
    assert c.finish() == "\\xc3"


def test_safe_stream_filters_text_and_passes_the_rest():
    raw = io.StringIO()
    s = SafeStream(raw)
    print("title \x1b]0;x\x07", file=s)
    assert raw.getvalue() == "title \\x1b]0;x\\x07\n"
    assert s.getvalue() == raw.getvalue()  # everything else is the wrapped stream's


@settings(max_examples=400)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F)) | st.text(), st.booleans())
def test_the_ascii_fast_path_escapes_exactly_what_the_full_pass_does(text, multiline):
    """visible() skips its regex for printable ASCII (most command output): same result either way."""
    from runbook.sanitize import terminal_text as tt

    full = (tt._BUT_LAYOUT if multiline else tt._ALL).sub(tt._sub_all, text)
    assert visible(text, multiline=multiline) == full
