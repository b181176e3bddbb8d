"""Ephemeral-port budget of the client side.

Kernel facts:
- A client socket's 4-tuple (src ip, src port, dst ip, dst port) must be unique, so toward one
  destination ip:port one source address offers (high - low + 1) ports of
  net.ipv4.ip_local_port_range, minus those listed in ip_local_reserved_ports.
- The kernel default range is 32768-60999 (28,232 ports). Each extra source address (any of
  127.0.0.0/8 on loopback) adds a full range; the arithmetic lives in sharding.py.
- connect() slows from ~60 us to milliseconds once about half of the range toward one
  destination is in use (sharding.SLOW_PORT_SHARE): a target that fits one range may still
  ramp slowly. `fast_source_addresses` keeps each address a quarter full (sharding.PORT_SHARE).
- The side that closes first keeps the 4-tuple in TIME_WAIT for TCP_TIMEWAIT_LEN = 60 s (fixed;
  tcp_fin_timeout is FIN_WAIT_2, not this). connect() may reuse such a port only with
  net.ipv4.tcp_tw_reuse = 1 (2 = loopback only, the default since Linux 4.18; per network namespace).
"""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel

from c10kplan.host.inspect import DEFAULT_PORT_RANGE, HostFacts
from c10kplan.planner.findings import RECORD_CONFIG, Finding, Step, finding, step, unknown_finding
from c10kplan.planner.sharding import (
    MAX_SOURCE_ADDRESSES,
    PORT_SHARE,
    SLOW_PORT_SHARE,
    fast_source_addresses,
    ports_per_address,
    source_addresses_needed,
)
from c10kplan.planner.target import Target

WIDEST_PORT_RANGE = (1024, 65535)


class PortBudget(BaseModel):
    model_config = RECORD_CONFIG

    port_low: int
    port_high: int
    reserved_in_range: int
    ports_per_address: int
    source_addresses: int  # per destination ip:port: the minimum
    fast_source_addresses: int  # each at most PORT_SHARE full: what storm / verify use
    working: list[Step]


def port_budget(facts: HostFacts, target: Target) -> tuple[PortBudget | None, list[Finding]]:
    """None and no finding for role "server": it accepts, it does not pick ports."""
    if not target.connects:
        return None, []
    low, high = facts.ip_local_port_range or DEFAULT_PORT_RANGE
    reserved = facts.reserved_ports_in_range or 0
    per_addr = ports_per_address(low, high, reserved)
    addresses = source_addresses_needed(target.connections, low, high, reserved) if per_addr else 0
    fast = fast_source_addresses(target.connections, low, high, reserved) if per_addr else 0
    working = [
        step("ports_per_address", per_addr, "ports",
             "high - low + 1 - reserved ports in range", low=low, high=high, reserved=reserved),
        step("source_addresses", addresses, "addresses",
             "ceil(connections / ports_per_address) per destination ip:port",
             connections=target.connections, ports_per_address=per_addr),
        step("fast_source_addresses", fast, "addresses",
             f"ceil(connections / floor(ports_per_address x {PORT_SHARE})): connect() stays fast",
             connections=target.connections, ports_per_address=per_addr),
    ]
    budget = PortBudget.model_construct(port_low=low, port_high=high, reserved_in_range=reserved,
                        ports_per_address=per_addr, source_addresses=addresses,
                        fast_source_addresses=fast, working=working)
    return budget, [_finding(facts, target, budget), _time_wait(facts, target, budget)]


def _finding(facts: HostFacts, target: Target, b: PortBudget) -> Finding:
    formula = (f"connections <= {SLOW_PORT_SHARE} x ports_per_address (one source address, per"
               " destination ip:port); else ports_per_address x source_addresses")
    observed = f"{b.port_low}-{b.port_high} = {b.ports_per_address:,} ports per source address"
    if facts.ip_local_port_range is None:
        return finding(id="ports.ephemeral", status="WARN", formula=formula,
                       observed=f"ip_local_port_range: unknown (assumed {observed})",
                       required=f"{target.connections:,} ports",
                       fix=f"use {_addresses(b.fast_source_addresses)} if the default range holds")
    required = f"{target.connections:,} ports to one ip:port"
    if b.ports_per_address == 0:
        lo, hi = WIDEST_PORT_RANGE
        return finding(id="ports.ephemeral", status="FAIL", observed=observed, required=required,
                       formula=formula,
                       fix=f"sysctl -w net.ipv4.ip_local_port_range='{lo} {hi}'")
    if target.connections <= b.ports_per_address * SLOW_PORT_SHARE:
        return finding(id="ports.ephemeral", status="PASS", observed=observed, required=required,
                       formula=formula)
    lo, hi = WIDEST_PORT_RANGE
    wide = ports_per_address(lo, hi, b.reserved_in_range)
    n = b.fast_source_addresses
    where = ""
    if n <= MAX_SOURCE_ADDRESSES:  # 127.0.0.0/8 holds them: name the loopback range
        last = ipaddress.IPv4Address("127.0.0.1") + (n - 1)
        where = f" (e.g. 127.0.0.1-{last} on loopback: storm --source-ips auto)"
    fix = (f"use {_addresses(n)}, each at most {PORT_SHARE:.0%} full{where};"
           f" {b.source_addresses} is the bare minimum, and connect() slows to milliseconds"
           f" past {SLOW_PORT_SHARE:.0%} of a range")
    if target.connections <= wide * SLOW_PORT_SHARE:
        fix += f"; or sysctl -w net.ipv4.ip_local_port_range='{lo} {hi}'"
    return finding(id="ports.ephemeral", status="WARN", observed=observed, required=required,
                   formula=formula, fix=fix)


def _time_wait(facts: HostFacts, target: Target, b: PortBudget) -> Finding:
    """A second storm within 60 s needs free ports while the first one's sit in TIME_WAIT."""
    formula = ("2 x connections <= ports_per_address x source_addresses, or tcp_tw_reuse = 1"
               " (2 on loopback)")
    # With only the bare minimum of addresses; the fast count (ports.ephemeral's advice) always
    # leaves room for a second run, so the fix names it too.
    capacity = b.ports_per_address * b.source_addresses
    required = f"{2 * target.connections:,} ports within 60 s (one run in TIME_WAIT + the next)"
    fix = "sysctl -w net.ipv4.tcp_tw_reuse=1, or wait 60 s between runs"
    if b.fast_source_addresses > 1:
        fix += f", or use {_addresses(b.fast_source_addresses)} (see ports.ephemeral)"
    reuse = facts.tcp_tw_reuse
    # Role "both" talks over loopback, where the default 2 already allows reuse.
    if reuse == 1 or (reuse == 2 and target.role == "both") or 2 * target.connections <= capacity:
        observed = f"tcp_tw_reuse={reuse}, {capacity:,} ports" if reuse is not None else f"{capacity:,} ports"
        return finding(id="ports.time_wait", status="PASS", observed=observed, required=required,
                       formula=formula)
    if reuse is None:
        return unknown_finding("ports.time_wait", "net.ipv4.tcp_tw_reuse", required, fix, formula)
    return finding(id="ports.time_wait", status="WARN", observed=f"tcp_tw_reuse={reuse}, {capacity:,} ports",
                   required=required, fix=fix, formula=formula)


def _addresses(n: int) -> str:
    return "1 source address" if n == 1 else f"{n:,} source addresses"
