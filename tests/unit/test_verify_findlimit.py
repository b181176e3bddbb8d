"""verify --find-limit, the pure parts: the rate search (with a fake host that breaks at a known
rate), the guard, the prediction with pinned processes / addresses, the failure's name, and the
bad input it refuses. The real runs: tests/integration/test_verify_find_limit.py."""

from __future__ import annotations

import math

import pytest

from c10kplan.errors import BadInput
from c10kplan.verify.findlimit import (
    BISECT_STEPS,
    MAX_GEOMETRIC_STEPS,
    HostLevels,
    Pins,
    check_find_limit,
    classify,
    error_pct,
    guard_stop,
    predict_connections,
    rate_search,
    step_failure,
)

GiB = 1 << 30


class FakeHost:
    """Holds every rate up to `knee` and fails above it; counts the runs asked of it."""

    def __init__(self, knee: float) -> None:
        self.knee, self.tried = knee, []

    def __call__(self, rate: float) -> bool:
        self.tried.append(rate)
        return rate <= self.knee


@pytest.mark.parametrize("knee", [0.3, 1.0, 1.7, 5.0, 12.5])
def test_rate_search_brackets_the_knee_within_the_bisection(knee):
    host = FakeHost(knee)
    lo, hi = rate_search(1.0, host)
    assert lo <= knee < hi
    assert hi / lo <= 2 ** (1 / 2 ** BISECT_STEPS) + 1e-9  # three geometric halvings of a factor 2
    assert len(host.tried) <= MAX_GEOMETRIC_STEPS + BISECT_STEPS


def test_rate_search_that_never_fails_says_so_within_its_steps():
    host = FakeHost(math.inf)
    lo, hi = rate_search(1.0, host)
    assert hi is None and lo == 2.0 ** (MAX_GEOMETRIC_STEPS - 1)
    assert len(host.tried) == MAX_GEOMETRIC_STEPS


def test_rate_search_that_fails_at_every_step_gives_no_observed_rate():
    host = FakeHost(0.0)
    lo, hi = rate_search(1.0, host)
    assert lo is None and hi == 2.0 ** -(MAX_GEOMETRIC_STEPS - 1)


def _levels(avail_gib, total_gib=24, fds=10_000, file_max=1_000_000):
    return HostLevels(mem_total=total_gib * GiB, mem_available=int(avail_gib * GiB), fds_allocated=fds,
                      file_max=file_max)


def test_guard_stops_before_memavailable_would_cross_ten_percent():
    assert guard_stop(_levels(10), None) is None
    assert guard_stop(_levels(2.3), None).startswith("guard: MemAvailable")  # under 2.4 GiB
    # 2.6 GiB left is over the floor, but the last slice took 0.3 GiB: the next would cross it
    assert guard_stop(_levels(2.6), _levels(2.9)) is not None
    assert guard_stop(_levels(2.6), _levels(2.65)) is None


def test_guard_stops_before_fds_come_within_one_percent_of_file_max():
    assert guard_stop(_levels(10, fds=980_000), None) is None
    assert "fs.file-max" in guard_stop(_levels(10, fds=990_000), None)
    assert guard_stop(_levels(10, fds=985_000), _levels(10, fds=979_000)) is not None  # +6k next slice
    unknown = HostLevels(mem_total=None, mem_available=None, fds_allocated=None, file_max=None)
    assert guard_stop(unknown, None) is None


def test_prediction_is_the_lowest_of_capacity_and_the_pins():
    free = Pins(nofile=20_000, workers=None, server_fds=9, storm_processes=None, storm_fds=9,
                addresses=None, ports=28_232)
    assert predict_connections(1_228_170, "fds.file_max", free)[:2] == (1_228_170, "fds.file_max")
    pinned = Pins(nofile=2000, workers=1, server_fds=9, storm_processes=1, storm_fds=11,
                  addresses=None, ports=28_232)
    assert predict_connections(1_228_170, "fds.file_max", pinned)[:2] == (1989, "fds.nofile")  # the storm's 11
    ports = Pins(nofile=20_000, workers=None, server_fds=9, storm_processes=None, storm_fds=9,
                 addresses=1, ports=1000, server_port_in_range=True)
    n, rid, how = predict_connections(1_228_170, "fds.file_max", ports)
    assert (n, rid) == (999, "ports.ephemeral") and "listening port" in how
    assert predict_connections(1_228_170, "x", ports.__class__(**{**ports.__dict__, "server_port_in_range": False,
                                                                   "addresses": 3}))[0] == 3000


@pytest.mark.parametrize(("storm_first", "server", "guard", "p99", "named"), [
    ({"errno": "EADDRNOTAVAIL", "phase": "ramp"}, {}, None, False, "EADDRNOTAVAIL (storm connect)"),
    ({"errno": "EOF", "phase": "ramp"}, {"EMFILE": 3}, None, False, "EMFILE (server accept)"),
    ({"errno": "EMFILE", "phase": "ramp"}, {"EMFILE": 1}, None, False, "EMFILE (storm connect); server: EMFILE"),
    ({"errno": "ECONNRESET", "phase": "hold"}, {}, None, False, "ECONNRESET (storm, during the hold)"),
    (None, {}, None, True, "p99"),
    (None, {}, None, False, None),
    ({"errno": "ENFILE", "phase": "ramp"}, {}, "guard: MemAvailable ...", False, None),  # not reached
])
def test_the_failure_is_named_by_errno_and_side(storm_first, server, guard, p99, named):
    assert classify(storm_first, server, guard, p99) == named


class _Lat:
    def __init__(self, p99_us, count=1):
        self.p99, self.count = p99_us, count


class _Storm:
    def __init__(self, held=100, failures=None, sent=1000, missed=0, unanswered=0, p99_us=1000):
        self.held, self.failures = held, failures or {}
        self.messages_sent, self.missed, self.unanswered = sent, missed, unanswered
        self.message_latency_us = type("L", (), {"corrected": _Lat(p99_us)})()


@pytest.mark.parametrize(("storm", "why"), [
    (_Storm(), None),
    (_Storm(held=99, failures={"ECONNRESET": 1}), "ECONNRESET (storm)"),
    (_Storm(missed=20), "behind"),  # 20 of 1,020 scheduled: over 1 %
    (_Storm(missed=5), None),
    (_Storm(unanswered=11), "behind"),
    (_Storm(p99_us=50_001), "p99"),
])
def test_a_rate_step_fails_on_drops_behind_schedule_or_p99(storm, why):
    assert step_failure(storm, 100, 50.0) == why


def test_error_pct():
    assert error_pct(1000, 1010) == 1.0
    assert error_pct(200, 200) == 0.0
    assert error_pct(None, 5) is None and error_pct(0, 5) is None


@pytest.mark.parametrize(("args", "message"), [
    (("bogus", 10, None, ()), "--find-limit must be connections or message-rate, not 'bogus'"),
    (("connections", 0, None, ()), "--connections must be at least 1 (the ceiling of the search), not 0"),
    (("connections", -5, None, ()), "not -5"),
    (("message-rate", 10, None, (("--message-rate", math.inf),)), "--message-rate must be a finite number, not inf"),
    (("message-rate", 10, None, (("--connect-rate", math.nan),)), "--connect-rate must be a finite number, not nan"),
    (("connections", 10, 2 ** 24, ()), "--source-ips must be 1..16,777,214"),
    (("connections", 10, 0, ()), "--source-ips must be 1..16,777,214"),
])
def test_bad_input_is_refused_in_one_line(args, message):
    with pytest.raises(BadInput) as caught:
        check_find_limit(*args)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_good_input_passes():
    check_find_limit("connections", 1, 1, (("--message-rate", 0.0),))
    check_find_limit(None, 10, None, ())
