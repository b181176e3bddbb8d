"""Measured against planned, figure by figure, and the verdict. Pure: numbers in, records out."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

# How far a measured cost may sit from the planned one before the row is flagged (not a FAIL:
# the verdict is about holding the target; the ratio tells the planner's constants how good they are).
TOLERANCE = 0.25


class Comparison(BaseModel):
    model_config = ConfigDict(frozen=True)

    figure: str
    unit: str
    measured: float | None
    planned: float | None
    ratio: float | None  # measured / planned
    within: bool | None  # |ratio - 1| <= TOLERANCE, None when unknown
    how: str  # how the measured figure was obtained


def row(figure: str, unit: str, measured: float | None, planned: float | None, how: str,
        *, tolerance: float | None = TOLERANCE) -> Comparison:
    ratio = None
    if measured is not None and planned:
        ratio = round(measured / planned, 3)
    within = None if ratio is None or tolerance is None else abs(ratio - 1.0) <= tolerance
    return Comparison(figure=figure, unit=unit, measured=None if measured is None else round(measured, 1),
                      planned=planned, ratio=ratio, within=within, how=how)


def per(total: int | None, count: int) -> float | None:
    return None if total is None or count <= 0 else total / count


def verdict_problems(*, connections: int, storm, server_active: int | None, server_errors: dict[str, int],
                     p99_max_ms: float, crashes: list[str]) -> list[str]:
    """Why the target was not proven; [] means PASS.

    PASS: all N connections established and held (storm side and server side), no failure or
    error of any kind, no mismatched or unanswered message, p99 (corrected) under the limit."""
    out = list(storm.problems)
    if server_active is not None and server_active < connections:
        out.append(f"the server held {server_active} of {connections} connections")
    if server_errors:
        out.append("server errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(server_errors.items())))
    p99 = storm.message_latency_us.corrected.p99
    if storm.message_latency_us.corrected.count and p99 > p99_max_ms * 1000:
        out.append(f"p99 (corrected) {p99 / 1000:.1f} ms is over --p99-max {p99_max_ms:g} ms")
    out.extend(crashes)
    return out
