"""`verify --target HOST:PORT [--pid PID ...]`: the user's own server instead of the bundled one.

Two plans: role client (the storm) on this host, and role server (a custom workload: the user's
program, `--app-buffer`'s default per connection until calibrated) on the server's host facts:
this host when --pid is given or the target is a loopback address (the facts of the server
process with the highest nofile soft limit, e.g. nginx's worker, not its master), else the
`--host-facts` snapshot. Then the storm with the chosen protocol, and the server measured from
the outside (verify/target.py): its PIDs and their descendants before the storm, `settle` s
into the hold and at its end; on this host also the Slab and sockstat deltas.

Order (every wait bounded; `finally` in the storm stops its processes): plans (NotReady on a
FAIL unless --force), the listening check (BadInput naming what listens there), server and host
"before", storm ramp and hold (samples "during" and "end"), compare, verdict, optional
calibration file (`check --calibration FILE` then plans that server).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from c10kplan.errors import BadInput
from c10kplan.host.parse import parse_limits
from c10kplan.host.process import rss_bytes
from c10kplan.host.procfs import ProcFS
from c10kplan.processes import check_processes
from c10kplan.storm.config import StormConfig, is_loopback, protocol_settings, resolve_target
from c10kplan.storm.result import StormResult
from c10kplan.verify.compare import Comparison, per, row, verdict_problems
from c10kplan.verify.measure import CpuSample, HostSample, cpu_at, cpu_use, delta, sample_cpu, sample_host, storm_at_hold
from c10kplan.verify.options import VerifyOptions
from c10kplan.verify.refusal import refuse
from c10kplan.verify.result import PlanSummary, TargetRun, VerifyResult
from c10kplan.verify.run import CPU_HOW, _write_calibration, storm_sources, summarize
from c10kplan.verify.target import ServerMeasurement, check_listening, measure_server

if TYPE_CHECKING:
    from c10kplan.planner import Plan
    from c10kplan.storm.runner import StormRun


def check_target_request(opts: VerifyOptions) -> None:
    """What needs no process: --calibrate measures the server's processes, so it needs --pid."""
    if opts.calibrate is not None and not opts.pids:
        raise BadInput("--calibrate with --target needs --pid: the server's costs are measured from its processes")


def make_plans(opts: VerifyOptions, procfs: ProcFS, tree: list[int], same_host: bool) -> tuple[Plan, Plan, str]:
    """(client plan on this host, server plan on the server's host facts, where those came from)."""
    from c10kplan.host.inspect import collect_facts, load_host_facts
    from c10kplan.planner import Target, plan

    common = dict(connections=opts.connections, message_size=opts.message_size, message_rate=opts.message_rate,
                  protocol=opts.protocol, **({"connect_rate": opts.connect_rate} if opts.connect_rate > 0 else {}))
    client = plan(collect_facts(procfs), Target(role="client", workload="bundled", **common))
    if opts.host_facts is not None:
        facts, source = load_host_facts(opts.host_facts), opts.host_facts
    elif same_host:
        pid = _most_fds(procfs, tree)
        facts, source = collect_facts(procfs, pid), "this host" + (f" (PID {pid}'s limits)" if pid else "")
    else:
        raise BadInput(f"--target {opts.target} is not on this host: give --host-facts FILE "
                       "(`c10kplan snapshot` on the server's host) or --pid of a server here")
    return client, plan(facts, Target(role="server", workload="custom", **common)), source


def _most_fds(procfs: ProcFS, tree: list[int]) -> int | None:
    """The server process allowed the most fds (nofile soft limit): the one holding connections
    (nginx raises its workers' limit with worker_rlimit_nofile, not the master's)."""
    best, best_soft = None, -1
    for pid in tree:
        limits = parse_limits(procfs.read(f"proc/{pid}/limits"))
        soft = limits[0] if limits and limits[0] is not None else 0
        if soft > best_soft:
            best, best_soft = pid, soft
    return best


def merged_summary(client: Plan, server: Plan, same_host: bool) -> PlanSummary:
    """One summary: the storm's figures from the client plan, the server's from the server plan;
    on one host the sockets and cores of both."""
    c, s = summarize(client), summarize(server)
    return c.model_copy(update={
        "ready": c.ready and s.ready,
        "server_processes": s.server_processes,
        "kernel_bytes_per_socket": s.kernel_bytes_per_socket,
        "user_bytes_per_connection": s.user_bytes_per_connection,
        "sockets": c.sockets + (s.sockets if same_host else 0),
        "fds_per_process": s.fds_per_process,
        "server_us_per_message": s.server_us_per_message,
        "required_cores": round(c.required_cores + (s.required_cores if same_host else 0), 3),
        "failing": [f"this host (storm): {f}" for f in c.failing] + [f"server host: {f}" for f in s.failing],
        # both tables, each finding's id naming its plan
        "findings": [f.model_copy(update={"id": f"server:{f.id}"}) for f in s.findings]
                    + [f.model_copy(update={"id": f"storm:{f.id}"}) for f in c.findings],
    })


@dataclass
class _Seen:
    """What verify saw while the user's server held the connections."""

    before: HostSample
    tree: list[int]
    server_before: ServerMeasurement | None
    during: HostSample | None = None
    server_during: ServerMeasurement | None = None
    server_end: ServerMeasurement | None = None
    storm_pids: list[int] = field(default_factory=list)
    storm_rss: int | None = None
    storm_rss_start: int = 0
    storm_fds: int = 0
    cpu_start: CpuSample | None = None
    cpu_end: CpuSample | None = None


class _Watch:
    def __init__(self, seen: _Seen, opts: VerifyOptions, pids: tuple[int, ...], procfs: ProcFS) -> None:
        self.seen, self.opts, self.pids, self.procfs = seen, opts, pids, procfs

    def on_hold(self, run: StormRun) -> None:
        seen, procfs = self.seen, self.procfs
        storm_at_hold(seen, run, procfs, self.opts.settle, self.opts.duration)
        if self.pids:
            seen.server_during = measure_server(self.pids, procfs)
            seen.tree = seen.server_during.pids
        seen.cpu_start = cpu_at(procfs, seen.tree, run)

    def on_held(self, run: StormRun) -> None:
        seen = self.seen
        if seen.cpu_start is not None:
            seen.cpu_end = sample_cpu(self.procfs, seen.tree, seen.storm_pids, run.received)
        if self.pids:
            seen.server_end = measure_server(self.pids, self.procfs)


def run_against(opts: VerifyOptions, procfs: ProcFS | None = None,
                on_event: Callable[[dict], None] | None = None) -> VerifyResult:
    """Storm the user's server at opts.target and compare what it and this host did with the
    plans. BadInput (nothing started) for a PID not listening there, PlanRefused (NotReady) for a
    failing plan."""
    from c10kplan.storm.runner import run_storm

    procfs = procfs or ProcFS()
    tgt = resolve_target(opts.target or "")
    proto = protocol_settings(tgt, opts.protocol)
    address = f"[{tgt.host}]:{tgt.port}" if ":" in tgt.host else f"{tgt.host}:{tgt.port}"
    tree = check_listening(list(opts.pids), tgt.host, tgt.port, procfs) if opts.pids else []
    same_host = bool(opts.pids) or is_loopback(tgt.host)
    client, server, facts_source = make_plans(opts, procfs, tree, same_host)
    summary = merged_summary(client, server, same_host)
    if not summary.ready and not opts.force:
        raise refuse(opts, summary, in_netns=False)
    storm_procs = summary.client_processes if opts.storm_processes == "auto" else opts.storm_processes
    storm_procs = max(1, min(storm_procs, opts.connections))
    check_processes(storm_procs, "verify", f"{storm_procs:,} storm processes")
    sources = storm_sources(opts, summary, tgt.host)
    cfg = StormConfig(host=tgt.host, port=tgt.port, connections=opts.connections, connect_rate=opts.connect_rate,
                      source_ips=sources, processes=storm_procs, message_size=opts.message_size,
                      message_rate=opts.message_rate, duration=opts.duration, **proto)
    seen = _Seen(before=sample_host(procfs), tree=tree,
                 server_before=measure_server(opts.pids, procfs) if opts.pids else None)
    watch = _Watch(seen, opts, opts.pids, procfs)
    storm = run_storm(cfg, on_event=on_event, on_hold=watch.on_hold, on_held=watch.on_held)
    run = TargetRun(address=address, pids=list(opts.pids), same_host=same_host, host_facts=facts_source,
                    before=seen.server_before, during=seen.server_during, end=seen.server_end)
    return _report(opts, summary, seen, storm, run, storm_procs)


def _comparisons(opts: VerifyOptions, summary: PlanSummary, seen: _Seen, storm: StormResult,
                 run: TargetRun, cpu) -> list[Comparison]:
    held = storm.held
    rows = [row("connections held", "connections", held, opts.connections,
                "storm: connections still open at the end of the hold", tolerance=0.0)]
    if run.same_host and seen.during:
        before, during = seen.before, seen.during
        rows += [
            row("kernel memory per socket", "bytes", per(delta(during.slab_bytes, before.slab_bytes), 2 * held),
                summary.kernel_bytes_per_socket, "Slab delta (/proc/meminfo) / sockets held (2 per connection: "
                "both ends on this host)"),
            row("TCP sockets in use", "sockets", delta(during.tcp_inuse, before.tcp_inuse), 2 * opts.connections,
                "/proc/net/sockstat TCP inuse delta; planned = 2 per connection"),
        ]
    b, d = run.before, run.during
    if b is not None and d is not None:
        rows += [
            row("server user memory per connection", "bytes", per(d.rss_bytes - b.rss_bytes, held),
                summary.user_bytes_per_connection, f"RSS growth of PIDs {_pids(run.pids)} and their children"
                f" ({len(d.pids)} processes) / connections held; planned: the server plan's"),
            row("server fds per connection", "fds", per(d.fds - b.fds, held), 1,
                "open fds growth of the server's processes (/proc/PID/fd) / connections held"),
            row("fds of the busiest server process", "fds", d.fds_max, summary.fds_per_process,
                "max open fds (/proc/PID/fd) over the server's processes; planned: the server plan's"),
            row("server threads", "threads", d.threads, None, "Threads of the server's processes (/proc/PID/status)",
                tolerance=None),
            row("CPU per message, server", "us", None if cpu is None else cpu.server_us_per_message,
                summary.server_us_per_message, CPU_HOW.replace("server and storm", "the server's processes and storm")),
        ]
    rows += [
        row("user memory per connection, storm", "bytes",
            per(None if seen.storm_rss is None else seen.storm_rss - seen.storm_rss_start, held),
            None, "storm RSS growth / connections held", tolerance=None),
        row("fds of the busiest storm process", "fds", seen.storm_fds or None, None,
            "max open fds (/proc/PID/fd) over the storm processes", tolerance=None),
        row("CPU per message, storm", "us", None if cpu is None else cpu.storm_us_per_message,
            summary.client_us_per_message, CPU_HOW),
        row("host CPU busy", "cores", None if cpu is None else cpu.host_busy_cores, summary.required_cores or None,
            f"host busy time / wall time over the hold (everything on the host), of {summary.cores or '?'} CPUs",
            tolerance=None),
    ]
    return rows


def _pids(pids: list[int]) -> str:
    return ", ".join(map(str, pids))


def _report(opts: VerifyOptions, summary: PlanSummary, seen: _Seen, storm: StormResult, run: TargetRun,
            storm_procs: int) -> VerifyResult:
    cpu = cpu_use(seen.cpu_start, seen.cpu_end)
    gone = [pid for pid in opts.pids if run.end is not None and pid not in run.end.pids]
    crashes = [f"the server's PID {pid} exited during the run" for pid in gone]
    problems = verdict_problems(connections=opts.connections, storm=storm, server_active=None, server_errors={},
                                p99_max_ms=opts.p99_max_ms, crashes=crashes)
    calibration_file = None
    if opts.calibrate:
        calibration_file = _calibrate(opts, seen, storm, run, cpu, problems)
    d = run.during
    return VerifyResult(
        connections=opts.connections, duration=opts.duration, message_rate=opts.message_rate, netns=False,
        profile=None, plan=summary, forced=opts.force and not summary.ready,
        server_workers=len(d.pids) if d else 0, storm_processes=storm_procs, server_endpoint=run.address,
        before=seen.before, during=seen.during, server_active=None, server_errors={},
        server_rss_bytes=d.rss_bytes if d else None, storm_rss_bytes=seen.storm_rss, storm=storm, cpu=cpu,
        comparisons=_comparisons(opts, summary, seen, storm, run, cpu), calibration_file=calibration_file,
        problems=problems, verdict="FAIL" if problems else "PASS", protocol=opts.protocol, target=run,
    )


def _calibrate(opts: VerifyOptions, seen: _Seen, storm: StormResult, run: TargetRun, cpu,
               problems: list[str]) -> str | None:
    """The user's server's costs: its RSS growth per connection (one socket each), the Slab
    growth per socket (both ends on this host), its CPU per message."""
    held = storm.held
    kernel = per(delta(seen.during.slab_bytes, seen.before.slab_bytes) if seen.during else None, 2 * held)
    b, d = run.before, run.during
    user = per(d.rss_bytes - b.rss_bytes, held) if b and d else None
    if not kernel or kernel <= 0:
        problems.append("--calibrate: no kernel memory figure could be measured; no file written")
        return None
    method = (f"c10kplan verify --target {run.address} --pid {_pids(run.pids)} ({opts.protocol}): {held} connections"
              " held, server RSS growth per connection, Slab delta per socket")
    return _write_calibration(opts, kernel, user, held, cpu, method=method)
