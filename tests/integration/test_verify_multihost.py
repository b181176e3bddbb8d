"""verify --netns --client-hosts K for real (root): serve in a server namespace, one storm per
client namespace over veth at MTU 1500, per-host rows; the profile's netns keys applied inside
each namespace; nothing left (namespace, veth, bridge, process) after SIGKILL of verify."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from c10kplan.cli.schemas import document_schema
from c10kplan.netns import ip as iplib
from c10kplan.netns.topology import Topology
from tests.integration.test_netns_topology import host_view, wait_for

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nstat") is None,
                       reason="needs root, ip(8) and nstat(8) to create and read named network namespaces"),
]
ROOT = Path(__file__).parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def verify(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "c10kplan", "verify", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=ENV)


def test_two_client_hosts_pass_with_a_row_set_per_host() -> None:
    before = host_view()
    # --p99-max: this checks the setup, not the latency of a shared 2-CPU machine.
    done = verify("--netns", "--client-hosts", "2", "-n", "2000", "--duration", "3", "--message-rate", "1",
                  "--p99-max", "5000", "--json")
    assert done.returncode == 0, done.stderr
    res = json.loads(done.stdout)
    jsonschema = pytest.importorskip("jsonschema", reason="validates the document; a test extra")
    jsonschema.validate(res, document_schema("verify-hosts"))
    assert res["verdict"] == "PASS" and res["mtu"] == 1500 and res["client_hosts"] == 2
    hosts = {h["host"]: h for h in res["hosts"]}
    assert list(hosts) == ["server", "client1", "client2"]
    assert hosts["server"]["role"] == "server" and hosts["server"]["addresses"] == ["198.18.0.1"]
    assert res["server_endpoint"].startswith("198.18.0.1:")
    for i in (1, 2):
        h = hosts[f"client{i}"]
        assert h["role"] == "client" and h["connections"] == 1000
        assert all(a.startswith(f"198.18.{i}.") for a in h["addresses"])
        rows = {c["figure"]: c for c in h["comparisons"]}
        assert rows["connections held"]["measured"] == 1000 and rows["connections held"]["planned"] == 1000
        assert rows["source addresses"]["measured"] == len(h["addresses"])
        assert rows["fds of the busiest process"]["measured"] >= 1000
        # the role-client plan: no server side
        assert h["plan"]["server_processes"] == 0 and h["plan"]["client_processes"] >= 1
    server_rows = {c["figure"]: c for c in hosts["server"]["comparisons"]}
    assert server_rows["connections held"]["measured"] == 2000
    assert hosts["server"]["plan"]["client_processes"] == 0 and hosts["server"]["plan"]["sockets"] == 2000
    assert server_rows["fds of the busiest worker"]["measured"] >= 2000 / hosts["server"]["processes"]
    assert server_rows["CPU per message"]["measured"] > 0  # its own processes, over the window
    # each storm ran its share, at one start; merge summed them
    parts = res["fleet"]["parts"]
    assert sorted(p["share"] for p in parts) == ["1/2", "2/2"]
    assert sum(p["held"] for p in parts) == res["fleet"]["storm"]["held"] == 2000
    # nstat in every namespace: each side sent segments; a round trip is ~3 of them
    assert set(res["segments"]) == {"server", "client1", "client2"} and min(res["segments"].values()) > 0
    machine = {c["figure"]: c for c in res["comparisons"]}
    assert 2.0 <= machine["TCP segments per round trip"]["measured"] <= 6.0
    prefix = hosts["server"]["netns"].rsplit("-", 1)[0]
    assert not [n for n in iplib.list_namespaces() if n.startswith(prefix)]
    assert host_view() == before


def test_the_profile_netns_keys_are_applied_inside_each_namespace() -> None:
    host_range = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    def facts(netns: str, profile: str) -> dict:
        done = iplib.run_in(netns, [sys.executable, "-m", "c10kplan.verify.multihost", profile], timeout=60, env=ENV)
        return json.loads(done.stdout)

    with Topology(clients=1) as topo:
        tuned = facts(topo.server.netns, "c10k")
        assert tuned["ip_local_port_range"] == [10240, 65535]  # profiles/data/c10k.toml
        assert tuned["somaxconn"] >= 8192
        # the other namespace keeps its own (fresh) values: each is applied on its own
        assert facts(topo.clients[0].netns, "")["ip_local_port_range"] != [10240, 65535]
    assert Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split() == host_range


def _pids_in(names: list[str]) -> set[int]:
    return {p for n in names for p in iplib.namespace_pids(n)}


def test_sigkill_of_verify_leaves_no_namespace_and_no_process() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "c10kplan", "verify", "--netns", "--client-hosts", "2",
                             "-n", "1000", "--duration", "60", "--message-rate", "1", "--json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env=ENV)
    owned = f"c10k-{proc.pid}-"
    names: list[str] = []
    seen: set[int] = set()
    try:
        def storms_running() -> bool:
            names[:] = [n for n in iplib.list_namespaces() if n.startswith(owned)]
            clients = [n for n in names if n.endswith(("-c1", "-c2"))]
            seen.update(_pids_in(names))
            return len(names) == 4 and len(clients) == 2 and all(iplib.namespace_pids(c) for c in clients) \
                and bool(iplib.namespace_pids(next(n for n in names if n.endswith("-srv"))))
        wait_for(lambda: proc.poll() is not None or storms_running(), timeout=120,
                 what="serve and both storms to run in their namespaces")
        assert proc.poll() is None, proc.stderr.read().decode()
        seen.update(_pids_in(names))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        wait_for(lambda: not [n for n in iplib.list_namespaces() if n.startswith(owned)], timeout=30,
                 what="the reaper to delete every namespace of the run")
        wait_for(lambda: not [p for p in seen if os.path.exists(f"/proc/{p}")], timeout=30,
                 what="every process that ran in the namespaces to be gone")
        # no veth or bridge of the run is left in the host's namespace either
        links = [d["ifname"] for d in json.loads(iplib.ip("-j", "link", "show").stdout)]
        assert not [name for name in links if name in ("br0", "srv", "c1", "c2")]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for n in [n for n in iplib.list_namespaces() if n.startswith(owned)]:
            iplib.delete_namespace(n)
