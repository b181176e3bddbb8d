"""The histograms in the storm JSON: the hdrhistogram package's encoding, decoded with bounds."""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

from c10kplan.storm.histo import Histograms, checked_decode
from c10kplan.storm.stats import LatencyRecorder, new_histogram


def hist_of(values):
    rec = LatencyRecorder()
    for v in values:
        rec.record(v)
    return rec.histogram()


def test_round_trip_through_the_packages_own_decoder() -> None:
    h = hist_of([100, 200, 300, 5000])
    doc = Histograms.of(h, h, new_histogram())
    theirs = HdrHistogram.decode(doc.corrected.encode())  # any hdrhistogram reader
    assert theirs.get_total_count() == 4 and theirs.get_value_at_percentile(100) == h.get_max_value()
    assert checked_decode(doc.connect).get_total_count() == 4
    assert checked_decode(doc.raw).get_total_count() == 0
