"""--share I/K and --start-at: slices that cover the fleet exactly once, bounded start times."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from c10kplan.errors import BadInput
from c10kplan.storm.config import parse_source_ips
from c10kplan.storm.share import (
    START_AHEAD_MAX,
    START_LATE_SLACK,
    Share,
    check_start_at,
    parse_share,
    take_share,
    wait_until,
)


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "3", "a/b", "1/3/4", "-1/3", "1/10001", ""])
def test_bad_shares_are_refused(text: str) -> None:
    with pytest.raises(BadInput):
        parse_share(text)


def test_share_parses() -> None:
    assert parse_share(" 2 / 3 ") == Share(2, 3) and str(Share(2, 3)) == "2/3"


@given(total=st.integers(1, 100_000), count=st.integers(1, 50))
def test_the_shares_cover_every_connection_once(total: int, count: int) -> None:
    ranges = [Share(i, count).range_of(total) for i in range(1, count + 1)]
    assert ranges[0][0] == 0 and ranges[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert max(e - s for s, e in ranges) - min(e - s for s, e in ranges) <= 1


def test_take_share_slices_connections_rate_and_the_address_plan() -> None:
    plan = "198.18.1.1-198.18.1.2,198.18.2.1-198.18.2.2,198.18.3.1-198.18.3.2"
    mine = [take_share(Share(i, 3), 1000, 300.0, plan) for i in (1, 2, 3)]
    assert [m.connections for m in mine] == [334, 333, 333]
    assert sum(m.connect_rate for m in mine) == pytest.approx(300.0)
    assert [parse_source_ips(m.source_ips) for m in mine] == [
        ("198.18.1.1", "198.18.1.2"), ("198.18.2.1", "198.18.2.2"), ("198.18.3.1", "198.18.3.2")]
    assert take_share(Share(2, 3), 1000, 0.0, "auto").source_ips == "auto"


def test_take_share_refuses_an_empty_slice_or_too_few_addresses() -> None:
    with pytest.raises(BadInput, match="none"):
        take_share(Share(3, 3), 2, 0.0, "auto")
    with pytest.raises(BadInput, match="2 addresses for 3 hosts"):
        take_share(Share(1, 3), 30, 0.0, "127.0.0.1,127.0.0.2")


@pytest.mark.parametrize("n", [0, -5])
def test_take_share_names_the_bad_connection_count_before_any_slice(n: int) -> None:
    """-n 0 is a bad --connections, not a share that leaves this host none."""
    with pytest.raises(BadInput, match=r"^--connections must be at least 1, not " + str(n) + "$"):
        take_share(Share(1, 1), n, 0.0, "auto")


def test_start_at_bounds() -> None:
    now = 1_800_000_000.0
    assert check_start_at(now + 30, now) == now + 30
    assert check_start_at(now - START_LATE_SLACK + 0.5, now) == now - START_LATE_SLACK + 0.5
    for bad in (now + START_AHEAD_MAX + 1, now - START_LATE_SLACK - 1, now * 1000, float("nan")):
        with pytest.raises(BadInput):
            check_start_at(bad, now)


def test_wait_until_sleeps_on_the_injected_clock() -> None:
    t = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        t[0] += s

    wait_until(102.5, clock=lambda: t[0], sleep=sleep)
    assert t[0] == pytest.approx(102.5) and slept == [1.0, 1.0, 0.5]
    wait_until(50.0, clock=lambda: t[0], sleep=sleep)  # already past: no sleep
    assert len(slept) == 3
