"""The topology's names and addresses, the ip batches and the nstat parsing: pure."""

from __future__ import annotations

import ipaddress

import pytest

from c10kplan.errors import BadInput
from c10kplan.netns import ip as iplib
from c10kplan.netns.topology import (
    MAX_CLIENTS,
    client_addresses,
    client_source_spec,
    host_commands,
    hub_commands,
    new_prefix,
    plan_topology,
)
from c10kplan.storm.config import parse_source_ips


def test_plan_names_and_addresses_stay_inside_198_18_slash_15() -> None:
    plan = plan_topology("c10k-42-abcdef", clients=3, sources_per_client=4)
    assert plan.namespaces == ("c10k-42-abcdef-hub", "c10k-42-abcdef-srv", "c10k-42-abcdef-c1",
                               "c10k-42-abcdef-c2", "c10k-42-abcdef-c3")
    assert plan.server.address == "198.18.0.1"
    assert plan.clients[1].addresses == ("198.18.2.1", "198.18.2.2", "198.18.2.3", "198.18.2.4")
    every = [a for h in plan.hosts for a in h.addresses]
    assert len(set(every)) == len(every)
    assert all(ipaddress.IPv4Address(a) in ipaddress.IPv4Network("198.18.0.0/15") for a in every)


def test_source_spec_names_the_same_block_storm_parses() -> None:
    assert parse_source_ips(client_source_spec(7, 30)) == client_addresses(7, 30)
    assert client_source_spec(2, 1) == "198.18.2.1"
    last = client_addresses(MAX_CLIENTS, 254)
    assert last[-1] == f"198.18.{MAX_CLIENTS}.254"


@pytest.mark.parametrize("kwargs", [{"clients": 0}, {"clients": MAX_CLIENTS + 1}, {"clients": 1, "mtu": 67},
                                    {"clients": 1, "mtu": 65536}, {"clients": 1, "sources_per_client": 0},
                                    {"clients": 1, "sources_per_client": 255}])
def test_out_of_range_is_bad_input(kwargs) -> None:
    with pytest.raises(BadInput):
        plan_topology("c10k-1-000000", **kwargs)


def test_batches_name_only_the_plans_namespaces_and_devices() -> None:
    plan = plan_topology("c10k-42-abcdef", clients=2, mtu=1500)
    hub = hub_commands(plan)
    assert "link add br0 mtu 1500 type bridge" in hub
    assert "link add c2 mtu 1500 type veth peer name eth0 mtu 1500 netns c10k-42-abcdef-c2" in hub
    assert hub[-1] == "link set br0 up"
    assert host_commands(plan.clients[0]) == ["link set lo up", "addr add 198.18.1.1/15 dev eth0",
                                              "link set eth0 up"]


def test_prefix_carries_the_owner_pid_the_sweep_reads() -> None:
    prefix = new_prefix(1234)
    match = iplib.OWNED.match(prefix + "-hub")
    assert match and match.group(1) == prefix and match.group(2) == "1234"
    assert new_prefix(1234) != prefix
    assert iplib.OWNED.match("c10k-12-zzzzzz-hub") is None  # not ours: never swept


def test_nstat_json_and_deltas() -> None:
    text = '{"kernel":{"TcpOutSegs":300,"TcpInSegs":200,"TcpExtDelayedACKs":0}}'
    before = iplib.parse_nstat_json(text)
    after = {"TcpOutSegs": 600, "TcpInSegs": 500, "TcpExtDelayedACKs": 1, "TcpNew": 2}
    delta = iplib.counter_delta(before, after)
    assert delta == {"TcpOutSegs": 300, "TcpInSegs": 300, "TcpExtDelayedACKs": 1, "TcpNew": 2}
    assert iplib.segments_per_round_trip([delta, {"TcpOutSegs": 150}], 150) == 3.0
    assert iplib.segments_per_round_trip([delta], 0) is None
    assert iplib.parse_nstat_json("not json") == {} and iplib.parse_nstat_json("[1]") == {}
