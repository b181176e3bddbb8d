"""What `c10kplan verify` was asked to prove. Validated once; crosses into the namespace as JSON."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from c10kplan.numeric import (
    MAX_CONNECT_RATE,
    MAX_CONNECTIONS,
    MAX_MESSAGE_RATE,
    MAX_SECONDS,
    MIN_RATE,
    Float,
    Int,
    IntRange,
    ZeroOrAtLeast,
)
from c10kplan.planner.sharding import MAX_SOURCE_ADDRESSES
from c10kplan.reactor.backends import check_trigger
from c10kplan.reactor.config import AutoOrPositive
from c10kplan.storm.config import MIN_SECONDS, check_ramp

SourceAddresses = IntRange(1, MAX_SOURCE_ADDRESSES)


class VerifyOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    connections: Int = Field(ge=1, le=MAX_CONNECTIONS)
    duration: Annotated[Float, ZeroOrAtLeast(MIN_SECONDS)] = Field(
        10.0, ge=0, le=MAX_SECONDS, description="seconds to hold all connections")
    message_rate: Annotated[Float, ZeroOrAtLeast(MIN_RATE)] = Field(
        1.0, ge=0, le=MAX_MESSAGE_RATE, description="messages per connection per second")
    message_size: Int = Field(64, ge=1, le=1_048_576, description="bytes per message")
    connect_rate: Annotated[Float, ZeroOrAtLeast(MIN_RATE)] = Field(
        0.0, ge=0, le=MAX_CONNECT_RATE, description="storm connects per second; 0 = as fast as possible")
    backend: Literal["epoll", "poll", "select"] = "epoll"
    trigger: Literal["level", "edge"] = "level"
    workers: AutoOrPositive = "auto"
    storm_processes: AutoOrPositive = "auto"
    profile: str | None = None
    netns: bool = False
    p99_max_ms: Float = Field(50.0, ge=0.001, le=3_600_000)
    calibrate: str | None = Field(None, description="write the measured costs to this file")
    force: bool = False
    settle: Float = Field(0.5, ge=0, le=MAX_SECONDS, description="seconds into the hold before the host is measured")
    client_hosts: Int | None = Field(None, description="--netns only: K client namespaces (verify/multihost.py)")
    mtu: Int = Field(1500, description="MTU of the namespaces' links, with client_hosts")
    find_limit: Literal["connections", "message-rate"] | None = Field(
        None, description="search for the breaking point instead of proving the target (verify/findlimit.py);"
                          " `connections` is then the ceiling of the search")
    source_ips: SourceAddresses | None = Field(
        None,
        description="loopback source addresses the storm binds (127.0.0.1 ...); None = the plan's")
    protocol: Literal["echo", "http", "websocket"] = "echo"
    # --target: the user's own server instead of the bundled one (verify/own_server.py)
    target: str | None = Field(None, description="HOST:PORT (or http:// / ws:// URL) of the user's server")
    pids: tuple[Int, ...] = Field((), description="the server's processes on this host (children measured too)")
    host_facts: str | None = Field(None, description="a `c10kplan snapshot` of the server's host")

    @field_validator("connect_rate")
    @classmethod
    def _ramp_bounded(cls, rate: float, info: ValidationInfo) -> float:
        return check_ramp(info.data.get("connections"), rate)

    @model_validator(mode="before")
    @classmethod
    def _protocol_from_scheme(cls, data):
        """No --protocol: a --target URL's scheme says it (http://, ws://), else echo."""
        if isinstance(data, dict) and data.get("protocol") is None:
            target = str(data.get("target") or "")
            implied = "http" if target.startswith("http://") else "websocket" if target.startswith("ws://") else "echo"
            data = {**data, "protocol": implied}
        return data

    @model_validator(mode="after")
    def _edge_needs_epoll(self) -> "VerifyOptions":
        check_trigger(self.backend, self.trigger)
        if self.duration == 0:  # storm --duration 0 is a connect test; verify judges a hold
            raise ValueError("--duration 0 holds nothing, so verify could prove nothing about holding "
                             "the connections: give a hold in seconds (`storm --duration 0` tests connects)")
        if self.target is None and (self.pids or self.host_facts):
            raise ValueError("--pid and --host-facts need --target HOST:PORT")
        if self.target is not None and self.netns:
            raise ValueError("--target is a server outside any namespace verify makes: drop --netns")
        if self.target is not None and self.profile:
            raise ValueError("--profile needs the bundled server in --netns, not --target")
        if any(pid < 1 for pid in self.pids):
            raise ValueError("--pid must be a process ID (1 or more)")
        return self
