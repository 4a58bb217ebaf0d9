"""Redactor: secrets never pass, however the stream is chunked."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from runbook.sanitize.redaction import MASK, Redactor, redact_bytes, redact_text


def feed_all(redactor: Redactor, chunks: list[bytes]) -> bytes:
    return b"".join(redactor.feed(c) for c in chunks) + redactor.flush()


def test_whole_buffer_and_text() -> None:
    assert redact_text("user=admin pass=hunter2!", ["hunter2"]) == "user=admin pass=***!"
    assert redact_bytes(b"a hunter2 b hunter2", ["hunter2"]) == b"a *** b ***"
    assert redact_text("nothing here", ["hunter2"]) == "nothing here"
    assert redact_text("käse=geheimnis", ["geheimnis"]) == "käse=***"


def test_empty_secrets_are_ignored_and_no_secrets_pass_through() -> None:
    r = Redactor(["", ""])
    assert not r
    assert r.feed(b"abc") == b"abc"
    assert r.flush() == b""


def test_secret_split_across_every_boundary() -> None:
    secret = b"s3cr3t-Value"
    data = b"before " + secret + b" middle " + secret + b" after\n"
    expected = b"before *** middle *** after\n"
    for cut in range(1, len(data)):
        r = Redactor([secret])
        assert feed_all(r, [data[:cut], data[cut:]]) == expected, cut
    r = Redactor([secret])
    assert feed_all(r, [bytes([b]) for b in data]) == expected


def test_holdback_is_released_when_it_turns_out_not_to_be_a_secret() -> None:
    r = Redactor(["password"])
    assert r.feed(b"the pass") == b"the "
    assert r.pending == 4
    assert r.feed(b"port is valid") == b"passport is valid"
    assert r.flush() == b""


def test_flush_redacts_and_releases_the_tail() -> None:
    r = Redactor(["password"])
    assert r.feed(b"x passw") == b"x "
    assert r.flush() == b"passw"  # the stream ended: it was not the secret
    r = Redactor(["abc"])
    assert r.feed(b"xxab") == b"xx"
    assert r.feed(b"c") == MASK


def test_longer_secret_sharing_a_prefix_is_masked_whole() -> None:
    r = Redactor(["abc", "abcdef"])
    assert feed_all(r, [b"1 abc", b"def 2 abc 3"]) == b"1 *** 2 *** 3"


def test_overlapping_secrets_mask_as_one_run_even_across_chunks() -> None:
    assert redact_bytes(b"xabcdefx", ["abcd", "cdef"]) == b"x***x"
    assert redact_bytes(b"abcabc", ["abc"]) == b"******"
    assert feed_all(Redactor(["abcd", "cdef"]), [b"xabcd", b"efx"]) == b"x***x"


def test_new_stream_has_independent_state() -> None:
    a = Redactor(["topsecret"])
    b = a.new_stream()
    assert a.feed(b"top") == b""
    assert b.feed(b"plain") == b"plain"
    assert a.feed(b"secret\n") == MASK + b"\n"
    assert a.flush() == b"" and b.flush() == b""


def test_a_secret_ending_a_chunk_waits_if_the_next_could_overlap_it() -> None:
    r = Redactor(["topsecret"])
    assert r.feed(b"topsecret") == b""  # its last "t" may start an overlapping occurrence
    assert r.feed(b"opsecret.") == MASK + b"."
    assert r.feed(b"topsecret") == b""
    assert r.flush() == MASK


@settings(max_examples=150, deadline=None)
@given(
    secrets=st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=3),
    parts=st.lists(st.binary(max_size=12), max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
)
def test_chunking_never_changes_the_result_nor_leaks(secrets: list[bytes], parts: list[bytes], cuts: list[int]) -> None:
    data = b""
    for i, part in enumerate(parts):
        data += part + secrets[i % len(secrets)]
    expected = Redactor(secrets).redact(data)
    positions = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *positions], [*positions, len(data)], strict=True)]
    streamed = feed_all(Redactor(secrets), chunks)
    assert streamed == expected
    for secret in secrets:
        if b"*" not in secret:  # (a secret made of mask bytes could be formed by masks)
            assert secret not in streamed
