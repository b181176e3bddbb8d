"""conntrack only where it tracks (issue 10): fixture trees with the count and the ruleset, the
pure ruleset parser, and the command seam."""

from __future__ import annotations

import pytest

from c10kplan.host import parse
from c10kplan.host.commands import COMMANDS, HostCommands
from c10kplan.host.inspect import collect_facts
from c10kplan.host.procfs import ProcFS
from c10kplan.planner import Target, plan


def facts_of(fixtures_dir, name, **kw):
    return collect_facts(ProcFS(fixtures_dir / "proc" / name), **kw)


def by_id(p, fid):
    return next(f for f in p.findings if f.id == fid)


# conntrack_small and its copies: nf_conntrack_max 4096, buckets 1024; 10,000 connections
# need 10,000 entries, so the table FAILs exactly when conntrack tracks.
@pytest.mark.parametrize(("tree", "tracks", "why"), [
    ("conntrack_counting", True, None),  # 17 entries counted now
    ("conntrack_rules", True, None),  # nft: ct state established,related accept
    ("conntrack_iptables", True, None),  # iptables-save: -m conntrack --ctstate
    ("conntrack_small", True, None),  # no nf_conntrack_count: unknown, so assume it tracks
    ("conntrack_idle", False, "nft list ruleset: no rule uses conntrack"),
])
def test_conntrack_fails_only_where_it_tracks(fixtures_dir, tree, tracks, why):
    p = plan(facts_of(fixtures_dir, tree), Target(connections=10_000))
    assert by_id(p, "conntrack.max").status == ("FAIL" if tracks else "PASS")
    notes = [n for n in p.notes if n.startswith("nf_conntrack is loaded but nothing is tracked")]
    assert bool(notes) is not tracks
    if why:
        assert why in notes[0] and "nf_conntrack_count 0" in notes[0]
        assert by_id(p, "conntrack.buckets").status == "PASS"


def test_facts_record_the_count_and_what_was_read(fixtures_dir):
    counting = facts_of(fixtures_dir, "conntrack_counting")
    assert counting.nf_conntrack_count == 17 and counting.conntrack_rules is None  # not needed
    idle = facts_of(fixtures_dir, "conntrack_idle")
    assert idle.nf_conntrack_count == 0 and idle.conntrack_rules is False
    assert idle.conntrack_rules_read == ["/proc/net/ip_tables_names: no tables",
                                         "nft list ruleset: no rule uses conntrack"]
    ipt = facts_of(fixtures_dir, "conntrack_iptables")
    assert ipt.conntrack_rules is True
    assert "iptables-save: a rule uses conntrack" in ipt.conntrack_rules_read


def test_unreadable_ruleset_with_nothing_counted_passes_with_the_note(fixtures_dir):
    """This build host: count 0, no nft / iptables-save installed."""
    facts = facts_of(fixtures_dir, "conntrack_idle", commands=HostCommands(
        ProcFS(fixtures_dir / "proc" / "conntrack_idle"), runner=lambda argv: None))
    assert facts.conntrack_rules is None
    p = plan(facts, Target(connections=10_000))
    assert by_id(p, "conntrack.max").status == "PASS"
    assert any("nft list ruleset: not readable" in n for n in p.notes)


def test_a_fresh_namespace_plans_without_conntrack(fixtures_dir):
    facts = facts_of(fixtures_dir, "conntrack_counting")  # the host counts entries...
    p = plan(facts, Target(connections=10_000, role="both", fresh_netns=True))  # ...verify --netns does not
    assert by_id(p, "conntrack.max").status == "PASS"
    assert any("a fresh network namespace has no netfilter rules" in n for n in p.notes)


def test_runner_is_the_seam_on_the_live_root(fixtures_dir):
    seen = []

    def runner(argv):
        seen.append(tuple(argv))
        return "table ip nat {\n chain post {\n  type nat hook postrouting priority srcnat;\n  masquerade\n }\n}\n"

    commands = HostCommands(ProcFS(fixtures_dir / "proc" / "conntrack_idle"), runner=runner)
    assert commands.output("nft-list-ruleset").startswith("table ip nat")
    assert seen == [COMMANDS["nft-list-ruleset"]]


def test_a_tree_never_runs_programs(fixtures_dir, monkeypatch):
    import c10kplan.host.commands as commands

    monkeypatch.setattr(commands.subprocess, "run", lambda *a, **k: pytest.fail("ran a program"))
    cmds = HostCommands(ProcFS(fixtures_dir / "proc" / "conntrack_rules"))
    assert "ct state" in cmds.output("nft-list-ruleset")
    assert cmds.output("iptables-save") is None  # not captured in that tree


@pytest.mark.parametrize(("text", "uses"), [
    ("table inet f {\n chain i {\n  ct state established accept\n }\n}", True),
    ("table ip nat {\n chain p {\n  type nat hook postrouting priority 100;\n }\n}", True),
    ("table ip raw {\n chain p {\n  type filter hook prerouting priority -300;\n  notrack\n }\n}", True),
    ("table inet f {\n chain i {\n  tcp dport 22 accept comment \"ct state\"\n }\n}", False),
    ("table inet f {\n chain ct {\n  udp dport 53 accept\n }\n}", False),  # a chain named ct
    ("*filter\n-A INPUT -m state --state ESTABLISHED -j ACCEPT\nCOMMIT", True),
    ("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT", True),  # a nat table needs conntrack by itself
    ("*filter\n-A OUTPUT -o eth0 -j MASQUERADE\nCOMMIT", True),
    ("*raw\n-A PREROUTING -j CT --notrack\nCOMMIT", True),
    ("# -m conntrack in a comment\n*filter\n-A INPUT -p tcp --dport 80 -j ACCEPT\nCOMMIT", False),
    ("", False),
    (None, None),
])
def test_ruleset_parser(text, uses):
    assert parse.ruleset_uses_conntrack(text) is uses


def test_table_names_parser():
    assert parse.parse_table_names("filter\nnat\n") == ["filter", "nat"]
    assert parse.parse_table_names("") == [] and parse.parse_table_names(None) is None
