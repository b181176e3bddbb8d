"""HTTP/1.1 keep-alive: one request when the connection opens (the handshake), then one per
scheduled message; every response read whole and judged by its status (`--expect-status`).

Parser: h11 (python-hyper's sans-IO HTTP/1.1 state machine: RFC 9112 framing by Content-Length,
chunked or close-delimited, header size limits). An h11.Connection costs about 0.9 KiB once it
has carried one request (tracemalloc, 2,000 connections): kept per idle connection, it alone
would spend most of the storm's 2 KiB budget. So an idle connection keeps none: `conn.proto` is
None between responses, and a fresh h11.Connection is made when a response starts arriving and
dropped when it ends (about 34 us per response here, where reusing one costs 33 us: the
allocation is not what costs). The request bytes are serialized once, by h11, and sent as they
are; requests may be pipelined on the wire (the schedule does not wait for replies, RFC 9112
9.3.2), each response is parsed by its own h11.Connection in order, and bytes past one response
(`trailing_data`) start the next.

Replay: h11 is deterministic, so a read that is byte for byte a whole keep-alive response it
parsed before, from a fresh parser as well, gives the same events: the wire keeps the last such
read (`_known`, one per storm process) and counts an equal one as that response without
parsing it again (a bytes comparison instead of ~34 us of h11). Anything else, a response with
a new Date header, a split or pipelined read, goes to h11 as above and may become the new
`_known`.

What counts as a drop (the connection's end, counted under this reason with its hold time):
- a response that says it closes (`Connection: close`, or an HTTP/1.0 one without keep-alive):
  "HTTP <status> + close", right after it is read;
- an EOF after an error status (nginx answers 400/408 and closes): "HTTP <status> + close";
- any other EOF: "EOF" (e.g. a keep-alive timeout); a response h11 cannot parse: "EPROTO".
"""

from __future__ import annotations

import h11

from c10kplan.storm.config import StormConfig, status_expected
from c10kplan.storm.payload import make_message

USER_AGENT = "c10kplan-storm"


class HttpWire:
    handshake = True
    expects_reply = True
    ping = None

    def __init__(self, cfg: StormConfig) -> None:
        names = {k.lower() for k, _ in cfg.headers}
        headers = [] if "host" in names else [("Host", cfg.authority)]
        if "user-agent" not in names:
            headers.append(("User-Agent", USER_AGENT))
        headers.extend(cfg.headers)
        self.body = cfg.body
        if self.body and "content-length" not in names:
            headers.append(("Content-Length", str(len(self.body))))
        self.request = h11.Request(method=cfg.method, target=cfg.path, headers=headers)
        writer = h11.Connection(h11.CLIENT)
        self._bytes = writer.send(self.request) + (writer.send(h11.Data(data=self.body)) if self.body else b"") \
            + writer.send(h11.EndOfMessage())
        self.expect = cfg.expect_status
        self._known: bytes | None = None  # the last read that was exactly one keep-alive response
        self._known_status = 0
        self._ends = 0  # responses parsed whole (to tell one per read from several)
        # message_size has no meaning for a request; kept so `make_message` validates the same.
        make_message(cfg.message_size)

    def _parser(self) -> h11.Connection:
        """An h11 client state machine that has 'sent' our request head, ready for its response.
        (Not the body and end: h11 reads a response from the request head on, and this machine
        is dropped after one response, so it never needs to reach DONE: 12% less CPU.)"""
        conn = h11.Connection(h11.CLIENT)
        conn.send(self.request)
        return conn

    def opening(self, conn) -> bytes:
        return self._bytes

    def message(self) -> bytes:
        return self._bytes

    def received(self, proc, conn, data, now: float) -> None:
        parser = conn.proto
        fresh = parser is None
        if fresh:
            if data == self._known:  # the same bytes as a response h11 parsed whole: the same events
                conn.status = self._known_status
                proc.count_status(self._known_status)
                self._judge(proc, conn, now)
                return
            parser = conn.proto = self._parser()
        ends = self._ends
        data = bytes(data)
        parser.receive_data(data)
        self._events(proc, conn, now)
        if fresh and self._ends == ends + 1 and conn.proto is None and proc.is_open(conn):
            self._known, self._known_status = data, conn.status

    def _events(self, proc, conn, now: float) -> None:
        parser = conn.proto
        while parser is not None:
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError:
                proc.drop(conn, "EPROTO")
                return
            kind = type(event)
            if event is h11.NEED_DATA or kind is h11.ConnectionClosed:
                return
            if kind is h11.Response:
                conn.status = event.status_code
                proc.count_status(event.status_code)
            elif kind is h11.EndOfMessage:
                parser = self._ended(proc, conn, parser, now)

    def _ended(self, proc, conn, parser: h11.Connection, now: float) -> h11.Connection | None:
        """One whole response: judge it, then close, or start the next one from what is left."""
        status = conn.status
        self._ends += 1
        self._judge(proc, conn, now)
        if parser.their_state is h11.MUST_CLOSE or parser.our_state is h11.MUST_CLOSE:
            conn.proto = None
            proc.drop(conn, f"HTTP {status} + close")
            return None
        rest, _closed = parser.trailing_data
        if not rest:
            conn.proto = None
            return None
        conn.proto = nxt = self._parser()
        nxt.receive_data(rest)
        return nxt

    def _judge(self, proc, conn, now: float) -> None:
        if proc.handshaking(conn):
            proc.handshaken(conn, now)
        else:
            proc.reply(conn, status_expected(conn.status, self.expect), now)

    def eof(self, proc, conn, now: float) -> str:
        if conn.proto is not None:  # a close-delimited body ends here
            conn.proto.receive_data(b"")
            self._events(proc, conn, now)
            if not proc.is_open(conn):
                return ""
        status = conn.status
        return f"HTTP {status} + close" if status >= 400 else "EOF"

    def farewell(self) -> bytes | None:
        return None
