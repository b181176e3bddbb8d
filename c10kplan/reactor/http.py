"""serve --protocol http: a minimal HTTP/1.1 keep-alive responder (every request -> 200 "ok\\n").

Tight on purpose: an idle connection holds nothing here (no entry in any dict), so the
per-connection cost is the reactor's own. Only a connection in the middle of a request holds
something: the unparsed head (at most HEAD_MAX bytes), or the count of body bytes still to skip
(a body is never buffered). A parser object per connection (h11: about 0.9 KiB once used) would
cost more than everything else serve keeps per idle connection.

What it handles (RFC 9112): pipelined requests (answered in order, in one write), bodies by
Content-Length (skipped), `Connection: close` (answered, then the connection is closed after the
reply is written: the name goes into `closing`, which the reactor reads), HTTP/1.0 (closed
unless keep-alive), HEAD (no body). A request it does not take (bad request line, no Host on
1.1, chunked bodies, a head over HEAD_MAX) gets 400/501/431 and a close.
"""

from __future__ import annotations

HEAD_MAX = 16 * 1024  # bytes of one request head held while it is incomplete
BODY = b"ok\n"


def _response(status: str, body: bytes, *, close: bool, head: bool = False) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode("ascii") + (b"" if head else body)


OK = _response("200 OK", BODY, close=False)
OK_CLOSE = _response("200 OK", BODY, close=True)
OK_HEAD = _response("200 OK", BODY, close=False, head=True)
OK_HEAD_CLOSE = _response("200 OK", BODY, close=True, head=True)
BAD = _response("400 Bad Request", b"bad request\n", close=True)
TOO_BIG = _response("431 Request Header Fields Too Large", b"header too large\n", close=True)
CHUNKED = _response("501 Not Implemented", b"chunked request bodies are not taken\n", close=True)


class RequestHead:
    """What one request head says, parsed from its bytes (without the final CRLFCRLF)."""

    __slots__ = ("method", "target", "version", "headers")

    def __init__(self, method: bytes, target: bytes, version: bytes, headers: dict[bytes, bytes]) -> None:
        self.method, self.target, self.version, self.headers = method, target, version, headers


def parse_head(head: bytes) -> RequestHead | None:
    """The request line and headers (names lowercased, repeats joined by ", "); None if bad."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[0].isalpha() or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        return None
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or b" " in name:
            return None
        name = name.lower()
        value = value.strip()
        headers[name] = headers[name] + b", " + value if name in headers else value
    return RequestHead(parts[0], parts[1], parts[2], headers)


def tokens(value: bytes) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",")}


class HttpResponder:
    name = "http"

    def __init__(self) -> None:
        self._held: dict[int, bytes | int] = {}  # an incomplete head (bytes) or body bytes to skip (int)
        self.closing: set[int] = set()  # connections to close once their reply is written

    def feed(self, fd: int, data: bytes) -> bytes | None:
        if fd in self.closing:
            return None  # after a closing reply, nothing more is read as a request
        held = self._held.pop(fd, None)
        pos = 0
        if isinstance(held, int):  # the rest of a body
            pos = min(held, len(data))
            if held > pos:
                self._held[fd] = held - pos
                return None
        elif held:
            data = held + data
        out: list[bytes] = []
        while pos < len(data):
            end = data.find(b"\r\n\r\n", pos)
            if end < 0:
                if len(data) - pos > HEAD_MAX:
                    out.append(TOO_BIG)
                    self.closing.add(fd)
                else:
                    self._held[fd] = data[pos:]
                break
            reply, close, body = self._answer(data[pos:end])
            out.append(reply)
            if close:
                self.closing.add(fd)
                break
            pos = end + 4 + body
            if pos > len(data):
                self._held[fd] = pos - len(data)
                break
        return b"".join(out) if out else None

    def _answer(self, head_bytes: bytes) -> tuple[bytes, bool, int]:
        """(reply, close after it, body bytes that follow the head)."""
        head = parse_head(head_bytes)
        if head is None or (head.version == b"HTTP/1.1" and b"host" not in head.headers):
            return BAD, True, 0
        h = head.headers
        if b"transfer-encoding" in h:
            return CHUNKED, True, 0
        length = h.get(b"content-length", b"0")
        if not length.isdigit() or len(length) > 18:
            return BAD, True, 0
        conn = tokens(h.get(b"connection", b""))
        close = b"close" in conn or (head.version == b"HTTP/1.0" and b"keep-alive" not in conn)
        if head.method == b"HEAD":
            return (OK_HEAD_CLOSE if close else OK_HEAD), close, int(length)
        return (OK_CLOSE if close else OK), close, int(length)

    def eof(self, fd: int) -> bytes | None:
        self._held.pop(fd, None)
        return None

    def forget(self, fd: int) -> None:
        self._held.pop(fd, None)
        self.closing.discard(fd)

    def held_bytes(self) -> int:
        return sum(len(v) for v in self._held.values() if isinstance(v, bytes))
