"""Protocols are pure: bytes in, bytes out, per-connection state only while a line is partial."""

from __future__ import annotations

import codecs

from hypothesis import given
from hypothesis import strategies as st

from c10kplan.reactor.protocols import Discard, Echo, Rot13Lines, make_protocol, rot13


def test_rot13_matches_the_codec_and_is_an_involution():
    text = "Hello, World! The quick brown fox 0123 ~"
    assert rot13(text.encode()) == codecs.encode(text, "rot13").encode()
    assert rot13(rot13(bytes(range(256)))) == bytes(range(256))


@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 2000), max_size=20))
def test_rot13_lines_output_is_independent_of_chunking(data, cuts):
    proto = Rot13Lines(line_max=64)
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    out = b""
    for a, b in zip(bounds, bounds[1:]):
        out += proto.feed(7, data[a:b]) or b""
        # Memory bound: an unterminated tail never exceeds line_max.
        assert proto.held_bytes() <= 64
    out += proto.eof(7) or b""
    assert out == rot13(data)
    assert proto.held_bytes() == 0


def test_rot13_answers_only_complete_lines_until_eof():
    proto = Rot13Lines()
    assert proto.feed(3, b"ab") is None
    assert proto.feed(3, b"c\nde") == b"nop\n"
    assert proto.held_bytes() == 2
    proto.forget(3)
    assert proto.held_bytes() == 0 and proto.eof(3) is None


def test_overlong_line_is_answered_in_pieces():
    proto = Rot13Lines(line_max=10)
    assert proto.feed(1, b"a" * 25) == b"n" * 25
    assert proto.held_bytes() == 0


def test_echo_and_discard():
    assert Echo().feed(1, b"xyz") == b"xyz"
    assert Discard().feed(1, b"xyz") is None
    assert make_protocol("rot13").name == "rot13"
