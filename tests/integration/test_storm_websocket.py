"""storm --protocol websocket against the `websockets` library's echo server (PyPI, started as a
subprocess on a free loopback port) and against our own `serve --protocol websocket`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from c10kplan.storm.config import StormConfig
from c10kplan.storm.runner import run_storm
from c10kplan.verify.server import start_server

from .stormcli import adds_up, cli
from .thirdparty import WebSocketsEcho

pytest.importorskip("websockets", reason="the websockets library is a test extra (.ci/run installs it)")



@pytest.fixture
def ws_echo(tmp_path: Path):
    started: list[WebSocketsEcho] = []

    def start(**kw) -> WebSocketsEcho:
        d = tmp_path / f"ws{len(started)}"
        d.mkdir()
        srv = WebSocketsEcho(d, **kw)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.close()


def test_2000_connections_at_1_msg_per_s_byte_exact(ws_echo):
    srv = ws_echo()
    done = cli("storm", f"ws://127.0.0.1:{srv.port}/", "-n", "2000", "--message-rate", "1",
                "--duration", "5", "--message-size", "200", "--ping-interval", "2", "--json")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    doc = json.loads(done.stdout)
    assert doc["established"] == doc["held"] == 2000 and doc["failures"] == {}
    assert 9_900 <= doc["messages_sent"] <= 10_100
    assert doc["messages_received"] == doc["messages_sent"] and doc["mismatches"] == 0
    adds_up(doc)
    srv.close()
    # our close handshake at the end: the server saw clean closes, no "no close frame" errors
    assert "no close frame" not in srv.log.read_text()


def test_server_initiated_close_is_counted_with_its_code(ws_echo):
    srv = ws_echo(close_after=1.0)
    done = cli("storm", f"ws://127.0.0.1:{srv.port}/", "-n", "100", "--message-rate", "2",
                "--duration", "2.5", "--json")
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    assert doc["close_codes"] == {"1001": 100}
    assert doc["failures"] == {"WS close 1001": 100} and doc["held"] == 0
    drop = doc["drops"]["WS close 1001"]
    assert 0.9 <= drop["min"] and drop["max"] <= 1.6
    adds_up(doc)


def test_binary_frames_and_subprotocol_against_our_serve():
    srv = start_server(workers=2, protocol="websocket")
    try:
        done = cli("storm", f"ws://{srv.host}:{srv.port}/chat", "-n", "300", "--message-rate", "5",
                    "--duration", "1.5", "--ws-binary", "--subprotocol", "chat", "--ping-interval", "0.3",
                    "--message-size", "3000", "--json")
    finally:
        srv.close()
    assert done.returncode == 0, done.stdout[-2000:]
    doc = json.loads(done.stdout)
    assert doc["held"] == 300 and doc["messages_received"] == doc["messages_sent"] >= 2000
    adds_up(doc)


def test_storm_websocket_against_our_serve_in_process():
    srv = start_server(workers=1, protocol="websocket")
    try:
        cfg = StormConfig(host=srv.host, port=srv.port, connections=1000, processes=2, message_rate=4,
                          duration=2.0, protocol="websocket", server_name=f"{srv.host}:{srv.port}")
        r = run_storm(cfg)
    finally:
        srv.close()
    assert r.ok, r.problems
    assert r.held == 1000 and r.messages_received == r.messages_sent >= 7000
