"""What the server answers: echo, rot13 (line-oriented, as in the course notes), discard, and
http (reactor/http.py: a keep-alive responder) and websocket (reactor/websocket.py: an echo).

A protocol turns the bytes read from one connection into the bytes to send back. The reactor
calls `feed(fd, data)` for every read and `eof(fd)` when the peer shuts its write side, and
`forget(fd)` when the connection closes. `echo` is special-cased by the reactor (it sends what it
read without calling anything); `discard` never answers, to hold idle connections cheaply.
A protocol that ends connections itself (an HTTP `Connection: close`, a WebSocket close) has a
`closing` set: an fd it put there after `feed` is closed by the reactor once the reply is
written, as after an EOF.

Memory: rot13 holds back an unterminated line until its newline arrives, but never more than
LINE_MAX bytes: a longer line is answered in pieces, so a peer cannot grow server memory by
never sending a newline.
"""

from __future__ import annotations

from typing import Protocol as _Protocol

LINE_MAX = 16 * 1024  # bytes of an unterminated line held per connection

ROT13 = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    b"NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm",
)


def rot13(data: bytes) -> bytes:
    """Rotate ASCII letters by 13; every other byte passes unchanged."""
    return data.translate(ROT13)


class Protocol(_Protocol):
    name: str

    def feed(self, fd: int, data: bytes) -> bytes | None: ...

    def eof(self, fd: int) -> bytes | None: ...

    def forget(self, fd: int) -> None: ...


class Echo:
    name = "echo"

    def feed(self, fd: int, data: bytes) -> bytes | None:
        return data

    def eof(self, fd: int) -> bytes | None:
        return None

    def forget(self, fd: int) -> None:
        return None


class Discard(Echo):
    name = "discard"

    def feed(self, fd: int, data: bytes) -> bytes | None:
        return None


class Rot13Lines:
    """Answer each complete line (up to and including b"\\n") with its rot13; an unterminated tail
    is answered when the line completes, when it passes LINE_MAX, or when the peer half-closes."""

    name = "rot13"

    def __init__(self, line_max: int = LINE_MAX) -> None:
        self.line_max = line_max
        self._tails: dict[int, bytes] = {}  # only connections with a partial line have an entry

    def feed(self, fd: int, data: bytes) -> bytes | None:
        tail = self._tails.pop(fd, None)
        if tail:
            data = tail + data
        cut = data.rfind(b"\n") + 1
        if len(data) - cut > self.line_max:
            cut = len(data)
        if cut < len(data):
            self._tails[fd] = data[cut:]
        return data[:cut].translate(ROT13) if cut else None

    def eof(self, fd: int) -> bytes | None:
        tail = self._tails.pop(fd, None)
        return tail.translate(ROT13) if tail else None

    def forget(self, fd: int) -> None:
        self._tails.pop(fd, None)

    def held_bytes(self) -> int:
        return sum(len(t) for t in self._tails.values())


def _http() -> Protocol:
    from c10kplan.reactor.http import HttpResponder

    return HttpResponder()


def _websocket() -> Protocol:
    from c10kplan.reactor.websocket import WebSocketEcho

    return WebSocketEcho()


PROTOCOLS = {"echo": Echo, "rot13": Rot13Lines, "discard": Discard, "http": _http, "websocket": _websocket}


def make_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]()
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}") from None
