"""Pure tests of the protocol pieces: the RFC 6455 codec (checked against wsproto both ways),
serve's http and websocket responders, the storm's wires against a recording storm, targets,
--expect-status and headers, the result's buckets and drop times. No sockets, no sleeps."""

from __future__ import annotations

import os
import socket
import struct
from collections import deque

import h11
import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage

from c10kplan import rfc6455
from c10kplan.errors import BadInput
from c10kplan.reactor.http import HttpResponder
from c10kplan.reactor.websocket import WebSocketEcho
from c10kplan.storm.config import (
    StormConfig,
    parse_expect_status,
    parse_header,
    protocol_settings,
    resolve_target,
    status_expected,
)
from c10kplan.storm.protocols import make_wire
from c10kplan.storm.result import DROP_PREFIX, ProcessResult, combine, failures_text
from c10kplan.storm.stats import LatencyRecorder

# -- RFC 6455 codec against wsproto ------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
def test_client_frames_decode_in_wsproto_server(size):
    server = Connection(ConnectionType.SERVER)
    payload = os.urandom(size)
    frame = rfc6455.encode(rfc6455.OP_BINARY, payload, masked=True)
    assert frame[1] & 0x80  # masked
    server.receive_data(frame)
    events = list(server.events())
    assert len(events) == 1 and isinstance(events[0], BytesMessage) and events[0].data == payload


@pytest.mark.parametrize("size", [0, 3, 125, 126, 65536])
def test_wsproto_server_frames_decode_here(size):
    server = Connection(ConnectionType.SERVER)
    text = "x" * size
    wire = server.send(TextMessage(text)) + server.send(Ping(b"hb"))
    fin, op, payload, pos = rfc6455.parse(wire, 0, masked=False)
    assert (fin, op, payload) == (True, rfc6455.OP_TEXT, text.encode())
    fin, op, payload, end = rfc6455.parse(wire, pos, masked=False)
    assert (op, payload, end) == (rfc6455.OP_PING, b"hb", len(wire))
    for cut in range(len(wire[:pos])):  # every prefix of a frame is "not yet"
        assert rfc6455.parse(wire[:cut], 0, masked=False) is None


def test_masks_differ_per_frame_and_direction_is_enforced():
    a = rfc6455.encode(rfc6455.OP_TEXT, b"same", masked=True)
    b = rfc6455.encode(rfc6455.OP_TEXT, b"same", masked=True)
    assert a[2:6] != b[2:6] or a != b
    with pytest.raises(rfc6455.FrameError) as exc:
        rfc6455.parse(rfc6455.encode(rfc6455.OP_TEXT, b"x", masked=False), 0, masked=True)
    assert exc.value.code == rfc6455.PROTOCOL_ERROR
    with pytest.raises(rfc6455.FrameError):
        rfc6455.parse(bytes([0x89, 126]) + struct.pack("!H", 200) + b"x" * 200, 0, masked=False)
    with pytest.raises(rfc6455.FrameError) as exc:
        rfc6455.parse(bytes([0x82, 127]) + struct.pack("!Q", 1 << 40), 0, masked=False)
    assert exc.value.code == rfc6455.TOO_BIG


def test_accept_token_is_rfc_example():
    # RFC 6455 1.3: key "dGhlIHNhbXBsZSBub25jZQ==" -> "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
    assert rfc6455.accept_token(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


# -- serve --protocol http ----------------------------------------------------------------------


def _responses(data: bytes) -> list[h11.Response]:
    client = h11.Connection(h11.CLIENT)
    out = []
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    while True:
        ev = client.next_event()
        if ev is h11.NEED_DATA or isinstance(ev, h11.ConnectionClosed):
            return out
        if isinstance(ev, h11.Response):
            out.append(ev)
        if isinstance(ev, h11.EndOfMessage):
            if client.our_state is h11.MUST_CLOSE:
                return out
            rest = client.trailing_data[0]
            if not rest:
                return out
            client = h11.Connection(h11.CLIENT)
            client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
            client.send(h11.EndOfMessage())
            client.receive_data(rest)


def test_http_responder_pipelines_in_order_and_keeps_nothing_idle():
    r = HttpResponder()
    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    out = r.feed(5, req * 3)
    assert [x.status_code for x in _responses(out)] == [200, 200, 200]
    assert 5 not in r.closing and r.held_bytes() == 0 and not r._held
    # a request split anywhere is answered once it completes
    assert r.feed(5, req[:10]) is None and r.held_bytes() == 10
    assert _responses(r.feed(5, req[10:]))[0].status_code == 200 and not r._held


def test_http_responder_skips_bodies_and_closes_when_asked():
    r = HttpResponder()
    post = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123"
    assert len(_responses(r.feed(1, post))) == 1
    assert r._held[1] == 6  # body bytes to skip, not kept
    out = r.feed(1, b"456789GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    resp = _responses(out)
    assert [x.status_code for x in resp] == [200] and (b"connection", b"close") in list(resp[0].headers)
    assert 1 in r.closing and r.feed(1, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") is None
    r.forget(1)
    assert 1 not in r.closing


@pytest.mark.parametrize("req, status", [
    (b"GET / HTTP/1.1\r\n\r\n", b"400"),  # no Host
    (b"BLAH\r\n\r\n", b"400"),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", b"501"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * 20000, b"431"),
])
def test_http_responder_refuses_and_closes(req, status):
    r = HttpResponder()
    out = r.feed(3, req)
    assert out.split(b" ")[1] == status and 3 in r.closing


def test_http_10_closes_unless_keep_alive():
    r = HttpResponder()
    r.feed(1, b"GET / HTTP/1.0\r\n\r\n")
    assert 1 in r.closing
    r.feed(2, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert 2 not in r.closing


# -- serve --protocol websocket ----------------------------------------------------------------


def _upgrade(key: bytes = b"dGhlIHNhbXBsZSBub25jZQ==", extra: bytes = b"") -> bytes:
    return (b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n" + extra + b"\r\n")


def test_websocket_echo_handshake_echo_ping_close():
    ws = WebSocketEcho()
    out = ws.feed(7, _upgrade(extra=b"Sec-WebSocket-Protocol: chat, superchat\r\n"))
    assert out.startswith(b"HTTP/1.1 101 ") and b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in out
    assert b"Sec-WebSocket-Protocol: chat\r\n" in out
    assert not ws._held  # idle after the handshake: only the fd in _open
    msg = rfc6455.encode(rfc6455.OP_TEXT, b"hello", masked=True)
    ping = rfc6455.encode(rfc6455.OP_PING, b"p", masked=True)
    data = msg + ping + msg[:3]  # two frames and the start of a third
    out = ws.feed(7, data)
    assert rfc6455.parse(out, 0, masked=False)[:3] == (True, rfc6455.OP_TEXT, b"hello")
    assert ws._held[7] == msg[:3]
    out2 = ws.feed(7, msg[3:])
    assert out.endswith(rfc6455.encode(rfc6455.OP_PONG, b"p", masked=False))
    assert out2 == rfc6455.encode(rfc6455.OP_TEXT, b"hello", masked=False) and not ws._held
    out = ws.feed(7, rfc6455.encode(rfc6455.OP_CLOSE, struct.pack("!H", 1000), masked=True))
    assert out == rfc6455.encode(rfc6455.OP_CLOSE, struct.pack("!H", 1000), masked=False)
    assert 7 in ws.closing


def test_websocket_echo_refuses_bad_upgrades_and_unmasked_frames():
    ws = WebSocketEcho()
    assert ws.feed(1, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 400") and 1 in ws.closing
    ws.feed(2, _upgrade())
    out = ws.feed(2, rfc6455.encode(rfc6455.OP_TEXT, b"x", masked=False))
    assert rfc6455.parse(out, 0, masked=False)[1:3] == (rfc6455.OP_CLOSE, struct.pack("!H", 1002))
    assert 2 in ws.closing


def test_websocket_echo_talks_to_wsproto_client():
    from wsproto import WSConnection
    from wsproto.events import AcceptConnection, Request

    client = WSConnection(ConnectionType.CLIENT)
    ws = WebSocketEcho()
    out = ws.feed(4, client.send(Request(host="x", target="/")))
    client.receive_data(out)
    assert isinstance(next(client.events()), AcceptConnection)
    client.receive_data(ws.feed(4, client.send(Message(data=b"\x00\x01binary"))))
    ev = next(client.events())
    assert isinstance(ev, BytesMessage) and ev.data == b"\x00\x01binary"
    client.receive_data(ws.feed(4, client.send(CloseConnection(code=1001))))
    assert next(client.events()).code == 1001


# -- the storm's wires, against a recording storm ----------------------------------------------


class _Conn:
    def __init__(self) -> None:
        self.pending = deque()
        self.proto = None
        self.status = 0
        self.roff = 0
        self.bad = False
        self.state = "handshake"


class _Storm:
    """Records what a wire calls back; replies pop pending like client.StormProcess."""

    def __init__(self) -> None:
        self.replies: list[bool] = []
        self.sent: list[bytes] = []
        self.dropped: list[str | None] = []
        self.statuses: list[int] = []
        self.codes: list[int] = []
        self.unexpected = 0

    def reply(self, conn, ok, now):
        if not conn.pending:
            self.unexpected += 1
            return
        conn.pending.popleft()
        self.replies.append(ok)

    def handshaking(self, conn):
        return conn.state == "handshake"

    def handshaken(self, conn, now):
        conn.state = "open"

    def closing(self, conn):
        return conn.state == "closing"

    def is_open(self, conn):
        return conn.state != "closed"

    def out(self, conn, data):
        self.sent.append(data)

    def drop(self, conn, why):
        conn.state = "closed"
        self.dropped.append(why)

    def count_status(self, s):
        self.statuses.append(s)

    def count_close(self, c):
        self.codes.append(c)


def _cfg(**kw) -> StormConfig:
    return StormConfig(host="127.0.0.1", port=80, connections=1, **kw)


def test_echo_mismatch_is_per_message_not_per_chunk():
    wire = make_wire(_cfg(message_size=64))
    storm, conn = _Storm(), _Conn()
    conn.state = "open"
    conn.pending.extend([(0, 0)] * 3)
    good = wire.message()
    bad = b"X" + good[1:]
    wire.received(storm, conn, memoryview(good + bad + good[:10]), 1.0)
    wire.received(storm, conn, memoryview(good[10:]), 1.0)
    assert storm.replies == [True, False, True]
    # 400 bytes of an nginx error page: at most one mismatched message, the rest unexpected
    storm2, conn2 = _Storm(), _Conn()
    conn2.pending.append((0, 0))
    wire.received(storm2, conn2, memoryview(b"H" * 400), 1.0)
    assert storm2.replies == [False] and storm2.unexpected == 5


def test_http_wire_pipelined_responses_statuses_and_close():
    wire = make_wire(_cfg(protocol="http", server_name="example:80", headers=(("X-A", "1"),)))
    req = wire.opening(None)
    assert req.startswith(b"GET / HTTP/1.1\r\n") and b"host: example:80" in req.lower() and b"X-A: 1" in req
    storm, conn = _Storm(), _Conn()
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    missing = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    conn.pending.extend([(0, 0)] * 3)
    stream = ok + chunked + missing + ok[:20]
    for i in range(0, len(stream), 7):  # in pieces, across response boundaries
        wire.received(storm, conn, memoryview(stream[i:i + 7]), 1.0)
    assert conn.state == "open" and storm.replies == [True, False] and storm.statuses == [200, 200, 404]
    assert conn.proto is not None  # mid-response
    wire.received(storm, conn, memoryview(ok[20:]), 1.0)
    assert storm.replies == [True, False, True] and conn.proto is None  # idle: no parser kept
    conn.pending.append((0, 0))
    wire.received(storm, conn, memoryview(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"), 1.0)
    assert storm.dropped == ["HTTP 200 + close"]


def test_http_wire_eof_after_error_status():
    wire = make_wire(_cfg(protocol="http"))
    storm, conn = _Storm(), _Conn()
    conn.state = "open"
    conn.pending.append((0, 0))
    wire.received(storm, conn, memoryview(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"), 1.0)
    assert wire.eof(storm, conn, 1.0) == "HTTP 400 + close"
    conn.status = 200
    assert wire.eof(storm, conn, 1.0) == "EOF"


def _ws_open(wire, storm, conn):
    request = wire.opening(conn)
    key = [line.split(b": ")[1] for line in request.split(b"\r\n") if line.lower().startswith(b"sec-websocket-key")][0]
    reply = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Accept: " + rfc6455.accept_token(key) + b"\r\n\r\n")
    return reply


def test_websocket_wire_handshake_echo_ping_and_server_close():
    wire = make_wire(_cfg(protocol="websocket", message_size=200))
    storm, conn = _Storm(), _Conn()
    reply = _ws_open(wire, storm, conn)
    payload = wire.payload
    echo = rfc6455.encode(rfc6455.OP_TEXT, payload, masked=False)
    wrong = rfc6455.encode(rfc6455.OP_BINARY, payload, masked=False)
    ping = rfc6455.encode(rfc6455.OP_PING, b"hb", masked=False)
    conn.pending.extend([(0, 0)] * 2)
    wire.received(storm, conn, memoryview(reply + echo[:50]), 1.0)  # frames right after the 101
    assert conn.state == "open" and conn.proto is not None
    wire.received(storm, conn, memoryview(echo[50:] + ping + wrong), 1.0)
    assert storm.replies == [True, False] and conn.proto is None
    pong = storm.sent[0]
    assert rfc6455.parse(pong, 0, masked=True)[1:3] == (rfc6455.OP_PONG, b"hb")
    wire.received(storm, conn, memoryview(rfc6455.encode(rfc6455.OP_CLOSE, struct.pack("!H", 1001), masked=False)), 1.0)
    assert storm.codes == [1001] and storm.dropped == ["WS close 1001"]
    assert rfc6455.parse(storm.sent[-1], 0, masked=True)[1:3] == (rfc6455.OP_CLOSE, struct.pack("!H", 1001))


def test_websocket_wire_refuses_a_bad_accept_and_reassembles_fragments():
    wire = make_wire(_cfg(protocol="websocket", message_size=10))
    storm, conn = _Storm(), _Conn()
    wire.opening(conn)
    bad = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n"
    wire.received(storm, conn, memoryview(bad), 1.0)
    assert storm.dropped == ["EPROTO"]
    storm, conn = _Storm(), _Conn()
    wire.received(storm, conn, memoryview(_ws_open(wire, storm, conn)), 1.0)
    p = wire.payload
    frags = (rfc6455.encode(rfc6455.OP_TEXT, p[:4], masked=False, fin=False)
             + rfc6455.encode(rfc6455.OP_CONT, p[4:], masked=False))
    conn.pending.append((0, 0))
    wire.received(storm, conn, memoryview(frags), 1.0)
    assert storm.replies == [True] and conn.proto is None


# -- targets, statuses, headers ---------------------------------------------------------------


def _resolver(answers):
    def resolve(name, port, family, kind):
        if name not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, kind, 6, "", (a, port)) for a in answers[name]]
    return resolve


def test_targets_ipv6_urls_and_hostnames():
    r = _resolver({"box": ["::1", "127.0.0.7"], "six": ["::1"]})
    assert resolve_target("[::1]:8080", r).host == "::1"
    t = resolve_target("http://box:81/a/b?c=1", r)
    assert (t.host, t.port, t.scheme, t.path, t.authority) == ("127.0.0.7", 81, "http", "/a/b?c=1", "box:81")
    assert resolve_target("ws://six/x", r).host == "::1" and resolve_target("ws://six/x", r).port == 80
    assert resolve_target("ws://[::1]:9/", r).authority == "[::1]:9"
    assert resolve_target("127.0.0.1:5", r).path == ""
    for bad in ("box", "[::1]", "https://box/", "box:0", "box:70000", "[zz]:1", "127.0.0.1:١٢", ":80"):
        with pytest.raises(BadInput):
            resolve_target(bad, r)
    with pytest.raises(BadInput, match="does not resolve"):
        resolve_target("nowhere:80", r)


def test_protocol_follows_scheme_and_options_are_checked():
    t = resolve_target("ws://127.0.0.1:9/chat")
    s = protocol_settings(t, None, headers=["X-Token: a"], subprotocols=["chat"])
    assert s["protocol"] == "websocket" and s["path"] == "/chat" and s["headers"] == (("X-Token", "a"),)
    assert s["server_name"] == "127.0.0.1:9"
    with pytest.raises(BadInput):
        protocol_settings(t, "http")
    h = protocol_settings(resolve_target("127.0.0.1:9"), "http", headers=["Host: api.example"], method="post")
    assert h["server_name"] == "api.example" and h["method"] == "POST" and h["headers"] == ()
    for bad in ("X", "Bad Name: v", "X: a\r\nY: b"):
        with pytest.raises(BadInput):
            parse_header(bad)
    with pytest.raises(BadInput):
        protocol_settings(t, None, path="no-slash")


def test_expect_status():
    assert parse_expect_status("2xx, 304") == ("2xx", "304")
    assert status_expected(204, ("2xx",)) and status_expected(304, ("2xx", "304"))
    assert not status_expected(404, ("2xx",)) and not status_expected(301, ("2xx", "304"))
    for bad in ("", "2x", "600", "abc", "2xx,"[:2]):
        with pytest.raises(BadInput):
            parse_expect_status(bad)


# -- buckets and hold times at drop -----------------------------------------------------------


def test_combine_counts_lost_statuses_and_drop_times():
    rec = LatencyRecorder()
    for _ in range(2000):
        rec.record_seconds(60.0)
    p = ProcessResult(index=0, pid=1, target=2000, established=2000, held=0, failures={"EOF": 2000},
                      messages_sent=10, messages_received=4, mismatches=2, unanswered=1, lost_on_drop=3,
                      http_statuses={"200": 4, "404": 2})
    r = combine(target="t", protocol="http", connections=2000, source_addresses=1, processes=[p],
                histograms=[{DROP_PREFIX + "EOF": rec.encode()}], expect_status=("2xx",))
    assert r.messages_received + r.mismatches + r.unanswered + r.lost_on_drop == r.messages_sent
    assert r.drops["EOF"].count == 2000 and abs(r.drops["EOF"].p50 - 60.0) < 0.1
    assert failures_text(r.failures, r.drops) == "EOF x2000 at 60.0 s"
    assert r.http_status_classes == {"2xx": 4, "4xx": 2}
    assert any("404 x2" in x for x in r.problems) and any("lost" in x for x in r.problems)
