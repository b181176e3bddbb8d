"""echo, rot13 and discard: the reply stream is the message's expected reply repeated, checked
byte for byte (storm/payload.py). Per connection: the offset into the current reply and whether
a byte of it differed (on the connection record, `roff` and `bad`)."""

from __future__ import annotations

from c10kplan.storm.config import StormConfig
from c10kplan.storm.payload import ReplyChecker, expected_reply, make_message


class StreamWire:
    handshake = False

    def __init__(self, cfg: StormConfig, max_read: int) -> None:
        self._message = make_message(cfg.message_size)
        reply = expected_reply(cfg.protocol, self._message)
        self.expects_reply = bool(reply)
        self.checker = ReplyChecker(reply, max_read)

    def opening(self, conn) -> bytes | None:
        return None

    def message(self) -> bytes:
        return self._message

    def received(self, proc, conn, data: memoryview, now: float) -> None:
        checker = self.checker
        got = len(data)
        if not checker.period:  # discard: any byte back is unexpected
            proc.unexpected += 1
            return
        period = checker.period
        if checker.matches(conn.roff, data):  # the common case: one compare for the whole read
            done, conn.roff = divmod(conn.roff + got, period)
            for _ in range(done):
                proc.reply(conn, not conn.bad, now)
                conn.bad = False
            return
        # Some byte differs: judge each reply the read covers on its own bytes, so a wrong
        # reply is one mismatched message and its neighbours stay answered.
        off, pos = conn.roff, 0
        while pos < got:
            take = min(period - off, got - pos)
            if not checker.matches(off, data[pos:pos + take]):
                conn.bad = True
            off += take
            pos += take
            if off == period:
                proc.reply(conn, not conn.bad, now)
                conn.bad = False
                off = 0
        conn.roff = off

    def eof(self, proc, conn, now: float) -> str:
        return "EOF"

    def farewell(self) -> bytes | None:
        return None

    ping = None
