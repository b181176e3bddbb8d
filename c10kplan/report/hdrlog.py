"""`storm --histogram FILE`: the storm's histograms in HdrHistogram's interval log format, the
field's exchange format (HistogramLogProcessor, HdrHistogramVisualizer, hdr-plot and the
`hdrhistogram` package's HistogramLogReader read it; logs of several load hosts can be added).

One tagged interval line per histogram: `Tag=connect` over the ramp, `Tag=corrected` (latency
from the intended send: coordinated omission corrected) and `Tag=raw` (from the actual send)
over the hold. Timestamps are seconds relative to `#[StartTime: ...]`, the Unix time the ramp
began; values are microseconds, so Interval_Max is printed in milliseconds (ratio 1000). The
payloads are the ones the storm's JSON carries (storm/histo.py): HdrHistogram V2 compressed,
base64, 1 us .. 1 h at 3 significant digits.

The lines come from the package's HistogramLogWriter; the "Tag=" prefix and the version header
that goes with it (log format 1.3, which its reader understands but its writer does not emit:
it writes "1.2") and the StartTime comment (its output_start_time passes milliseconds to
datetime.fromtimestamp) are written here.
"""

from __future__ import annotations

import datetime as _dt
import io
import os

from c10kplan.files import atomic_write
from c10kplan.storm.result import StormResult
from c10kplan.storm.stats import merge_encoded

TAGS = ("connect", "corrected", "raw")
LOG_FORMAT_VERSION = "1.3"  # Tag= lines are 1.3's; the package's writer would say 1.2
MAX_UNIT_RATIO = 1000.0  # us -> ms for the Interval_Max column


def intervals(result: StormResult) -> list[tuple[str, float, float, str]]:
    """(tag, start s, length s, encoded histogram) of every histogram with samples, relative to
    the ramp's start."""
    hold_start = result.connect_seconds
    if result.placement is not None and result.placement.hold_started_at is not None:
        hold_start = max(0.0, result.placement.hold_started_at - result.placement.ramp_started_at)
    spans = {"connect": (0.0, result.connect_seconds), "corrected": (hold_start, result.hold_seconds),
             "raw": (hold_start, result.hold_seconds)}
    out = []
    for tag in TAGS:
        text = getattr(result.histograms, tag)
        if text:
            start, length = spans[tag]
            out.append((tag, start, length, text))
    return out


def histogram_log(result: StormResult, started_at: float) -> str:
    """The interval log's text; `started_at`: Unix time (s) the ramp began."""
    from hdrh.log import HistogramLogWriter

    if result.placement is not None:
        started_at = result.placement.ramp_started_at
    buf = io.StringIO()
    writer = HistogramLogWriter(buf)
    writer.output_comment(f"[c10kplan storm {result.target}: {result.connections} connections, "
                          f"{result.protocol}; values in microseconds]")
    writer.output_comment(f"[Histogram log format version {LOG_FORMAT_VERSION}]")
    when = _dt.datetime.fromtimestamp(started_at, _dt.timezone.utc).isoformat(timespec="seconds")
    buf.write(f"#[StartTime: {started_at:.3f} (seconds since epoch), {when}]\n")
    writer.output_legend()
    for tag, start, length, text in intervals(result):
        hist = merge_encoded([text])
        hist.set_start_time_stamp(start * 1000)  # the writer takes these in ms, relative to its
        hist.set_end_time_stamp((start + length) * 1000)  # base time (0: our StartTime)
        buf.write(f"Tag={tag},")
        writer.output_interval_histogram(hist, max_value_unit_ratio=MAX_UNIT_RATIO)
    return buf.getvalue()


def write_histogram_log(path: str | os.PathLike[str], result: StormResult, started_at: float) -> None:
    atomic_write(path, histogram_log(result, started_at), fsync=False)
