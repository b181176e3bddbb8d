"""What `c10kplan serve` was asked to do, validated once (pydantic), and the worker arithmetic.

Kernel facts used here:
- RLIMIT_NOFILE is per process and every accepted connection costs one fd; without
  CAP_SYS_RESOURCE the hard limit cannot be raised, so `--workers auto` shards the target across
  processes with `planner.sharding.processes_needed` (never re-derived here).
- Each worker also holds a few fds of its own (std streams, epoll fd, listener, the spare fd kept
  for EMFILE, the wake socketpair, the report pipe): RESERVED_FDS keeps them out of the budget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from c10kplan.planner.sharding import processes_needed

# fds a worker keeps for itself besides connections (stdio 3, epoll 1, listener 1, spare 1,
# wake pair 2, report pipe 1, plus headroom for /proc reads and the reservation socket).
RESERVED_FDS = 32


class ServeConfig(BaseModel):
    """Options of `c10kplan serve`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 0
    backend: Literal["epoll", "poll", "select"] = "epoll"
    trigger: Literal["level", "edge"] = "level"
    workers: int | Literal["auto"] = 1
    protocol: Literal["echo", "rot13", "discard"] = "echo"
    max_connections: Annotated[int, Field(ge=1)] | None = None
    stats_interval: Annotated[float, Field(ge=0)] = 5.0
    stats_file: Path | None = None
    backlog: Annotated[int, Field(ge=1)] = 4096

    @field_validator("trigger")
    @classmethod
    def _edge_needs_epoll(cls, trigger: str, info: ValidationInfo) -> str:
        backend = info.data.get("backend")
        if trigger == "edge" and backend != "epoll":
            raise ValueError(f"--trigger edge needs --backend epoll, not {backend}")
        return trigger

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: object) -> int | str:
        if value == "auto":
            return "auto"
        try:
            n = int(value)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            n = 0
        if not 1 <= n <= 1024:
            raise ValueError(f"--workers must be 1..1024 or auto, not {value!r}")
        return n


def resolve_workers(
    workers: int | Literal["auto"], max_connections: int | None, hard_limit: int, cpus: int
) -> int:
    """`auto`: enough processes for max_connections under the fd hard limit, else one per CPU."""
    if workers != "auto":
        return workers
    if max_connections is not None:
        return processes_needed(max_connections, hard_limit, RESERVED_FDS)
    return max(1, cpus)
