"""`Expected:` lines with backticked literals, checked against streamed output."""

from __future__ import annotations

import tracemalloc

from runbook.model import Expectation
from sessions.engine.expectations import OutputWatch, check_text, checkable, clean


def exp(*literals: str, text: str = "Expected") -> Expectation:
    return Expectation(text, 10, tuple(literals))


def test_only_backticked_expectations_are_checkable():
    es = [Expectation("Average latency < 2ms", 3), exp("ok")]
    assert [i for i, _ in checkable(es)] == [1]
    assert [r.index for r in check_text(es, "ok\n")] == [1]


def test_pass_with_the_matching_line_as_evidence():
    [r] = check_text([exp("✅ Cilium was successfully installed!")],
                     "installing\n\x1b[32m✅ Cilium was successfully installed!\x1b[0m\r\ndone\n")
    assert r.passed and r.evidence == "✅ Cilium was successfully installed!"


def test_fail_says_how_many_lines_were_searched():
    [r] = check_text([exp("healthy")], "a\nb\nc")
    assert not r.passed
    assert r.evidence == "`healthy` not found in 3 lines of output"


def test_all_literals_of_one_expectation_must_appear():
    [r] = check_text([exp("alpha", "beta")], "alpha\n")
    assert not r.passed and "`beta`" in r.evidence and "alpha" not in r.evidence
    [r] = check_text([exp("alpha", "beta")], "alpha\nx beta\n")
    assert r.passed and r.evidence == "alpha | x beta"


def test_literal_split_across_chunks_and_multibyte_split_still_match():
    w = OutputWatch([exp("succès complet")])
    data = "début\nsuccès complet\n".encode()
    for i in range(len(data)):
        w.feed("stdout", data[i : i + 1])
    [r] = w.results()
    assert r.passed and r.evidence == "succès complet"


def test_streams_are_assembled_separately():
    w = OutputWatch([exp("needle here")])
    w.feed("stdout", b"needle ")
    w.feed("stderr", b"noise\n")
    w.feed("stdout", b"here\n")
    [r] = w.results()
    assert r.passed
    assert w.lines == 2


def test_memory_stays_bounded_on_big_output():
    w = OutputWatch([exp("599999")])
    tracemalloc.start()
    chunk_lines = 20000
    for start in range(1, 600_001, chunk_lines):
        w.feed("stdout", "".join(f"{n}\n" for n in range(start, start + chunk_lines)).encode())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    [r] = w.results()
    assert r.passed and r.evidence == "599999"
    assert w.lines == 600_000
    assert len(w.tail) == 50 and w.tail[-1] == "600000"
    assert peak < 20 * 1024 * 1024


def test_clean_keeps_what_a_progress_bar_shows_last():
    assert clean("10%\r50%\r100% done") == "100% done"
    assert clean("\x1b]0;title\x07plain") == "plain"
