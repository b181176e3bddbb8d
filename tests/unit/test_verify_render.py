"""How `c10kplan verify` prints its host figures and comparison numbers (planner.findings helpers)."""

from __future__ import annotations

from types import SimpleNamespace

from c10kplan.cli.verify import _host_line, _num
from c10kplan.verify.measure import HostSample

MIB = 1 << 20


def _sample(slab: int | None, avail: int | None) -> HostSample:
    return HostSample(mem_available_bytes=avail, slab_bytes=slab, tcp_inuse=5, tcp_mem_pages=7,
                      sockets_used=9)


def test_host_line_signs_deltas_and_shows_rss_in_mib():
    res = SimpleNamespace(before=_sample(100 * MIB, 2000 * MIB), during=_sample(112 * MIB + MIB // 2, 1900 * MIB),
                          server_rss_bytes=1536 * MIB, storm_rss_bytes=30 * MIB)
    line = _host_line(res)
    assert line.startswith("Slab +12.5 MiB, MemAvailable -100.0 MiB, TCP sockets in use 5 -> 5")
    assert line.endswith("RSS server 1,536.0 MiB, storm 30.0 MiB")


def test_host_line_says_unknown_for_a_missing_figure():
    # The bug this guards: an unknown RSS printed as nothing ("RSS server , storm ") because the
    # sign was cut off the text by slicing, which also cut the "?" shown for unknown.
    res = SimpleNamespace(before=_sample(None, 2000 * MIB), during=_sample(None, 1999 * MIB),
                          server_rss_bytes=None, storm_rss_bytes=None)
    line = _host_line(res)
    assert line.startswith("Slab unknown, MemAvailable -1.0 MiB")
    assert line.endswith("RSS server unknown, storm unknown")


def test_host_line_without_a_sample_during_the_hold():
    res = SimpleNamespace(before=_sample(1, 1), during=None, server_rss_bytes=1, storm_rss_bytes=1)
    assert _host_line(res) == "no sample during the hold"


def test_comparison_numbers():
    assert [_num(v) for v in (None, 0.25, 3.0, 12_345.0, 1_234.5)] == ["-", "0.25", "3", "12,345", "1,234.5"]


def test_fmt_bytes_fixed_unit_and_sign():
    from c10kplan.planner.findings import fmt_bytes

    assert fmt_bytes(3 << 30) == "3.0 GiB"  # the default picks the unit
    assert fmt_bytes(3 << 30, unit="MiB") == "3,072.0 MiB"
    assert fmt_bytes(512, unit="B", signed=True) == "+512 B"
    assert fmt_bytes(-(1 << 19), unit="MiB", signed=True) == "-0.5 MiB"
    assert fmt_bytes(None, unit="MiB", signed=True) == "unknown"
