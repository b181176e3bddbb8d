"""storm --protocol http against nginx (Debian's, in a temp prefix on a free loopback port) and
against our own `serve --protocol http`. Bounded: small timeouts, every server stopped by PID."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from c10kplan.storm.config import StormConfig
from c10kplan.storm.runner import run_storm
from c10kplan.verify.server import start_server

from .stormcli import adds_up, cli
from .thirdparty import NGINX, Nginx

needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (.ci/run installs it)")



@pytest.fixture
def nginx(tmp_path: Path):
    started: list[Nginx] = []

    def start(**kw) -> Nginx:
        ng = Nginx(tmp_path / f"nginx{len(started)}", **kw)
        started.append(ng)
        return ng

    yield start
    for ng in started:
        ng.close()
        assert ng.proc.poll() is not None


@needs_nginx
def test_5000_keepalive_connections_against_nginx_pass(nginx):
    ng = nginx()
    done = cli("storm", f"http://127.0.0.1:{ng.port}/", "-n", "5000", "--message-rate", "0.5",
                "--duration", "10", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["established"] == doc["held"] == 5000 and doc["failures"] == {}
    # 5000 handshake requests plus ~5 per connection over 10 s (open loop: exact schedule)
    assert 24_000 <= doc["messages_sent"] <= 25_100
    assert doc["messages_received"] == doc["messages_sent"] and doc["mismatches"] == 0
    assert doc["http_status_classes"] == {"2xx": doc["messages_sent"] + 5000}
    adds_up(doc)


@needs_nginx
def test_nginx_timeouts_are_drops_at_their_hold_time(nginx):
    ng = nginx(keepalive_timeout=3, header_timeout=1.5)
    done = cli("storm", f"127.0.0.1:{ng.port}", "--protocol", "http", "-n", "200", "--duration", "4")
    assert done.returncode == 1
    # idle keep-alive connections (after their first response) drop at keepalive_timeout, 3 s
    assert "EOF x200 at 3.0 s" in done.stdout or "EOF x200 at 2.9" in done.stdout, done.stdout
    assert "0 held of 200" in done.stdout
    # connections that never send a request drop at client_header_timeout, 1.5 s
    js = cli("storm", f"127.0.0.1:{ng.port}", "--protocol", "discard", "-n", "50", "--duration", "2.5", "--json")
    doc = json.loads(js.stdout)
    assert doc["held"] == 0 and doc["failures"] == {"EOF": 50}
    drop = doc["drops"]["EOF"]
    assert drop["count"] == 50 and 1.4 <= drop["min"] <= drop["p50"] <= drop["max"] <= 2.0, drop


@needs_nginx
def test_a_404_path_counts_as_4xx_and_fails_expect_status(nginx):
    ng = nginx()
    # a hostname target (resolved once, from /etc/hosts: no DNS query leaves the host)
    done = cli("storm", f"http://localhost:{ng.port}/missing", "-n", "20", "--message-rate", "2",
                "--duration", "1", "--json")
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    assert doc["http_status_classes"] == {"4xx": doc["messages_sent"] + 20}
    assert doc["mismatches"] == doc["messages_sent"] > 0 and doc["messages_received"] == 0
    assert any("404" in p and "--expect-status 2xx" in p for p in doc["problems"])
    adds_up(doc)
    ok = cli("storm", f"http://127.0.0.1:{ng.port}/missing", "-n", "5", "--duration", "0.5",
              "--expect-status", "404", "--json")
    assert ok.returncode == 0, ok.stdout


@needs_nginx
def test_connection_close_responses_are_drops_with_their_status(nginx, tmp_path):
    ng = nginx()
    done = cli("storm", f"http://127.0.0.1:{ng.port}/", "-n", "30", "--message-rate", "4",
                "--duration", "1.5", "--header", "Connection: close", "--json")
    doc = json.loads(done.stdout)
    # every connection gets one response (its first), which closes it
    assert doc["failures"] == {"HTTP 200 + close": 30} and doc["held"] == 0
    assert doc["http_statuses"] == {"200": 30}
    adds_up(doc)


@needs_nginx
def test_post_body_and_ipv6_target(nginx, tmp_path):
    ng = nginx(ipv6=True)
    body = tmp_path / "body.json"
    body.write_bytes(b'{"k": 1}')
    done = cli("storm", f"[::1]:{ng.port}", "--protocol", "http", "--method", "POST", "--body-file", str(body),
                "-n", "10", "--message-rate", "2", "--duration", "1", "--json")
    # nginx answers POST to a `return 200` location with 200 (it reads and drops the body)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert doc["established"] == 10 and doc["messages_received"] == doc["messages_sent"] >= 10


def test_storm_http_against_our_serve_adds_up():
    srv = start_server(workers=2, protocol="http")
    try:
        cfg = StormConfig(host=srv.host, port=srv.port, connections=1000, processes=2, message_rate=4,
                          duration=2.0, protocol="http")
        r = run_storm(cfg)
    finally:
        srv.close()
    assert r.ok, r.problems
    assert r.held == 1000 and r.messages_received == r.messages_sent >= 7000
    assert r.http_status_classes == {"2xx": r.messages_sent + 1000}
    adds_up(r.model_dump())


def test_the_storm_table_says_the_statuses_include_each_connections_first_response():
    """50 connections, each its handshake response plus its messages': the row names the 50."""
    srv = start_server(workers=1, protocol="http")
    try:
        done = cli("storm", f"http://{srv.host}:{srv.port}/", "-n", "50", "--message-rate", "2",
                    "--duration", "1")
    finally:
        srv.close()
    assert done.returncode == 0, done.stderr
    row = next(ln for ln in done.stdout.splitlines() if "HTTP statuses" in ln)
    sent = int(next(ln for ln in done.stdout.splitlines() if " sent, " in ln).split("sent,")[0].split()[-1]
               .replace(",", ""))
    assert "HTTP statuses (incl. 50 first responses)" in row and f"2xx x{sent + 50:,}" in row, done.stdout


def test_unresolvable_host_is_one_line_exit_2():
    # a name that getaddrinfo refuses without asking any DNS server (a label of 64+ characters)
    done = cli("storm", "a" * 70 + ".invalid:80", "-n", "1", "--duration", "0")
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not resolve" in lines[0], done.stderr
