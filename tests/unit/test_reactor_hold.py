"""ReadHold, the one owner of "which connections are not read, and why" (pure)."""

from __future__ import annotations

import pytest

from c10kplan.reactor.server import ReadHold


def test_held_is_paused_or_at_eof():
    h = ReadHold()
    h.pause(3)
    h.at_eof(4)
    assert h.held == {3, 4} and h.paused == {3} and h.eof == {4}
    h.resume(3)
    assert h.held == {4} and h.paused == set()


def test_resuming_a_connection_at_eof_keeps_it_held():
    # Its queue drained below the low-water mark, but the peer has shut its write side:
    # reading it again would only see EOF a second time.
    h = ReadHold()
    h.at_eof(5)
    h.pause(5)
    h.resume(5)
    assert h.held == {5} and h.eof == {5} and h.paused == set()


def test_forget_clears_every_reason():
    h = ReadHold()
    h.pause(7)
    h.at_eof(7)
    h.forget(7)
    h.forget(8)  # unknown: nothing to do
    assert h.held == h.paused == h.eof == set()


@pytest.mark.parametrize("steps", [
    ["pause", "resume", "at_eof", "pause", "resume", "forget"],
    ["at_eof", "resume", "pause", "forget", "pause"],
    ["resume", "forget", "at_eof", "at_eof", "pause", "resume"],
])
def test_held_stays_the_union_whatever_the_order(steps):
    h = ReadHold()
    for step in steps:
        getattr(h, step)(1)
        assert h.held == h.paused | h.eof
