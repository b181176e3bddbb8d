"""`storm --share I/K` and `--start-at EPOCH`: one load host's slice of a fleet storm, and the
moment every host starts its ramp.

- Host I of K takes connections [start, end) of `split(N, K)[I - 1]` (sizes differ by at most
  one, the same split the storm uses across its processes), the same share of the fleet's
  `--connect-rate`, and slice I of an explicit `--source-ips` list (the fleet's address plan:
  list every host's addresses in host order, and each host binds only its own). `auto`
  addresses are worked out by each host for its own share.
- `--start-at` is a Unix time (seconds, UTC, a float): every host sleeps until then and starts
  its ramp, so the holds overlap. It relies on the hosts' clocks agreeing (NTP keeps them within
  milliseconds). A time more than START_AHEAD_MAX in the future (a value in ms, a wrong year)
  or more than START_LATE_SLACK in the past (a host that got the command too late) is refused,
  exit 2, before anything starts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from c10kplan.errors import BadInput
from c10kplan.storm.config import parse_source_ips, split

START_AHEAD_MAX = 3600.0  # s
START_LATE_SLACK = 10.0  # s
MAX_SHARES = 10_000  # load hosts in one fleet


@dataclass(frozen=True)
class Share:
    index: int  # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def range_of(self, total: int) -> tuple[int, int]:
        """[start, end) of `total` items that this share takes."""
        return split(total, self.count)[self.index - 1]


def parse_share(text: str) -> Share:
    m = re.fullmatch(r"\s*([0-9]{1,6})\s*/\s*([0-9]{1,6})\s*", text)  # [0-9]: \d also takes non-ASCII digits
    if not m:
        raise BadInput(f"--share must be I/K (host I of K), not {text!r}")
    index, count = int(m.group(1)), int(m.group(2))
    if not 1 <= count <= MAX_SHARES or not 1 <= index <= count:
        raise BadInput(f"--share {text}: need 1 <= I <= K <= {MAX_SHARES}")
    return Share(index, count)


def check_start_at(start_at: float, now: float) -> float:
    """`start_at` when it is a usable start time at `now` (both Unix seconds); BadInput if not."""
    if start_at != start_at or start_at > now + START_AHEAD_MAX:  # NaN, or too far ahead
        raise BadInput(f"--start-at {start_at:.3f} is more than {START_AHEAD_MAX:.0f} s ahead of this "
                       f"host's clock ({now:.3f}): Unix seconds, not milliseconds")
    if start_at < now - START_LATE_SLACK:
        raise BadInput(f"--start-at {start_at:.3f} passed {now - start_at:.1f} s ago on this host's clock "
                       f"(more than {START_LATE_SLACK:.0f} s late): give a later start")
    return start_at


@dataclass(frozen=True)
class ShareSettings:
    """What this host runs: its connections, connect rate and source-address spec."""

    share: Share
    fleet_connections: int
    connections: int
    connect_rate: float
    source_ips: str


def take_share(share: Share, connections: int, connect_rate: float, source_ips: str) -> ShareSettings:
    """This host's slice of the fleet's connections, connect rate and explicit source addresses."""
    if connections < 1:  # the count first: 0 is a bad -n, not a share of nothing
        raise BadInput(f"--connections must be at least 1, not {connections}")
    start, end = share.range_of(connections)
    if end <= start:
        raise BadInput(f"--share {share}: {connections} connections over {share.count} hosts leave "
                       "this host none")
    rate = connect_rate * (end - start) / connections
    spec = source_ips
    if source_ips not in ("auto", ""):
        plan = parse_source_ips(source_ips)
        if len(plan) < share.count:
            raise BadInput(f"--share {share}: --source-ips names {len(plan)} addresses for "
                           f"{share.count} hosts; list each host's own, in host order")
        lo, hi = share.range_of(len(plan))
        spec = ",".join(plan[lo:hi])
    return ShareSettings(share, connections, end - start, rate, spec)


class Placement(BaseModel):
    """Where one storm result sits in a fleet and in time (Unix seconds)."""

    model_config = ConfigDict(frozen=True)

    share: str = Field("1/1", description="I/K: host I of K")
    index: int = 1
    count: int = 1
    fleet_connections: int = Field(description="connections of the whole fleet storm")
    start_at: float | None = Field(None, description="--start-at, if given")
    ramp_started_at: float = Field(description="when this host began its ramp")
    hold_started_at: float | None = Field(None, description="when every process was told to hold")


def wait_until(start_at: float, clock: Callable[[], float] = time.time,
               sleep: Callable[[float], None] = time.sleep) -> None:
    """Sleep until `clock()` reaches `start_at` (bounded: check_start_at capped it)."""
    while (left := start_at - clock()) > 0:
        sleep(min(left, 1.0))


def run_placed(cfg, settings: ShareSettings, start_at: float | None, run_storm, on_event=None,
               clock: Callable[[], float] = time.time):
    """Wait for `start_at`, run the storm (`run_storm(cfg, on_event=, on_hold=)`), and return
    its result with the Placement filled in."""
    if start_at is not None:
        wait_until(start_at, clock)
    ramp_started = clock()
    held: list[float] = []
    result = run_storm(cfg, on_event=on_event, on_hold=lambda run: held.append(clock()))
    placement = Placement(share=str(settings.share), index=settings.share.index, count=settings.share.count,
                          fleet_connections=settings.fleet_connections, start_at=start_at,
                          ramp_started_at=round(ramp_started, 6),
                          hold_started_at=round(held[0], 6) if held else None)
    return result.model_copy(update={"placement": placement})
