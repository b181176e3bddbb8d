"""The pure planner: `plan(facts, target) -> Plan` and `capacity(facts, target) -> Capacity`.

Names are loaded lazily (PEP 562) so that `c10kplan.planner.sharding`, which the reactor and the
storm client import, does not pull in pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from c10kplan.planner.calibration import Calibration, load_calibration
    from c10kplan.planner.limits import Capacity, Resource, capacity
    from c10kplan.planner.findings import Finding, Step
    from c10kplan.planner.planning import Plan, plan
    from c10kplan.planner.report import CheckReport, PlanReport
    from c10kplan.planner.target import Target, verify_target

_EXPORTS = {
    "Target": "c10kplan.planner.target",
    "verify_target": "c10kplan.planner.target",
    "Plan": "c10kplan.planner.planning",
    "CheckReport": "c10kplan.planner.report",
    "PlanReport": "c10kplan.planner.report",
    "Capacity": "c10kplan.planner.limits",
    "Resource": "c10kplan.planner.limits",
    "capacity": "c10kplan.planner.limits",
    "plan": "c10kplan.planner.planning",
    "Finding": "c10kplan.planner.findings",
    "Step": "c10kplan.planner.findings",
    "Calibration": "c10kplan.planner.calibration",
    "load_calibration": "c10kplan.planner.calibration",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'c10kplan.planner' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
