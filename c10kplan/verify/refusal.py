"""When the plan fails and --force is not given, verify starts nothing and refuses. The refusal
is still a result: `verify --json` prints it as one document (verdict REFUSED, the reason, the
plan's figures and its whole findings table), and the command exits 1 (NotReady) as before.

`check_shards`: a --workers or --storm-processes count the fd limit cannot hold the connections
with is bad input (exit 2), refused before anything starts too."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from c10kplan.errors import BadInput, NotReady
from c10kplan.planner.sharding import ceil_div, usable_fds
from c10kplan.verify.options import VerifyOptions
from c10kplan.verify.result import PlanSummary


class VerifyRefusal(BaseModel):
    """The document `verify --json` prints when the plan refuses the target."""

    model_config = ConfigDict(frozen=True)

    connections: int
    duration: float
    message_rate: float
    netns: bool
    profile: str | None
    plan: PlanSummary
    problems: list[str]
    verdict: Literal["REFUSED"] = "REFUSED"


class PlanRefused(NotReady):
    """NotReady that carries the refusal document (crosses back from a namespace as JSON)."""

    def __init__(self, refusal: VerifyRefusal) -> None:
        super().__init__(refusal.problems[0])
        self.refusal = refusal


def refuse(opts: VerifyOptions, summary: PlanSummary, *, in_netns: bool) -> PlanRefused:
    reason = ("the plan fails, so the target cannot pass: " + "; ".join(summary.failing)
              + " (fix these with `c10kplan check`, or run anyway with --force)")
    return PlanRefused(VerifyRefusal(
        connections=opts.connections, duration=opts.duration, message_rate=opts.message_rate,
        netns=in_netns, profile=opts.profile, plan=summary, problems=[reason]))


def check_shards(opts: VerifyOptions, summary: PlanSummary, workers: int, storm_processes: int) -> None:
    """BadInput when `workers` server processes or `storm_processes` storm processes cannot hold
    the connections: each process holds at most ceiling - reserve sockets (RLIMIT_NOFILE: every
    socket is one fd; accept / connect fail with EMFILE past it). The planner's arithmetic
    (planner/sharding.py), so the plan's own counts always pass. Not for --find-limit, which
    runs past the fd limit of pinned processes on purpose (verify/findlimit.py)."""
    per = usable_fds(summary.fd_ceiling, summary.reserve_fds)
    if per <= 0 or opts.find_limit:  # no fd figure (an old summary), or the plan's own
        return  # fds.nofile FAIL says it; --find-limit pins processes to find that very limit
    need = ceil_div(opts.connections, per)
    for count, flag, what in ((workers, "--workers", "server worker"),
                              (storm_processes, "--storm-processes", "storm process")):
        if count < need:
            raise BadInput(
                f"{flag} {count}: one {what} holds at most {per:,} connections (nofile limit "
                f"{summary.fd_ceiling:,} - {summary.reserve_fds} fds kept); {opts.connections:,} "
                f"connections need {flag} {need} or more")
