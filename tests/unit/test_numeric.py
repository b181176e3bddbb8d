"""c10kplan.numeric: the one strict parser and the finite, bounded field types."""

from __future__ import annotations

from typing import Annotated

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from c10kplan.numeric import MAX_TEXT, Float, Int, ZeroOrAtLeast, parse_float, parse_int


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("12", 12), (" 7 ", 7), ("0012", 12)])
def test_parse_int_takes_ascii_digits(text, value):
    assert parse_int(text) == value


@pytest.mark.parametrize("text", ["", "-1", "+1", "-0", "1_000", "\u0661\u0662", "\uff11", "1.0", "1e3",
                                  "0x10", "inf", "nan", "1 2", "9" * (MAX_TEXT + 1), "9" * 5000])
def test_parse_int_refuses_what_int_would_take_or_worse(text):
    with pytest.raises(ValueError):
        parse_int(text)


def test_signed_parse_int_takes_a_sign_for_proc_values():
    assert parse_int("-1", signed=True) == -1 and parse_int("+3", signed=True) == 3
    with pytest.raises(ValueError):
        parse_int("--1", signed=True)


@pytest.mark.parametrize(("text", "value"), [("2.5", 2.5), (".5", 0.5), ("5.", 5.0), ("1e3", 1000.0),
                                             ("1E-3", 0.001), ("0", 0.0), ("0e0", 0.0), ("5e-324", 5e-324)])
def test_parse_float_takes_plain_decimals(text, value):
    assert parse_float(text) == value


@pytest.mark.parametrize("text", ["inf", "Infinity", "nan", "-0", "-1.5", "+1", "1e400", "1e-400",
                                  "1_0.5", "\u0661.5", "0x1p3", ".", "e3", "1e", ""])
def test_parse_float_refuses_non_finite_signed_and_unicode(text):
    with pytest.raises(ValueError):
        parse_float(text)


@given(st.integers(0, 10**30))
def test_parse_int_round_trips_every_count(n):
    assert parse_int(str(n)) == n


@given(st.floats(min_value=0, max_value=1e300, allow_subnormal=False))
def test_parse_float_round_trips_every_finite_value(v):
    assert parse_float(repr(v)) == v


class _M(BaseModel):
    n: Int = Field(0, ge=0)
    rate: Annotated[Float, ZeroOrAtLeast(0.001)] = Field(0.0, ge=0, le=10)


@pytest.mark.parametrize(("field", "value"), [
    ("n", "1_000"), ("n", "\u0661"), ("n", True), ("rate", float("inf")), ("rate", float("nan")),
    ("rate", "inf"), ("rate", 1e-9), ("rate", 11), ("rate", False),
])
def test_model_fields_refuse(field, value):
    with pytest.raises(ValidationError):
        _M(**{field: value})


def test_model_fields_take_numbers_and_ascii_text_and_zero():
    m = _M(n="12", rate="0.5")
    assert (m.n, m.rate) == (12, 0.5)
    assert _M(rate=0).rate == 0 and _M(rate=0.001).rate == 0.001


def test_the_error_message_is_the_reason_without_a_prefix():
    with pytest.raises(ValidationError) as info:
        _M(n="{x}")
    assert info.value.errors()[0]["msg"] == "'{x}' is not a whole number in ASCII digits 0-9 (no sign)"
