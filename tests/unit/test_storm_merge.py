"""`merge`: counts summed, histograms added exactly, the common window, the verdict. Pure:
results are built with the storm's own combine() from known samples."""

from __future__ import annotations

import random

import pytest

from c10kplan.storm.merge import merge_results
from c10kplan.storm.result import ProcessResult, combine
from c10kplan.storm.share import Placement
from c10kplan.storm.stats import LatencyRecorder


def host_result(index: int, count: int, samples: list[int], *, connections: int = 100, failures=None,
                hold_start: float | None = 1000.0, hold: float = 10.0, established: int | None = None):
    """One load host's `storm --json` result, two processes, the samples split between them."""
    est = connections if established is None else established
    procs, hists = [], []
    for p, part in enumerate((samples[::2], samples[1::2])):
        rec = LatencyRecorder()
        for v in part:
            rec.record(v)
        procs.append(ProcessResult(index=p, pid=100 * index + p, target=connections // 2,
                                   established=est // 2, held=est // 2,
                                   failures=(failures or {}) if p == 0 else {},
                                   messages_sent=len(part), messages_received=len(part),
                                   bytes_sent=64 * len(part), bytes_received=64 * len(part),
                                   ramp_seconds=0.5, hold_seconds=hold))
        hists.append({"connect": rec.encode(), "corrected": rec.encode(), "raw": rec.encode()})
    res = combine(target="198.18.0.1:7000", protocol="echo", connections=connections, source_addresses=1,
                  processes=procs, histograms=hists)
    placement = Placement(share=f"{index}/{count}", index=index, count=count, fleet_connections=connections * count,
                          ramp_started_at=990.0, hold_started_at=hold_start)
    return res.model_copy(update={"placement": placement})


def samples(seed: int, n: int) -> list[int]:
    rng = random.Random(seed)
    return [int(rng.lognormvariate(7, 1.2)) + 1 for _ in range(n)]


def test_merged_p99_is_the_p99_of_one_histogram_of_every_sample() -> None:
    parts = [samples(1, 5000), [v * 20 for v in samples(2, 300)], samples(3, 20000)]
    results = [host_result(i + 1, 3, s) for i, s in enumerate(parts)]
    fleet = merge_results(results, ["a.json", "b.json", "c.json"])
    one = LatencyRecorder()
    for v in (v for s in parts for v in s):
        one.record(v)
    every = one.histogram()
    lat = fleet.storm.message_latency_us.corrected
    assert lat.count == 25300
    for pct, got in ((50, lat.p50), (99, lat.p99), (99.9, lat.p999), (100, lat.max)):
        assert got == every.get_value_at_percentile(pct)
    # ...which no average of the hosts' p99s gives: the small slow host pulls it up.
    assert lat.p99 != round(sum(r.message_latency_us.corrected.p99 for r in results) / 3)
    assert fleet.verdict == "PASS" and fleet.ok


def test_counts_and_failures_by_errno_are_summed() -> None:
    results = [host_result(1, 3, samples(1, 10), failures={"ECONNREFUSED": 2}, established=98),
               host_result(2, 3, samples(2, 20), failures={"ECONNREFUSED": 1, "ETIMEDOUT": 4}, established=96),
               host_result(3, 3, samples(3, 30))]
    fleet = merge_results(results, ["a", "b", "c"])
    m = fleet.storm
    for field in ("connections", "established", "held", "messages_sent", "messages_received", "bytes_sent",
                  "bytes_received", "source_addresses"):
        assert getattr(m, field) == sum(getattr(r, field) for r in results), field
    assert m.failures == {"ECONNREFUSED": 3, "ETIMEDOUT": 4}
    assert m.processes == 6 and sorted(p.index for p in m.per_process) == list(range(6))
    assert m.messages_per_second == pytest.approx(60 / 10.0)
    assert fleet.verdict == "FAIL" and any("established 294 of 300" in p for p in fleet.problems)


def test_common_window_and_holds_that_did_not_overlap() -> None:
    together = [host_result(i, 2, samples(i, 10), hold_start=1000.0 + 0.1 * i) for i in (1, 2)]
    w = merge_results(together, ["a", "b"]).window
    assert (w.start, w.end, w.seconds, w.shortest_hold) == (1000.2, 1010.1, 9.9, 10.0)
    apart = [host_result(1, 2, samples(1, 10), hold_start=1000.0), host_result(2, 2, samples(2, 10), hold_start=1005.0)]
    fleet = merge_results(apart, ["a", "b"])
    assert fleet.window.seconds == 5.0 and any("held together for 5.00 s" in p for p in fleet.problems)


def test_missing_repeated_and_mixed_shares_fail() -> None:
    r = [host_result(i, 3, samples(i, 10)) for i in (1, 2, 3)]
    assert "missing share 2/3" in merge_results([r[0], r[2]], ["a", "c"]).problems
    assert "share 1/3 appears 2 times" in merge_results([r[0], r[0], r[1], r[2]], list("aabc")).problems
    odd = host_result(1, 2, samples(9, 10))
    assert any("different sizes" in p for p in merge_results([*r, odd], list("abcd")).problems)
