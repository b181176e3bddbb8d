"""serve --protocol http and --protocol websocket on real sockets, driven by third-party clients
(the `websockets` library's client, the stdlib's http.client) and by raw bytes for pipelining."""

from __future__ import annotations

import http.client
import socket

import pytest

from c10kplan.verify.server import start_server


@pytest.fixture(params=["epoll", "poll"])
def serve(request):
    started = []

    def start(protocol: str):
        srv = start_server(workers=1, protocol=protocol, backend=request.param)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.close()
        assert not srv.alive()


def _read_until_closed(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    sock.settimeout(10)
    out = b""
    while len(out) < limit:
        got = sock.recv(65536)
        if not got:
            return out
        out += got
    raise AssertionError("server never closed")


def test_http_pipelined_requests_then_connection_close(serve):
    srv = serve("http")
    with socket.create_connection((srv.host, srv.port), timeout=10) as s:
        req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        s.sendall(req * 5 + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + req)
        data = _read_until_closed(s)  # the server closes after the 6th response
    assert data.count(b"HTTP/1.1 200 OK") == 6 and data.endswith(b"ok\n")
    assert data.count(b"Connection: close") == 1


def test_http_keep_alive_with_http_client(serve):
    srv = serve("http")
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    try:
        for _ in range(3):  # one connection, three requests
            conn.request("POST", "/any", body=b"x" * 5000)
            resp = conn.getresponse()
            assert resp.status == 200 and resp.read() == b"ok\n" and not resp.will_close
    finally:
        conn.close()


def test_websocket_echo_with_the_websockets_client(serve):
    sync = pytest.importorskip("websockets.sync.client", reason="websockets is a test extra")
    from websockets.exceptions import ConnectionClosedOK

    srv = serve("websocket")
    with sync.connect(f"ws://{srv.host}:{srv.port}/", subprotocols=["chat"], max_size=None,
                      open_timeout=10, close_timeout=10) as ws:
        assert ws.subprotocol == "chat"
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        big = bytes(range(256)) * 1000
        ws.send(big)
        assert ws.recv(timeout=10) == big
        ws.send(["frag", "mented"])  # a fragmented message comes back whole
        assert ws.recv(timeout=10) == "fragmented"
        assert ws.ping(b"hb").wait(10)
        ws.close(code=1001)
    assert ws.close_code == 1001
    with pytest.raises(ConnectionClosedOK):
        ws.recv(timeout=1)


def test_websocket_bad_upgrade_gets_400_and_close(serve):
    srv = serve("websocket")
    with socket.create_connection((srv.host, srv.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_until_closed(s).startswith(b"HTTP/1.1 400 ")
