"""`verify --find-limit` for real, inside throwaway namespaces: a narrowed port range
(EADDRNOTAVAIL) and a small nofile limit (EMFILE) give an exact limit the plan predicts; the
message-rate search runs bounded steps. Small and bounded: hundreds of connections, 1 s holds,
a timeout on every subprocess. The host's sysctls are compared before and after."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from c10kplan.verify.findlimit import BISECT_STEPS, MAX_GEOMETRIC_STEPS

pytestmark = pytest.mark.netns


def _need_netns() -> None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare(1) and ip(8); .ci/run installs util-linux and iproute2")


def _verify(*args: str, timeout: float = 120, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "c10kplan", "verify", *args, "--netns", "--json",
                           "--no-progress"], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _port_range() -> str:
    return Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()


def test_find_limit_connections_stops_at_the_port_range_the_plan_predicts(tmp_path):
    _need_netns()
    host_range = _port_range()
    profile = tmp_path / "ports200.toml"
    profile.write_text('name = "ports200"\nsummary = "200 ephemeral ports"\n\n[sysctl]\n'
                       '"net.ipv4.ip_local_port_range" = "40000 40199"\n')
    done = _verify("--connections", "1000", "--duration", "1", "--message-rate", "0", "--source-ips", "1",
                   "--profile", str(profile), "--find-limit", "connections")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    limit = doc["limit"]
    assert limit["reached"] is True and limit["failure"].startswith("EADDRNOTAVAIL (storm connect)")
    assert limit["resource"] == "ports.ephemeral"
    # serve listens on an ephemeral port of the same range, which no source address can use
    server_port = int(doc["server_endpoint"].rsplit(":", 1)[1])
    expected = 200 - (1 if 40000 <= server_port <= 40199 else 0)
    assert limit["observed"] == limit["predicted"] == expected and limit["error_pct"] == 0.0
    assert doc["storm"]["held"] == doc["server_active"] == expected
    assert doc["storm"]["established"] == expected  # the ramp stopped: no connection past the limit
    assert doc["verdict"] == "PASS" and doc["problems"] == []
    assert _port_range() == host_range  # the profile went into the namespace only


def test_find_limit_connections_stops_at_the_nofile_limit_the_plan_predicts():
    _need_netns()
    done = _verify("--connections", "3000", "--duration", "1", "--message-rate", "0", "--workers", "1",
                   "--storm-processes", "1", "--find-limit", "connections", prefix=("prlimit", "--nofile=600"))
    assert done.returncode == 0, done.stderr
    limit = json.loads(done.stdout)["limit"]
    assert limit["reached"] is True and "EMFILE" in limit["failure"]
    assert limit["resource"] == "fds.nofile"
    assert limit["observed"] == limit["predicted"]
    assert 500 < limit["observed"] < 600  # nofile 600 less the few fds each process opened first


def test_find_limit_that_reaches_its_ceiling_says_not_reached():
    _need_netns()
    done = _verify("--connections", "300", "--duration", "0.5", "--message-rate", "0", "--find-limit", "connections")
    assert done.returncode == 0, done.stderr
    limit = json.loads(done.stdout)["limit"]
    assert (limit["reached"], limit["observed"], limit["failure"]) == (False, None, None)
    assert limit["note"].startswith("not reached: all 300 connections")
    assert limit["predicted"] > 300


def test_find_limit_message_rate_runs_bounded_geometric_then_bisected_steps():
    _need_netns()
    done = _verify("--connections", "300", "--duration", "1", "--message-rate", "2", "--p99-max", "20",
                   "--find-limit", "message-rate", timeout=300)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    limit = doc["limit"]
    steps = limit["steps"]
    assert 1 <= len(steps) <= MAX_GEOMETRIC_STEPS + BISECT_STEPS
    assert steps[0]["message_rate"] == 2
    for s in steps:
        assert s["held"] == 300 or s["failure"] is not None
        if s["failure"] == "p99":
            assert s["p99_ms"] > 20
        if s["failure"] is None:
            assert s["p99_ms"] is not None and s["p99_ms"] <= 20
    # the prediction: where the plan's CPU budget reaches 100 % of the CPUs
    plan = doc["plan"]
    per_message = plan["server_us_per_message"] + plan["client_us_per_message"]
    assert math.isclose(limit["predicted"], plan["cores"] * 1e6 / per_message / 300, rel_tol=1e-3)
    held = [s["message_rate"] for s in steps if s["failure"] is None]
    failed = [s["message_rate"] for s in steps if s["failure"] is not None]
    if limit["reached"]:
        assert limit["observed"] == max(held) and limit["observed"] < min(failed)
        assert limit["failure"] in ("p99", "behind") or "(storm)" in limit["failure"]
        assert limit["error_pct"] == round((limit["predicted"] - limit["observed"]) / limit["observed"] * 100, 2)
    else:
        assert limit["observed"] is None and (not held or not failed)
