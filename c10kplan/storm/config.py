"""The storm's settings (validated once), source-address specs and the split across processes.

Kernel facts (Linux):
- To one destination ip:port, one source address offers the ephemeral range
  net.ipv4.ip_local_port_range (default 32768..60999 = 28,232 ports). Past that, connect()
  fails with EADDRNOTAVAIL: where tcpkali and wrk users get stuck near 28k (or 64k) connections.
- 127.0.0.0/8 is all local on Linux loopback: any 127.x.y.z can be bound without configuration.
- bind((addr, 0)) normally reserves a port right away, for any destination, so the range is
  shared by all destinations. IP_BIND_ADDRESS_NO_PORT (value 24, Linux >= 4.2) defers the port
  choice to connect(), per 4-tuple: every extra source address adds a whole range.
- connect() slows sharply past about half the range per (source, destination); `auto` keeps
  every source address at most a quarter full (planner/sharding.py: SLOW_PORT_SHARE,
  PORT_SHARE, with the measurements).
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from c10kplan.errors import BadInput, EnvironmentProblem
from c10kplan.planner.sharding import (
    MAX_SOURCE_ADDRESSES,
    fast_source_addresses,
    ports_per_address,
    processes_needed,
    source_addresses_needed,
)

# fds a storm process keeps for itself: std streams, pipes, epoll, imported modules' files.
FD_RESERVE = 64


class StormConfig(BaseModel):
    """Everything one storm run needs. Times in seconds, sizes in bytes, rates per second."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int = Field(ge=1, le=65535)
    connections: int = Field(ge=1)
    connect_rate: float = Field(0.0, ge=0, description="connects per second, all processes; 0 = unlimited")
    source_ips: tuple[str, ...] = ()
    processes: int = Field(1, ge=1)
    message_size: int = Field(64, ge=1, le=1_048_576)
    message_rate: float = Field(0.0, ge=0, description="messages per connection per second; 0 = idle")
    duration: float = Field(10.0, ge=0)
    connect_timeout: float = Field(5.0, gt=0)
    protocol: Literal["echo", "rot13", "discard"] = "echo"
    max_inflight: int = Field(4096, ge=1, description="pending connects per process")
    batch_tick: float = Field(
        0.001, ge=0, le=0.1,
        description="hold loop tick (s) once a process has a message due per tick; 0 = wake on every reply")

    @field_validator("host")
    @classmethod
    def _ipv4(cls, value: str) -> str:
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"not an IPv4 address: {value!r}") from None
        return value


def parse_target(text: str) -> tuple[str, int]:
    """`HOST:PORT` -> (host, port); BadInput for anything else."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise BadInput(f"target must be HOST:PORT with a port 1..65535, not {text!r}")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise BadInput(f"target host must be an IPv4 address, not {host!r}") from None
    return host, int(port)


def parse_source_ips(spec: str) -> tuple[str, ...]:
    """`127.0.0.1,127.0.0.2`, a range `127.0.0.1-127.0.0.20`, a CIDR `127.0.1.0/24`, or a mix."""
    out: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            if "/" in part:
                net = ipaddress.IPv4Network(part, strict=False)
                hosts = net.hosts() if net.num_addresses > 2 else iter(net)
                _extend(out, (str(a) for a in hosts), net.num_addresses)
            elif "-" in part:
                lo_s, hi_s = part.split("-", 1)
                lo, hi = ipaddress.IPv4Address(lo_s.strip()), ipaddress.IPv4Address(hi_s.strip())
                if hi < lo:
                    raise BadInput(f"source address range runs backwards: {part!r}")
                count = int(hi) - int(lo) + 1
                _extend(out, (str(lo + i) for i in range(count)), count)
            else:
                out.append(str(ipaddress.IPv4Address(part)))
        except ValueError:
            raise BadInput(f"bad source address spec {part!r}: use a.b.c.d, a.b.c.d-e.f.g.h or a CIDR") from None
    if not out:
        raise BadInput(f"the source address spec {spec!r} names no address")
    return tuple(out)


def _extend(out: list[str], items, count: int) -> None:
    if len(out) + count > MAX_SOURCE_ADDRESSES:
        raise BadInput(f"too many source addresses (more than {MAX_SOURCE_ADDRESSES})")
    out.extend(items)


def auto_source_ips(host: str, connections: int, port_low: int, port_high: int,
                    reserved: int = 0) -> tuple[str, ...]:
    """Enough loopback source addresses that each stays at most a quarter full (PORT_SHARE in
    planner/sharding.py).

    One address needs no explicit bind: () lets the kernel choose, as a plain client would.
    EnvironmentProblem when ip_local_reserved_ports covers the whole range."""
    if ports_per_address(port_low, port_high, reserved) <= 0:
        raise EnvironmentProblem(
            f"every port of ip_local_port_range {port_low}-{port_high} is in ip_local_reserved_ports:"
            " connect() has no ephemeral port to pick")
    needed = fast_source_addresses(connections, port_low, port_high, reserved)
    if needed <= 1:
        return ()
    if not ipaddress.IPv4Address(host).is_loopback:
        minimum = source_addresses_needed(connections, port_low, port_high, reserved)
        if minimum <= 1:
            return ()  # fits one range; the remote host is not ours to spread over
        raise BadInput(
            f"{connections} connections to one port need at least {minimum} source addresses "
            f"({needed} keep connect() fast); --source-ips auto only picks loopback ones: "
            "list addresses configured on this host"
        )
    return loopback_addresses(needed)


def loopback_addresses(count: int) -> tuple[str, ...]:
    """127.0.0.1, 127.0.0.2, ... : `count` local addresses, all usable without configuration."""
    if count > MAX_SOURCE_ADDRESSES:
        raise BadInput(f"{count} source addresses are more than 127.0.0.0/8 holds")
    first = ipaddress.IPv4Address("127.0.0.1")
    return tuple(str(first + i) for i in range(count))


def auto_processes(connections: int, hard_nofile: int) -> int:
    """Storm processes needed so that each holds its share under the fd hard limit."""
    try:
        return processes_needed(connections, hard_nofile, FD_RESERVE)
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def split(total: int, parts: int) -> list[tuple[int, int]]:
    """[start, end) index ranges of `total` items over `parts` processes, sizes differing by <= 1."""
    base, extra = divmod(total, parts)
    ranges, start = [], 0
    for i in range(parts):
        size = base + (1 if i < extra else 0)
        ranges.append((start, start + size))
        start += size
    return ranges
