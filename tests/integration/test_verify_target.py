"""verify --target against real third-party servers (nginx from Debian, the `websockets`
library's echo server from PyPI), each in a temp prefix on a free loopback port, measured
through /proc by --pid; and verify --protocol http|websocket with the bundled serve. Bounded:
a few thousand connections for a few seconds, every server stopped by its PID."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from c10kplan.verify.target import process_tree

from .thirdparty import NGINX, Nginx, WebSocketsEcho

needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (.ci/run installs it)")


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "c10kplan", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _rows(doc: dict) -> dict[str, dict]:
    return {c["figure"]: c for c in doc["comparisons"]}


@pytest.fixture
def nginx(tmp_path: Path):
    ng = Nginx(tmp_path / "nginx")
    yield ng
    ng.close()
    assert ng.proc.poll() is not None


@pytest.fixture
def ws_echo(tmp_path: Path):
    pytest.importorskip("websockets", reason="the websockets library is a test extra (.ci/run installs it)")
    srv = WebSocketsEcho(tmp_path)
    yield srv
    srv.close()


@needs_nginx
def test_nginx_master_pid_measures_its_workers(nginx):
    master = nginx.proc.pid
    done = _cli("verify", "--target", f"http://127.0.0.1:{nginx.port}/", "--pid", str(master),
                "-n", "2000", "--message-rate", "1", "--duration", "4", "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    doc = json.loads(done.stdout)
    assert doc["verdict"] == "PASS" and doc["protocol"] == "http"
    t = doc["target"]
    assert t["pids"] == [master] and t["same_host"] is True
    # the master and its worker (worker_processes 1), found by their ppid
    assert t["during"]["pids"][0] == master and len(t["during"]["pids"]) == 2
    # planned with the limits of whichever of them may open the most fds
    assert t["host_facts"] in [f"this host (PID {pid}'s limits)" for pid in t["during"]["pids"]]
    rows = _rows(doc)
    # nginx holds one fd per connection (in the worker), and the 2,000 connections' 4,000 sockets are on this host
    assert rows["server fds per connection"]["within"] is True
    assert 0.9 <= rows["server fds per connection"]["measured"] <= 1.1
    # sockstat is the whole namespace's: other jobs' sockets come and go in it too, so only a loose band
    assert 1000 <= rows["TCP sockets in use"]["measured"] <= 20_000
    assert rows["server user memory per connection"]["measured"] is not None
    # the worker holds the connections: its fds are what the server plan sized (2,000 + its reserve)
    assert 2000 <= rows["fds of the busiest server process"]["measured"] <= rows["fds of the busiest server process"]["planned"]
    assert doc["storm"]["http_status_classes"]["2xx"] >= 2000 + 8000 - 100


def test_websockets_server_calibrated_then_planned_by_check(ws_echo, tmp_path):
    cal = tmp_path / "ws.json"
    done = _cli("verify", "--target", f"ws://127.0.0.1:{ws_echo.port}/", "--pid", str(ws_echo.proc.pid),
                "-n", "2000", "--message-rate", "2", "--duration", "7", "--calibrate", str(cal), "--json",
                "--p99-max", "5000")  # about the costs, not latency: other jobs may load the CPUs
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    doc = json.loads(done.stdout)
    assert doc["verdict"] == "PASS" and doc["calibration_file"] == str(cal)
    t = doc["target"]
    measured = (t["during"]["rss_bytes"] - t["before"]["rss_bytes"]) / doc["storm"]["held"]
    written = json.loads(cal.read_text())
    # the websockets library keeps kilobytes of Python objects per connection: the file holds what was measured
    assert written["user_bytes_per_connection"] == round(measured) and written["user_bytes_per_connection"] > 1000
    assert "--target 127.0.0.1:" in written["method"] and "(websocket)" in written["method"]
    # ~26,000 echoes in the 6.5 s window: enough replies and ticks (100) for a CPU figure (verify/run.py)
    assert doc["cpu"]["messages"] >= 10_000
    assert written["server_cpu_us_per_message"] == doc["cpu"]["server_us_per_message"] > 0

    planned = _cli("check", "--connections", "10000", "--calibration", str(cal), "--json")
    assert planned.returncode in (0, 1), planned.stderr
    memory = json.loads(planned.stdout)["plan"]["memory"]
    assert memory["user_bytes_per_connection"] == written["user_bytes_per_connection"]
    assert memory["user_bytes"] == 10000 * written["user_bytes_per_connection"]
    assert memory["user_bytes_source"].startswith("calibration: c10kplan verify --target")
    cpu = json.loads(planned.stdout)["plan"]["cpu"]
    assert cpu["server_us_per_message"] == written["server_cpu_us_per_message"]


@needs_nginx
def test_a_pid_not_listening_is_refused_naming_the_listener(nginx):
    done = _cli("verify", "--target", f"127.0.0.1:{nginx.port}", "--pid", str(os.getpid()), "-n", "10",
                "--protocol", "http")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    comm = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    master, worker = process_tree([nginx.proc.pid])  # both hold the listening socket
    assert lines[0] == (f"c10kplan: error: --pid {os.getpid()} ({comm}) is not listening on 127.0.0.1:{nginx.port};"
                        f" what listens there: PID {master} (nginx), PID {worker} (nginx)")
    assert done.stdout == ""


@pytest.mark.parametrize("protocol", ["http", "websocket"])
def test_bundled_serve_speaks_the_protocol(protocol):
    done = _cli("verify", "--protocol", protocol, "-n", "1000", "--message-rate", "2", "--duration", "3",
                "--json", "--p99-max", "500")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    doc = json.loads(done.stdout)
    assert doc["verdict"] == "PASS" and doc["protocol"] == protocol and doc["target"] is None
    storm = doc["storm"]
    assert storm["held"] == 1000 and storm["mismatches"] == 0 and storm["messages_received"] == storm["messages_sent"]
    assert storm["messages_sent"] >= 5000
    if protocol == "http":
        assert set(storm["http_status_classes"]) == {"2xx"}
    assert doc["server_active"] == 1000


def test_host_facts_from_a_snapshot_plan_the_server(ws_echo, tmp_path):
    facts = tmp_path / "server-host.json"
    snap = _cli("snapshot")
    assert snap.returncode == 0, snap.stderr
    # the server's host as its snapshot says: a 4-CPU host (this one has fewer or more, whichever)
    doc = json.loads(snap.stdout)
    doc["cpu_count"] = 4
    facts.write_text(json.dumps(doc))
    done = _cli("verify", "--target", f"ws://127.0.0.1:{ws_echo.port}/", "--host-facts", str(facts),
                "-n", "200", "--message-rate", "1", "--duration", "2", "--json", "--p99-max", "5000")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    out = json.loads(done.stdout)
    assert out["target"]["host_facts"] == str(facts) and out["target"]["pids"] == []
    assert out["target"]["before"] is None  # no --pid: no process measured
    server_rows = [f for f in out["plan"]["findings"] if f["id"] == "server:cpu.messages"]
    assert server_rows and server_rows[0]["observed"] == "4 CPUs"
