"""What the user wants to hold: the planner's input besides the host facts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from c10kplan.numeric import (
    MAX_CONNECT_RATE,
    MAX_CONNECTIONS,
    MAX_MESSAGE_RATE,
    MIN_RATE,
    Float,
    Int,
    IntRange,
    ZeroOrAtLeast,
)

Role = Literal["server", "client", "both"]
# Whose programs hold the connections: "bundled" = `c10kplan serve` and `storm` (what verify
# runs; their measured costs in planner/memory.py), "custom" = the user's own server / client
# (`app_buffer` bytes per socket, no per-process figure).
Workload = Literal["bundled", "custom"]
# What one message is (planner/cpu.py prices each): an echo round trip of raw bytes, an HTTP/1.1
# keep-alive request and its response, or a WebSocket frame echoed back.
Protocol = Literal["echo", "http", "websocket"]

# Defaults, with the reasons shown in docs/check.md:
# - bandwidth_per_conn None: derived from the traffic, message_size x message_rate (planner/bandwidth.py),
#   so idle connections carry nothing. The course notes' "1 KB/s per connection" (10,000 conns =
#   80 Mbit/s) is `--bandwidth-per-conn 1000`.
# - connect_rate 1000 new connections/s: a storm ramp of 100k connections in under two minutes.
# - app_buffer 8192 B per socket, for a custom workload: one 4 KiB read buffer (a typical event-loop
#   server's per-connection read buffer, e.g. nginx's client_header_buffer_size 1k + its 4 KiB
#   large_client_header_buffers page, or a 4 KiB `recv` buffer) plus ~4 KiB of connection state
#   (the object graph an interpreted server keeps per socket). The course notes assume 128 KiB;
#   pass --app-buffer 131072 to plan with theirs. `verify --calibrate` measures the real one.
# - workload: "bundled" for role both (server and load client on one host is what verify runs),
#   "custom" otherwise; an explicit app_buffer means the user's own programs ("custom").
DEFAULT_CONNECT_RATE = 1000.0
DEFAULT_APP_BUFFER = 8192
# Upper bound (a typo guard that also keeps every figure finite): one connection cannot move
# more than 10^11 B/s (an 800 Gbit/s link).
MAX_BANDWIDTH_PER_CONN = 1e11
AppBuffer = IntRange(0, 1 << 30)  # bytes per socket


class Target(BaseModel):
    """The load to plan for. `connections` are client<->server connections; role "both" (server
    and load client on one host, as `verify` runs) holds two sockets per connection."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connections: Int = Field(ge=1, le=MAX_CONNECTIONS, description="concurrent TCP connections")
    role: Role = "server"
    message_size: Int = Field(64, ge=0, le=1 << 30, description="bytes per message")
    message_rate: Annotated[Float, ZeroOrAtLeast(MIN_RATE)] = Field(
        0.0, ge=0, le=MAX_MESSAGE_RATE, description="messages per connection per second")
    bandwidth_per_conn: Annotated[Float, ZeroOrAtLeast(MIN_RATE)] | None = Field(
        None, ge=0, le=MAX_BANDWIDTH_PER_CONN,
        description="bytes/s per connection; None = message_size x message_rate (planner/bandwidth.py)")
    connect_rate: Float = Field(DEFAULT_CONNECT_RATE, ge=MIN_RATE, le=MAX_CONNECT_RATE,
                                description="new connections per second")
    app_buffer: AppBuffer | None = Field(
        None,
        description="user-space bytes per socket of a custom workload; None = 8192 (custom) or measured (bundled)")
    reserve_fds: Int = Field(64, ge=0, le=1_000_000, description="fds per process kept for other uses")
    workload: Workload | None = Field(
        None, description="bundled (c10kplan serve + storm) or custom; None = bundled for role both")
    fresh_netns: bool = Field(
        False, description="runs in a fresh network namespace (verify --netns): no netfilter rules there")
    protocol: Protocol = Field("echo", description="what a message is: its CPU cost (docs/check.md, CPU per message)")

    @property
    def runs(self) -> Workload:
        """The workload planned for: explicit, else custom when app_buffer is given, else
        bundled for role both (what verify runs) and custom for server / client."""
        if self.workload is not None:
            return self.workload
        if self.app_buffer is not None:
            return "custom"
        return "bundled" if self.role == "both" else "custom"

    @property
    def app_buffer_bytes(self) -> int:
        """User-space bytes per socket of a custom workload."""
        return DEFAULT_APP_BUFFER if self.app_buffer is None else self.app_buffer

    @property
    def sockets(self) -> int:
        """TCP sockets on this host: both ends are local for role "both"."""
        return self.connections * (2 if self.role == "both" else 1)

    @property
    def serves(self) -> bool:
        return self.role in ("server", "both")

    @property
    def connects(self) -> bool:
        return self.role in ("client", "both")


def verify_target(*, connections: int, message_size: int = 64, message_rate: float = 0.0,
                  connect_rate: float | None = None, fresh_netns: bool = False,
                  protocol: Protocol = "echo") -> Target:
    """The target `verify` holds, exactly: role both (server and storm on this host), the
    bundled workload (serve workers + storm processes, their measured costs), and with
    --netns a fresh namespace (no netfilter rules: conntrack tracks nothing there).
    `connect_rate` None or 0 = the storm's unpaced ramp (the default rate is planned)."""
    extra = {"connect_rate": connect_rate} if connect_rate else {}
    return Target(connections=connections, role="both", message_size=message_size,
                  message_rate=message_rate, workload="bundled", fresh_netns=fresh_netns,
                  protocol=protocol, **extra)
