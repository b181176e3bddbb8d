"""The records every budget returns: `Step` (one figure with its formula and inputs, so a report
can show its working) and `Finding` (one PASS / WARN / FAIL line with the exact fix).
Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["PASS", "WARN", "FAIL"]

# Config of every record the planner returns. `defer_build`: a model's validator is built on
# first validation or JSON dump, not at import, so `c10kplan check` (which only reads the
# attributes of records the planner built itself with `model_construct`) does not pay for
# schemas it never uses. Loading from JSON (`--host-facts`, `--calibration`, tests) still
# validates fully; tests check that every constructed plan re-validates to itself.
RECORD_CONFIG = ConfigDict(frozen=True, defer_build=True)
Number = int | float | str | None


class Step(BaseModel):
    """One figure of a plan: `name = value unit`, produced by `formula` from `inputs`."""

    model_config = RECORD_CONFIG

    name: str
    value: int | float | None
    unit: str
    formula: str
    inputs: dict[str, Number] = Field(default_factory=dict)

    def working(self) -> str:
        args = ", ".join(f"{k}={fmt_number(v)}" for k, v in self.inputs.items())
        return f"{self.formula}  [{args}]" if args else self.formula


class Finding(BaseModel):
    """One check: what the host has (`observed`), what the target needs (`required`), and the
    exact fix (a sysctl line, a limits.d / systemd line, or "run W workers"); "" when PASS."""

    model_config = RECORD_CONFIG

    id: str
    status: Status
    observed: str
    required: str
    fix: str = ""
    formula: str = ""


def step(name: str, value: int | float | None, unit: str, formula: str, **inputs: Number) -> Step:
    return Step.model_construct(name=name, value=value, unit=unit, formula=formula, inputs=inputs)


def finding(
    id: str, status: Status, observed: str, required: str, fix: str = "", formula: str = ""
) -> Finding:
    """A Finding built by the planner itself (see RECORD_CONFIG: no re-validation)."""
    return Finding.model_construct(
        id=id, status=status, observed=observed, required=required, fix=fix, formula=formula
    )


def fmt_number(value: Number) -> str:
    """1234567 -> "1,234,567"; 8e6 -> "8,000,000"; 0.25 -> "0.25"; text as is."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.6g}"
    return str(value)


ByteUnit = Literal["B", "KiB", "MiB", "GiB", "TiB"]
BYTE_UNITS: tuple[ByteUnit, ...] = ("B", "KiB", "MiB", "GiB", "TiB")


def fmt_bytes(n: int | float | None, *, unit: ByteUnit | None = None, signed: bool = False) -> str:
    """Bytes for humans, binary units (KiB = 1024), with the exact count for small values.

    `unit` fixes the unit instead of picking the largest that keeps the value >= 1 (columns of
    RSS figures read best all in MiB); `signed` shows "+" on growth (deltas)."""
    if n is None:
        return "unknown"
    sign = "+" if signed else ""
    if unit is None:
        value, unit = float(n), "B"
        for bigger in BYTE_UNITS[1:]:
            if abs(value) < 1024:
                break
            value, unit = value / 1024, bigger
    if unit == "B":
        return f"{int(n):{sign},} B"
    return f"{n / 1024 ** BYTE_UNITS.index(unit):{sign},.1f} {unit}"


def fmt_count(n: int | None, unit: str = "") -> str:
    if n is None:
        return "unknown"
    return f"{n:,}" + (f" {unit}" if unit else "")


def next_pow2(n: int) -> int:
    """The power of two at or above n (suggested values for table-sized sysctls)."""
    return 1 << max(0, (max(1, n) - 1).bit_length())


def unknown_finding(id: str, what: str, required: str, fix: str, formula: str = "") -> Finding:
    """A fact the planner needed is unknown: WARN, never PASS on a guess."""
    return finding(id, "WARN", f"{what}: unknown", required, fix, formula)


def ceiling_finding(id: str, key: str, have: int | None, need: int, formula: str) -> Finding:
    """A sysctl that is a hard ceiling: FAIL when `need` does not fit under `have`; the fix
    suggests the next power of two at or above the need."""
    required = fmt_count(need)
    fix = f"sysctl -w {key}={next_pow2(need)}"
    if have is None:
        return unknown_finding(id, key, required, fix, formula)
    status: Status = "PASS" if need <= have else "FAIL"
    return finding(id, status, fmt_count(have), required, "" if status == "PASS" else fix, formula)


def largest_passing(ok: Callable[[int], bool], below: int) -> int:
    """The largest n in 0..below - 1 with ok(n), given ok(below) is False and ok is monotonic
    (True up to some n, False after): a bisection. 0 when even one connection fails. The
    capacity (limits.py) and the CPU fix's connection count (cpu.py) both search with it."""
    if not ok(1):
        return 0
    lo, hi = 1, below  # ok(lo), not ok(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def headroom_status(need: float, have: float, headroom: float) -> Status:
    """FAIL above `have`, WARN above the `headroom` share of it, else PASS."""
    if need > have:
        return "FAIL"
    return "WARN" if need > headroom * have else "PASS"
