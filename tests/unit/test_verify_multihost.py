"""verify --client-hosts: bad input refused in one line before anything starts, and the pure
pieces of the run (the shares, the message rate from serve's stats, CPU per message, the
kernel-time share, the process tree from a fake /proc)."""

from __future__ import annotations

import pytest

from c10kplan.cli import app
from c10kplan.errors import ExitStatus
from c10kplan.host.procfs import ProcFS
from c10kplan.verify.multihost import (
    Sample,
    Seen,
    kernel_share,
    message_rate_between,
    process_tree,
    shares,
    side_target,
    us_per_message,
)
from c10kplan.verify.options import VerifyOptions
from c10kplan.verify.measure import HostSample

BAD = [
    (["--netns", "--client-hosts", "0"], "--client-hosts must be 1..64, not 0"),
    (["--netns", "--client-hosts", "-3"], "--client-hosts: '-3' is not a whole number"),
    (["--netns", "--client-hosts", "65"], "--client-hosts must be 1..64, not 65"),
    (["--netns", "--client-hosts", "2", "--mtu", "67"], "--mtu must be 68..65535, not 67"),
    (["--netns", "--client-hosts", "2", "--mtu", "65536"], "--mtu must be 68..65535, not 65536"),
    (["--client-hosts", "2"], "--client-hosts needs --netns"),
    (["--netns", "--mtu", "9000"], "--mtu needs --client-hosts"),
    (["--netns", "--client-hosts", "3", "-n", "2"], "2 connections over 3 client hosts leave a host none"),
    (["--netns", "--client-hosts", "2", "--metrics", "/tmp/x.prom"], "do not take a --client-hosts run"),
]


@pytest.mark.parametrize(("args", "says"), BAD)
def test_bad_client_hosts_input_is_one_line_exit_2(args, says, capsys, monkeypatch):
    import c10kplan.netns.topology as topology

    def no_topology(*a, **k):  # nothing may be built for a bad input
        raise AssertionError("a topology was built")

    monkeypatch.setattr(topology.Topology, "build", no_topology)
    argv = ["verify", *args] + ([] if "-n" in args else ["-n", "100"])
    with pytest.raises(SystemExit) as info:
        app.main(argv)
    out, err = capsys.readouterr()
    assert info.value.code == ExitStatus.BAD_INPUT
    assert out == "" and err.count("\n") == 1 and err.startswith("c10kplan: error: "), err
    assert says in err


def test_shares_are_storm_share_splits():
    assert shares(30000, 3) == [10000, 10000, 10000]
    assert shares(10, 3) == [4, 3, 3]
    assert sum(shares(2001, 2)) == 2001


def test_side_targets_are_role_server_for_all_and_client_for_a_share():
    opts = VerifyOptions(connections=30000, message_rate=1, connect_rate=3000, netns=True, client_hosts=3)
    server, client = side_target(opts, "server", 30000), side_target(opts, "client", 10000)
    assert (server.role, server.connections, server.runs, server.fresh_netns) == ("server", 30000, "bundled", True)
    assert (client.role, client.connections, client.connect_rate) == ("client", 10000, 1000.0)
    assert server.sockets == 30000  # one end per host: not role both's two


def test_message_rate_from_serve_bytes_out_over_its_own_times():
    first = {"time": 100.0, "total": {"bytes_out": 64_000}}
    last = {"time": 102.0, "total": {"bytes_out": 64_000 + 64 * 60_000}}
    assert message_rate_between(first, last, 64) == 30_000
    assert message_rate_between(first, first, 64) is None
    assert message_rate_between(None, last, 64) is None


def test_us_per_message_from_clock_ticks():
    from c10kplan.host.process import CLOCK_TICKS_PER_S

    assert us_per_message(CLOCK_TICKS_PER_S, 1_000_000) == 1.0  # 1 s of CPU over 1e6 messages
    assert us_per_message(0, 10) is None and us_per_message(5, 0) is None


def _seen(first: Sample, last: Sample, background: float | None) -> Seen:
    s = Seen(before=HostSample(mem_available_bytes=None, slab_bytes=None, tcp_inuse=None, tcp_mem_pages=None,
                               sockets_used=None), server_pids=[], server_rss_idle=None)
    s.first, s.last, s.background = first, last, background
    return s


def test_kernel_share_takes_out_the_background_and_never_falls_below_one():
    first = Sample(at=0.0, host_busy=1000, server=0, clients=[0, 0])
    last = Sample(at=2.0, host_busy=1000 + 400 + 200, server=100, clients=[50, 50])
    # 600 busy ticks, 2 s x 100 ticks/s of background: 400 left for our 200 ticks -> x2
    assert kernel_share(_seen(first, last, 100.0)) == 2.0
    assert kernel_share(_seen(first, last, 500.0)) == 1.0  # more background than busy: process time alone
    assert kernel_share(_seen(first, last, None)) is None


def test_process_tree_follows_the_parent_pids(tmp_path):
    for pid, ppid in {10: 1, 11: 10, 12: 10, 13: 11, 14: 1}.items():
        d = tmp_path / f"proc/{pid}"
        d.mkdir(parents=True)
        (d / "stat").write_text(f"{pid} (x) S {ppid} {pid} 0 0 0 0 0 0 0 0 0 0 0 0\n")
    assert process_tree(ProcFS(tmp_path), 10)[0] == 10
    assert sorted(process_tree(ProcFS(tmp_path), 10)) == [10, 11, 12, 13]
    assert process_tree(ProcFS(tmp_path), 99) == [99]  # gone: itself only
