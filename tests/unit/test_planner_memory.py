"""Memory as it is really used (issue 10): in flight by Little's law, per process, per socket
for the bundled and a custom workload."""

from __future__ import annotations

import math

import pytest

from c10kplan.host.inspect import HostFacts
from c10kplan.planner import Calibration, Target, plan
from c10kplan.planner.memory import (
    KERNEL_BYTES_PER_SOCKET,
    RESIDENCE_S,
    SERVER_BYTES_PER_SOCKET,
    SERVER_PROCESS_RSS,
    SKB_OVERHEAD_BYTES,
    STORM_BYTES_PER_SOCKET,
    STORM_PROCESS_RSS,
    STORM_REPLY_QUEUE_BYTES,
    truesize_bytes,
)

FACTS = HostFacts(nofile_soft=20000, nofile_hard=20000, can_raise_hard_limit=False, nr_open=1048576,
                  file_max=10_000_000, page_size_bytes=4096, mem_available_bytes=24 << 30,
                  tcp_mem_pages=(287898, 383867, 575796), cpu_count=2)
MIB = 1 << 20


@pytest.mark.parametrize(("size", "charged"), [
    (1, 833), (64, 896), (4096, 4928), (65536, 65536 + 832), (65537, 65537 + 2 * 832),
])
def test_truesize_is_payload_plus_skb_overhead(size, charged):
    # ss -tm on 6.18: rmem_alloc of a socket holding one unread message (memory.py).
    assert truesize_bytes(size) == charged


def test_idle_connections_hold_no_data():
    m = plan(FACTS, Target(connections=100_000, message_rate=0)).memory
    assert m.in_flight_messages == 0 and m.in_flight_bytes == 0 and m.in_flight_pages == 0


def test_in_flight_is_littles_law():
    m = plan(FACTS, Target(connections=20_000, message_rate=1, message_size=64)).memory
    assert m.messages_per_s == 20_000
    assert m.in_flight_messages == pytest.approx(20_000 * RESIDENCE_S)  # 50 messages waiting
    assert m.in_flight_bytes == math.ceil(20_000 * RESIDENCE_S * (64 + SKB_OVERHEAD_BYTES))
    assert m.in_flight_pages == math.ceil(20_000 * RESIDENCE_S) * 1  # 896 B: one page each
    # The course notes' worst case stays its own figure, outside the expected total.
    assert m.worst_case_bytes == 20_000 * (131072 + 16384)
    assert m.expected_total_bytes == m.kernel_idle_bytes + m.in_flight_bytes + m.user_bytes + m.process_bytes


def test_bundled_workload_counts_each_process_and_socket():
    p = plan(FACTS, Target(connections=1_000_000, role="both"))
    m = p.memory
    # 52 workers: sized for the busiest SO_REUSEPORT share (mean + 4 sigma), 51 storm processes
    assert m.workload == "bundled" and (p.server_processes, p.client_processes) == (52, 51)
    assert m.process_bytes == 52 * SERVER_PROCESS_RSS + 51 * STORM_PROCESS_RSS
    assert m.user_bytes == 1_000_000 * (SERVER_BYTES_PER_SOCKET + STORM_BYTES_PER_SOCKET)
    assert m.user_bytes_per_connection == round(m.user_bytes / 2_000_000)


def test_predicted_1m_verify_is_within_10_percent_of_the_measured_run():
    """`python scripts/bench_1m.py` on 2026-12-01 (52 workers, 51 storm processes): Slab
    +9,658 MiB, RSS 1,584 MiB server + 1,786 MiB storm. (Issue 10's run, Slab +7,983 MiB, had
    no /proc/PID/fd entries built and a storm that kept a reply queue per idle connection.)"""
    m = plan(FACTS, Target(connections=1_000_000, role="both", message_rate=0)).memory
    measured = (9_658 + 1_584 + 1_786) * MIB
    assert abs(m.expected_total_bytes / measured - 1) <= 0.10


def test_custom_workload_uses_app_buffer_per_socket_and_no_process_figure():
    default = plan(FACTS, Target(connections=10_000)).memory  # role server: custom by default
    assert default.workload == "custom" and default.user_bytes == 10_000 * 8192 and default.process_bytes == 0
    own = plan(FACTS, Target(connections=10_000, role="both", app_buffer=1000)).memory  # implies custom
    assert own.workload == "custom" and own.user_bytes == 20_000 * 1000
    forced = plan(FACTS, Target(connections=10_000, role="server", workload="bundled")).memory
    assert forced.user_bytes == 10_000 * SERVER_BYTES_PER_SOCKET and forced.process_bytes == SERVER_PROCESS_RSS


def test_calibration_replaces_the_per_socket_figure_not_the_processes():
    cal = Calibration(kernel_bytes_per_socket=4200, user_bytes_per_connection=700, connections=20_000,
                      measured_at="2026-12-01T00:00:00Z", method="verify")
    m = plan(FACTS, Target(connections=10_000, role="both"), cal).memory  # one process a side
    assert m.user_bytes == 20_000 * 700 and m.kernel_idle_bytes == 20_000 * 4200
    assert m.process_bytes == SERVER_PROCESS_RSS + STORM_PROCESS_RSS
    assert m.user_bytes_source.startswith("calibration: verify")


def test_kernel_constant_is_the_measured_slab_cost():
    # the socket's own slab objects + its /proc/PID/fd entry, as measured at 1M (planner/memory.py)
    assert KERNEL_BYTES_PER_SOCKET == 4180 + 940 == 5120


def test_verify_target_plans_exactly_what_verify_runs():
    from c10kplan.planner import verify_target

    t = verify_target(connections=100_000, message_rate=0.25, connect_rate=0, fresh_netns=True)
    assert (t.role, t.runs, t.fresh_netns, t.connect_rate) == ("both", "bundled", True, 1000.0)
    m = plan(FACTS, t).memory
    assert m.workload == "bundled" and m.process_bytes == 6 * (SERVER_PROCESS_RSS + STORM_PROCESS_RSS)


def test_a_storm_connection_that_sends_keeps_a_reply_queue():
    idle = plan(FACTS, Target(connections=10_000, role="both", message_rate=0)).memory
    busy = plan(FACTS, Target(connections=10_000, role="both", message_rate=0.5)).memory
    assert idle.user_bytes == 10_000 * (SERVER_BYTES_PER_SOCKET + STORM_BYTES_PER_SOCKET)
    assert busy.user_bytes == idle.user_bytes + 10_000 * STORM_REPLY_QUEUE_BYTES
    server = plan(FACTS, Target(connections=10_000, role="server", message_rate=0.5, workload="bundled")).memory
    assert server.user_bytes == 10_000 * SERVER_BYTES_PER_SOCKET  # the server side keeps none
