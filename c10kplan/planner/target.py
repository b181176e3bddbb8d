"""What the user wants to hold: the planner's input besides the host facts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["server", "client", "both"]

# Defaults, with the reasons shown in docs/check.md:
# - bandwidth_per_conn 1000 B/s: the course notes' "1 KB/s per connection" (10,000 conns = 80 Mbit/s).
# - connect_rate 1000 new connections/s: a storm ramp of 100k connections in under two minutes.
# - app_buffer 8192 B: one 4 KiB read buffer plus the Python objects the bundled reactor keeps per
#   connection (socket object, connection record, dict slots; ~3-4 KiB). The course notes assume
#   128 KiB; pass --app-buffer 131072 to plan with theirs. `verify --calibrate` measures the real one.
DEFAULT_CONNECT_RATE = 1000.0
DEFAULT_APP_BUFFER = 8192


class Target(BaseModel):
    """The load to plan for. `connections` are client<->server connections; role "both" (server
    and load client on one host, as `verify` runs) holds two sockets per connection."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connections: int = Field(ge=1, le=100_000_000, description="concurrent TCP connections")
    role: Role = "server"
    message_size: int = Field(64, ge=0, le=1 << 30, description="bytes per message")
    message_rate: float = Field(0.0, ge=0, description="messages per connection per second")
    bandwidth_per_conn: float = Field(1000.0, ge=0, description="bytes/s per connection")
    connect_rate: float = Field(DEFAULT_CONNECT_RATE, gt=0, description="new connections per second")
    app_buffer: int = Field(DEFAULT_APP_BUFFER, ge=0, description="user-space bytes per connection")
    reserve_fds: int = Field(64, ge=0, le=1_000_000, description="fds per process kept for other uses")

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
