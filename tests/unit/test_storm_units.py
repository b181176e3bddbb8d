"""Pure parts of the storm: token bucket, payloads and reply checking, latency recording,
source-address specs, the split across processes, the verdict."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from c10kplan.errors import BadInput
from c10kplan.storm.config import (
    auto_source_ips,
    loopback_addresses,
    parse_source_ips,
    parse_target,
    split,
)
from c10kplan.storm.pacing import TokenBucket
from c10kplan.storm.payload import ReplyChecker, expected_reply, make_message, rot13
from c10kplan.storm.result import ProcessResult, combine
from c10kplan.storm.stats import LatencyRecorder, Percentiles, encode, merge_encoded, new_histogram, quantize


# -- token bucket -------------------------------------------------------------------------


def test_bucket_paces_to_rate_over_time():
    bucket = TokenBucket(1000, now=0.0)
    taken = sum(bucket.take(t / 1000, 10_000) for t in range(1, 2001))  # 2 s in 1 ms steps
    assert 1990 <= taken <= 2001


def test_bucket_burst_caps_tokens_after_idle():
    bucket = TokenBucket(1000, burst=50, now=0.0)
    assert bucket.take(10.0, 10_000) == 50  # 10 s idle refills only up to the burst


def test_bucket_unlimited_and_wait_time():
    assert TokenBucket(0).take(0.0, 777) == 777
    bucket = TokenBucket(100, burst=1, now=0.0)
    assert bucket.take(0.0, 5) == 1
    assert bucket.take(0.0, 5) == 0
    assert bucket.wait_time(0.0) == pytest.approx(0.01)
    assert bucket.take(0.0101, 5) == 1


def test_bucket_rejects_negative_rate():
    with pytest.raises(ValueError):
        TokenBucket(-1)


# -- payload ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 53, 64, 1000])
def test_message_has_size_letters_and_newline(size):
    msg = make_message(size)
    assert len(msg) == size and msg.endswith(b"\n")
    if size > 1:
        assert rot13(msg) != msg  # a rot13 server is distinguishable from an echo server
        assert rot13(rot13(msg)) == msg


def test_expected_replies_per_protocol():
    msg = make_message(16)
    assert expected_reply("echo", msg) == msg
    assert expected_reply("rot13", msg) == rot13(msg)
    assert expected_reply("discard", msg) == b""
    with pytest.raises(ValueError):
        expected_reply("http", msg)


@given(st.integers(1, 200), st.integers(0, 1000), st.integers(1, 700))
def test_checker_accepts_the_stream_at_any_offset(size, start, length):
    reply = rot13(make_message(size))
    stream = reply * ((start + length) // size + 2)
    chunk = stream[start : start + length]
    checker = ReplyChecker(reply, 700)
    assert checker.matches(start % size, chunk)
    flipped = bytes([chunk[0] ^ 0x20]) + chunk[1:]
    assert not checker.matches(start % size, flipped)
    # the client compares views of its one receive buffer, not bytes copies
    buf = bytearray(chunk) + b"\0" * 8
    assert checker.matches(start % size, memoryview(buf)[:length])
    buf[0] ^= 0x20
    assert not checker.matches(start % size, memoryview(buf)[:length])


def test_checker_for_discard_expects_nothing():
    checker = ReplyChecker(b"", 100)
    assert checker.period == 0
    assert checker.matches(0, b"") and not checker.matches(0, b"x")


# -- latency recording --------------------------------------------------------------------


@given(st.integers(1, 3_600_000_000))
def test_quantize_is_within_histogram_precision(value):
    hist = new_histogram()
    q = quantize(value)
    assert q <= value
    assert hist.values_are_equivalent(q, value)


def test_recorder_percentiles_equal_direct_recording():
    values = [(k * 7919) ** 2 % 5_000_000 + 1 for k in range(3000)]
    rec, direct = LatencyRecorder(), new_histogram()
    for v in values:
        rec.record(v)
        direct.record_value(v)
    assert Percentiles.of(rec.histogram()) == Percentiles.of(direct)


def test_merge_adds_every_sample():
    a, b = LatencyRecorder(), LatencyRecorder()
    for v in range(1, 1001):
        a.record(v)
    for v in range(100_000, 101_000):
        b.record(v)
    merged = Percentiles.of(merge_encoded([a.encode(), b.encode(), ""]))
    assert merged.count == 2000
    assert merged.p50 <= 1000 < merged.p90
    assert merged.max >= 100_900
    assert Percentiles.of(merge_encoded([encode(new_histogram())])).count == 0


# -- targets, source addresses, split --------------------------------------------------------


def test_parse_target():
    assert parse_target("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_target("localhost:1") == ("127.0.0.1", 1)
    for bad in ("127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "example.org:80", ":80"):
        with pytest.raises(BadInput):
            parse_target(bad)


def test_source_ip_specs():
    assert parse_source_ips("127.0.0.1,127.0.0.9") == ("127.0.0.1", "127.0.0.9")
    assert parse_source_ips("127.0.0.254-127.0.1.1") == ("127.0.0.254", "127.0.0.255", "127.0.1.0", "127.0.1.1")
    assert parse_source_ips("127.0.2.0/30") == ("127.0.2.1", "127.0.2.2")
    assert len(parse_source_ips("127.0.0.0/16")) == 65534
    for bad in ("", ",", "127.0.0.9-127.0.0.1", "127.0.0.300", "banana"):
        with pytest.raises(BadInput):
            parse_source_ips(bad)


def test_auto_source_ips_follow_the_port_range():
    # 28,232 ports per address (32768..60999), each kept at most a quarter full: 7,058
    # connections need no bind, 100k need 15 addresses, 1M need 142.
    assert auto_source_ips("127.0.0.1", 7_058, 32768, 60999) == ()
    assert auto_source_ips("127.0.0.1", 7_059, 32768, 60999) == loopback_addresses(2)
    assert auto_source_ips("127.0.0.1", 100_000, 32768, 60999) == loopback_addresses(15)
    assert len(auto_source_ips("127.0.0.1", 1_000_000, 32768, 60999)) == 142
    assert len(auto_source_ips("127.0.0.1", 1_000_000, 60000, 60099)) == 40_000
    assert auto_source_ips("10.0.0.1", 20_000, 32768, 60999) == ()  # one range is enough remotely
    with pytest.raises(BadInput, match="at least 4 source addresses"):
        auto_source_ips("10.0.0.1", 100_000, 32768, 60999)


@given(st.integers(1, 2_000_000), st.integers(1, 600))
def test_split_covers_everything_evenly(total, parts):
    ranges = split(total, parts)
    assert ranges[0][0] == 0 and ranges[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    sizes = [e - s for s, e in ranges]
    assert max(sizes) - min(sizes) <= 1


# -- combining results --------------------------------------------------------------------


def _proc(index, **kw):
    return ProcessResult(index=index, pid=100 + index, target=10, **kw)


def test_combine_sums_and_judges():
    ok = combine(target="127.0.0.1:1", protocol="echo", connections=20, source_addresses=1,
                 processes=[_proc(0, established=10, held=10, ramp_seconds=0.5, hold_seconds=2,
                                  messages_received=40),
                            _proc(1, established=10, held=10, ramp_seconds=0.25, hold_seconds=2,
                                  messages_received=40)],
                 histograms=[{}, {}])
    assert ok.ok and ok.problems == []
    assert ok.connect_rate == 40.0 and ok.messages_per_second == 40.0
    bad = combine(target="127.0.0.1:1", protocol="rot13", connections=20, source_addresses=1,
                  processes=[_proc(0, established=10, held=9, failures={"ECONNRESET": 1}, mismatches=3),
                             _proc(1, status="killed", detail="killed by SIGKILL")],
                  histograms=[{}, {}])
    assert not bad.ok
    text = "; ".join(bad.problems)
    for part in ("established 10 of 20", "1 connections dropped", "ECONNRESET x1", "3 replies",
                 "storm process 1 (pid 101) killed"):
        assert part in text


# -- the live progress line -----------------------------------------------------------------


def test_progress_line_sums_processes_and_stays_quiet_when_disabled(capsys):
    from c10kplan.cli.progress import Progress as _Progress

    shown = _Progress(100, enabled=True)
    shown._last_draw = -1.0  # draw on the first event
    shown({"event": "progress", "index": 0, "established": 30, "failed": 1, "received": 0})
    shown._last_draw = -1.0
    shown({"event": "ramped", "index": 1, "established": 20, "failed": 2, "received": 0})
    shown({"event": "result", "index": 1})  # not a progress event: ignored
    shown.finish()
    err = capsys.readouterr().err
    assert "connections 50/100" in err and "errors 3" in err and err.endswith("\n")
    quiet = _Progress(100, enabled=False)
    quiet({"event": "progress", "index": 0, "established": 30})
    quiet.finish()
    assert capsys.readouterr().err == ""


# -- how a storm process ended ----------------------------------------------------------------


def test_process_results_name_a_real_time_signal_and_an_exit_code():
    from c10kplan.processes import Child
    from c10kplan.storm.config import StormConfig
    from c10kplan.storm.runner import StormRun, _Share

    run = StormRun(StormConfig(host="127.0.0.1", port=1, connections=20, processes=2))
    run.children = [_Share(Child(0, 101, returncode=-40), 10),  # SIGRTMIN+6: no enum name
                    _Share(Child(1, 102, returncode=4), 10)]
    killed, crashed = run.process_results()  # raised ValueError for signal 40 before
    assert (killed.status, killed.detail) == ("killed", "killed by signal 40")
    assert (crashed.status, crashed.detail) == ("crashed", "exited with status 4 without a result")


def test_auto_source_ips_leave_out_reserved_ports_as_the_plan_does(tmp_path):
    """8,000 reserved ports shrink a 28,232-port range to 20,232: 6,000 connections then need a
    second address to stay a quarter full, exactly what the planner's fast count says."""
    from c10kplan.host.inspect import collect_facts
    from c10kplan.host.procfs import ProcFS
    from c10kplan.planner import Target, plan
    from c10kplan.storm.setup import resolve_source_ips

    sysctl = tmp_path / "proc" / "sys" / "net" / "ipv4"
    sysctl.mkdir(parents=True)
    (sysctl / "ip_local_port_range").write_text("32768\t60999\n")
    (sysctl / "ip_local_reserved_ports").write_text("32768-40767\n")
    procfs = ProcFS(tmp_path)
    assert auto_source_ips("127.0.0.1", 6_000, 32768, 60999) == ()  # without the reservation
    picked = resolve_source_ips("auto", "127.0.0.1", 6_000, procfs)
    assert picked == loopback_addresses(2)
    planned = plan(collect_facts(procfs, pid=None), Target(connections=6_000, role="client"))
    assert planned.ports.fast_source_addresses == len(picked)


def test_auto_source_ips_refuse_a_fully_reserved_range():
    from c10kplan.errors import EnvironmentProblem

    with pytest.raises(EnvironmentProblem, match="every port of ip_local_port_range 40000-40099"):
        auto_source_ips("127.0.0.1", 10, 40000, 40099, reserved=100)
