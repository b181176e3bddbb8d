"""verify: plan for role "both", start the server and the storm the plan calls for, hold N
connections with messages, measure the host, compare measured with planned, judge.

Order (every wait bounded; `finally` always stops the storm and the server):
 0. --calibrate FILE: its folder must take a new file (BadInput otherwise, nothing started)
 1. plan (FAIL items -> NotReady before anything starts, unless --force)
 2. start `c10kplan serve`; server stats "idle"; host sample "before"
 3. storm: ramp every process; hold together; `settle` s into the hold: host sample "during",
    server stats, RSS and open fds of every process, CPU sample "start"
 4. after the hold: CPU sample "end", server stats "held" (errors, active), then the storm
    closes its sockets
 5. compare, verdict, optional calibration file
"""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from c10kplan.errors import BadInput, NotReady
from c10kplan.host.procfs import ProcFS
from c10kplan.reactor.launch import ServerProcess
from c10kplan.storm.config import StormConfig, loopback_addresses
from c10kplan.storm.result import StormResult
from c10kplan.verify.compare import Comparison, per, row, verdict_problems
from c10kplan.verify.measure import (
    CpuUse,
    HostSample,
    cpu_use,
    delta,
    open_fds,
    process_alive,
    rss_bytes,
    sample_cpu,
    sample_host,
)
from c10kplan.verify.options import VerifyOptions
from c10kplan.verify.server import server_stats, start_server


class PlanSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    ready: bool
    server_processes: int
    client_processes: int
    source_addresses: int  # the minimum per destination
    fast_source_addresses: int  # each at most a quarter full: what the storm binds
    kernel_bytes_per_socket: int
    user_bytes_per_connection: int
    sockets: int
    fds_per_process: int
    messages_per_s: float
    server_us_per_message: float  # CPU time per echo round trip (planner/cpu.py)
    client_us_per_message: float
    required_cores: float
    cores: int | None
    failing: list[str]


class VerifyResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    connections: int
    duration: float
    message_rate: float
    netns: bool
    profile: str | None
    plan: PlanSummary
    forced: bool
    server_workers: int
    storm_processes: int
    server_endpoint: str
    before: HostSample
    during: HostSample | None
    server_active: int | None
    server_errors: dict[str, int]
    server_rss_bytes: int | None
    storm_rss_bytes: int | None
    storm: StormResult
    cpu: CpuUse | None = None  # CPU per message over the hold; None when idle or unmeasured
    comparisons: list[Comparison]
    calibration_file: str | None
    problems: list[str]
    verdict: str  # PASS | FAIL


def make_plan(opts: VerifyOptions, procfs: ProcFS):
    from c10kplan.host.inspect import collect_facts
    from c10kplan.planner import Target, plan

    extra = {"connect_rate": opts.connect_rate} if opts.connect_rate > 0 else {}
    target = Target(connections=opts.connections, role="both", message_size=opts.message_size,
                    message_rate=opts.message_rate, **extra)
    return plan(collect_facts(procfs, pid=None), target)


def summarize(p) -> PlanSummary:
    return PlanSummary(
        ready=p.ready, server_processes=p.server_processes, client_processes=p.client_processes,
        source_addresses=p.source_addresses,
        fast_source_addresses=p.ports.fast_source_addresses if p.ports else 1,
        kernel_bytes_per_socket=p.memory.kernel_bytes_per_socket,
        user_bytes_per_connection=p.memory.user_bytes_per_connection, sockets=p.memory.sockets,
        fds_per_process=p.fds.fds_per_process, messages_per_s=p.cpu.messages_per_s,
        server_us_per_message=p.cpu.server_us_per_message, client_us_per_message=p.cpu.client_us_per_message,
        required_cores=round(p.cpu.required_cores, 3), cores=p.cpu.cores,
        failing=[f"{f.id} (observed {f.observed}, required {f.required})" for f in p.findings if f.status == "FAIL"],
    )


def run_verify(opts: VerifyOptions, *, procfs: ProcFS | None = None,
               on_event: Callable[[dict], None] | None = None,
               on_output: Callable[[str], None] | None = None) -> VerifyResult:
    """Prove (or disprove) the target on this host. Raises NotReady when the plan fails first,
    BadInput (before anything starts) when --calibrate names a file that cannot be written.
    With --netns, lines the namespace side writes to stderr besides events go to `on_output`."""
    if opts.calibrate is not None:
        check_calibration_path(opts.calibrate)
    if opts.netns:
        from c10kplan.verify.netns import run_in_netns

        return run_in_netns(opts, on_event=on_event, on_output=on_output)
    return _run_here(opts, procfs or ProcFS(), on_event)


def check_calibration_path(path: str) -> Path:
    """--calibrate FILE: the folder must exist and take a new file. Probed with a temporary
    file (created and removed at once), so a read-only mount or missing permission shows up
    here and not after the whole run."""
    if not path:
        raise BadInput("--calibrate needs a file name")
    target = Path(path)
    if target.is_dir():
        raise BadInput(f"--calibrate: {path} is a folder")
    folder = target.parent
    if not folder.is_dir():
        raise BadInput(f"--calibrate: folder {folder} does not exist")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".c10kplan-probe-")
    except OSError as exc:
        raise BadInput(f"--calibrate: cannot create a file in {folder}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(probe)
    return target


def _run_here(opts: VerifyOptions, procfs: ProcFS, on_event: Callable[[dict], None] | None,
              *, in_netns: bool = False) -> VerifyResult:
    the_plan = make_plan(opts, procfs)
    summary = summarize(the_plan)
    if not summary.ready and not opts.force:
        raise NotReady(
            "the plan fails, so the target cannot pass: " + "; ".join(summary.failing)
            + " (fix these with `c10kplan check`, or run anyway with --force)"
        )
    workers = the_plan.server_processes if opts.workers == "auto" else opts.workers
    storm_procs = the_plan.client_processes if opts.storm_processes == "auto" else opts.storm_processes
    workers, storm_procs = max(1, workers), max(1, min(storm_procs, opts.connections))
    # The plan's fast count keeps each address at most a quarter full (planner/sharding.py:
    # connect() slows down past about half the port range); its minimum would not.
    needed = summary.fast_source_addresses
    sources = loopback_addresses(needed) if needed > 1 else ()

    captured: dict = {}
    server = start_server(workers=workers, backend=opts.backend, trigger=opts.trigger)
    try:
        idle = server_stats(server)
        captured["server_pids"] = [w["pid"] for w in (idle or {}).get("workers", []) if "pid" in w]
        captured["server_rss_idle"] = rss_bytes(procfs, captured["server_pids"]) if idle else None
        # Host-wide figures move with everything else on the host: sample right before the
        # storm and soon after the ramp, so the window holds little besides our sockets.
        before = sample_host(procfs)
        cfg = StormConfig(
            host=server.host, port=server.port, connections=opts.connections,
            connect_rate=opts.connect_rate, source_ips=sources, processes=storm_procs,
            message_size=opts.message_size, message_rate=opts.message_rate,
            duration=opts.duration, protocol="echo",
        )
        storm = _storm(cfg, opts, server, procfs, captured, on_event)
    finally:
        server.close()
    crashes = []
    if captured.get("workers_gone"):
        crashes.append("server worker(s) " + ", ".join(map(str, captured["workers_gone"]))
                       + " died during the run")
    if captured.get("server_exit"):
        crashes.append(f"the server {captured['server_exit']} during the run")
    return _report(opts, summary, in_netns, workers, storm_procs, server, before, captured, storm, crashes)


def _storm(cfg: StormConfig, opts: VerifyOptions, server: ServerProcess, procfs: ProcFS,
           captured: dict, on_event) -> StormResult:
    from c10kplan.storm.runner import run_storm

    def on_hold(run) -> None:
        run.pump(min(opts.settle, opts.duration / 2))
        captured["during"] = sample_host(procfs)
        captured["storm_rss"] = rss_bytes(procfs, run.pids)
        captured["storm_rss_start"] = run.rss_start_bytes
        captured["storm_fds"] = max((open_fds(procfs, pid) for pid in run.pids), default=0)
        pids = captured.get("server_pids") or []
        captured["server_rss"] = rss_bytes(procfs, pids) if pids else None
        captured["server_fds"] = max((open_fds(procfs, pid) for pid in pids), default=0)
        if not server.alive():
            captured["server_exit"] = server.exit_description()
        captured["storm_pids"] = run.pids
        start = sample_cpu(procfs, pids, run.pids, messages=0)
        # The replies at the very moment of the sample, not at the last progress report (up to
        # PROGRESS_EVERY older): interpolated between the reports around it.
        captured["cpu_start"] = start.model_copy(update={"messages": run.received_at(start.at)})

    def on_held(run) -> None:
        if "cpu_start" in captured:
            captured["cpu_end"] = sample_cpu(procfs, captured.get("server_pids") or [],
                                             captured["storm_pids"], run.received)
        gone = [pid for pid in captured.get("server_pids") or [] if process_alive(procfs, pid) is False]
        if gone:
            captured["workers_gone"] = gone
        stats = server_stats(server)
        if stats:
            captured["server_active"] = stats["total"].get("active")
            captured["server_errors"] = dict(stats["total"].get("errors") or {})
        if not server.alive():
            captured["server_exit"] = server.exit_description()

    return run_storm(cfg, on_event=on_event, on_hold=on_hold, on_held=on_held)


def _report(opts, summary: PlanSummary, in_netns, workers, storm_procs, server, before, captured,
            storm: StormResult, crashes) -> VerifyResult:
    during: HostSample | None = captured.get("during")
    sockets = 2 * storm.held  # both ends are on this host
    slab = delta(during.slab_bytes, before.slab_bytes) if during else None
    avail = delta(before.mem_available_bytes, during.mem_available_bytes) if during else None
    server_rss = captured.get("server_rss")
    storm_rss = captured.get("storm_rss")
    user_delta = None
    if server_rss is not None and captured.get("server_rss_idle") is not None and storm_rss is not None:
        user_delta = (server_rss - captured["server_rss_idle"]) + (storm_rss - captured["storm_rss_start"])
    planned_user_total = summary.user_bytes_per_connection
    cpu = cpu_use(captured.get("cpu_start"), captured.get("cpu_end"))
    cpu_how = ("host busy CPU time (/proc/stat, softirq included) over the hold / replies, shared "
               "between server and storm by their own utime + stime")
    comparisons = [
        row("connections held", "connections", storm.held, opts.connections,
            "storm: connections still open at the end of the hold", tolerance=0.0),
        row("kernel memory per socket", "bytes", per(slab, sockets), summary.kernel_bytes_per_socket,
            "Slab delta (/proc/meminfo) / sockets held (2 per connection)"),
        row("MemAvailable drop per socket", "bytes", per(avail, sockets),
            summary.kernel_bytes_per_socket + planned_user_total,
            "MemAvailable drop / sockets; planned = kernel + user per socket", tolerance=None),
        row("user memory per socket", "bytes", per(user_delta, sockets), planned_user_total,
            "(server RSS growth + storm RSS growth) / sockets", tolerance=None),
        row("fds of the busiest process", "fds",
            max(captured.get("server_fds") or 0, captured.get("storm_fds") or 0) or None,
            summary.fds_per_process, "max open fds (/proc/PID/fd) over server workers and storm processes"),
        row("source addresses", "addresses", storm.source_addresses, max(1, summary.fast_source_addresses),
            "storm: loopback addresses bound (IP_BIND_ADDRESS_NO_PORT); planned: each at most a quarter of"
            f" the port range (the bare minimum is {max(1, summary.source_addresses)})", tolerance=0.0),
        row("CPU per message, server", "us", None if cpu is None else cpu.server_us_per_message,
            summary.server_us_per_message, cpu_how),
        row("CPU per message, storm", "us", None if cpu is None else cpu.storm_us_per_message,
            summary.client_us_per_message, cpu_how),
        row("host CPU busy", "cores", None if cpu is None else cpu.host_busy_cores, summary.required_cores or None,
            "host busy time / wall time over the hold (everything on the host); planned = messages/s x"
            f" us per message, of {summary.cores or '?'} CPUs", tolerance=None),
    ]
    problems = verdict_problems(
        connections=opts.connections, storm=storm, server_active=captured.get("server_active"),
        server_errors=captured.get("server_errors", {}), p99_max_ms=opts.p99_max_ms, crashes=crashes,
    )
    if captured.get("server_active") is None:
        problems.append("no server stats could be read")
    calibration_file = None
    kernel_per_socket = per(slab, sockets)
    if opts.calibrate and kernel_per_socket and kernel_per_socket > 0:
        calibration_file = _write_calibration(opts, kernel_per_socket, per(user_delta, sockets), storm.held, cpu)
    elif opts.calibrate:
        problems.append("--calibrate: no kernel memory figure could be measured; no file written")
    return VerifyResult(
        connections=opts.connections, duration=opts.duration, message_rate=opts.message_rate,
        netns=in_netns, profile=opts.profile, plan=summary, forced=opts.force and not summary.ready,
        server_workers=workers, storm_processes=storm_procs,
        server_endpoint=f"{server.host}:{server.port}", before=before, during=during,
        server_active=captured.get("server_active"), server_errors=captured.get("server_errors", {}),
        server_rss_bytes=server_rss, storm_rss_bytes=storm_rss, storm=storm, cpu=cpu, comparisons=comparisons,
        calibration_file=calibration_file, problems=problems, verdict="FAIL" if problems else "PASS",
    )


# A CPU-per-message figure is kept for --calibrate only from at least this many replies and
# this many clock ticks of server + storm time (ticks are 10 ms: 100 ticks = 1 % resolution).
MIN_CALIBRATION_MESSAGES = 10_000
MIN_CALIBRATION_TICKS = 100


def _write_calibration(opts: VerifyOptions, kernel: float, user: float | None, held: int,
                       cpu: CpuUse | None) -> str:
    from c10kplan.planner.calibration import Calibration

    cpu_measured = (cpu is not None and cpu.messages >= MIN_CALIBRATION_MESSAGES
                    and cpu.process_ticks >= MIN_CALIBRATION_TICKS)
    method = f"c10kplan verify: {held} loopback connections held, Slab and RSS deltas per socket"
    if cpu_measured:
        method += f"; CPU over {cpu.messages:,} echo round trips at {opts.message_rate:g} msg/s each"

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
