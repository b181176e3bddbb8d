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
import re
import socket
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from c10kplan.errors import BadInput, EnvironmentProblem
from c10kplan.numeric import (
    MAX_CONNECT_RATE,
    MAX_CONNECTIONS,
    MAX_MESSAGE_RATE,
    MAX_SECONDS,
    MIN_RATE,
    Float,
    Int,
    ZeroOrAtLeast,
    parse_int,
    refused,
)
from c10kplan.planner.sharding import (
    MAX_SOURCE_ADDRESSES,
    fast_source_addresses,
    ports_per_address,
    processes_needed,
    source_addresses_needed,
)

# fds a storm process keeps for itself: std streams, pipes, epoll, imported modules' files.
FD_RESERVE = 64

# The connect ramp (connections / --connect-rate) may last at most MAX_SECONDS (1 day):
# `-n 3 --connect-rate 1e-12` would otherwise wait 3e12 s for its first connect.
MAX_RAMP_SECONDS = MAX_SECONDS
# The smallest non-zero time: 1 ms (a duration, a connect timeout); the batch tick 1 us.
MIN_SECONDS = 0.001


def check_ramp(connections: int | None, connect_rate: float) -> float:
    """`connect_rate`, or a validation error when a paced ramp of `connections` would take
    longer than MAX_RAMP_SECONDS (0 = unpaced; None = connections already refused)."""
    if connections is not None and connect_rate > 0 and connections / connect_rate > MAX_RAMP_SECONDS:
        raise refused(
            f"--connect-rate {connect_rate:g} opens {connections:,} connections in "
            f"{connections / connect_rate:.3g} s; the ramp may take at most {MAX_RAMP_SECONDS:,.0f} s "
            f"(1 day): use --connect-rate {connections / MAX_RAMP_SECONDS:.3g} or more")
    return connect_rate


class StormConfig(BaseModel):
    """Everything one storm run needs. Times in seconds, sizes in bytes, rates per second."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: Int = Field(ge=1, le=65535)
    connections: Int = Field(ge=1, le=MAX_CONNECTIONS)
    connect_rate: Annotated[Float, ZeroOrAtLeast(MIN_RATE)] = Field(
        0.0, ge=0, le=MAX_CONNECT_RATE, description="connects per second, all processes; 0 = unlimited")
    source_ips: tuple[str, ...] = ()
    processes: Int = Field(1, ge=1)
    message_size: Int = Field(64, ge=1, le=1_048_576)
    message_rate: Annotated[Float, ZeroOrAtLeast(MIN_RATE)] = Field(
        0.0, ge=0, le=MAX_MESSAGE_RATE, description="messages per connection per second; 0 = idle")
    duration: Annotated[Float, ZeroOrAtLeast(MIN_SECONDS)] = Field(10.0, ge=0, le=MAX_SECONDS)
    connect_timeout: Float = Field(5.0, ge=MIN_SECONDS, le=3600.0)
    protocol: Literal["echo", "rot13", "discard", "http", "websocket"] = "echo"
    max_inflight: Int = Field(4096, ge=1, le=1_000_000, description="pending connects per process")
    batch_tick: Annotated[Float, ZeroOrAtLeast(1e-6)] = Field(
        0.001, ge=0, le=0.1,
        description="hold loop tick (s) once a process has a message due per tick; 0 = wake on every reply")
    # http and websocket (storm/protocols/): what each request or upgrade carries.
    server_name: str = Field("", description="Host header (and TLS-less authority) sent; default host:port")
    path: str = "/"
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    expect_status: tuple[str, ...] = Field(("2xx",), description="statuses an HTTP reply must have: 2xx, 404, ...")
    ping_interval: Annotated[Float, ZeroOrAtLeast(MIN_SECONDS)] = Field(
        0.0, ge=0, le=MAX_SECONDS, description="websocket: ping a connection idle this long (s); 0 = never")
    subprotocols: tuple[str, ...] = ()
    ws_binary: bool = Field(False, description="websocket: binary frames instead of text")
    stop_on_failure: bool = Field(
        False, description="end the ramp at the first failure (every process: the parent passes it on)")
    close: Literal["fin", "reset"] = Field(
        "fin", description="how the storm ends its connections: fin (orderly close) or reset (SO_LINGER 0: RST,"
                           " no TIME_WAIT; storm/client.py close_all)")

    @field_validator("connect_rate")
    @classmethod
    def _ramp_bounded(cls, rate: float, info: ValidationInfo) -> float:
        return check_ramp(info.data.get("connections"), rate)

    @field_validator("host")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"not an IP address: {value!r}") from None
        return value

    @property
    def family(self) -> int:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    @property
    def authority(self) -> str:
        """The Host header: --header Host wins, then the name the target was given by."""
        if self.server_name:
            return self.server_name
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_target(text: str) -> tuple[str, int]:
    """`HOST:PORT` -> (host, port); BadInput for anything else."""
    host, sep, port_text = text.rpartition(":")
    try:
        port = parse_int(port_text) if sep and host else 0
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise BadInput(f"target must be HOST:PORT with a port 1..65535, not {text!r}")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise BadInput(f"target host must be an IPv4 address, not {host!r}") from None
    return host, port


@dataclass(frozen=True)
class Target:
    """A storm target, resolved once: the address connected to, and how it was named."""

    host: str  # an IPv4 or IPv6 address
    port: int
    name: str  # as given (a hostname, an address): the Host header's host
    scheme: str = ""  # "", "http" or "ws"
    path: str = ""  # from a URL target; "" = none given

    @property
    def authority(self) -> str:
        name = f"[{self.name}]" if ":" in self.name else self.name
        return f"{name}:{self.port}"


_TARGET = re.compile(r"^(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?"
                     r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:/\[\]]+))"
                     r"(?::(?P<port>[0-9]+))?(?P<path>/[^#]*)?$", re.ASCII)
DEFAULT_PORTS = {"http": 80, "ws": 80}


def resolve_target(text: str, resolver=socket.getaddrinfo) -> Target:
    """`HOST:PORT`, `[V6]:PORT`, `http://HOST[:PORT]/path` or `ws://HOST[:PORT]/path` -> Target.

    A hostname is resolved once, here (an IPv4 answer preferred, as `localhost` -> 127.0.0.1
    always was); one that does not resolve is BadInput. `https`/`wss` are refused: the storm
    speaks no TLS."""
    m = _TARGET.match(text.strip())
    if not m:
        raise BadInput(f"target must be HOST:PORT, [IPV6]:PORT, http://HOST:PORT/PATH or ws://HOST:PORT/PATH, not {text!r}")
    scheme = (m["scheme"] or "").lower()
    if scheme and scheme not in DEFAULT_PORTS:
        raise BadInput(f"target scheme {scheme!r} is not spoken (the storm has no TLS): use http:// or ws://")
    port_text = m["port"]
    if port_text is None:
        if not scheme:
            raise BadInput(f"target must be HOST:PORT with a port 1..65535, not {text!r}")
        port = DEFAULT_PORTS[scheme]
    else:
        try:
            port = parse_int(port_text)  # [0-9]+ of any length: 5,000 digits pass the regex
        except ValueError:
            port = 0
    if not 1 <= port <= 65535:
        raise BadInput(f"target port must be 1..65535, not {port_text[:40]}")
    name = m["v6"] or m["host"]
    try:
        host = str(ipaddress.ip_address(name))
    except ValueError:
        if m["v6"]:
            raise BadInput(f"not an IPv6 address: [{name}]") from None
        host = _resolve(name, port, resolver)
    return Target(host=host, port=port, name=name, scheme=scheme, path=m["path"] or "")


def _resolve(name: str, port: int, resolver) -> str:
    try:
        infos = resolver(name, port, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, socket.gaierror) else "not a valid hostname"
        raise BadInput(f"target host {name!r} does not resolve: {why}") from None
    addrs = [info[4][0] for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]
    if not addrs:
        raise BadInput(f"target host {name!r} resolves to no IPv4 or IPv6 address")
    v4 = [a for a in addrs if ":" not in a]
    return (v4 or addrs)[0]


_STATUS = re.compile(r"^[1-5](?:[0-9]{2}|xx)$", re.ASCII)


def parse_expect_status(spec: str) -> tuple[str, ...]:
    """`2xx`, `200`, `2xx,304` -> ("2xx", "200", ...); BadInput otherwise."""
    out = tuple(p.strip().lower() for p in spec.split(",") if p.strip())
    bad = [p for p in out if not _STATUS.match(p)]
    if not out or bad:
        raise BadInput(f"--expect-status takes classes or codes like 2xx,304, not {spec!r}")
    return out


def status_expected(status: int, expect: tuple[str, ...]) -> bool:
    code = str(status)
    return any(e == code or (e[1:] == "xx" and e[0] == code[0]) for e in expect)


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", re.ASCII)


def parse_header(text: str) -> tuple[str, str]:
    """`Name: value` -> (name, value): a token name, a value without CR, LF or NUL."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not _TOKEN.match(name) or any(c in value for c in "\r\n\0"):
        raise BadInput(f"--header must be NAME:VALUE (a token name, no CR/LF in the value), not {text!r}")
    return name, value


def parse_path(text: str) -> str:
    if not text.startswith("/") or any(c in text for c in " \r\n\0") or not text.isascii():
        raise BadInput(f"--path must start with / and hold no spaces or control characters, not {text!r}")
    return text


def parse_method(text: str) -> str:
    if not _TOKEN.match(text):
        raise BadInput(f"--method must be an HTTP token such as GET or POST, not {text!r}")
    return text.upper()


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


def is_loopback(host: str) -> bool:
    """127.0.0.0/8 or ::1 (False for a name or anything unparsable)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


BODY_MAX = 1024 * 1024  # bytes of --body-file read at most


def read_body_file(path: str, limit: int = BODY_MAX) -> bytes:
    """The request body: a regular file of at most `limit` bytes (the one bounded read)."""
    from c10kplan.boundedread import read_bytes

    try:
        return read_bytes(path, limit)
    except OSError as exc:
        raise BadInput(f"--body-file {path}: {exc.strerror or exc}") from None


SCHEME_PROTOCOL = {"http": "http", "ws": "websocket"}


def protocol_settings(target: Target, protocol: str | None, *, method: str = "GET", path: str | None = None,
                      headers: list[str] | tuple[str, ...] = (), body_file: str | None = None,
                      expect_status: str = "2xx", ping_interval: float = 0.0,
                      subprotocols: list[str] | tuple[str, ...] = (), ws_binary: bool = False) -> dict:
    """The StormConfig settings of the protocol options: the protocol follows the target's
    scheme when not given (http:// -> http, ws:// -> websocket), the path the URL's."""
    implied = SCHEME_PROTOCOL.get(target.scheme)
    chosen = protocol or implied or "echo"
    if implied and chosen != implied:
        raise BadInput(f"a {target.scheme}:// target speaks --protocol {implied}, not {chosen}")
    parsed = tuple(parse_header(h) for h in headers)
    host = [v for k, v in parsed if k.lower() == "host"]
    settings: dict = {"protocol": chosen, "ping_interval": ping_interval}  # validated for every protocol
    if chosen in ("http", "websocket"):
        settings.update(
            path=parse_path(path if path is not None else (target.path or "/")),
            headers=tuple((k, v) for k, v in parsed if k.lower() != "host"),
            server_name=host[-1] if host else target.authority,
        )
    if chosen == "http":
        settings.update(method=parse_method(method), expect_status=parse_expect_status(expect_status),
                        body=read_body_file(body_file) if body_file else b"")
    if chosen == "websocket":
        for p in subprotocols:
            if not _TOKEN.match(p):
                raise BadInput(f"--subprotocol must be a token, not {p!r}")
        settings.update(subprotocols=tuple(subprotocols), ws_binary=ws_binary)
    return settings
