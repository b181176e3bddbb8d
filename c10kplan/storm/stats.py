"""Latency histograms and the storm's result records.

Latencies are integers in microseconds. The hot loop does not call HdrHistogram (about 3 us
per `record_value` in pure Python, too slow at 100k messages/s); it counts values in a dict
after rounding them to HdrHistogram's own precision (3 significant digits = 2048 sub-buckets
per power of two), and `LatencyRecorder.histogram()` replays the counts into an HdrHistogram
with `record_value(value, count)`. The percentiles are the same as recording one by one.

Histograms cross process boundaries as HdrHistogram's compressed base64 encoding, and are
merged with `decode_and_add`, so p99 of the whole storm is computed from all samples, never as
an average of per-process p99s.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


# 1 us .. 1 hour, 3 significant digits (0.1% value precision).
LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_FIGURES = 3
_SUB_BUCKET_BITS = 11  # 2048 sub-buckets hold 3 significant decimal digits


def new_histogram():  # -> HdrHistogram (imported lazily: keeps CLI start-up fast)
    from hdrh.histogram import HdrHistogram

    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)


def quantize(value_us: int) -> int:
    """Round a value down to the precision the histogram keeps (so counting it is lossless)."""
    if value_us < LOWEST_US:
        return LOWEST_US
    if value_us > HIGHEST_US:
        value_us = HIGHEST_US
    shift = value_us.bit_length() - _SUB_BUCKET_BITS
    if shift <= 0:
        return value_us
    return (value_us >> shift) << shift


class LatencyRecorder:
    """Cheap counting of microsecond values in the hot loop; an HdrHistogram at the end."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def record(self, value_us: int) -> None:
        key = quantize(value_us)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1

    def record_seconds(self, seconds: float) -> None:
        self.record(int(seconds * 1_000_000))

    def histogram(self):
        hist = new_histogram()
        for value, count in self.counts.items():
            hist.record_value(value, count)
        return hist

    def encode(self) -> str:
        return encode(self.histogram())


def encode(hist) -> str:
    return hist.encode().decode("ascii")


def merge_encoded(encoded: list):
    """One histogram holding every sample of the given ones: each an encoding ("" for none)
    or a histogram already decoded (storm.histo.check_all's)."""
    hist = new_histogram()
    for item in encoded:
        if isinstance(item, str):
            if item:
                hist.decode_and_add(item.encode("ascii"))
        else:
            hist.add(item)
    return hist


class Percentiles(BaseModel):
    """A latency distribution summary, microseconds."""

    model_config = ConfigDict(frozen=True)

    count: int = 0
    min: int = 0
    mean: float = 0.0
    p50: int = 0
    p90: int = 0
    p99: int = 0
    p999: int = Field(0, description="99.9th percentile")
    max: int = 0

    @classmethod
    def of(cls, hist) -> "Percentiles":
        if hist.get_total_count() == 0:
            return cls()
        return cls(
            count=hist.get_total_count(),
            min=hist.get_min_value(),
            mean=round(hist.get_mean_value(), 1),
            p50=hist.get_value_at_percentile(50),
            p90=hist.get_value_at_percentile(90),
            p99=hist.get_value_at_percentile(99),
            p999=hist.get_value_at_percentile(99.9),
            max=hist.get_max_value(),
        )
