"""serve --protocol websocket: an RFC 6455 echo server (handshake, unmasking, ping/pong, close).

The upgrade request is read with the HTTP responder's head parser (reactor/http.py) and answered
with 101 and the accept token (c10kplan.rfc6455). After it, every data frame is echoed back
unmasked with its own opcode and FIN bit (a fragmented message comes back fragmented the same
way), a ping gets a pong with its payload, a close gets a close with the same code and the
connection is closed once that is written (`closing`, read by the reactor).

Per connection: an idle, upgraded connection is one int in the `_open` set (CPython: about 30-60
bytes of set slot); only a partial frame or head keeps its bytes in `_held` until it completes.
Frames larger than rfc6455.MAX_PAYLOAD get close 1009; a client frame without a mask, RSV bits
set or a bad control frame gets close 1002 (rfc6455.parse). Text frames are echoed without UTF-8
validation (an echo hands back what it got; RFC 6455 8.1 asks an endpoint that reads text to
check it, which an echo server does not do).
"""

from __future__ import annotations

from c10kplan import rfc6455
from c10kplan.reactor.http import BAD, HEAD_MAX, TOO_BIG, parse_head, tokens


def handshake_reply(head_bytes: bytes) -> bytes | None:
    """The 101 answer to an upgrade request head, or None when it is not a valid one (4.2.1)."""
    head = parse_head(head_bytes)
    if head is None or head.method != b"GET" or head.version != b"HTTP/1.1":
        return None
    h = head.headers
    key = h.get(b"sec-websocket-key", b"")
    if (b"host" not in h or h.get(b"upgrade", b"").lower() != b"websocket"
            or b"upgrade" not in tokens(h.get(b"connection", b"")) or h.get(b"sec-websocket-version") != b"13"
            or len(key) != 24):
        return None
    out = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Accept: " + rfc6455.accept_token(key) + b"\r\n")
    offered = h.get(b"sec-websocket-protocol")
    if offered:  # an echo speaks any subprotocol: it takes the first offered
        out += b"Sec-WebSocket-Protocol: " + offered.split(b",")[0].strip() + b"\r\n"
    return out + b"\r\n"


class WebSocketEcho:
    name = "websocket"

    def __init__(self, max_frame: int = rfc6455.MAX_PAYLOAD) -> None:
        self.max_frame = max_frame
        self._open: set[int] = set()  # connections past the handshake
        self._held: dict[int, bytes] = {}  # an incomplete head or frame
        self.closing: set[int] = set()  # connections to close once their reply is written

    def feed(self, fd: int, data: bytes) -> bytes | None:
        if fd in self.closing:
            return None
        held = self._held.pop(fd, None)
        if held:
            data = held + data
        out: list[bytes] = []
        pos = 0
        if fd not in self._open:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > HEAD_MAX:
                    self.closing.add(fd)
                    return TOO_BIG
                self._held[fd] = data
                return None
            reply = handshake_reply(data[:end])
            if reply is None:
                self.closing.add(fd)
                return BAD
            self._open.add(fd)
            out.append(reply)
            pos = end + 4
        try:
            while True:
                frame = rfc6455.parse(data, pos, masked=True, max_payload=self.max_frame)
                if frame is None:
                    break
                fin, op, payload, pos = frame
                if op == rfc6455.OP_PING:
                    out.append(rfc6455.encode(rfc6455.OP_PONG, payload, masked=False))
                elif op == rfc6455.OP_CLOSE:
                    code = rfc6455.close_code(payload)
                    out.append(rfc6455.encode(rfc6455.OP_CLOSE, rfc6455.close_payload(code), masked=False))
                    self.closing.add(fd)
                    return b"".join(out)
                elif op != rfc6455.OP_PONG:
                    out.append(rfc6455.encode(op, payload, masked=False, fin=fin))
        except rfc6455.FrameError as exc:
            out.append(rfc6455.encode(rfc6455.OP_CLOSE, rfc6455.close_payload(exc.code), masked=False))
            self.closing.add(fd)
            return b"".join(out)
        if pos < len(data):
            self._held[fd] = data[pos:]
        return b"".join(out) if out else None

    def eof(self, fd: int) -> bytes | None:
        self._held.pop(fd, None)
        return None

    def forget(self, fd: int) -> None:
        self._open.discard(fd)
        self._held.pop(fd, None)
        self.closing.discard(fd)

    def held_bytes(self) -> int:
        return sum(len(v) for v in self._held.values())
