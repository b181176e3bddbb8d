"""capacity(facts, target) (issue 10): each resource's figure, the binding one, sharded limits,
and the JSON names scripts read. Facts are hand-built: this build host's figures."""

from __future__ import annotations

import math

import pytest

from c10kplan.host.inspect import HostFacts
from c10kplan.planner import Capacity, Target, capacity, plan
from c10kplan.planner.cpu import us_per_message
from c10kplan.planner.sharding import reuseport_processes_needed
from c10kplan.planner.memory import (
    KERNEL_BYTES_PER_SOCKET,
    SERVER_BYTES_PER_SOCKET,
    SERVER_PROCESS_RSS,
    STORM_BYTES_PER_SOCKET,
    STORM_PROCESS_RSS,
)

# This build host: hard nofile 20000 without CAP_SYS_RESOURCE, 2 CPUs, ~22.8 GiB available,
# fs.file-max 2,466,170 with 701 fds in use, nf_conntrack loaded with nothing counted.
HOST = dict(
    nofile_soft=20000, nofile_hard=20000, can_raise_hard_limit=False, nr_open=1048576,
    file_max=2_466_170, file_nr_allocated=701, epoll_max_user_watches=5_491_511,
    somaxconn=4096, tcp_max_syn_backlog=2048, tcp_syncookies=1, tcp_tw_reuse=2,
    tcp_rmem_bytes=(4096, 131072, 33554432), tcp_wmem_bytes=(4096, 16384, 4194304),
    tcp_mem_pages=(287898, 383867, 575796), page_size_bytes=4096, cpu_count=2,
    ip_local_port_range=(32768, 60999), ip_local_reserved_ports=[],
    mem_available_bytes=24_458_907_648, link_speeds_mbit={"eth0": None},
    conntrack_loaded=True, nf_conntrack_max=262_144, nf_conntrack_buckets=262_144,
    nf_conntrack_count=0, conntrack_rules=None,
)
BOTH_IDLE = Target(connections=1, role="both", message_rate=0)
PER_PROCESS = 20000 - 64  # connections one process holds under hard 20000, reserve 64


def host(**overrides) -> HostFacts:
    return HostFacts(**{**HOST, **overrides})


def resource(cap: Capacity, rid: str):
    return next(r for r in cap.resources if r.id == rid)


def status(facts, target, n, fid):
    p = plan(facts, target.model_copy(update={"connections": n}))
    return next(f.status for f in p.findings if f.id == fid)


def test_role_both_idle_binds_on_file_max_at_about_1_23m():
    cap = capacity(host(), BOTH_IDLE)
    # fs.file-max: 2 fds per connection + 64 reserved per process + 1 listener per server
    # process + the fds in use, counted here without the planner. Clients shard by the mean;
    # server workers are sized for the busiest SO_REUSEPORT share, mean + 4 sigma.
    def need(n):
        clients = math.ceil(n / PER_PROCESS)
        servers = clients
        while n / servers + 4 * math.sqrt(n / servers * (1 - 1 / servers)) > PER_PROCESS:
            servers += 1
        return 2 * n + 64 * (clients + servers) + servers + 701
    n = 1_200_000
    while need(n + 1) <= 2_466_170:
        n += 1
    assert cap.binding == "fds.file_max" and cap.connections == n
    assert 1_225_000 < n < 1_235_000
    r = resource(cap, "fds.file_max")
    assert r.limit == 2_466_170 and r.connections == n and r.fix == "sysctl -w fs.file-max=4194304"
    assert cap.summary().startswith(f"capacity: {n:,} connections before a FAIL (role both, idle, bundled workload);"
                                    " fs.file-max binds first, then memory at ~")


def test_check_1m_ready_and_1_3m_fails_on_file_max_alone():
    facts = host()
    assert plan(facts, BOTH_IDLE.model_copy(update={"connections": 1_000_000})).ready
    p = plan(facts, BOTH_IDLE.model_copy(update={"connections": 1_300_000}))
    assert [f.id for f in p.findings if f.status == "FAIL"] == ["fds.file_max"]
    # The issue said "about 15 GiB"; with each socket's /proc/PID/fd entry (940 B, measured at
    # 1M: planner/memory.py) it is 2.6M x 5,120 B + 1.3M x 506 B + 134 processes x 29.8 MB =
    # 16.7 GiB, still under this host's MemAvailable, so memory does not FAIL.
    assert 16 << 30 < p.memory.expected_total_bytes < 17 << 30
    assert next(f for f in p.findings if f.id == "memory.expected").status != "FAIL"


def test_memory_figure_is_the_last_connection_mem_available_holds():
    facts = host(mem_available_bytes=4 << 30, file_max=10_000_000)
    cap = capacity(facts, BOTH_IDLE)
    n = resource(cap, "memory.expected").connections
    assert cap.binding == "memory.expected" and cap.connections == n
    assert status(facts, BOTH_IDLE, n, "memory.expected") != "FAIL"
    assert status(facts, BOTH_IDLE, n + 1, "memory.expected") == "FAIL"
    # The same by hand: kernel + per socket + per process, bundled serve + storm.
    procs = math.ceil(n / PER_PROCESS)
    total = (n * 2 * KERNEL_BYTES_PER_SOCKET + n * (SERVER_BYTES_PER_SOCKET + STORM_BYTES_PER_SOCKET)
             + procs * (SERVER_PROCESS_RSS + STORM_PROCESS_RSS))
    assert total <= 4 << 30 < total + 2 * KERNEL_BYTES_PER_SOCKET + SERVER_BYTES_PER_SOCKET + STORM_BYTES_PER_SOCKET \
        + SERVER_PROCESS_RSS + STORM_PROCESS_RSS


def most(fits) -> int:
    """The largest n >= 0 with fits(n) (fits holds up to some n, then never again)."""
    lo, hi = 0, 1
    while fits(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def cores_at(n: int, role: str) -> float:
    """CPU of n connections at 1 msg/s, each message priced at n connections (planner/cpu.py)."""
    server, client = us_per_message("echo", n)
    return n * {"server": server, "client": client, "both": server + client}[role] / 1e6


def test_cpu_binds_when_messages_flow():
    target = Target(connections=1, role="server", message_rate=1)
    cap = capacity(host(), target)
    # FAIL once connections x 1 msg/s x the cost per message at that many connections exceeds
    # the 2 CPUs (about 9.6 us at 130,000 connections).
    assert cap.binding == "cpu.messages"
    assert cap.connections == most(lambda n: cores_at(n, "server") <= 2)
    assert 100_000 < cap.connections < 200_000
    assert resource(cap, "cpu.messages").limit == 2
    assert "--message-rate" in resource(cap, "cpu.messages").fix


def test_conntrack_caps_only_where_it_tracks():
    untracked = resource(capacity(host(), BOTH_IDLE), "conntrack.max")
    assert untracked.connections is None and untracked.note == "nothing tracked"
    tracked = capacity(host(nf_conntrack_count=5), BOTH_IDLE)
    assert tracked.binding == "conntrack.max" and tracked.connections == 262_144
    assert resource(tracked, "conntrack.max").fix == "sysctl -w net.netfilter.nf_conntrack_max=524288"


def test_sharded_limits_show_processes_not_a_cap():
    cap = capacity(host(), BOTH_IDLE)
    for rid in ("fds.nofile", "fds.nr_open"):
        r = resource(cap, rid)
        # the server side: SO_REUSEPORT workers sized for the busiest hash share (sharding.py)
        assert r.connections is None and r.processes == reuseport_processes_needed(cap.connections, 20_000, 64)
    ports = resource(cap, "ports.ephemeral")
    assert ports.connections is None and ports.source_addresses == math.ceil(cap.connections / (28_232 // 4))


def test_a_reserve_that_eats_the_nofile_limit_caps_at_zero():
    cap = capacity(host(nofile_soft=64, nofile_hard=64), BOTH_IDLE)
    assert cap.binding == "fds.nofile" and cap.connections == 0
    assert "lower --reserve-fds" in resource(cap, "fds.nofile").fix


def test_idle_tcp_mem_and_loopback_bandwidth_never_bind():
    cap = capacity(host(), BOTH_IDLE)
    assert resource(cap, "memory.tcp_mem").connections is None
    assert resource(cap, "cpu.messages").connections is None
    assert resource(cap, "bandwidth.link").connections is None


def test_nothing_binds_below_the_planner_range():
    big = host(file_max=1 << 40, epoll_max_user_watches=1 << 40, mem_available_bytes=1 << 60,
               conntrack_loaded=False)
    cap = capacity(big, BOTH_IDLE)
    assert cap.binding is None and cap.connections == 100_000_000
    assert "no resource binds below 100,000,000" in cap.summary()


def test_unknown_limits_are_said_not_guessed():
    cap = capacity(HostFacts(), Target(connections=1))
    assert resource(cap, "memory.expected").note == "unknown on this host"
    assert resource(cap, "fds.file_max").limit is None


def test_json_names_scripts_read():
    doc = capacity(host(), BOTH_IDLE).model_dump(mode="json")
    assert {"connections", "binding", "resources"} <= set(doc)
    assert isinstance(doc["connections"], int) and doc["binding"] == "fds.file_max"
    for r in doc["resources"]:
        assert {"id", "limit", "connections", "fix"} <= set(r)
    assert Capacity.model_validate(doc) == capacity(host(), BOTH_IDLE)


@pytest.mark.parametrize("n", [1, 500_000, 99_999_999])
def test_capacity_ignores_the_target_count(n):
    assert capacity(host(), BOTH_IDLE.model_copy(update={"connections": n})) == capacity(host(), BOTH_IDLE)


def test_cpu_capacity_and_its_fix_agree_exactly():
    """The capacity is the FAIL point (100 % of the CPUs); the headroom figure is the WARN mark
    (70 %); the fix quotes both, with no off-by-one."""
    target = Target(connections=1, role="both", message_rate=1)
    cap = capacity(host(), target)
    cpu = resource(cap, "cpu.messages")
    assert cpu.connections == most(lambda n: cores_at(n, "both") <= 2)
    assert cpu.passes == most(lambda n: cores_at(n, "both") <= 0.7 * 2)
    assert status(host(), target, cpu.passes, "cpu.messages") == "PASS"
    assert status(host(), target, cpu.passes + 1, "cpu.messages") == "WARN"
    assert f"for {cpu.connections:,} connections" in cpu.fix
    assert f"--connections {cpu.passes} at 1 msg/s" in cpu.fix
    # the messages/s that fit in 70 %, carried by the capacity's connections (priced at that count)
    fit = math.floor(0.7 * 2 * 1e6 / (cores_at(cpu.connections, "both") * 1e6 / cpu.connections))
    assert f"at most {fit:,} messages/s" in cpu.fix
    assert cap.passes == cpu.passes
    assert f"{cpu.connections:,} connections before a FAIL" in cap.summary()
    assert f"{cpu.passes:,} within headroom" in cap.summary()
