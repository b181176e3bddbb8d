"""Bandwidth budget: connections x bytes/s x 8 against the link speed.

Kernel facts: /sys/class/net/IF/speed is in Mbit/s (10^6 bit/s); -1, or EINVAL on read (virtual
NICs, veth, ifb), means unknown. Loopback has no speed: traffic of role "both" never leaves
the host. Ethernet links are full duplex: the speed holds in each direction. An echo round
trip sends message_size bytes each way, so the busier direction carries message_size x
message_rate bytes/s per connection, and that is what is held against the speed.
"""

from __future__ import annotations

from pydantic import BaseModel

from c10kplan.host.inspect import HostFacts
from c10kplan.planner.findings import (
    RECORD_CONFIG,
    Finding,
    Step,
    finding,
    headroom_status,
    step,
)
from c10kplan.planner.target import Target

# Share of the link the target may fill before we WARN (TCP/IP headers, bursts).
LINK_HEADROOM = 0.7


class BandwidthBudget(BaseModel):
    model_config = RECORD_CONFIG

    bytes_per_conn_s: float  # bandwidth_per_conn if given, else message_size x message_rate
    required_bits_s: float  # connections x bytes_per_conn_s x 8
    link_speed_mbit: int | None
    working: list[Step]

    @property
    def required_mbit_s(self) -> float:
        return self.required_bits_s / 1e6


def bandwidth_budget(facts: HostFacts, target: Target) -> tuple[BandwidthBudget, list[Finding]]:
    if target.bandwidth_per_conn is None:  # follow the traffic: idle connections carry nothing
        per_conn = target.message_size * target.message_rate
        derived = step("bytes_per_conn_s", per_conn, "bytes/s", "message_size x message_rate",
                       message_size=target.message_size, message_rate=target.message_rate)
    else:
        per_conn = target.bandwidth_per_conn
        derived = step("bytes_per_conn_s", per_conn, "bytes/s", "bandwidth_per_conn (given)",
                       bandwidth_per_conn=per_conn)
    bits = target.connections * per_conn * 8
    working = [
        derived,
        step("required_bits_s", bits, "bit/s", "connections x bytes_per_conn_s x 8",
             connections=target.connections, bytes_per_conn_s=per_conn),
    ]
    budget = BandwidthBudget.model_construct(bytes_per_conn_s=per_conn, required_bits_s=bits,
                             link_speed_mbit=facts.link_speed_mbit, working=working)
    return budget, [_finding(facts, target, budget)]


def _finding(facts: HostFacts, target: Target, b: BandwidthBudget) -> Finding:
    formula = f"connections x bytes/s x 8 <= {LINK_HEADROOM:.0%} of link speed"
    required = f"{b.required_mbit_s:,.1f} Mbit/s"
    if target.role == "both":
        return finding(id="bandwidth.link", status="PASS", observed="loopback (client on this host)",
                       required=required, formula=formula)
    speed = b.link_speed_mbit
    if speed is None:
        names = ", ".join(facts.link_speeds_mbit) or "none found"
        return finding(id="bandwidth.link", status="WARN", formula=formula, required=required,
                       observed=f"link speed unknown ({names})",
                       fix="check the NIC with `ethtool IF` or the provider's instance bandwidth")
    observed = f"{speed:,} Mbit/s"
    status = headroom_status(b.required_bits_s, speed * 1e6, LINK_HEADROOM)
    source = ("here --bandwidth-per-conn" if target.bandwidth_per_conn is not None
              else "here --message-size x --message-rate; --bandwidth-per-conn sets it")
    fix = "" if status == "PASS" else f"a faster link, several NICs, or fewer bytes per connection ({source})"
    return finding(id="bandwidth.link", status=status, observed=observed, required=required,
                   fix=fix, formula=formula)
