"""The server + K client namespace topology for real (root): TCP from every client address to
the server over 198.18/15 at MTU 1500, the host's own links and routes untouched, and no
namespace left after a normal close, after SIGKILL of the owner, or from an earlier dead run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from c10kplan.netns import ip as iplib
from c10kplan.netns.topology import Topology, new_prefix
from tests import helpers

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                       reason="needs root and ip(8) to create named network namespaces"),
]
ROOT = Path(__file__).parents[2]

# Runs in the server namespace: accept `n` connections, echo one message each, print the MSS.
ECHO = r"""
import socket, sys
srv = socket.socket(); srv.bind((sys.argv[1], 0)); srv.listen(64); srv.settimeout(30)
print(srv.getsockname()[1], flush=True)
for _ in range(int(sys.argv[2])):
    c, peer = srv.accept(); c.settimeout(30); c.sendall(c.recv(100)); c.close()
"""
# Runs in a client namespace: connect from each source address, check the echo, report the
# peer's view and the segment size the kernel chose for the link (TCP_MAXSEG).
CLIENT = r"""
import json, socket, sys
out = []
for src in sys.argv[3].split(","):
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10, source_address=(src, 0))
    s.sendall(b"hello " + src.encode()); reply = s.recv(100)
    out.append({"src": s.getsockname()[0], "ok": reply == b"hello " + src.encode(),
                "mss": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)}); s.close()
print(json.dumps(out))
"""


def host_view() -> tuple[str, str, str]:
    """The host's own links (names, MTUs, addresses) and routes."""
    links = [(d["ifname"], d.get("mtu")) for d in json.loads(iplib.ip("-j", "link", "show").stdout)]
    addrs = iplib.ip("-br", "addr", "show").stdout
    return json.dumps(sorted(links)), addrs, iplib.ip("route", "show", "table", "all").stdout


def net_inodes(names) -> set[int]:
    return {os.stat(f"/run/netns/{n}").st_ino for n in names}


def held_net_inodes() -> set[int]:
    """Every network namespace some process is in or holds an fd to (net:[inode])."""
    out: set[int] = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        links = [f"/proc/{pid}/ns/net"]
        try:
            links += [f"/proc/{pid}/fd/{fd}" for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        for link in links:
            try:
                target = os.readlink(link)
            except OSError:
                continue
            if target.startswith("net:["):
                out.add(int(target[5:-1]))
    return out


def wait_for(cond, timeout: float = 20.0, what: str = "") -> None:
    """tests.helpers.wait_for, failing the test with `what` when the condition never holds."""
    assert helpers.wait_for(cond, timeout, interval=0.05), f"timed out waiting for {what}"


def test_three_clients_reach_the_server_over_198_18_at_mtu_1500() -> None:
    before = host_view()
    with Topology(clients=3, sources_per_client=2) as topo:
        names = set(iplib.list_namespaces())
        assert set(topo.plan.namespaces) <= names and len(topo.plan.namespaces) == 5
        for host in topo.plan.hosts:
            link = json.loads(iplib.ip("-j", "link", "show", "eth0", netns=host.netns).stdout)[0]
            assert link["mtu"] == 1500 and "UP" in link["flags"]
            assert "UP" in json.loads(iplib.ip("-j", "link", "show", "lo", netns=host.netns).stdout)[0]["flags"]
        sources = [a for c in topo.clients for a in c.addresses]
        server = subprocess.Popen(iplib.exec_argv(topo.server.netns, [sys.executable, "-c", ECHO, topo.server.address,
                                                                     str(len(sources))]),
                                  stdout=subprocess.PIPE, text=True)
        try:
            port = server.stdout.readline().strip()
            assert port.isdigit()
            before_counts = iplib.nstat(topo.server.netns)
            for client in topo.clients:
                done = iplib.run_in(client.netns, [sys.executable, "-c", CLIENT, topo.server.address, port,
                                                   ",".join(client.addresses)], timeout=30)
                got = json.loads(done.stdout)
                assert [g["src"] for g in got] == list(client.addresses)
                assert all(g["ok"] for g in got)
                # A 1500-byte link: MSS 1460 less 12 bytes of TCP timestamps (loopback: 65483).
                assert all(g["mss"] <= 1460 for g in got), got
            assert server.wait(timeout=30) == 0
            delta = iplib.counter_delta(before_counts, iplib.nstat(topo.server.netns))
            assert delta["TcpPassiveOpens"] == len(sources)
            assert delta["TcpOutSegs"] >= 3 * len(sources)  # SYN-ACK, the echo, the FIN at least
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    assert not [n for n in iplib.list_namespaces() if n.startswith(topo.prefix)]
    assert host_view() == before


def test_mtu_is_configurable() -> None:
    with Topology(clients=1, mtu=9000) as topo:
        for host in topo.plan.hosts:
            assert json.loads(iplib.ip("-j", "link", "show", "eth0", netns=host.netns).stdout)[0]["mtu"] == 9000
        bridge = json.loads(iplib.ip("-j", "link", "show", "br0", netns=topo.plan.hub).stdout)[0]
        assert bridge["mtu"] == 9000


# The owner in a child process: build, start a process inside the server namespace, say so,
# then wait to be killed.
OWNER = r"""
import json, subprocess, sys, time
from c10kplan.netns.topology import Topology
from c10kplan.netns.ip import exec_argv
topo = Topology(clients=3); topo.build()
inside = subprocess.Popen(exec_argv(topo.server.netns, ["sleep", "120"]))
print(json.dumps({"prefix": topo.prefix, "names": topo.plan.namespaces, "inside": inside.pid,
                  "reaper": topo.reaper_pid}), flush=True)
sys.stdin.read()
"""


def test_sigkill_of_the_owner_leaves_no_namespace() -> None:
    info: dict = {}
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        info.update(json.loads(owner.stdout.readline()))
        assert set(info["names"]) <= set(iplib.list_namespaces())
        inodes = net_inodes(info["names"])
        assert os.readlink(f"/proc/{info['inside']}/ns/net") in {f"net:[{i}]" for i in inodes}
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        wait_for(lambda: not [n for n in iplib.list_namespaces() if n.startswith(info["prefix"])],
                 what="the reaper to delete the namespaces")
        # Nothing holds them any more: no process inside (the sleep was killed), no fd.
        wait_for(lambda: not (inodes & held_net_inodes()), what="the namespaces to be released")
        wait_for(lambda: not os.path.exists(f"/proc/{info['inside']}"), what="the process inside to go")
        wait_for(lambda: not os.path.exists(f"/proc/{info['reaper']}"), what="the reaper to exit")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        if info:
            iplib.delete_prefixed(info["prefix"])


def test_start_sweeps_namespaces_of_dead_owners() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that is no longer alive
    stale = f"{new_prefix(gone.pid)}-hub"
    iplib.ip("netns", "add", stale)
    try:
        mine = f"{new_prefix()}-hub"  # a live owner (this process): must be kept
        iplib.ip("netns", "add", mine)
        try:
            with Topology(clients=1):
                names = iplib.list_namespaces()
                assert stale not in names and mine in names
        finally:
            iplib.ip("netns", "del", mine, check=False)
    finally:
        iplib.ip("netns", "del", stale, check=False)
