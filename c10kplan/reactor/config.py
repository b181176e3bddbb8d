"""What `c10kplan serve` was asked to do, validated once (pydantic), and the worker arithmetic.

Kernel facts used here:
- RLIMIT_NOFILE is per process and every accepted connection costs one fd; without
  CAP_SYS_RESOURCE the hard limit cannot be raised, so `--workers auto` shards the target across
  processes with `planner.sharding.reuseport_processes_needed` (never re-derived here).
- Each worker also holds a few fds of its own (std streams, epoll fd, listener, the spare fd kept
  for EMFILE, the wake socketpair, the report pipe): RESERVED_FDS keeps them out of the budget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)

from c10kplan.numeric import MAX_CONNECTIONS, MAX_SECONDS, Float, Int, ZeroOrAtLeast, refused
from c10kplan.planner.sharding import reuseport_processes_needed
from c10kplan.reactor.backends import check_trigger

# fds a worker keeps for itself besides connections (stdio 3, epoll 1, listener 1, spare 1,
# wake pair 2, report pipe 1, plus headroom for /proc reads and the reservation socket).
RESERVED_FDS = 32

# serve forks this many workers at most (a typo guard: 2 cores here, and each worker is a process).
MAX_WORKERS = 1024
# The shortest non-zero --stats-interval: 1 ms (a test floods stderr at 10 ms; 1e-300 would spin).
MIN_STATS_INTERVAL = 0.001


def _one_message(value: object, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> object:
    """pydantic reports a failed union once per member; the user gets one line naming the option."""
    try:
        return handler(value)
    except ValidationError:
        flag = "--" + (info.field_name or "value").replace("_", "-")
        raise refused(f"{flag} must be 'auto' or a positive number, not {value!r}") from None


# "auto" or a whole number >= 1, given as int or ASCII text ("4"): --workers, --storm-processes.
# How many processes a host allows is the process cap's to say (processes/cap.py).
AutoOrPositive = Annotated[Literal["auto"] | Annotated[Int, Field(ge=1)], WrapValidator(_one_message)]


class ServeConfig(BaseModel):
    """Options of `c10kplan serve`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: Annotated[Int, Field(ge=0, le=65535)] = 0
    backend: Literal["epoll", "poll", "select"] = "epoll"
    trigger: Literal["level", "edge"] = "level"
    workers: AutoOrPositive = 1
    protocol: Literal["echo", "rot13", "discard", "http", "websocket"] = "echo"
    max_connections: Annotated[Int, Field(ge=1, le=MAX_CONNECTIONS)] | None = None
    stats_interval: Annotated[Float, Field(ge=0, le=MAX_SECONDS), ZeroOrAtLeast(MIN_STATS_INTERVAL)] = 5.0
    stats_file: Path | None = None
    backlog: Annotated[Int, Field(ge=1, le=2**31 - 1)] = 4096
    # inherit: keep the policy serve was started with; batch: SCHED_BATCH in every worker
    # (c10kplan.reactor.sched says what it buys and costs).
    sched: Literal["inherit", "batch"] = "inherit"

    @field_validator("trigger")
    @classmethod
    def _edge_needs_epoll(cls, trigger: str, info: ValidationInfo) -> str:
        if "backend" in info.data:  # an unknown backend is reported on its own
            check_trigger(info.data["backend"], trigger)
        return trigger

    @field_validator("workers")
    @classmethod
    def _at_most_max_workers(cls, workers: int | str) -> int | str:
        if workers != "auto" and workers > MAX_WORKERS:
            raise ValueError(f"must be at most {MAX_WORKERS}, not {workers}")
        return workers


def resolve_workers(
    workers: int | Literal["auto"], max_connections: int | None, hard_limit: int, cpus: int
) -> int:
    """`auto`: enough processes for max_connections under the fd hard limit, else one per CPU."""
    if workers != "auto":
        return workers
    if max_connections is not None:
        return reuseport_processes_needed(max_connections, hard_limit, RESERVED_FDS)
    return max(1, cpus)
