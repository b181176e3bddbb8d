"""Numbers from users: the one strict parser, the finite types and the documented bounds.

Every number c10kplan takes as text (a CLI option, a port in HOST:PORT, a value in a /proc
file) goes through `parse_int` / `parse_float`: ASCII digits only, at most MAX_TEXT
characters. Python's int() and float() would also take `1_000`, `١٢` (Arabic-Indic digits:
`storm 127.0.0.1:١٢` connected to port 12), `inf`, `nan` and 5,000-digit integers (past
Python's int-str limit of 4,300 digits they raise ValueError with no option named); here they
are refused with one line that names the option.

Types:
- `Int`, `Float`: pydantic field types for models (text goes through the strict parser;
  Float refuses inf and NaN, also when they come as JSON or Python floats).
- `Integer`, `Number`: typer option annotations. A bad value raises BadInput naming the flag,
  which `cli.app.main` prints as one `c10kplan: error:` line (exit 2), not a usage screen.
- `ZeroOrAtLeast(minimum)`: 0 (the option's "off" / "unlimited") or at least `minimum`, so a
  tiny value such as 1e-300 is refused instead of meaning a period of 1e300 s.

The bounds below are shared by more than one command; each is a documented number.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, AllowInfNan, BeforeValidator, Field, GetCoreSchemaHandler, ValidationInfo
from pydantic_core import PydanticCustomError, core_schema

# The longest number text accepted: 100,000,000 is 11 characters, 1.5e-3 six; 32 leaves room
# for long decimal fractions and keeps every int() far below Python's 4,300-digit limit.
MAX_TEXT = 32

MAX_CONNECTIONS = 100_000_000  # check, plan, storm, verify: concurrent TCP connections
MAX_SECONDS = 86_400.0  # 1 day: storm/verify --duration, the longest connect ramp
MAX_MESSAGE_RATE = 100_000.0  # messages per connection per second (period 10 us; see below)
MAX_CONNECT_RATE = 10_000_000.0  # connects per second (a host does ~10^4..10^5)
MIN_RATE = 0.001  # the smallest non-zero rate: one per 1,000 s
# Why MAX_MESSAGE_RATE: the storm schedules sends at t + 1/rate on a CLOCK_MONOTONIC float of
# seconds since boot. After 10^8 s (3 years up) one ulp of that float is 1.5e-8 s; a period
# below it never advances the schedule (the loop ran forever at --message-rate 1e12). 10 us is
# ~700 ulps, and still ~2.7x what one core of the bundled reactor answers (26.5 us per message).

_INT = re.compile(r"[0-9]+")
_SIGNED_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_int(text: str, *, signed: bool = False) -> int:
    """ASCII decimal digits (a sign only when `signed`) -> int. ValueError (a reason) otherwise."""
    s = text.strip()
    if len(s) > MAX_TEXT:
        raise ValueError(f"{_shown(s)} has more than {MAX_TEXT} characters")
    if not (_SIGNED_INT if signed else _INT).fullmatch(s):
        kind = "an integer in ASCII digits 0-9" if signed else "a whole number in ASCII digits 0-9 (no sign)"
        raise ValueError(f"{_shown(s)} is not {kind}")
    return int(s)


def parse_float(text: str) -> float:
    """A non-negative ASCII decimal (`2.5`, `.5`, `1e3`) -> finite float. ValueError otherwise:
    signs, underscores, non-ASCII digits, inf, nan, and values that overflow (1e400) or
    underflow to 0 (1e-400: it must not read as an option's "0 = off")."""
    s = text.strip()
    if len(s) > MAX_TEXT:
        raise ValueError(f"{_shown(s)} has more than {MAX_TEXT} characters")
    if not _FLOAT.fullmatch(s):
        raise ValueError(f"{_shown(s)} is not a plain decimal number (ASCII digits, no sign, e.g. 2.5 or 1e3)")
    value = float(s)
    if not math.isfinite(value):
        raise ValueError(f"{_shown(s)} is too large")
    if value == 0 and s.lower().partition("e")[0].strip("0.") != "":
        raise ValueError(f"{_shown(s)} is too small (it rounds to 0)")  # 1e-400 underflows
    return value


def _shown(text: str) -> str:
    """The text as it is quoted in an error: repr escapes control characters; long text is cut."""
    return repr(text if len(text) <= 40 else text[:40] + "...")


# --- pydantic field types (models) ----------------------------------------------------------

def refused(reason: str) -> PydanticCustomError:
    """A validation error whose message is `reason` as it is (no "Value error, " prefix)."""
    # The reason goes in the context: user text may hold "{" (the message is a format template).
    return PydanticCustomError("number", "{reason}", {"reason": reason})


def _int_input(value: Any) -> Any:
    if isinstance(value, bool):
        raise refused("expected a number, not true/false")
    try:
        return parse_int(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise refused(str(exc)) from None


def _float_input(value: Any) -> Any:
    if isinstance(value, bool):
        raise refused("expected a number, not true/false")
    try:
        return parse_float(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise refused(str(exc)) from None


Int = Annotated[int, BeforeValidator(_int_input)]
Float = Annotated[float, AllowInfNan(False), BeforeValidator(_float_input)]


def IntRange(ge: int, le: int) -> Any:  # noqa: N802 (reads as a type)
    """`Int` within [ge, le], for a type used inside `X | None`, a tuple or a list: the bounds
    come before the text parser, so the JSON schema shows them as minimum / maximum."""
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_int_input)]


def FloatRange(*, gt: float, le: float) -> Any:  # noqa: N802
    """`Float` within (gt, le], likewise."""
    return Annotated[float, Field(gt=gt, le=le), AllowInfNan(False), BeforeValidator(_float_input)]


def ZeroOrAtLeast(minimum: float) -> AfterValidator:  # noqa: N802 (reads as a type)
    """0, or a value >= `minimum` (put it after the field's Float type)."""

    def check(value: float) -> float:
        if 0 < value < minimum:
            raise refused(f"must be 0 or at least {minimum:g}, not {value:g}")
        return value

    return AfterValidator(check)


# --- typer option types (CLI) ---------------------------------------------------------------

def _flag(info: ValidationInfo) -> str:
    """The option being parsed (typer passes its click parameter in the validation context)."""
    param = (info.context or {}).get("param") if info is not None else None
    opts = [o for o in getattr(param, "opts", ()) if o.startswith("--")] or getattr(param, "opts", ())
    return opts[0] if opts else "a number option"


def _cli(parse, kind: type):
    def validate(value: Any, info: ValidationInfo) -> Any:
        from c10kplan.errors import BadInput

        try:
            if isinstance(value, str):
                return parse(value)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{value!r} is not a number")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{value!r} is not a finite number")
            return kind(value)  # a default value from the function signature
        except ValueError as exc:
            raise BadInput(f"{_flag(info)}: {exc}") from None

    return core_schema.with_info_plain_validator_function(validate)


class Integer(int):
    """A typer option annotation: a whole number >= 0 in ASCII digits (the value is a plain int)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler):
        return _cli(parse_int, int)


class Number(float):
    """A typer option annotation: a finite number >= 0 in ASCII digits (a plain float)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler):
        return _cli(parse_float, float)
