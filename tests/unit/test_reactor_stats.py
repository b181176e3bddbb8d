"""Stats: summing, the document shape the verify helper reads, atomic write, read errors."""

from __future__ import annotations

import json

import pytest

from c10kplan.errors import BadInput
from c10kplan.reactor.stats import WorkerStats, build_document, read_stats, self_rss_bytes, write_stats


def w(i: int, **kw) -> WorkerStats:
    return WorkerStats(worker=i, pid=100 + i, **kw)


def test_total_sums_counters_errors_and_rss():
    doc = build_document(
        {1: w(1, accepted=5, active=2, closed=3, errors={"EPIPE": 1}, rss_bytes=10),
         0: w(0, accepted=7, active=7, rejected=4, errors={"EPIPE": 2, "ECONNRESET": 1}, rss_bytes=20)},
        now=123.5,
    )
    assert [x.worker for x in doc.workers] == [0, 1]
    t = doc.total
    assert (t.accepted, t.active, t.closed, t.rejected, t.rss_bytes) == (12, 9, 3, 4, 30)
    assert t.errors == {"ECONNRESET": 1, "EPIPE": 3}


def test_write_is_atomic_and_read_back(tmp_path):
    path = tmp_path / "stats.json"
    doc = build_document({0: w(0, accepted=1, bytes_in=64, bytes_out=64)}, now=1.0)
    write_stats(path, doc)
    got = read_stats(path)
    assert got["time"] == 1.0 and got["total"]["bytes_out"] == 64
    assert set(got["workers"][0]) >= {"worker", "pid", "accepted", "active", "closed", "rejected",
                                      "bytes_in", "bytes_out", "errors", "rss_bytes"}
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]  # no temp file left behind


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({"time": 1})])
def test_read_stats_errors_are_bad_input(tmp_path, content):
    path = tmp_path / "s.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BadInput):
        read_stats(path)


def test_self_rss_is_positive():
    assert self_rss_bytes() > 1024 * 1024
