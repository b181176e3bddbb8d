"""`verify --storm-results DIR --target HOST:PORT [--pid PID]`: close the loop across hosts.

DIR holds what the ansible-storm playbook fetched (`storm-<host>.json`, one per load host, and
`merged.json`). The parts are merged again here (storm.merge: exact), or merged.json is read
when no part is there. They are compared with the role-server plan for the fleet's load, and,
with --pid, with the server measured through /proc/PID (the process and its descendants):

- sampled every SAMPLE_EVERY s while verify waits for the results (`--storm-wait S`), so start
  verify before the playbook: the CPU time over the storms' common window (Unix times from the
  results' placement) is then interpolated between the samples around its two ends, and the
  peak RSS and fds are those seen inside it;
- when the results were already there (or no sample falls in the window), the timestamps do
  not allow a CPU figure: the server's RSS and fds are those of now, flagged as such.

Kernel facts (proc(5)): /proc/PID/stat utime + stime in clock ticks (SC_CLK_TCK/s, 100);
/proc/PID/status VmRSS in kB; one /proc/PID/fd entry per open fd.

Pieces for other callers (verify --target --pid reuses them): sample_server, measure_server,
compare_storm_results, plan_for_fleet.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from c10kplan.errors import BadInput
from c10kplan.host.process import CLOCK_TICKS_PER_S
from c10kplan.host.procfs import ProcFS
from c10kplan.storm.merge import FleetResult, Window
from c10kplan.verify.compare import Comparison, per, row
from c10kplan.verify.result import PlanSummary

SAMPLE_EVERY = 0.5  # s between samples of the server while waiting for the results
MAX_WAIT = 86_400.0  # s: the longest --storm-wait
MAX_SAMPLES = 200_000  # bounded memory: older samples are thinned past this


class ServerSample(BaseModel):
    """The server process tree at one moment (Unix time)."""

    model_config = ConfigDict(frozen=True)

    at: float
    processes: int
    ticks: int  # utime + stime, all of its processes
    rss_bytes: int
    fds_total: int
    fds_max: int  # of the busiest process


class ServerMeasurement(BaseModel):
    """What the server did over the storms' common window (or, `after`, only what it holds now)."""

    model_config = ConfigDict(frozen=True)

    pid: int
    after: bool = Field(description="measured after the storms' window: RSS and fds of now, no CPU")
    window_seconds: float | None
    cpu_ticks: float | None  # over the window, interpolated at its two ends
    rss_before_bytes: int | None  # the last sample before the window
    rss_bytes: int  # the peak inside the window (or now)
    fds_max: int
    fds_total: int
    processes: int


class StormResultsReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    target: str
    directory: str
    files: list[str]
    fleet: FleetResult
    plan: PlanSummary | None
    planned_on: str  # whose facts the plan used
    server: ServerMeasurement | None
    comparisons: list[Comparison]
    problems: list[str]
    verdict: str


# ------------------------------------------------------------------ the results
def load_fleet(directory: str) -> tuple[FleetResult, list[str]]:
    """The parts of DIR merged (storm-*.json), else DIR/merged.json; BadInput if neither."""
    from c10kplan.host.jsonfile import load_model_file
    from c10kplan.storm.merge import MAX_FILE_BYTES, merge_files

    if not os.path.isdir(directory):
        raise BadInput(f"--storm-results {directory}: not a folder")
    parts = sorted(glob.glob(os.path.join(glob.escape(directory), "storm-*.json")))
    if parts:
        return merge_files(parts), parts
    merged = os.path.join(directory, "merged.json")
    if os.path.isfile(merged):
        if os.path.getsize(merged) > MAX_FILE_BYTES:
            raise BadInput(f"--storm-results {merged}: larger than a merged result ({MAX_FILE_BYTES} bytes)")
        return load_model_file(FleetResult, merged, "--storm-results"), [merged]
    raise BadInput(f"--storm-results {directory}: no storm-*.json or merged.json (the ansible-storm playbook's results)")


def results_ready(directory: str, hosts: int | None = None) -> bool:
    """merged.json is there (the playbook's last step), or `hosts` parts are."""
    if os.path.isfile(os.path.join(directory, "merged.json")):
        return True
    return hosts is not None and len(glob.glob(os.path.join(glob.escape(directory), "storm-*.json"))) >= hosts


# ------------------------------------------------------------------ the server
def sample_server(procfs: ProcFS, pid: int, clock: Callable[[], float] = time.time) -> ServerSample | None:
    """The tree of `pid` now (verify/target.py's sample, shared with verify --target); None once
    it is gone."""
    from c10kplan.verify.target import measure_server

    m = measure_server([pid], procfs, clock)
    if not m.pids:
        return None
    return ServerSample(at=m.at, processes=len(m.pids), ticks=m.cpu_ticks, rss_bytes=m.rss_bytes,
                        fds_total=m.fds, fds_max=m.fds_max)


def _ticks_at(samples: list[ServerSample], t: float) -> float | None:
    """Ticks at Unix time t, linear between the samples around it; None outside them."""
    for a, b in zip(samples, samples[1:]):
        if a.at <= t <= b.at:
            return a.ticks if b.at == a.at else a.ticks + (b.ticks - a.ticks) * (t - a.at) / (b.at - a.at)
    return None


def measure_server(pid: int, samples: list[ServerSample], window: Window | None,
                   now: ServerSample | None) -> ServerMeasurement | None:
    """The server over the window from `samples`, or (after=True) what `now` shows."""
    inside = [s for s in samples if window is not None and window.start <= s.at <= window.end]
    start = _ticks_at(samples, window.start) if window else None
    end = _ticks_at(samples, window.end) if window else None
    if inside and start is not None and end is not None:
        before = [s for s in samples if s.at < window.start]  # type: ignore[union-attr]
        peak = max(inside, key=lambda s: s.rss_bytes)
        return ServerMeasurement(
            pid=pid, after=False, window_seconds=window.seconds, cpu_ticks=round(end - start, 2),  # type: ignore[union-attr]
            rss_before_bytes=before[-1].rss_bytes if before else None, rss_bytes=peak.rss_bytes,
            fds_max=max(s.fds_max for s in inside), fds_total=max(s.fds_total for s in inside),
            processes=max(s.processes for s in inside))
    if now is None:
        return None
    return ServerMeasurement(pid=pid, after=True, window_seconds=None, cpu_ticks=None,
                             rss_before_bytes=samples[0].rss_bytes if samples else None, rss_bytes=now.rss_bytes,
                             fds_max=now.fds_max, fds_total=now.fds_total, processes=now.processes)


# ------------------------------------------------------------------ the plan and the comparison
def fleet_load(fleet: FleetResult) -> tuple[int, float, int]:
    """(connections, messages per connection per second, message size) of the fleet's storm."""
    s = fleet.storm
    connections = max(1, s.connections)
    size = round(s.bytes_sent / s.messages_sent) if s.messages_sent else 64
    return connections, s.messages_per_second / connections, max(1, size)


def plan_for_fleet(fleet: FleetResult, procfs: ProcFS, pid: int | None) -> PlanSummary:
    """The role-server plan (the user's own server: a custom workload) for the fleet's load,
    with this host's facts (the nofile limits of PID when given)."""
    from c10kplan.host.inspect import collect_facts
    from c10kplan.planner import Target, plan
    from c10kplan.verify.run import summarize

    connections, rate, size = fleet_load(fleet)
    target = Target(connections=connections, role="server", message_rate=round(rate, 6), message_size=size)
    return summarize(plan(collect_facts(procfs, pid=pid), target))


def compare_storm_results(fleet: FleetResult, server: ServerMeasurement | None, plan: PlanSummary | None, *,
                          target: str, p99_max_ms: float) -> tuple[list[Comparison], list[str]]:
    """Measured against planned (rows) and why the target was not proven (problems; [] = PASS)."""
    s = fleet.storm
    connections, _, _ = fleet_load(fleet)
    window = fleet.window
    messages = s.messages_per_second * window.seconds if window else 0.0
    rows = [
        row("connections held", "connections", s.held, connections,
            "the merged storm: connections still open at the end of each host's hold", tolerance=0.0),
    ]
    if server is not None:
        now = " (now, after the storms)" if server.after else " (peak in the window)"
        growth = None if server.rss_before_bytes is None else server.rss_bytes - server.rss_before_bytes
        cpu = (None if server.cpu_ticks is None or messages <= 0
               else server.cpu_ticks * 1e6 / CLOCK_TICKS_PER_S / messages)
        rows += [
            row("server fds, busiest process", "fds", server.fds_max, plan.fds_per_process if plan else None,
                f"/proc/PID/fd over pid {server.pid} and its descendants" + now,
                tolerance=None if server.after else 0.25),
            row("server memory per connection", "bytes", per(growth, s.held),
                plan.user_bytes_per_connection if plan else None,
                "RSS growth of the tree (VmRSS) / connections held" + now, tolerance=None),
            row("server CPU per message", "us", cpu, plan.server_us_per_message if plan else None,
                "utime + stime of the tree over the common window / the fleet's replies in it"
                if cpu is not None else "no sample around the storms' window (start verify before the storms)"),
            row("server CPU busy", "% of a CPU",
                None if cpu is None else 100 * server.cpu_ticks / CLOCK_TICKS_PER_S / window.seconds,
                100 * plan.required_cores if plan else None, "the same ticks / the window's seconds; planned: the fleet's"
                " msg/s x us per message", tolerance=None),
        ]
    problems = list(fleet.problems)
    targets = set(s.target.split(","))
    if targets != {target}:
        problems.append(f"the storm results are for {s.target}, not {target}")
    p99 = s.message_latency_us.corrected.p99
    if s.message_latency_us.corrected.count and p99 > p99_max_ms * 1000:
        problems.append(f"p99 (corrected) {p99 / 1000:.1f} ms is over --p99-max {p99_max_ms:g} ms")
    if server is not None and server.after and not server.processes:
        problems.append(f"the server (pid {server.pid}) is gone")
    return rows, problems


# ------------------------------------------------------------------ the command
def run_storm_results(directory: str, target: str, *, pid: int | None = None, wait: float = 0.0,
                      hosts: int | None = None, p99_max_ms: float = 50.0, procfs: ProcFS | None = None,
                      clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep
                      ) -> StormResultsReport:
    """Wait (at most `wait` s) for DIR to hold the results, sampling PID meanwhile; compare."""
    from c10kplan.storm.config import parse_target

    host, port = parse_target(target)
    target = f"{host}:{port}"
    if not (wait == 0 or 0.001 <= wait <= MAX_WAIT):
        raise BadInput(f"--storm-wait must be 0 or 0.001..{MAX_WAIT:g} s, not {wait:g}")
    if not os.path.isdir(directory):
        raise BadInput(f"--storm-results {directory}: not a folder")
    procfs = procfs or ProcFS()
    samples: list[ServerSample] = []
    if pid is not None and (first := sample_server(procfs, pid, clock)) is None:
        raise BadInput(f"--pid {pid}: no such process")
    if pid is not None:
        samples.append(first)
    deadline = clock() + wait
    while not results_ready(directory, hosts) and clock() < deadline:
        sleep(min(SAMPLE_EVERY, max(0.0, deadline - clock())))
        if pid is not None and (s := sample_server(procfs, pid, clock)) is not None:
            samples.append(s)
            if len(samples) > MAX_SAMPLES:
                samples = samples[::2]
    fleet, files = load_fleet(directory)
    now = sample_server(procfs, pid, clock) if pid is not None else None
    server = None if pid is None else (measure_server(pid, samples, fleet.window, now)
                                       or ServerMeasurement(pid=pid, after=True, window_seconds=None, cpu_ticks=None,
                                                            rss_before_bytes=None, rss_bytes=0, fds_max=0,
                                                            fds_total=0, processes=0))
    plan = plan_for_fleet(fleet, procfs, pid if server is not None and server.processes else None)
    rows, problems = compare_storm_results(fleet, server, plan, target=target, p99_max_ms=p99_max_ms)
    return StormResultsReport(
        target=target, directory=directory, files=[os.path.basename(f) for f in files], fleet=fleet, plan=plan,
        planned_on="this host" + (f" (nofile of pid {pid})" if pid is not None else ""),
        server=server, comparisons=rows, problems=problems, verdict="FAIL" if problems else "PASS")
