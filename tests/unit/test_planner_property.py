"""Properties of the planner over random hosts and targets: it never raises, its processes and
source addresses always cover the target, and `ready` means exactly "no FAIL"."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from c10kplan.host.inspect import HostFacts
from c10kplan.planner import Target, plan
from c10kplan.planner.sharding import usable_fds

maybe = lambda s: st.none() | s  # noqa: E731
triple = st.tuples(st.integers(1, 1 << 20), st.integers(1, 1 << 24), st.integers(1, 1 << 26))
port_range = st.tuples(st.integers(1, 65535), st.integers(1, 65535)).map(sorted).map(tuple)

facts_strategy = st.builds(
    HostFacts,
    nofile_soft=maybe(st.integers(1, 1 << 20)),
    nofile_hard=maybe(st.integers(1, 1 << 20)),
    can_raise_hard_limit=maybe(st.booleans()),
    nr_open=maybe(st.integers(1024, 1 << 30)),
    file_max=maybe(st.integers(1, 1 << 40)),
    file_nr_allocated=maybe(st.integers(0, 1 << 20)),
    epoll_max_user_watches=maybe(st.integers(1, 1 << 30)),
    somaxconn=maybe(st.integers(1, 1 << 20)),
    tcp_max_syn_backlog=maybe(st.integers(1, 1 << 20)),
    tcp_syncookies=maybe(st.integers(0, 2)),
    tcp_rmem_bytes=maybe(triple),
    tcp_wmem_bytes=maybe(triple),
    tcp_mem_pages=maybe(triple),
    page_size_bytes=maybe(st.sampled_from([4096, 16384, 65536])),
    ip_local_port_range=maybe(port_range),
    ip_local_reserved_ports=maybe(st.lists(port_range, max_size=3)),
    mem_available_bytes=maybe(st.integers(0, 1 << 42)),
    conntrack_loaded=st.booleans(),
    nf_conntrack_max=maybe(st.integers(1, 1 << 24)),
    nf_conntrack_buckets=maybe(st.integers(1, 1 << 22)),
    link_speeds_mbit=st.dictionaries(st.sampled_from(["eth0", "eth1"]), maybe(st.integers(1, 400_000))),
)

target_strategy = st.builds(
    Target,
    connections=st.integers(1, 100_000_000),
    role=st.sampled_from(["server", "client", "both"]),
    message_size=st.integers(0, 1 << 20),
    message_rate=st.just(0.0) | st.floats(0.001, 1000),  # 0 or >= numeric.MIN_RATE
    connect_rate=st.floats(0.1, 1e6),
    reserve_fds=st.integers(0, 1000),
)


@settings(max_examples=100, deadline=None)
@given(facts_strategy, target_strategy)
def test_plan_never_raises_and_covers_the_target(facts, target):
    p = plan(facts, target)
    assert p.ready == all(f.status != "FAIL" for f in p.findings)
    per_process = max(1, usable_fds(p.fds.per_process_ceiling, target.reserve_fds))
    if target.serves:
        assert p.server_processes * per_process >= target.connections
    if target.connects:
        assert p.client_processes * per_process >= target.connections
        assert p.ports is not None
        if p.ports.ports_per_address:
            assert p.source_addresses * p.ports.ports_per_address >= target.connections
        else:
            assert any(f.id == "ports.ephemeral" and f.status == "FAIL" for f in p.findings)
    assert p.memory.sockets == target.connections * (2 if target.role == "both" else 1)
    assert len({f.id for f in p.findings}) == len(p.findings)
    for f in p.findings:  # a fix exactly when something is not PASS, and always a formula
        assert (f.fix == "") == (f.status == "PASS"), f
        assert f.formula, f
