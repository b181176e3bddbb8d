"""What a run leaves behind, from a result record alone: the HdrHistogram interval log (read back
by the package's own HistogramLogReader), the Prometheus text file (parsed by prometheus_client's
parser), the HTML report and its PNGs; the ramp recorder; the refusal document."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from c10kplan.host.procfs import ProcFS
from c10kplan.planner.findings import finding
from c10kplan.storm.result import ProcessResult, combine
from c10kplan.storm.share import Placement
from c10kplan.storm.stats import encode, merge_encoded, new_histogram
from c10kplan.verify.compare import row
from c10kplan.verify.measure import CpuUse, HostSample
from c10kplan.verify.ramp import RampRecorder, RampSample
from c10kplan.verify.result import PlanSummary, VerifyResult

MIB = 1 << 20


def _hist(values_us: list[int]) -> str:
    hist = new_histogram()
    for v in values_us:
        hist.record_value(v)
    return encode(hist)


def _storm(failures=None, target="127.0.0.1:40123"):
    connect = _hist([200 + i for i in range(500)])
    corrected = _hist([1000 + 10 * i for i in range(2000)] + [50_000])
    raw = _hist([800 + 5 * i for i in range(2000)] + [9_000])
    proc = ProcessResult(index=0, pid=4242, target=500, established=500, held=497,
                         failures=failures or {"ECONNREFUSED": 3}, messages_sent=2001, messages_received=2001,
                         bytes_sent=128_064, bytes_received=128_064, ramp_seconds=1.25, hold_seconds=4.0)
    result = combine(target=target, protocol="echo", connections=500, source_addresses=1, processes=[proc],
                     histograms=[{"connect": connect, "corrected": corrected, "raw": raw}])
    return result.model_copy(update={"placement": Placement(fleet_connections=500, ramp_started_at=1_780_000_000.5,
                                                             hold_started_at=1_780_000_002.0)})


def _summary(**extra) -> PlanSummary:
    base = dict(ready=True, server_processes=1, client_processes=1, source_addresses=1, fast_source_addresses=1,
                kernel_bytes_per_socket=4096, user_bytes_per_connection=600, sockets=1000, fds_per_process=520,
                messages_per_s=1000.0, server_us_per_message=26.5, client_us_per_message=28.6,
                required_cores=0.06, cores=2, failing=[],
                findings=[finding("fds.nofile", "PASS", "soft 20,000", "520 fds"),
                          finding("memory.tcp_mem", "WARN", "high = 2 GiB", "<2 MiB", fix="sysctl -w x=<y>")])
    return PlanSummary(**(base | extra))


def _verify(storm=None, **extra) -> VerifyResult:
    storm = storm or _storm()
    before = HostSample(mem_available_bytes=20 << 30, slab_bytes=300 * MIB, tcp_inuse=5, tcp_mem_pages=1,
                        sockets_used=30)
    during = before.model_copy(update={"slab_bytes": 300 * MIB + 994 * 4000, "tcp_inuse": 1000})
    ramp = [RampSample(t=0.0, established=60, failed=0, slab_bytes=300 * MIB + 120 * 4000),
            RampSample(t=0.25, established=250, failed=1),
            RampSample(t=0.5, established=480, failed=3, slab_bytes=300 * MIB + 960 * 4000),
            RampSample(t=1.0, established=497, failed=3)]
    cpu = CpuUse(seconds=3.5, messages=1750, process_ticks=150, host_busy_cores=0.4,
                 server_us_per_message=31.2, storm_us_per_message=40.0)
    base = dict(
        connections=500, duration=4.0, message_rate=1.0, netns=False, profile=None, plan=_summary(), forced=False,
        server_workers=1, storm_processes=1, server_endpoint="127.0.0.1:40123", before=before, during=during,
        server_active=497, server_errors={"ECONNRESET": 2}, server_rss_bytes=40 * MIB, storm_rss_bytes=50 * MIB,
        storm=storm, cpu=cpu,
        comparisons=[row("connections held", "connections", 497, 500, "storm", tolerance=0.0),
                     row("kernel memory per socket", "bytes", 4000.0, 4096, "Slab delta / sockets"),
                     row("CPU per message, server", "us", 31.2, 26.5, "cpu"),
                     row("CPU per message, storm", "us", 40.0, 28.6, "cpu")],
        calibration_file=None, problems=["3 connections dropped during the hold"], verdict="FAIL", ramp=ramp)
    return VerifyResult(**(base | extra))


# ------------------------------------------------------------------------- HdrHistogram interval log

def test_histogram_log_reads_back_with_the_packages_reader(tmp_path):
    from hdrh.log import HistogramLogReader

    from c10kplan.report.hdrlog import write_histogram_log

    storm = _storm()
    path = tmp_path / "run.hlog"
    write_histogram_log(path, storm, started_at=0.0)
    reader = HistogramLogReader(str(path), new_histogram())
    got = {}
    while (hist := reader.get_next_interval_histogram()) is not None:
        got[hist.get_tag()] = hist
    assert sorted(got) == ["connect", "corrected", "raw"]
    for tag in got:
        want = merge_encoded([getattr(storm.histograms, tag)])
        assert got[tag].get_total_count() == want.get_total_count()
        assert got[tag].get_value_at_percentile(99) == want.get_value_at_percentile(99)
        assert got[tag].get_max_value() == want.get_max_value()
    assert got["corrected"].get_max_value() == storm.message_latency_us.corrected.max
    # StartTime is the ramp's start (Unix s); corrected/raw cover the hold, connect the ramp
    assert reader.get_start_time_sec() == pytest.approx(1_780_000_000.5)
    assert got["connect"].get_start_time_stamp() == pytest.approx(1_780_000_000.5 * 1000)
    assert got["corrected"].get_start_time_stamp() == pytest.approx(1_780_000_002.0 * 1000)
    assert got["raw"].get_end_time_stamp() == pytest.approx((1_780_000_002.0 + 4.0) * 1000)
    # two logs (two load hosts) add up with the same reader
    reader = HistogramLogReader(str(path), new_histogram())
    total = new_histogram()
    while reader.add_next_interval_histogram(total) is not None:
        pass
    assert total.get_total_count() == 500 + 2001 + 2001


def test_histogram_log_interval_max_is_in_milliseconds(tmp_path):
    from c10kplan.report.hdrlog import histogram_log

    lines = [ln for ln in histogram_log(_storm(), 0.0).splitlines() if ln.startswith("Tag=corrected,")]
    assert len(lines) == 1
    _tag, start, length, max_ms, _payload = lines[0].split(",")
    assert (float(start), float(length), float(max_ms)) == (1.5, 4.0, 50.0)  # 50,000 us


def test_histogram_log_header_names_the_format_its_tag_lines_need():
    """Tag= lines are a 1.3 feature: the header says 1.3, once, before the first interval."""
    from c10kplan.report.hdrlog import histogram_log

    text = histogram_log(_storm(), 0.0)
    versions = [ln for ln in text.splitlines() if "Histogram log format version" in ln]
    assert versions == ["#[Histogram log format version 1.3]"]
    assert any(ln.startswith("Tag=") for ln in text.splitlines())


# ------------------------------------------------------------------------- Prometheus text format

def _families(text: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(families, name: str, **labels) -> float:
    fam_name = name.removesuffix("_total") if name.endswith("_total") else name
    for fam in families.values():
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise AssertionError(f"no sample {name} {labels} (family {fam_name})")


def test_storm_metrics_parse_and_hold_the_runs_numbers():
    from c10kplan.report.openmetrics import storm_metrics

    storm = _storm(failures={"ECONNREFUSED": 3, "ETIMEDOUT": 1})
    fams = _families(storm_metrics(storm))
    assert fams["c10kplan_storm_connect_failures"].type == "counter"
    assert _value(fams, "c10kplan_storm_connect_failures_total", errno="ECONNREFUSED") == 3
    assert _value(fams, "c10kplan_storm_connect_failures_total", errno="ETIMEDOUT") == 1
    assert _value(fams, "c10kplan_storm_connections_held") == 497
    assert _value(fams, "c10kplan_storm_messages_received_total") == 2001
    assert fams["c10kplan_storm_message_latency_seconds"].type == "summary"
    p = storm.message_latency_us.corrected
    assert _value(fams, "c10kplan_storm_message_latency_seconds", kind="corrected", quantile="0.99") == p.p99 / 1e6
    assert _value(fams, "c10kplan_storm_message_latency_seconds", kind="raw", quantile="1") == storm.message_latency_us.raw.max / 1e6
    assert _value(fams, "c10kplan_storm_message_latency_seconds_count", kind="corrected") == 2001
    assert _value(fams, "c10kplan_storm_ok") == 0


def test_storm_metrics_count_http_statuses_and_close_codes():
    from c10kplan.report.openmetrics import storm_metrics

    storm = _storm().model_copy(update={"http_statuses": {"200": 1990, "503": 11}, "close_codes": {"1001": 4},
                                        "lost_on_drop": 6})
    fams = _families(storm_metrics(storm))
    assert _value(fams, "c10kplan_storm_http_responses_total", code="200") == 1990
    assert _value(fams, "c10kplan_storm_http_responses_total", code="503") == 11
    assert _value(fams, "c10kplan_storm_websocket_closes_total", code="1001") == 4
    assert _value(fams, "c10kplan_storm_messages_lost_on_drop_total") == 6


def test_verify_metrics_hold_kernel_bytes_and_plan_ratios():
    from c10kplan.report.openmetrics import verify_metrics

    res = _verify()
    fams = _families(verify_metrics(res))
    # measured: Slab delta / (2 x held) = 994 x 4000 / 994
    assert _value(fams, "c10kplan_verify_kernel_bytes_per_socket", source="measured") == 4000
    assert _value(fams, "c10kplan_verify_kernel_bytes_per_socket", source="planned") == 4096
    assert _value(fams, "c10kplan_verify_plan_ratio", figure="kernel memory per socket") == round(4000 / 4096, 3)
    assert _value(fams, "c10kplan_verify_plan_ratio", figure="CPU per message, server") == round(31.2 / 26.5, 3)
    assert _value(fams, "c10kplan_verify_server_errors_total", errno="ECONNRESET") == 2
    assert _value(fams, "c10kplan_verify_slab_bytes", stage="before") == 300 * MIB
    assert _value(fams, "c10kplan_verify_pass") == 0
    assert _value(fams, "c10kplan_storm_connections_established") == 500  # the storm's part too


def test_metric_label_values_are_escaped():
    from c10kplan.report.openmetrics import storm_metrics

    odd = 'E"VIL\\\nx'
    fams = _families(storm_metrics(_storm(failures={odd: 7})))
    assert _value(fams, "c10kplan_storm_connect_failures_total", errno=odd) == 7


def test_metrics_file_is_replaced_atomically(tmp_path, monkeypatch):
    import os

    from c10kplan.report.openmetrics import write_metrics

    path = tmp_path / "c10kplan.prom"
    path.write_text("old\n")
    renames = []
    real = os.rename
    monkeypatch.setattr(os, "rename", lambda *a, **k: (renames.append(a), real(*a, **k))[1])
    write_metrics(path, "new 1\n")
    assert path.read_text() == "new 1\n" and sorted(p.name for p in tmp_path.iterdir()) == ["c10kplan.prom"]
    assert path.stat().st_mode & 0o777 == 0o644  # the textfile collector (another user) reads it


# ------------------------------------------------------------------------- the HTML report

class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.text: list[str] = []
        self.refs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        for key in ("src", "href"):
            if key in attrs:
                self.refs.append(attrs[key])

    def handle_data(self, data):
        self.text.append(data)


def test_report_page_and_images_exist_and_hold_the_runs_numbers(tmp_path):
    from c10kplan.report.html import write_report

    res = _verify()
    page_path = write_report(res, tmp_path / "rep")
    page = _Page()
    page.feed(page_path.read_text())
    assert sorted(page.images) == ["cpu.png", "latency.png", "memory.png", "ramp.png"]
    for name in page.images:
        data = (tmp_path / "rep" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    assert all(not re.match(r"[a-z]+:", ref) for ref in page.refs)  # offline: no URL of any scheme
    assert "script" not in page.tags
    text = " ".join(" ".join(page.text).split())
    assert "500 established, 497 held of 500" in text
    assert "ECONNREFUSED x3" in text and "ECONNRESET x2" in text
    p = res.storm.message_latency_us.corrected
    assert f"{p.p99 / 1000:,.3f}" in text and f"{p.max / 1000:,.3f}" in text  # the latency table, ms
    assert "4,000" in text and "4,096" in text  # kernel bytes per socket, measured and planned
    assert "31.2" in text and "26.5" in text  # CPU per message, server
    assert "memory.tcp_mem" in text and "WARN" in text  # the findings table
    assert "3 connections dropped during the hold" in text
    # the Slab table: before the storm (Slab before), the ramp's readings, the hold
    assert "before the storm" in text and "ramp, 0.5 s" in text and "hold" in text
    assert f"{(300 * MIB + 994 * 4000) / MIB:,.1f}" in text


def test_report_escapes_every_text(tmp_path):
    from c10kplan.report.html import write_report

    evil = "<script>alert(1)</script>"
    res = _verify(storm=_storm(failures={evil: 1}, target=f"{evil}:1"),
                  plan=_summary(findings=[finding("x", "FAIL", evil, "&", fix=evil)]), problems=[evil])
    html = write_report(res, tmp_path / "rep").read_text()
    assert "<script" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4


def test_an_idle_run_has_no_latency_figure_and_says_why(tmp_path):
    from c10kplan.report.html import write_report

    empty = new_histogram()
    storm = _storm().model_copy(update={"histograms": _storm().histograms.model_copy(
        update={"corrected": encode(empty), "raw": ""})})
    folder = tmp_path / "rep"
    folder.mkdir()
    (folder / "latency.png").write_bytes(b"an older run's figure")
    html = write_report(_verify(storm=storm, message_rate=0.0), folder).read_text()
    assert 'src="latency.png"' not in html and "held idle" in html
    assert not (folder / "latency.png").exists()


def test_the_spectrum_reaches_the_last_sample():
    from c10kplan.report.plots import spectrum

    points = spectrum(_storm().histograms.corrected)
    pcts = [p for p, _ in points]
    assert pcts == sorted(pcts) and pcts[0] == 0.0 and 99.9 < pcts[-1] < 100
    assert points[-1][1] == pytest.approx(50.0, rel=0.001)  # the max, ms
    assert points[0][1] == pytest.approx(1.0, rel=0.001)  # the min


# ------------------------------------------------------------------------- the ramp recorder

def _meminfo_root(tmp_path: Path, slab_kib: list[int]) -> tuple[ProcFS, list[int]]:
    (tmp_path / "proc").mkdir()
    left = list(slab_kib)

    class Tree(ProcFS):
        def read(self, relpath):
            if relpath == "proc/meminfo" and left:
                (tmp_path / "proc" / "meminfo").write_text(f"MemTotal: 1000 kB\nSlab: {left.pop(0)} kB\n")
            return super().read(relpath)

    return Tree(tmp_path), left


def test_ramp_recorder_sums_processes_and_reads_slab_at_each_tenth(tmp_path):
    procfs, _ = _meminfo_root(tmp_path, list(range(1000, 1100)))
    now = [0.0]
    seen = []
    rec = RampRecorder(100, procfs, seen.append, clock=lambda: now[0], every=0.1)

    def report(t, index, established, failed=0):
        now[0] = t
        rec({"event": "progress", "index": index, "established": established, "failed": failed})

    report(10.0, 0, 0)  # the first report: a sample with Slab (0 >= 0 tenths)
    report(10.01, 1, 4)  # too soon, no tenth crossed: not recorded
    report(10.02, 0, 10)  # 14: crossed a tenth -> recorded with Slab
    report(10.2, 1, 6, failed=2)  # 16, later than `every`: recorded, no tenth crossed
    report(10.3, 0, 50)  # 56: five tenths at once -> one Slab reading
    report(10.4, 1, 50, failed=2)  # 100: the end
    rec({"event": "result", "index": 0})
    assert [(s.t, s.established, s.failed) for s in rec.samples] == [
        (0.0, 0, 0), (0.02, 14, 0), (0.2, 16, 2), (0.3, 56, 2), (0.4, 100, 2)]
    assert [s.slab_bytes for s in rec.samples] == [1000 * 1024, 1001 * 1024, None, 1002 * 1024, 1003 * 1024]
    assert len(seen) == 7  # every event passed on, recorded or not


def test_ramp_recorder_stays_bounded(tmp_path):
    from c10kplan.verify import ramp

    now = [0.0]
    rec = RampRecorder(10**9, None, clock=lambda: now[0], every=0.1)
    for i in range(5 * ramp.MAX_SAMPLES):
        now[0] = i * 0.25
        rec({"event": "progress", "index": 0, "established": i, "failed": 0})
    assert len(rec.samples) <= ramp.MAX_SAMPLES
    assert rec.samples[0].t == 0.0 and rec.samples[-1].t > 0.9 * now[0]  # still spans the run


# ------------------------------------------------------------------------- the refusal

def test_refusal_crosses_back_from_the_namespace_whole(capsys):
    from c10kplan.verify.netns import _decode, _print_error
    from c10kplan.verify.options import VerifyOptions
    from c10kplan.verify.refusal import PlanRefused, refuse

    summary = _summary(ready=False, failing=["memory.expected (observed 1 MiB, required 2 GiB)"])
    exc = refuse(VerifyOptions(connections=10), summary, in_netns=True)
    assert _print_error(exc) == 1
    with pytest.raises(PlanRefused) as back:
        _decode(capsys.readouterr().out, 1)
    doc = back.value.refusal
    assert doc == exc.refusal and doc.verdict == "REFUSED" and doc.netns is True
    assert str(back.value).startswith("the plan fails") and "memory.expected" in str(back.value)
    assert [f.id for f in doc.plan.findings] == ["fds.nofile", "memory.tcp_mem"]
    json.loads(doc.model_dump_json())


def test_report_without_matplotlib_is_one_environment_error(monkeypatch):
    import sys

    from c10kplan.errors import EnvironmentProblem, ExitStatus
    from c10kplan.report import check_plotting

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(EnvironmentProblem, match=r"--report needs matplotlib: pip install 'c10kplan\[plot\]'") as info:
        check_plotting("--report")
    assert info.value.exit_status == ExitStatus.ENVIRONMENT
