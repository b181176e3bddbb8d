"""WebSocket (RFC 6455): an HTTP/1.1 upgrade when the connection opens, then each message is one
masked text (or `--ws-binary`) frame of `--message-size` bytes, answered by an echo of the same
type and bytes; pings answered with pongs, `--ping-interval` heartbeats, a close handshake at
the end, server close codes counted.

The upgrade is sent and its answer parsed by h11 (the same HTTP/1.1 machine as storm http),
checked as RFC 6455 4.1 says (101, `Upgrade: websocket`, `Connection: upgrade`, the accept
token of our key, a subprotocol we offered). It lives on the connection only during the
handshake. Frames go through c10kplan.rfc6455 (why not wsproto's Connection: see there): an idle
connection keeps nothing (`conn.proto` is None); a partial frame keeps its unparsed bytes, and
a fragmented message its opcode and pieces, until they complete.

Drops: a server close frame is answered with a close of the same code and the connection counts
as dropped under "WS close <code>" (`close_codes` counts the codes); a rejected upgrade as
"HTTP <status>"; a frame breaking RFC 6455 as "EPROTO" (we send close 1002 first).
"""

from __future__ import annotations

import h11

from c10kplan import rfc6455
from c10kplan.storm.config import StormConfig
from c10kplan.storm.payload import make_message


# The largest server frame taken (a reply is at most --message-size, itself at most 1 MiB):
# past it close 1009 and drop, so a partial frame never holds more than this per connection.


class _Partial:
    """What a connection keeps between reads while a frame or fragmented message is unfinished."""

    __slots__ = ("buf", "op", "parts")

    def __init__(self) -> None:
        self.buf = b""
        self.op = -1  # opcode of a fragmented message in progress; -1 = none
        self.parts: list[bytes] = []


class _Upgrade:
    __slots__ = ("parser", "key")

    def __init__(self, parser: h11.Connection, key: bytes) -> None:
        self.parser = parser
        self.key = key


class WebSocketWire:
    handshake = True
    expects_reply = True

    def __init__(self, cfg: StormConfig) -> None:
        self.payload = make_message(cfg.message_size)
        self.opcode = rfc6455.OP_BINARY if cfg.ws_binary else rfc6455.OP_TEXT
        names = {k.lower() for k, _ in cfg.headers}
        self.headers = ([] if "host" in names else [("Host", cfg.authority)]) + [
            ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13")]
        if cfg.subprotocols:
            self.headers.append(("Sec-WebSocket-Protocol", ", ".join(cfg.subprotocols)))
        self.headers.extend(cfg.headers)
        self.path = cfg.path
        self.subprotocols = {p.encode() for p in cfg.subprotocols}

    # -- the upgrade ------------------------------------------------------------------------

    def opening(self, conn) -> bytes:
        key = rfc6455.new_key()
        parser = h11.Connection(h11.CLIENT)
        data = parser.send(h11.Request(method="GET", target=self.path,
                                       headers=self.headers + [("Sec-WebSocket-Key", key)]))
        data += parser.send(h11.EndOfMessage())
        conn.proto = _Upgrade(parser, key)
        return data

    def _upgrade(self, proc, conn, data, now: float) -> bytes | None:
        """Feed the upgrade's answer; the bytes after it (frames) once accepted, else None."""
        up: _Upgrade = conn.proto
        up.parser.receive_data(bytes(data))
        try:
            event = up.parser.next_event()
        except h11.RemoteProtocolError:
            proc.drop(conn, "EPROTO")
            return None
        if event is h11.NEED_DATA:
            return None
        status = getattr(event, "status_code", 0)
        conn.status = status
        if status != 101:
            proc.count_status(status)
            proc.drop(conn, f"HTTP {status}")
            return None
        why = self._refusal(event, up.key)
        if why:
            proc.drop(conn, why)
            return None
        rest, _closed = up.parser.trailing_data
        conn.proto = None
        proc.handshaken(conn, now)
        return rest

    def _refusal(self, event, key: bytes) -> str:
        """Why a 101 does not complete the handshake (RFC 6455 4.1), "" when it does."""
        headers = {name.lower(): value for name, value in event.headers}
        tokens = {t.strip().lower() for t in headers.get(b"connection", b"").split(b",")}
        if headers.get(b"upgrade", b"").lower() != b"websocket" or b"upgrade" not in tokens:
            return "EPROTO"
        if headers.get(b"sec-websocket-accept") != rfc6455.accept_token(key):
            return "EPROTO"
        proto = headers.get(b"sec-websocket-protocol")
        if proto is not None and proto not in self.subprotocols:
            return "EPROTO"
        return ""

    # -- frames -----------------------------------------------------------------------------

    def message(self) -> bytes:
        return rfc6455.encode(self.opcode, self.payload, masked=True)

    def ping(self) -> bytes:
        return rfc6455.encode(rfc6455.OP_PING, b"c10k", masked=True)

    def farewell(self) -> bytes:
        return rfc6455.encode(rfc6455.OP_CLOSE, rfc6455.close_payload(rfc6455.NORMAL), masked=True)

    def received(self, proc, conn, data, now: float) -> None:
        if proc.handshaking(conn):
            data = self._upgrade(proc, conn, data, now)
            if not data:
                return
        part: _Partial | None = conn.proto
        buf = part.buf + bytes(data) if part is not None and part.buf else bytes(data)
        pos = 0
        try:
            while True:
                frame = rfc6455.parse(buf, pos, masked=False, max_payload=rfc6455.MAX_PAYLOAD)
                if frame is None:
                    break
                fin, op, payload, pos = frame
                if op >= rfc6455.OP_CLOSE:
                    if not self._control(proc, conn, op, payload):
                        return
                    continue
                if part is None and (not fin or op == rfc6455.OP_CONT):
                    part = conn.proto = _Partial()
                if op != rfc6455.OP_CONT:
                    if part is not None and part.op != -1:
                        raise rfc6455.FrameError(rfc6455.PROTOCOL_ERROR, "new message inside a fragmented one")
                    if fin:
                        proc.reply(conn, op == self.opcode and payload == self.payload, now)
                        continue
                    part.op, part.parts = op, [payload]
                    continue
                if part.op == -1:
                    raise rfc6455.FrameError(rfc6455.PROTOCOL_ERROR, "continuation without a message")
                part.parts.append(payload)
                if fin:
                    whole = b"".join(part.parts)
                    proc.reply(conn, part.op == self.opcode and whole == self.payload, now)
                    part.op, part.parts = -1, []
        except rfc6455.FrameError as exc:
            proc.out(conn, rfc6455.encode(rfc6455.OP_CLOSE, rfc6455.close_payload(exc.code), masked=True))
            proc.drop(conn, "EPROTO")
            return
        rest = buf[pos:]
        if part is None:
            if rest:
                part = conn.proto = _Partial()
                part.buf = rest
        elif rest or part.op != -1:
            part.buf = rest
        else:
            conn.proto = None  # idle again: nothing kept

    def _control(self, proc, conn, op: int, payload: bytes) -> bool:
        """A control frame; False when it ended the connection."""
        if op == rfc6455.OP_PING:
            proc.out(conn, rfc6455.encode(rfc6455.OP_PONG, payload, masked=True))
            return True
        if op == rfc6455.OP_PONG:  # the answer to a heartbeat
            return True
        try:
            code = rfc6455.close_code(payload)
        except rfc6455.FrameError:
            code = rfc6455.PROTOCOL_ERROR
        if proc.closing(conn):  # the answer to our own close at the end
            proc.drop(conn, None)
            return False
        proc.count_close(code)
        proc.out(conn, rfc6455.encode(rfc6455.OP_CLOSE, rfc6455.close_payload(code), masked=True))
        proc.drop(conn, f"WS close {code}")
        return False

    def eof(self, proc, conn, now: float) -> str:
        if proc.closing(conn):
            return ""
        return "EOF"
