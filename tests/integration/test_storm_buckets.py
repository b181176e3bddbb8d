"""Every sent message lands in exactly one bucket (issue 12): answered + mismatched +
unanswered + lost-on-drop == sent, for echo, http and websocket, with drops among them.

The echo drop case runs against socat (third-party): each connection's server side is
`head -c 200`, which reads 200 bytes, never answers, and exits: the connection closes under
messages still waiting for replies (lost on drop), and later sends may fail (EPIPE/ECONNRESET)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from c10kplan.storm.config import StormConfig
from c10kplan.storm.runner import run_storm
from c10kplan.verify.server import start_server

from .thirdparty import NGINX, Nginx, WebSocketsEcho, free_port, stop, wait_listening


def _adds_up(r) -> None:
    assert r.messages_received + r.mismatches + r.unanswered + r.lost_on_drop == r.messages_sent, r.model_dump()
    assert r.mismatches <= r.messages_sent


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed (.ci/run installs it)")
def test_echo_buckets_add_up_when_the_server_drops(tmp_path: Path):
    port = free_port()
    log = open(tmp_path / "socat.log", "w")
    # fork: one child per connection, bounded by the storm's 20 connections
    proc = subprocess.Popen(["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,backlog=128",
                             "SYSTEM:head -c 200 >/dev/null"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_listening("127.0.0.1", port, proc)
        cfg = StormConfig(host="127.0.0.1", port=port, connections=20, message_rate=10, message_size=64,
                          duration=1.5)
        r = run_storm(cfg)
    finally:
        stop(proc)
        log.close()
    assert r.established == 20 and r.held == 0  # every connection dropped
    assert r.lost_on_drop > 0 and r.messages_received == 0
    assert sum(d.count for d in r.drops.values()) == 20
    _adds_up(r)


def test_echo_buckets_add_up_when_all_is_well():
    srv = start_server(workers=1, protocol="echo")
    try:
        r = run_storm(StormConfig(host=srv.host, port=srv.port, connections=50, message_rate=20, duration=1.0))
    finally:
        srv.close()
    assert r.ok and r.messages_received == r.messages_sent > 0
    _adds_up(r)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (.ci/run installs it)")
def test_http_buckets_add_up_with_closing_responses(tmp_path: Path):
    ng = Nginx(tmp_path / "ng")
    try:
        # keepalive_requests is 1000000 here; Connection: close makes every response a drop
        r = run_storm(StormConfig(host="127.0.0.1", port=ng.port, connections=40, message_rate=5,
                                  duration=1.0, protocol="http", headers=(("Connection", "close"),)))
    finally:
        ng.close()
    assert r.failures == {"HTTP 200 + close": 40}
    _adds_up(r)


def test_websocket_buckets_add_up_with_a_drop(tmp_path: Path):
    srv = WebSocketsEcho(tmp_path, max_size=100)
    try:
        # 200-byte messages to a server taking at most 100: it answers the first with close 1009
        r = run_storm(StormConfig(host="127.0.0.1", port=srv.port, connections=10, message_rate=4,
                                  duration=1.0, protocol="websocket", message_size=200))
    finally:
        srv.close()
    assert r.close_codes == {"1009": 10} and r.held == 0
    assert r.lost_on_drop == 10 and r.messages_received == 0  # the message never got its echo
    _adds_up(r)
