"""verify's pure comparison rows and verdict."""

from __future__ import annotations

from c10kplan.storm.result import ProcessResult, combine
from c10kplan.verify.compare import per, row, verdict_problems


def test_row_ratio_and_tolerance():
    r = row("kernel memory per socket", "bytes", 5000, 4096, "slab")
    assert r.ratio == round(5000 / 4096, 3) and r.within is True
    assert row("k", "bytes", 5200, 4096, "slab").within is False  # 27% over
    assert row("k", "bytes", None, 4096, "slab").ratio is None
    assert row("k", "bytes", 10, 10, "x", tolerance=None).within is None
    assert row("held", "connections", 99, 100, "x", tolerance=0.0).within is False


def test_per_handles_unknowns():
    assert per(None, 10) is None and per(100, 0) is None and per(100, 4) == 25


def _storm(held=10, p99_us=0, count=0, **kw):
    hist = {}
    if count:
        from c10kplan.storm.stats import LatencyRecorder

        rec = LatencyRecorder()
        for _ in range(count):
            rec.record(p99_us)
        hist = {"corrected": rec.encode()}
    proc = ProcessResult(index=0, pid=1, target=10, established=10, held=held, **kw)
    return combine(target="127.0.0.1:1", protocol="echo", connections=10, source_addresses=1,
                   processes=[proc], histograms=[hist])


def test_verdict_pass_and_each_reason_to_fail():
    assert verdict_problems(connections=10, storm=_storm(p99_us=1000, count=5), server_active=10,
                            server_errors={}, p99_max_ms=50, crashes=[]) == []
    slow = verdict_problems(connections=10, storm=_storm(p99_us=80_000, count=5), server_active=10,
                            server_errors={}, p99_max_ms=50, crashes=[])
    assert len(slow) == 1 and "over --p99-max 50 ms" in slow[0]
    many = verdict_problems(connections=10, storm=_storm(held=8, mismatches=2), server_active=7,
                            server_errors={"ECONNRESET": 2}, p99_max_ms=50, crashes=["the server died"])
    text = "; ".join(many)
    for part in ("2 connections dropped", "2 replies", "server held 7 of 10", "ECONNRESET x2", "server died"):
        assert part in text


def test_options_refuse_edge_trigger_without_epoll():
    import pytest
    from pydantic import ValidationError

    from c10kplan.verify import VerifyOptions

    assert VerifyOptions(connections=1, trigger="edge").backend == "epoll"
    with pytest.raises(ValidationError, match="needs --backend epoll"):
        VerifyOptions(connections=1, backend="poll", trigger="edge")
