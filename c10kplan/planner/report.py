"""What `check --json` and `plan --json` print: the plan and the host's capacity together."""

from __future__ import annotations

from pydantic import BaseModel

from c10kplan.host.inspect import HostFacts
from c10kplan.planner.limits import Capacity
from c10kplan.planner.findings import RECORD_CONFIG
from c10kplan.planner.planning import Plan


class CheckReport(BaseModel):
    """`check --json`: the facts, the plan made from them (None without --connections), and the
    capacity for the target's traffic shape."""

    model_config = RECORD_CONFIG

    facts: HostFacts
    plan: Plan | None = None
    # The smallest shipped profile sized for the target (c10kplan.profiles.suggest_profile),
    # or None when none is big enough. Looked up by the CLI: the planner itself reads no files.
    profile: str | None = None
    capacity: Capacity | None = None


class PlanReport(Plan):
    """`plan --json`: the plan, plus the capacity."""

    capacity: Capacity | None = None


class CapacityReport(BaseModel):
    """`plan --json` without --connections: the host's capacity alone."""

    model_config = RECORD_CONFIG

    capacity: Capacity
