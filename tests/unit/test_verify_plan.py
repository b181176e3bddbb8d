"""verify plans exactly the workload it runs (planner.verify_target), and its host memory row:
the plan's expected total against Slab delta + the RSS of every process."""

from __future__ import annotations

from c10kplan.host.procfs import ProcFS
from c10kplan.verify import VerifyOptions
from c10kplan.verify.measure import HostSample
from c10kplan.verify.run import Observed, _host_memory, make_plan, summarize


def _by_id(p, fid):
    return next(f for f in p.findings if f.id == fid)


def test_make_plan_is_the_verify_target(fixtures_dir):
    tree = ProcFS(fixtures_dir / "proc" / "conntrack_small")  # nf_conntrack_max 4096, count unknown
    opts = VerifyOptions(connections=10_000, message_rate=0.5, message_size=128, connect_rate=5000)
    host = make_plan(opts, tree)
    t = host.target
    assert (t.role, t.runs, t.connections, t.message_rate, t.message_size, t.connect_rate) == \
        ("both", "bundled", 10_000, 0.5, 128, 5000)
    assert _by_id(host, "conntrack.max").status == "FAIL"  # the host's namespace may track
    fresh = make_plan(opts, tree, in_netns=True)
    assert fresh.target.fresh_netns and _by_id(fresh, "conntrack.max").status == "PASS"
    assert summarize(fresh).expected_memory_bytes == fresh.memory.expected_total_bytes > 0


def test_unpaced_storm_plans_the_default_connect_rate(fixtures_dir):
    from c10kplan.planner.target import DEFAULT_CONNECT_RATE

    p = make_plan(VerifyOptions(connections=100, connect_rate=0), ProcFS(fixtures_dir / "proc" / "live"))
    assert p.target.connect_rate == DEFAULT_CONNECT_RATE


def test_host_memory_is_slab_plus_every_rss():
    sample = HostSample(mem_available_bytes=1, slab_bytes=1, tcp_inuse=0, tcp_mem_pages=0, sockets_used=0)
    seen = Observed(before=sample, server_rss=300, storm_rss=200)
    assert _host_memory(1000, seen) == 1500
    assert _host_memory(None, seen) is None
    assert _host_memory(1000, Observed(before=sample, server_rss=300)) is None


def test_netns_profile_applies_exactly_the_per_namespace_keys(monkeypatch):
    from c10kplan.profiles import apply as apply_mod
    from c10kplan.profiles.schema import keys_in_scope
    from c10kplan.verify import netns

    seen = {}
    monkeypatch.setattr(apply_mod, "apply_profile", lambda profile, **kw: seen.update(kw))
    netns._apply_profile("c1m")
    assert seen["patterns"] == keys_in_scope("netns")
    assert "net.ipv4.tcp_mem" not in seen["patterns"] and "net.ipv4.ip_local_port_range" in seen["patterns"]
