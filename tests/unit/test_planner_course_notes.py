"""The course notes' own C10K arithmetic, pinned: tcp_wmem default 16384, tcp_rmem default
87380 and 10,000 connections give 163,840,000 B of send and 873,800,000 B of receive buffers;
10,000 x 1 KB/s x 8 = 80 Mbit/s (their 1 KB/s given as --bandwidth-per-conn 1000)."""

from __future__ import annotations

from c10kplan.host.inspect import HostFacts
from c10kplan.planner import Target, plan


def course_host() -> HostFacts:
    return HostFacts(
        tcp_wmem_bytes=(4096, 16384, 4194304),
        tcp_rmem_bytes=(4096, 87380, 6291456),
        mem_available_bytes=8 << 30,
        page_size_bytes=4096,
        nofile_soft=1024,
        nofile_hard=1024,
    )


# The course notes' target: 10,000 connections of 1 KB/s each.
COURSE = Target(connections=10_000, bandwidth_per_conn=1000)


def test_course_notes_buffers_and_bandwidth_exactly():
    p = plan(course_host(), COURSE)
    assert p.memory.sockets == 10_000
    assert p.memory.send_buffers_bytes == 163_840_000
    assert p.memory.recv_buffers_bytes == 873_800_000
    assert p.memory.worst_case_bytes == 163_840_000 + 873_800_000
    assert p.bandwidth.required_bits_s == 80_000_000
    assert p.bandwidth.required_mbit_s == 80.0


def test_each_figure_shows_its_formula_and_inputs():
    p = plan(course_host(), COURSE)
    send = next(s for s in p.memory.working if s.name == "send_buffers_bytes")
    assert send.value == 163_840_000
    assert send.formula == "sockets x tcp_wmem[default]"
    assert send.inputs == {"sockets": 10_000, "tcp_wmem_default": 16384}
    assert "sockets=10,000" in send.working() and "tcp_wmem_default=16,384" in send.working()
    bits = next(s for s in p.bandwidth.working if s.name == "required_bits_s")
    assert bits.inputs == {"connections": 10_000, "bytes_per_conn_s": 1000.0}


def test_role_both_doubles_the_sockets():
    p = plan(course_host(), Target(connections=10_000, role="both"))
    assert p.memory.sockets == 20_000
    assert p.memory.send_buffers_bytes == 2 * 163_840_000


def test_idle_connections_carry_no_bandwidth_by_default():
    """Without --bandwidth-per-conn the figure follows the traffic: idle = 0 bit/s, and a
    1 Gbit/s link never binds 200,000 idle connections."""
    fast = course_host().model_copy(update={"link_speeds_mbit": {"eth0": 1000}})
    idle = plan(fast, Target(connections=200_000))
    assert idle.bandwidth.required_bits_s == 0
    link = next(f for f in idle.findings if f.id == "bandwidth.link")
    assert link.status == "PASS"
    busy = plan(fast, Target(connections=200_000, message_size=1000, message_rate=1))
    assert busy.bandwidth.required_bits_s == 200_000 * 1000 * 8  # 1,600 Mbit/s > 1,000
    link = next(f for f in busy.findings if f.id == "bandwidth.link")
    assert link.status == "FAIL" and "--bandwidth-per-conn" in link.fix
    step = next(s for s in busy.bandwidth.working if s.name == "bytes_per_conn_s")
    assert step.formula == "message_size x message_rate"


def test_explicit_bandwidth_per_conn_overrides_the_traffic():
    p = plan(course_host(), Target(connections=10_000, message_size=64, message_rate=100,
                                   bandwidth_per_conn=10))
    assert p.bandwidth.bytes_per_conn_s == 10  # given, not 64 x 100


def test_sources_point_users_at_the_docs_not_the_code():
    p = plan(course_host(), Target(connections=10_000, role="both", message_rate=1))
    custom = plan(course_host(), Target(connections=10_000, message_rate=1))
    texts = [p.memory.kernel_bytes_source, p.cpu.cost_source, p.memory.user_bytes_source,
             custom.memory.user_bytes_source]
    for text in texts:
        assert "docs/check.md" in text and "planner/" not in text, text
