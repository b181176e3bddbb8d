"""Budgets and findings of the pure planner, on hand-built facts."""

from __future__ import annotations

import math

import builtins

import pytest
from pydantic import ValidationError

from c10kplan.host.inspect import HostFacts
from c10kplan.planner import Calibration, Target, plan
from c10kplan.planner.memory import KERNEL_BYTES_PER_SOCKET, RESIDENCE_S, SKB_OVERHEAD_BYTES
from c10kplan.planner.sharding import PORT_SHARE, SLOW_PORT_SHARE, processes_needed, source_addresses_needed

# This machine: hard 20000, no CAP_SYS_RESOURCE, default port range, 24 GiB.
HOST = dict(
    nofile_soft=20000, nofile_hard=20000, can_raise_hard_limit=False, nr_open=1048576,
    file_max=2466174, file_nr_allocated=300, epoll_max_user_watches=5491489,
    somaxconn=4096, tcp_max_syn_backlog=2048, tcp_syncookies=1,
    tcp_rmem_bytes=(4096, 131072, 33554432), tcp_wmem_bytes=(4096, 16384, 4194304),
    tcp_mem_pages=(287898, 383866, 575796), page_size_bytes=4096,
    ip_local_port_range=(32768, 60999), ip_local_reserved_ports=[],
    mem_available_bytes=24 << 30, link_speeds_mbit={"eth0": 10000},
)


def host(**overrides) -> HostFacts:
    return HostFacts(**{**HOST, **overrides})


def by_id(p, fid):
    return next(f for f in p.findings if f.id == fid)


def test_100k_on_hard_20000_without_capability_shards_into_6_workers():
    p = plan(host(), Target(connections=100_000))
    assert p.server_processes == processes_needed(100_000, 20000, 64) == 6
    assert p.client_processes == 0 and p.source_addresses == 0 and p.ports is None
    f = by_id(p, "fds.nofile")
    assert f.status == "WARN" and "run 6 workers" in f.fix and "19,936" in f.fix
    assert p.ready


def test_capability_lets_one_process_hold_all_up_to_nr_open():
    p = plan(host(can_raise_hard_limit=True), Target(connections=100_000))
    assert p.server_processes == 1
    assert "LimitNOFILE=100065" in by_id(p, "fds.nofile").fix
    big = plan(host(can_raise_hard_limit=True), Target(connections=2_000_000))
    assert big.server_processes == 2
    assert by_id(big, "fds.nr_open").status == "WARN"
    assert "fs.nr_open=" in by_id(big, "fds.nr_open").fix


def test_reserve_eating_the_whole_limit_fails():
    p = plan(host(nofile_soft=64, nofile_hard=64), Target(connections=1000))
    f = by_id(p, "fds.nofile")
    assert f.status == "FAIL" and "lower --reserve-fds" in f.fix and not p.ready


def test_soft_below_need_but_hard_enough_suggests_ulimit():
    f = by_id(plan(host(nofile_soft=1024), Target(connections=10_000)), "fds.nofile")
    assert f.status == "WARN" and f.fix.startswith("ulimit -n 10065")
    assert by_id(plan(host(), Target(connections=10_000)), "fds.nofile").status == "PASS"


def test_file_max_and_epoll_watches_are_hard_ceilings():
    p = plan(host(file_max=10_000, epoll_max_user_watches=5000), Target(connections=10_000))
    f = by_id(p, "fds.file_max")
    assert f.status == "FAIL" and f.fix == "sysctl -w fs.file-max=16384"
    assert by_id(p, "fds.epoll_watches").status == "FAIL"
    assert not p.ready


def test_client_ports_need_source_addresses():
    p = plan(host(), Target(connections=100_000, role="client"))
    assert p.source_addresses == source_addresses_needed(100_000, 32768, 60999) == 4
    assert p.client_processes == 6 and p.server_processes == 0
    f = by_id(p, "ports.ephemeral")
    # the fix asks for enough addresses that each stays a quarter full, and names the minimum
    assert p.ports.fast_source_addresses == math.ceil(100_000 / math.floor(28_232 * PORT_SHARE)) == 15
    assert f.status == "WARN" and f.fix.startswith("use 15 source addresses") and "4 is the bare minimum" in f.fix
    assert "ip_local_port_range" not in f.fix  # widening alone cannot keep 100k fast
    small = by_id(plan(host(), Target(connections=30_000, role="client")), "ports.ephemeral")
    assert "ip_local_port_range='1024 65535'" in small.fix  # 30,000 <= half of 64,512
    # one address suffices up to half its range; past that connect() slows: WARN though it fits
    half = int(28_232 * SLOW_PORT_SHARE)
    assert by_id(plan(host(), Target(connections=half, role="client")), "ports.ephemeral").status == "PASS"
    past = plan(host(), Target(connections=half + 1, role="client"))
    assert past.source_addresses == 1 and by_id(past, "ports.ephemeral").status == "WARN"


def test_time_wait_between_runs():
    # 20,000 conns fit one address (28,232 ports) but not twice: a re-run within 60 s needs reuse.
    client = plan(host(tcp_tw_reuse=2), Target(connections=20_000, role="client"))
    f = by_id(client, "ports.time_wait")
    assert f.status == "WARN" and f.fix.startswith("sysctl -w net.ipv4.tcp_tw_reuse=1")
    assert by_id(plan(host(tcp_tw_reuse=1), Target(connections=20_000, role="client")),
                 "ports.time_wait").status == "PASS"
    # loopback (role both): the default 2 already reuses
    assert by_id(plan(host(tcp_tw_reuse=2), Target(connections=20_000, role="both")),
                 "ports.time_wait").status == "PASS"
    assert by_id(plan(host(tcp_tw_reuse=0), Target(connections=10_000, role="client")),
                 "ports.time_wait").status == "PASS"


def test_reserved_ports_shrink_the_range():
    facts = host(ip_local_reserved_ports=[(32768, 40767)])  # 8,000 of 28,232 reserved
    p = plan(facts, Target(connections=25_000, role="client"))
    assert p.ports is not None and p.ports.ports_per_address == 20_232
    assert p.source_addresses == 2


def test_role_both_counts_both_ends():
    p = plan(host(), Target(connections=100_000, role="both"))
    assert p.server_processes == 6 and p.client_processes == 6 and p.source_addresses == 4
    assert p.memory.sockets == 200_000 and p.fds.sockets == 200_000
    assert by_id(p, "bandwidth.link").observed.startswith("loopback")


def test_backlog_against_connect_rate():
    p = plan(host(somaxconn=128, tcp_syncookies=0, tcp_max_syn_backlog=128),
             Target(connections=1000, connect_rate=5000))
    assert p.backlog is not None and p.backlog.required_backlog == 500
    assert by_id(p, "backlog.somaxconn").status == "WARN"
    assert by_id(p, "backlog.somaxconn").fix == "sysctl -w net.core.somaxconn=4096"
    assert by_id(p, "backlog.syn").status == "WARN"
    cookies = plan(host(tcp_max_syn_backlog=128), Target(connections=1000, connect_rate=5000))
    assert by_id(cookies, "backlog.syn").status == "PASS"
    assert plan(host(), Target(connections=10, role="client")).backlog is None


def test_memory_figures_and_tcp_mem_pages():
    # In flight by Little's law (issue 10): 100,000 msg/s x RESIDENCE_S = 250 messages waiting,
    # each 5000 + 832 B of truesize = 2 pages of tcp_mem. (Before: a page for every socket.)
    p = plan(host(), Target(connections=100_000, message_size=5000, message_rate=1))
    m = p.memory
    assert m.kernel_bytes_per_socket == KERNEL_BYTES_PER_SOCKET == 5120
    assert m.kernel_idle_bytes == 100_000 * 5120
    assert m.in_flight_messages == pytest.approx(100_000 * RESIDENCE_S) == pytest.approx(250)
    assert m.truesize_bytes == 5000 + SKB_OVERHEAD_BYTES
    assert m.in_flight_pages == 250 * 2
    assert m.in_flight_bytes == 250 * (5000 + SKB_OVERHEAD_BYTES)
    assert m.user_bytes == 100_000 * 8192 and m.workload == "custom" and m.process_bytes == 0
    assert m.expected_total_bytes == m.kernel_idle_bytes + m.in_flight_bytes + m.user_bytes
    busy = Target(connections=100_000, message_size=5000, message_rate=10)  # 2,500 waiting: 5,000 pages
    tight = plan(host(tcp_mem_pages=(1000, 2000, 3000)), busy)
    f = by_id(tight, "memory.tcp_mem")
    assert f.status == "FAIL" and f.fix.startswith("sysctl -w net.ipv4.tcp_mem='6250 ")
    pressure = plan(host(tcp_mem_pages=(1000, 4000, 6000)), busy)
    assert by_id(pressure, "memory.tcp_mem").status == "WARN"
    idle = plan(host(tcp_mem_pages=(1, 2, 3)), Target(connections=100_000, message_size=5000))
    assert idle.memory.in_flight_pages == 0 and by_id(idle, "memory.tcp_mem").status == "PASS"


def test_memory_against_mem_available():
    small = host(mem_available_bytes=1 << 30)
    p = plan(small, Target(connections=100_000))
    assert by_id(p, "memory.expected").status == "FAIL" and not p.ready
    worst = by_id(plan(host(mem_available_bytes=4 << 30), Target(connections=100_000)), "memory.worst_case")
    assert worst.status == "WARN" and "tcp_rmem='4096 " in worst.fix


def test_calibration_overrides_the_constant():
    cal = Calibration(kernel_bytes_per_socket=5000, user_bytes_per_connection=3000, connections=20_000,
                      kernel_release="6.18", measured_at="2026-01-01T00:00:00Z", method="verify")
    p = plan(host(), Target(connections=10_000), cal)
    assert p.memory.kernel_bytes_per_socket == 5000 and p.memory.kernel_idle_bytes == 50_000_000
    assert p.memory.user_bytes_per_connection == 3000
    assert p.memory.kernel_bytes_source.startswith("calibration: verify")


def test_bandwidth_against_link_speed():
    assert by_id(plan(host(), Target(connections=10_000)), "bandwidth.link").status == "PASS"
    slow = plan(host(link_speeds_mbit={"eth0": 100}), Target(connections=10_000, bandwidth_per_conn=1000))
    assert by_id(slow, "bandwidth.link").status == "WARN"  # 80 of 100 Mbit/s
    over = plan(host(link_speeds_mbit={"eth0": 100}), Target(connections=10_000, message_size=1000, message_rate=10))
    assert over.bandwidth.required_bits_s == 800_000_000 and by_id(over, "bandwidth.link").status == "FAIL"


def test_conntrack_only_when_loaded():
    assert not [f for f in plan(host(), Target(connections=10)).findings if f.id.startswith("conntrack")]
    p = plan(host(conntrack_loaded=True, nf_conntrack_max=4096, nf_conntrack_buckets=1024),
             Target(connections=10_000))
    assert by_id(p, "conntrack.max").status == "FAIL"
    assert by_id(p, "conntrack.max").fix == "sysctl -w net.netfilter.nf_conntrack_max=16384"
    assert by_id(p, "conntrack.buckets").status == "WARN"


def test_unknown_facts_warn_and_are_listed_as_assumptions():
    p = plan(HostFacts(), Target(connections=1000, message_rate=1))
    assert {f.status for f in p.findings} == {"WARN"}
    idle = plan(HostFacts(), Target(connections=1000))  # no messages: no CPU to guess about
    assert by_id(idle, "cpu.messages").status == "PASS"
    assert any("assumed nofile hard limit 1024" in n for n in p.notes)
    assert p.server_processes == 2  # 1000 connections under the assumed 1024 - 64


def test_plan_is_pure(monkeypatch):
    def no_io(*args, **kwargs):
        raise AssertionError("plan() opened a file")

    facts = host()
    monkeypatch.setattr(builtins, "open", no_io)
    a = plan(facts, Target(connections=50_000, role="both"))
    b = plan(facts, Target(connections=50_000, role="both"))
    assert a == b


@pytest.mark.parametrize("bad", [
    {"connections": 0}, {"connections": -5}, {"connections": 100_000_001},
    {"connections": "many"}, {"connections": 10, "role": "proxy"}, {"connections": 10, "extra": 1},
])
def test_target_rejects_bad_input(bad):
    with pytest.raises(ValidationError):
        Target.model_validate(bad)


def test_results_are_frozen():
    p = plan(host(), Target(connections=10))
    with pytest.raises(ValidationError):
        p.ready = False  # type: ignore[misc]


@pytest.mark.parametrize("role", ["server", "client", "both"])
def test_constructed_plans_revalidate_to_themselves(fixtures_dir, role):
    """The planner builds its records without re-validation (speed); every one of them must
    be exactly what full validation of its own dump gives back."""
    from c10kplan.host.inspect import collect_facts
    from c10kplan.host.procfs import ProcFS
    from c10kplan.planner import Plan

    for tree in sorted((fixtures_dir / "proc").iterdir()):
        for n in (1, 10_000, 1_000_000):
            p = plan(collect_facts(ProcFS(tree)), Target(connections=n, role=role, message_size=3000))
            assert Plan.model_validate(p.model_dump()) == p, (tree.name, n)
            assert Plan.model_validate_json(p.model_dump_json()) == p, (tree.name, n)


def test_reuseport_workers_fit_the_busiest_hash_share_and_are_the_fewest():
    from c10kplan.planner.sharding import processes_needed, reuseport_processes_needed

    def busiest(n, w):  # mean + 4 sigma of a binomial share of n over w listeners
        return n / w + 4 * (n / w * (1 - 1 / w)) ** 0.5

    for n in (1, 19_936, 20_000, 100_000, 1_000_000, 3_000_000):
        w = reuseport_processes_needed(n, 20_000, 64)
        assert w >= processes_needed(n, 20_000, 64)
        assert w == 1 or busiest(n, w) <= 19_936 < busiest(n, w - 1)
    assert reuseport_processes_needed(1_000_000, 20_000, 64) == 52  # 51 by the mean alone
    # a nearly empty fd budget still gives a bounded answer
    assert reuseport_processes_needed(100_000_000, 66, 64) > 100_000_000
