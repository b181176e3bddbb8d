"""The storm's result records: one per process (sent back over a pipe as JSON) and the merged
whole, with the verdict. Frozen pydantic models: they are printed as JSON and read by verify."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from c10kplan.counts import add_counts
from c10kplan.storm.histo import Histograms
from c10kplan.storm.share import Placement
from c10kplan.storm.stats import Percentiles, merge_encoded


class ProcessResult(BaseModel):
    """What one storm process did with its share of the connections."""

    model_config = ConfigDict(frozen=True)

    index: int
    pid: int
    target: int = Field(description="connections this process was asked to open")
    established: int = 0
    held: int = Field(0, description="connections still open at the end of the hold")
    failures: dict[str, int] = Field(default_factory=dict, description="failed connects/drops by errno name")
    messages_sent: int = 0
    messages_received: int = Field(0, description="messages answered with the right reply")
    mismatches: int = Field(0, description="messages answered with a wrong reply")
    unanswered: int = Field(0, description="messages without a reply at the end, their connection still open")
    lost_on_drop: int = Field(0, description="messages whose connection dropped before their reply")
    unexpected: int = Field(0, description="replies beyond the messages sent (discard: reads)")
    missed: int = Field(0, description="scheduled messages never sent: the storm fell behind")
    http_statuses: dict[str, int] = Field(default_factory=dict, description="HTTP status codes read")
    close_codes: dict[str, int] = Field(default_factory=dict, description="WebSocket close codes servers sent")
    bytes_sent: int = 0
    bytes_received: int = 0
    ramp_seconds: float = 0.0
    hold_seconds: float = 0.0
    status: str = Field("ok", description="ok | stopped | crashed | killed")
    detail: str = ""


class MessageLatency(BaseModel):
    model_config = ConfigDict(frozen=True)

    corrected: Percentiles = Percentiles()
    raw: Percentiles = Percentiles()


class DropTimes(BaseModel):
    """When connections dropped for one reason: hold time at drop (s since established)."""

    model_config = ConfigDict(frozen=True)

    count: int
    min: float
    p50: float
    max: float

    @classmethod
    def of(cls, hist) -> "DropTimes":
        us = Percentiles.of(hist)
        return cls(count=us.count, min=round(us.min / 1e6, 3), p50=round(us.p50 / 1e6, 3),
                   max=round(us.max / 1e6, 3))

    def text(self) -> str:
        """`at 2.0 s`, or `at 1.9-2.1 s` (p50 2.0) when they spread."""
        if self.max - self.min < 0.05:
            return f"at {self.p50:.1f} s"
        return f"at {self.min:.1f}-{self.max:.1f} s (p50 {self.p50:.1f})"


DROP_PREFIX = "drop:"  # histogram keys of the hold times at drop, by reason


def failures_text(failures: dict[str, int], drops: dict[str, "DropTimes"]) -> str:
    """`EOF x2000 at 60.0 s, ECONNREFUSED x3`: each reason, with when its connections dropped."""
    return ", ".join(f"{k} x{v}" + (f" {drops[k].text()}" if k in drops else "")
                     for k, v in sorted(failures.items()))


def http_statuses_label(established: int) -> str:
    """The HTTP statuses row's name: each established connection read one first response (its
    handshake request, storm/protocols/http.py) besides its messages' responses, so the statuses
    add up to the answered messages + `established`."""
    return f"HTTP statuses (incl. {established:,} first responses)"


def status_classes(statuses: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for code, n in statuses.items():
        key = code[:1] + "xx"
        out[key] = out.get(key, 0) + n
    return dict(sorted(out.items()))


class StormResult(BaseModel):
    """The merged result of every storm process, with the verdict."""

    model_config = ConfigDict(frozen=True)

    target: str
    protocol: str
    connections: int
    processes: int
    source_addresses: int
    established: int
    held: int
    failures: dict[str, int]
    connect_seconds: float = Field(description="start of the first connect to the end of the last one")
    connect_rate: float = Field(description="established connections per second during the ramp")
    connect_latency_us: Percentiles
    message_latency_us: MessageLatency
    hold_seconds: float
    messages_sent: int
    messages_received: int
    messages_per_second: float
    bytes_sent: int
    bytes_received: int
    throughput_bytes_per_second: float
    mismatches: int
    unanswered: int
    lost_on_drop: int = Field(0, description="messages whose connection dropped before their reply")
    unexpected: int = Field(0, description="replies beyond the messages sent")
    missed: int = Field(description="messages the open-loop schedule called for but never sent")
    http_statuses: dict[str, int] = Field(default_factory=dict)
    http_status_classes: dict[str, int] = Field(default_factory=dict, description="2xx/3xx/4xx/5xx counts")
    close_codes: dict[str, int] = Field(default_factory=dict, description="WebSocket close codes servers sent")
    drops: dict[str, DropTimes] = Field(default_factory=dict, description="hold time at drop, by reason")
    per_process: list[ProcessResult]
    problems: list[str]
    ok: bool
    histograms: Histograms = Field(Histograms(), description="the merged histograms, HdrHistogram-encoded")
    placement: Placement | None = Field(None, description="--share / --start-at: this run's slice and times")


def problems_of(connections: int, established: int, held: int, failures: dict[str, int],
                mismatches: int, unanswered: int, processes: list[ProcessResult], missed: int = 0,
                *, lost: int = 0, unexpected: int = 0, statuses: dict[str, int] | None = None,
                expect_status: tuple[str, ...] = (), drops: dict[str, DropTimes] | None = None) -> list[str]:
    """Why a storm did not hold the target cleanly; [] means it did."""
    out = []
    if established < connections:
        out.append(f"established {established} of {connections} connections")
    if held < established:
        out.append(f"{established - held} connections dropped during the hold")
    if failures:
        out.append("failures: " + failures_text(failures, drops or {}))
    if expect_status:
        from c10kplan.storm.config import status_expected

        off = {k: v for k, v in sorted((statuses or {}).items()) if not status_expected(int(k), expect_status)}
        if off:
            out.append("HTTP statuses outside --expect-status " + ",".join(expect_status) + ": "
                       + ", ".join(f"{k} x{v}" for k, v in off.items()))
    if mismatches:
        out.append(f"{mismatches} replies did not match the expected bytes (protocol mismatch?)" if not expect_status
                   else f"{mismatches} responses had a status outside --expect-status")
    if unexpected:
        out.append(f"{unexpected} replies beyond the messages sent (protocol mismatch?)")
    if unanswered:
        out.append(f"{unanswered} messages got no reply before the drain timeout")
    if lost:
        out.append(f"{lost} messages were lost with their dropped connection")
    if missed:
        out.append(f"{missed} scheduled messages were never sent (the storm fell behind its schedule: CPU-bound)")
    for p in processes:
        if p.status not in ("ok",):
            out.append(f"storm process {p.index} (pid {p.pid}) {p.status}" + (f": {p.detail}" if p.detail else ""))
    return out


def combine(*, target: str, protocol: str, connections: int, source_addresses: int,
            processes: list[ProcessResult], histograms: list[dict[str, object]],
            expect_status: tuple[str, ...] = ()) -> StormResult:
    """Merge per-process results (histograms merged sample by sample: encoded, or decoded
    already by storm.histo.check_all) and judge them."""
    failures: dict[str, int] = {}
    for p in processes:
        add_counts(failures, p.failures)
    established = sum(p.established for p in processes)
    held = sum(p.held for p in processes)
    ramp = max((p.ramp_seconds for p in processes), default=0.0)
    hold = max((p.hold_seconds for p in processes), default=0.0)
    received = sum(p.messages_received for p in processes)
    bytes_total = sum(p.bytes_sent + p.bytes_received for p in processes)
    mismatches = sum(p.mismatches for p in processes)
    unanswered = sum(p.unanswered for p in processes)
    missed = sum(p.missed for p in processes)
    lost = sum(p.lost_on_drop for p in processes)
    unexpected = sum(p.unexpected for p in processes)
    statuses: dict[str, int] = {}
    codes: dict[str, int] = {}
    for p in processes:
        add_counts(statuses, p.http_statuses)
        add_counts(codes, p.close_codes)
    reasons = sorted({k[len(DROP_PREFIX):] for h in histograms for k in h if k.startswith(DROP_PREFIX)})
    drops = {r: DropTimes.of(merge_encoded([h.get(DROP_PREFIX + r, "") for h in histograms])) for r in reasons}
    connect_h = merge_encoded([h.get("connect", "") for h in histograms])
    corrected_h = merge_encoded([h.get("corrected", "") for h in histograms])
    raw_h = merge_encoded([h.get("raw", "") for h in histograms])
    problems = problems_of(connections, established, held, failures, mismatches, unanswered, processes, missed,
                           lost=lost, unexpected=unexpected, statuses=statuses, expect_status=expect_status,
                           drops=drops)
    return StormResult(
        target=target,
        protocol=protocol,
        connections=connections,
        processes=len(processes),
        source_addresses=source_addresses,
        established=established,
        held=held,
        failures=failures,
        connect_seconds=round(ramp, 4),
        connect_rate=round(established / ramp, 1) if ramp > 0 else 0.0,
        connect_latency_us=Percentiles.of(connect_h),
        message_latency_us=MessageLatency(corrected=Percentiles.of(corrected_h), raw=Percentiles.of(raw_h)),
        hold_seconds=round(hold, 3),
        messages_sent=sum(p.messages_sent for p in processes),
        messages_received=received,
        messages_per_second=round(received / hold, 1) if hold > 0 else 0.0,
        bytes_sent=sum(p.bytes_sent for p in processes),
        bytes_received=sum(p.bytes_received for p in processes),
        throughput_bytes_per_second=round(bytes_total / hold, 1) if hold > 0 else 0.0,
        mismatches=mismatches,
        unanswered=unanswered,
        lost_on_drop=lost,
        unexpected=unexpected,
        missed=missed,
        http_statuses=dict(sorted(statuses.items())),
        http_status_classes=status_classes(statuses),
        close_codes=dict(sorted(codes.items())),
        drops=drops,
        per_process=processes,
        problems=problems,
        ok=not problems,
        histograms=Histograms.of(connect_h, corrected_h, raw_h),
    )
