"""verify on this host: plan for role "both", start the server and the storm the plan calls
for, hold N connections with messages, measure the host, compare measured with planned, judge.
(`verify --netns` runs this same function inside a namespace: netns.py.)

Order (every wait bounded; `finally` always stops the storm and the server):
 1. plan (FAIL items -> NotReady before anything starts, unless --force); the processes it
    needs against the host's cap (BadInput before anything forks)
 2. start `c10kplan serve`; server stats "idle"; host sample "before"
 3. storm: ramp every process; hold together; `settle` s into the hold: host sample "during",
    server stats, RSS and open fds of every process, CPU sample "start"
 4. after the hold: CPU sample "end", server stats "held" (errors, active), then the storm
    closes its sockets
 5. compare, verdict, optional calibration file
What steps 2-4 see goes into one typed record, Observed.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from c10kplan.errors import BadInput
from c10kplan.host.process import open_fds, process_alive, rss_bytes
from c10kplan.host.procfs import ProcFS
from c10kplan.processes import check_processes
from c10kplan.reactor.launch import ServerProcess
from c10kplan.storm.config import StormConfig, is_loopback, loopback_addresses
from c10kplan.storm.result import StormResult
from c10kplan.verify.compare import Comparison, per, row, verdict_problems
from c10kplan.verify.measure import (
    cpu_at,
    storm_at_hold,
    CpuSample,
    CpuUse,
    HostSample,
    busy_elsewhere,
    busy_warning,
    cpu_use,
    delta,
    sample_cpu,
    sample_host,
)
from c10kplan.verify.options import VerifyOptions
from c10kplan.verify.ramp import RampRecorder, RampSample
from c10kplan.verify.refusal import check_shards, refuse
from c10kplan.verify.result import PlanSummary, VerifyResult
from c10kplan.verify.server import STOP_TIMEOUT, server_sched, server_stats, start_server

if TYPE_CHECKING:
    from c10kplan.planner import Plan
    from c10kplan.storm.runner import StormRun


def make_plan(opts: VerifyOptions, procfs: ProcFS, in_netns: bool = False) -> Plan:
    """The plan of exactly what verify runs (planner.verify_target): role both, the bundled
    server and storm, and in a fresh namespace (--netns) no netfilter rules."""
    from c10kplan.host.inspect import collect_facts
    from c10kplan.planner import plan, verify_target

    return plan(collect_facts(procfs, pid=None), verify_target(
        connections=opts.connections, message_size=opts.message_size, message_rate=opts.message_rate,
        connect_rate=opts.connect_rate, fresh_netns=in_netns, protocol=opts.protocol))


def summarize(p: Plan) -> PlanSummary:
    return PlanSummary(
        ready=p.ready, server_processes=p.server_processes, client_processes=p.client_processes,
        source_addresses=p.source_addresses,
        fast_source_addresses=p.ports.fast_source_addresses if p.ports else 1,
        kernel_bytes_per_socket=p.memory.kernel_bytes_per_socket,
        user_bytes_per_connection=p.memory.user_bytes_per_connection, sockets=p.memory.sockets,
        fds_per_process=p.fds.fds_per_process, fd_ceiling=p.fds.per_process_ceiling,
        reserve_fds=p.fds.reserve_fds, messages_per_s=p.cpu.messages_per_s,
        server_us_per_message=p.cpu.server_us_per_message, client_us_per_message=p.cpu.client_us_per_message,
        required_cores=round(p.cpu.required_cores, 3), cores=p.cpu.cores,
        failing=[f"{f.id} (observed {f.observed}, required {f.required})" for f in p.findings if f.status == "FAIL"],
        findings=list(p.findings),
        expected_memory_bytes=p.memory.expected_total_bytes,
    )


def check_calibration_path(path: str) -> Path:
    """--calibrate FILE: the folder must exist and take a new file (report.check_output)."""
    from c10kplan.report import check_output

    return check_output(path, "--calibrate")


def check_process_request(opts: VerifyOptions, workers: int | None = None, storm_processes: int | None = None) -> None:
    """BadInput when the server workers plus the storm processes plus serve's supervisor exceed
    the host's process cap. Before the plan, with the numbers given on the command line (an
    `auto` one counts 1); after it, with the numbers the plan worked out."""
    counts = []
    for given, worked_out, name in ((opts.workers, workers, "server workers"),
                                    (opts.storm_processes, storm_processes, "storm processes")):
        if worked_out is not None:
            counts.append((worked_out, f"{worked_out:,} {name}"))
        elif given == "auto":
            counts.append((1, f"{name} from the plan (at least 1)"))
        else:
            n = min(given, opts.connections) if name == "storm processes" else given
            counts.append((n, f"{n:,} {name}"))
    needed = sum(n for n, _ in counts) + 1
    check_processes(needed, "verify", ", ".join(text for _, text in counts) + " and serve")


@dataclass
class Observed:
    """What verify saw of the server, the storm and the host while the connections were held."""

    before: HostSample  # right before the storm
    server_pids: list[int] = field(default_factory=list)
    server_rss_idle: int | None = None  # bytes, before the storm
    during: HostSample | None = None  # `settle` s into the hold
    server_rss: int | None = None
    storm_rss: int | None = None
    storm_rss_start: int = 0  # the storm processes' VmRSS before their first connect
    server_fds: int = 0  # open fds of the busiest server worker
    storm_fds: int = 0  # of the busiest storm process
    storm_pids: list[int] = field(default_factory=list)
    cpu_start: CpuSample | None = None
    cpu_end: CpuSample | None = None
    server_active: int | None = None  # after the hold
    server_errors: dict[str, int] = field(default_factory=dict)
    workers_gone: list[int] = field(default_factory=list)
    server_exit: str | None = None  # how serve ended, if it did during the run
    server_stop: str | None = None  # set when serve needed SIGKILL to stop
    ramp: list[RampSample] = field(default_factory=list)  # established / failed / Slab over the ramp

    def user_bytes(self) -> int | None:
        """RSS growth of the server and the storm processes over the hold."""
        if self.server_rss is None or self.server_rss_idle is None or self.storm_rss is None:
            return None
        return (self.server_rss - self.server_rss_idle) + (self.storm_rss - self.storm_rss_start)

    def crashes(self) -> list[str]:
        out = []
        if self.workers_gone:
            out.append("server worker(s) " + ", ".join(map(str, self.workers_gone)) + " died during the run")
        if self.server_exit:
            out.append(f"the server {self.server_exit} during the run")
        if self.server_stop:
            out.append(self.server_stop)
        return out


class _Watch:
    """The storm's hooks: fill `seen` at the hold (`on_hold`) and after it (`on_held`)."""

    def __init__(self, seen: Observed, opts: VerifyOptions, server: ServerProcess, procfs: ProcFS) -> None:
        self.seen, self.opts, self.server, self.procfs = seen, opts, server, procfs

    def _server_ended(self) -> None:
        if not self.server.alive():
            self.seen.server_exit = self.server.exit_description()

    def on_hold(self, run: StormRun) -> None:
        seen, procfs = self.seen, self.procfs
        storm_at_hold(seen, run, procfs, self.opts.settle, self.opts.duration)
        if seen.server_pids:
            seen.server_rss = rss_bytes(procfs, seen.server_pids)
        seen.server_fds = max((open_fds(procfs, pid) for pid in seen.server_pids), default=0)
        self._server_ended()
        seen.cpu_start = cpu_at(procfs, seen.server_pids, run)

    def on_held(self, run: StormRun) -> None:
        seen, procfs = self.seen, self.procfs
        if seen.cpu_start is not None:
            seen.cpu_end = sample_cpu(procfs, seen.server_pids, seen.storm_pids, run.received)
        seen.workers_gone = [pid for pid in seen.server_pids if process_alive(procfs, pid) is False]
        stats = server_stats(self.server)
        if stats:
            seen.server_active = stats["total"].get("active")
            seen.server_errors = dict(stats["total"].get("errors") or {})
        self._server_ended()


@dataclass(frozen=True)
class _Setup:
    """How the run was set up: what the report names besides the measurements."""

    opts: VerifyOptions
    summary: PlanSummary
    in_netns: bool
    workers: int
    storm_processes: int
    endpoint: str
    sched: str


def storm_sources(opts: VerifyOptions, summary: PlanSummary, host: str = "127.0.0.1") -> tuple[str, ...]:
    """The loopback addresses the storm binds (each with IP_BIND_ADDRESS_NO_PORT, storm/config.py):
    `--source-ips N` pins them; else the plan's fast count, which keeps each address at most a
    quarter full (planner/sharding.py: connect() slows down past about half the port range; the
    bare minimum would not), and none when one address is enough. They are 127.0.0.0/8
    addresses, so only an IPv4 loopback target takes them; BadInput for a pin on any other."""
    if ":" in host or not is_loopback(host):
        if opts.source_ips is not None:
            raise BadInput(f"--source-ips binds 127.0.0.0/8 addresses: it needs an IPv4 loopback target, not {host}")
        return ()
    if opts.source_ips is not None:
        return loopback_addresses(opts.source_ips)
    needed = summary.fast_source_addresses
    return loopback_addresses(needed) if needed > 1 else ()


def run_here(opts: VerifyOptions, procfs: ProcFS | None = None, on_event: Callable[[dict], None] | None = None,
             *, in_netns: bool = False) -> VerifyResult:
    """verify on this host (in whatever network namespace this process is in). Raises NotReady
    when the plan fails (unless --force) and BadInput when the processes it needs exceed the
    host's cap, both before anything starts. (--find-limit runs findlimit.find_limit instead.)"""
    procfs = procfs or ProcFS()
    summary = summarize(make_plan(opts, procfs, in_netns))
    if not summary.ready and not opts.force:
        raise refuse(opts, summary, in_netns=in_netns)
    return run_planned(opts, procfs, summary, on_event, in_netns=in_netns)


# How the storm is driven once the server listens: run_storm by default; --find-limit
# connections stops the ramp at the first failure (findlimit.py).
Drive = Callable[[StormConfig, "_Watch", "Callable[[dict], None] | None"], StormResult]


def run_planned(opts: VerifyOptions, procfs: ProcFS, summary: PlanSummary,
                on_event: Callable[[dict], None] | None, *, in_netns: bool = False,
                drive: Drive | None = None) -> VerifyResult:
    """Serve, storm, measure and report `opts` with the processes `summary` plans."""
    workers = summary.server_processes if opts.workers == "auto" else opts.workers
    storm_procs = summary.client_processes if opts.storm_processes == "auto" else opts.storm_processes
    workers, storm_procs = max(1, workers), max(1, min(storm_procs, opts.connections))
    check_process_request(opts, workers, storm_procs)
    check_shards(opts, summary, workers, storm_procs)
    sources = storm_sources(opts, summary)

    sched = server_sched(opts.message_rate)
    server = start_server(workers=workers, backend=opts.backend, trigger=opts.trigger, protocol=opts.protocol,
                          sched=sched)
    try:
        idle = server_stats(server)
        pids = [w["pid"] for w in (idle or {}).get("workers", []) if "pid" in w]
        rss_idle = rss_bytes(procfs, pids) if idle else None
        # Host-wide figures move with everything else on the host: sample right before the
        # storm and soon after the ramp, so the window holds little besides our sockets.
        seen = Observed(before=sample_host(procfs), server_pids=pids, server_rss_idle=rss_idle)
        cfg = StormConfig(
            host=server.host, port=server.port, connections=opts.connections,
            connect_rate=opts.connect_rate, source_ips=sources, processes=storm_procs,
            message_size=opts.message_size, message_rate=opts.message_rate,
            duration=opts.duration, protocol=opts.protocol, stop_on_failure=opts.find_limit == "connections",
            # The bundled server is measured before the storm closes (on_held): RST ends it in
            # one packet per connection and leaves no TIME_WAIT (storm/client.py close_all).
            close="reset",
        )
        ramp = RampRecorder(opts.connections, procfs, on_event)
        storm = (drive or _storm)(cfg, _Watch(seen, opts, server, procfs), ramp)
        seen.ramp = ramp.samples
    finally:
        server.close()
    if server.stop_clean is False:
        seen.server_stop = (f"the server did not stop within {STOP_TIMEOUT:g} s of SIGTERM"
                            f" ({server.exit_description()})")
    setup = _Setup(opts, summary, in_netns, workers, storm_procs, f"{server.host}:{server.port}", sched)
    return _report(setup, seen, storm)


def _storm(cfg: StormConfig, watch: _Watch, on_event: Callable[[dict], None] | None) -> StormResult:
    from c10kplan.storm.runner import run_storm

    return run_storm(cfg, on_event=on_event, on_hold=watch.on_hold, on_held=watch.on_held)


CPU_HOW = ("host busy CPU time (/proc/stat, softirq included) over the hold / replies, shared "
           "between server and storm by their own utime + stime")


def _comparisons(setup: _Setup, seen: Observed, storm: StormResult, cpu: CpuUse | None) -> list[Comparison]:
    """Measured against planned, one row per figure."""
    opts, summary = setup.opts, setup.summary
    during, before = seen.during, seen.before
    sockets = 2 * storm.held  # both ends are on this host
    slab = delta(during.slab_bytes, before.slab_bytes) if during else None
    avail = delta(before.mem_available_bytes, during.mem_available_bytes) if during else None
    user = summary.user_bytes_per_connection
    return [
        row("connections held", "connections", storm.held, opts.connections,
            "storm: connections still open at the end of the hold", tolerance=0.0),
        row("kernel memory per socket", "bytes", per(slab, sockets), summary.kernel_bytes_per_socket,
            "Slab delta (/proc/meminfo) / sockets held (2 per connection)"),
        row("MemAvailable drop per socket", "bytes", per(avail, sockets), summary.kernel_bytes_per_socket + user,
            "MemAvailable drop / sockets; planned = kernel + user per socket", tolerance=None),
        row("user memory per socket", "bytes", per(seen.user_bytes(), sockets), user,
            "(server RSS growth + storm RSS growth) / sockets", tolerance=None),
        row("host memory", "bytes", _host_memory(slab, seen), summary.expected_memory_bytes,
            "Slab delta + RSS of every server worker and storm process; planned = kernel + in flight"
            " + user + per process", tolerance=MEMORY_TOLERANCE),
        row("fds of the busiest process", "fds", max(seen.server_fds, seen.storm_fds) or None,
            summary.fds_per_process, "max open fds (/proc/PID/fd) over server workers and storm processes"),
        row("source addresses", "addresses", storm.source_addresses, max(1, summary.fast_source_addresses),
            "storm: loopback addresses bound (IP_BIND_ADDRESS_NO_PORT); planned: each at most a quarter of"
            f" the port range (the bare minimum is {max(1, summary.source_addresses)})", tolerance=0.0),
        row("CPU per message, server", "us", None if cpu is None else cpu.server_us_per_message,
            summary.server_us_per_message, CPU_HOW),
        row("CPU per message, storm", "us", None if cpu is None else cpu.storm_us_per_message,
            summary.client_us_per_message, CPU_HOW),
        row("host CPU busy", "cores", None if cpu is None else cpu.host_busy_cores, summary.required_cores or None,
            "host busy time / wall time over the hold (everything on the host); planned = messages/s x"
            f" us per message, of {summary.cores or '?'} CPUs", tolerance=None),
    ]


def _storm_crashes(storm: StormResult) -> list[str]:
    return [f"storm process {p.index} (pid {p.pid}) {p.status}: {p.detail}"
            for p in storm.per_process if p.status in ("crashed", "killed")]


# The host memory row: the plan's expected total is held to 10 % (issue 10), not the 25 % of
# the per-socket rows.
MEMORY_TOLERANCE = 0.10


def _host_memory(slab: int | None, seen: Observed) -> int | None:
    """What the run cost the host: Slab growth (kernel) + the whole RSS of every process."""
    if slab is None or seen.server_rss is None or seen.storm_rss is None:
        return None
    return slab + seen.server_rss + seen.storm_rss


def _report(setup: _Setup, seen: Observed, storm: StormResult) -> VerifyResult:
    opts, summary = setup.opts, setup.summary
    cpu = cpu_use(seen.cpu_start, seen.cpu_end)
    elsewhere = busy_elsewhere(seen.cpu_start, seen.cpu_end, summary.required_cores)
    # --find-limit runs until something fails, on purpose: only a crash is a problem there.
    problems = seen.crashes() + _storm_crashes(storm) if opts.find_limit else verdict_problems(
        connections=opts.connections, storm=storm, server_active=seen.server_active,
        server_errors=seen.server_errors, p99_max_ms=opts.p99_max_ms, crashes=seen.crashes(),
    )
    if seen.server_active is None:
        problems.append("no server stats could be read")
    sockets = 2 * storm.held
    kernel = per(delta(seen.during.slab_bytes, seen.before.slab_bytes) if seen.during else None, sockets)
    calibration_file = None
    if opts.calibrate and kernel and kernel > 0:
        calibration_file = _write_calibration(opts, kernel, per(seen.user_bytes(), sockets), storm.held, cpu)
    elif opts.calibrate:
        problems.append("--calibrate: no kernel memory figure could be measured; no file written")
    return VerifyResult(
        connections=opts.connections, duration=opts.duration, message_rate=opts.message_rate,
        netns=setup.in_netns, profile=opts.profile, plan=summary, forced=opts.force and not summary.ready,
        server_workers=setup.workers, storm_processes=setup.storm_processes, server_endpoint=setup.endpoint,
        server_sched=setup.sched,
        before=seen.before, during=seen.during, server_active=seen.server_active,
        server_errors=seen.server_errors, server_rss_bytes=seen.server_rss, storm_rss_bytes=seen.storm_rss,
        storm=storm, cpu=cpu, comparisons=_comparisons(setup, seen, storm, cpu),
        calibration_file=calibration_file, problems=problems, verdict="FAIL" if problems else "PASS",
        host_busy_elsewhere_cores=elsewhere, warnings=[w for w in (busy_warning(elsewhere),) if w],
        ramp=seen.ramp,
        protocol=opts.protocol,
    )


# A CPU-per-message figure is kept for --calibrate only from at least this many replies and
# this many clock ticks of server + storm time (ticks are 10 ms: 100 ticks = 1 % resolution).
MIN_CALIBRATION_MESSAGES = 10_000
MIN_CALIBRATION_TICKS = 100


def _write_calibration(opts: VerifyOptions, kernel: float, user: float | None, held: int,
                      cpu: CpuUse | None, method: str | None = None) -> str:
    """Write opts.calibrate; `method` says what was measured (default: the bundled run's)."""
    from c10kplan.planner.calibration import Calibration

    cpu_measured = (cpu is not None and cpu.messages >= MIN_CALIBRATION_MESSAGES
                    and cpu.process_ticks >= MIN_CALIBRATION_TICKS)
    method = method or f"c10kplan verify: {held} loopback connections held, Slab and RSS deltas per socket"
    if cpu_measured:
        method += f"; CPU over {cpu.messages:,} {opts.protocol} round trips at {opts.message_rate:g} msg/s each"

    cal = Calibration(
        kernel_bytes_per_socket=max(1, round(kernel)),
        user_bytes_per_connection=None if user is None or user < 0 else round(user),
        connections=max(1, held), kernel_release=os.uname().release,
        measured_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        method=method,
        server_cpu_us_per_message=cpu.server_us_per_message if cpu_measured and cpu.server_us_per_message > 0 else None,
        client_cpu_us_per_message=cpu.storm_us_per_message if cpu_measured and cpu.storm_us_per_message > 0 else None,
    )
    cal.write(opts.calibrate)  # type: ignore[arg-type]
    return str(opts.calibrate)
