"""`--metrics FILE` (storm, verify): the run's figures in the Prometheus text exposition format
(version 0.0.4), the input of node_exporter's textfile collector and of any Prometheus scrape.

Conventions (prometheus.io/docs/practices/naming): base units (seconds, bytes) in the names,
counters end in `_total`, latencies are summaries (`quantile` labels, `_sum`, `_count`), no
timestamps (the textfile collector refuses them; the scrape stamps the samples). Every family
has HELP and TYPE lines. The file is replaced atomically (temp file in the same folder, then
rename(2)), as the textfile collector requires: it may read the folder at any moment.

    c10kplan_storm_*   what the storm did (storm and verify)
    c10kplan_verify_*  the host and the plan: kernel bytes per socket, measured vs planned
"""

from __future__ import annotations

import math
import os

from c10kplan.files import atomic_write
from c10kplan.storm.result import StormResult
from c10kplan.storm.stats import Percentiles

Labels = dict[str, str]
QUANTILES = (("0.5", "p50"), ("0.9", "p90"), ("0.99", "p99"), ("0.999", "p999"), ("1", "max"))


def _escape(value: str) -> str:
    """A label value: backslash, double quote and newline escaped (exposition format)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class Families:
    """Metric families in the order they are added; each sample under its family's HELP/TYPE."""

    def __init__(self) -> None:
        self._families: dict[str, tuple[str, str, list[str]]] = {}

    def add(self, name: str, kind: str, help: str, value: float | None, labels: Labels | None = None,
            suffix: str = "") -> None:
        """One sample of family `name` (a counter's name without `_total`); None is left out."""
        if value is None:
            return
        family = self._families.setdefault(name, (kind, help, []))
        label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in (labels or {}).items())
        family[2].append(f"{name}{suffix}{'{' + label_text + '}' if label_text else ''} {_number(value)}")

    def counter(self, name: str, help: str, value: float | None, labels: Labels | None = None) -> None:
        self.add(name, "counter", help, value, labels, "_total")

    def gauge(self, name: str, help: str, value: float | None, labels: Labels | None = None) -> None:
        self.add(name, "gauge", help, value, labels)

    def summary_us(self, name: str, help: str, p: Percentiles, labels: Labels | None = None) -> None:
        """A latency summary from the storm's percentiles (microseconds -> seconds)."""
        labels = labels or {}
        if p.count:
            for q, field in QUANTILES:
                self.add(name, "summary", help, getattr(p, field) / 1e6, {**labels, "quantile": q})
        self.add(name, "summary", help, round(p.mean * p.count) / 1e6, labels, "_sum")
        self.add(name, "summary", help, p.count, labels, "_count")

    def text(self) -> str:
        lines = []
        for name, (kind, help, samples) in self._families.items():
            full = name + "_total" if kind == "counter" else name
            lines += [f"# HELP {full} {_help(help)}", f"# TYPE {full} {kind}", *samples]
        return "\n".join(lines) + "\n"


def storm_families(r: StormResult, out: Families | None = None) -> Families:
    out = out or Families()
    out.gauge("c10kplan_storm_connections_target", "Connections the storm was asked to open.", r.connections)
    out.gauge("c10kplan_storm_connections_established", "Connections that completed connect().", r.established)
    out.gauge("c10kplan_storm_connections_held", "Connections still open at the end of the hold.", r.held)
    out.gauge("c10kplan_storm_processes", "Storm processes.", r.processes)
    out.gauge("c10kplan_storm_source_addresses", "Source addresses the storm bound.", r.source_addresses)
    for name, count in sorted(r.failures.items()):
        out.counter("c10kplan_storm_connect_failures", "Failed connects and drops, by errno name.", count,
                    {"errno": name})
    out.gauge("c10kplan_storm_connect_seconds", "Start of the first connect to the end of the last.",
              r.connect_seconds)
    out.gauge("c10kplan_storm_hold_seconds", "Seconds the connections were held.", r.hold_seconds)
    out.counter("c10kplan_storm_messages_sent", "Messages sent.", r.messages_sent)
    out.counter("c10kplan_storm_messages_received", "Replies received.", r.messages_received)
    out.counter("c10kplan_storm_messages_missed", "Scheduled messages never sent (the storm fell behind).",
                r.missed)
    out.counter("c10kplan_storm_messages_unanswered", "Messages without a reply before the drain timeout.",
                r.unanswered)
    out.counter("c10kplan_storm_messages_lost_on_drop", "Messages whose connection dropped before their reply.",
                r.lost_on_drop)
    out.counter("c10kplan_storm_replies_unexpected", "Replies beyond the messages sent.", r.unexpected)
    for code, count in sorted(r.http_statuses.items()):
        out.counter("c10kplan_storm_http_responses", "HTTP responses, by status code.", count, {"code": code})
    for code, count in sorted(r.close_codes.items()):
        out.counter("c10kplan_storm_websocket_closes", "WebSocket close frames servers sent, by close code.", count,
                    {"code": code})
    out.counter("c10kplan_storm_bytes_sent", "Payload bytes sent.", r.bytes_sent)
    out.counter("c10kplan_storm_bytes_received", "Payload bytes received.", r.bytes_received)
    out.gauge("c10kplan_storm_messages_per_second", "Replies per second over the hold.", r.messages_per_second)
    out.summary_us("c10kplan_storm_connect_latency_seconds", "connect() to established.", r.connect_latency_us)
    lat_help = ("Message round trip; kind=corrected from the intended send (coordinated omission "
                "corrected), kind=raw from the actual send.")
    out.summary_us("c10kplan_storm_message_latency_seconds", lat_help, r.message_latency_us.corrected,
                   {"kind": "corrected"})
    out.summary_us("c10kplan_storm_message_latency_seconds", lat_help, r.message_latency_us.raw, {"kind": "raw"})
    out.gauge("c10kplan_storm_ok", "1 when the storm held the target cleanly.", r.ok)
    return out


def storm_metrics(r: StormResult) -> str:
    return storm_families(r).text()


def verify_metrics(res) -> str:  # res: VerifyResult
    """The verify run: its storm, the host's samples, the plan's figures and the comparisons."""
    from c10kplan.verify.compare import per
    from c10kplan.verify.measure import delta

    out = storm_families(res.storm)
    _verdict(out, res)
    out.gauge("c10kplan_verify_server_active_connections", "Connections the server counted as open after the hold.",
              res.server_active)
    for name, count in sorted(res.server_errors.items()):
        out.counter("c10kplan_verify_server_errors", "Server-side connection errors, by errno name.", count,
                    {"errno": name})
    sockets = 2 * res.storm.held
    slab = delta(res.during.slab_bytes, res.before.slab_bytes) if res.during else None
    kernel_help = "Kernel memory per socket: measured = Slab delta / sockets held; planned = the plan's figure."
    out.gauge("c10kplan_verify_kernel_bytes_per_socket", kernel_help, per(slab, sockets), {"source": "measured"})
    out.gauge("c10kplan_verify_kernel_bytes_per_socket", kernel_help, res.plan.kernel_bytes_per_socket,
              {"source": "planned"})
    for stage, sample in (("before", res.before), ("during", res.during)):
        if sample is not None:
            out.gauge("c10kplan_verify_slab_bytes", "/proc/meminfo Slab before the storm and during the hold.",
                      sample.slab_bytes, {"stage": stage})
            out.gauge("c10kplan_verify_mem_available_bytes", "/proc/meminfo MemAvailable.",
                      sample.mem_available_bytes, {"stage": stage})
    out.gauge("c10kplan_verify_rss_bytes", "Resident memory during the hold.", res.server_rss_bytes, {"process": "server"})
    out.gauge("c10kplan_verify_rss_bytes", "Resident memory during the hold.", res.storm_rss_bytes, {"process": "storm"})
    for c in res.comparisons:
        labels = {"figure": c.figure, "unit": c.unit}
        out.gauge("c10kplan_verify_measured", "Measured figure of the comparison table (unit label).", c.measured, labels)
        out.gauge("c10kplan_verify_planned", "Planned figure of the comparison table (unit label).", c.planned, labels)
        out.gauge("c10kplan_verify_plan_ratio", "Measured / planned.", c.ratio, {"figure": c.figure})
    return out.text()


def _verdict(out: Families, res) -> None:
    """The families a refusal has too (res: VerifyResult or VerifyRefusal)."""
    out.gauge("c10kplan_verify_pass", "1 when verify's verdict is PASS.", res.verdict == "PASS")
    out.gauge("c10kplan_verify_refused", "1 when the plan refused the target and nothing ran.",
              res.verdict == "REFUSED")
    out.gauge("c10kplan_verify_connections_target", "Connections verify was asked to hold.", res.connections)
    counts: dict[str, int] = {}
    for f in res.plan.findings:
        counts[f.status] = counts.get(f.status, 0) + 1
    for status, n in sorted(counts.items()):
        out.gauge("c10kplan_verify_plan_findings", "The plan's findings, by status.", n, {"status": status})


def refusal_metrics(refusal) -> str:  # refusal: VerifyRefusal
    """A refused verify: the verdict and the plan's findings (nothing ran, nothing measured)."""
    out = Families()
    _verdict(out, refusal)
    return out.text()


def write_metrics(path: str | os.PathLike[str], text: str) -> None:
    atomic_write(path, text, fsync=False)
