"""The histograms in the storm JSON: the hdrhistogram package's encoding, decoded with bounds."""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

from c10kplan.storm.histo import Histograms, checked_decode, merged
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


def test_merged_adds_every_sample() -> None:
    a, b = hist_of(range(1, 1000)), hist_of(range(5000, 6000))
    parts = [Histograms.of(a, a, a), Histograms.of(b, b, b)]
    m = merged(parts)
    assert m["raw"].get_total_count() == 1999
    assert m["raw"].get_value_at_percentile(99) == hist_of([*range(1, 1000), *range(5000, 6000)]).get_value_at_percentile(99)
