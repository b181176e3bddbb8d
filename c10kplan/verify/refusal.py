"""When the plan fails and --force is not given, verify starts nothing and refuses. The refusal
is still a result: `verify --json` prints it as one document (verdict REFUSED, the reason, the
plan's figures and its whole findings table), and the command exits 1 (NotReady) as before."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from c10kplan.errors import NotReady
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
