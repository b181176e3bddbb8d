"""What `c10kplan verify` was asked to prove. Validated once; crosses into the namespace as JSON."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from c10kplan.reactor.backends import check_trigger
from c10kplan.reactor.config import AutoOrPositive


class VerifyOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    connections: int = Field(ge=1, le=100_000_000)
    duration: float = Field(10.0, ge=0, le=86_400, description="seconds to hold all connections")
    message_rate: float = Field(1.0, ge=0, description="messages per connection per second")
    message_size: int = Field(64, ge=1, le=1_048_576, description="bytes per message")
    connect_rate: float = Field(0.0, ge=0, description="storm connects per second; 0 = as fast as possible")
    backend: Literal["epoll", "poll", "select"] = "epoll"
    trigger: Literal["level", "edge"] = "level"
    workers: AutoOrPositive = "auto"
    storm_processes: AutoOrPositive = "auto"
    profile: str | None = None
    netns: bool = False
    p99_max_ms: float = Field(50.0, gt=0)
    calibrate: str | None = Field(None, description="write the measured costs to this file")
    force: bool = False
    settle: float = Field(0.5, ge=0, description="seconds into the hold before the host is measured")
    client_hosts: int | None = Field(None, description="--netns only: K client namespaces (verify/multihost.py)")
    mtu: int = Field(1500, description="MTU of the namespaces' links, with client_hosts")

    @model_validator(mode="after")
    def _edge_needs_epoll(self) -> "VerifyOptions":
        check_trigger(self.backend, self.trigger)
        return self
