"""`verify --netns --client-hosts K [--mtu M]`: a server host and K client hosts on one machine.

One server namespace and K client namespaces on a bridge (c10kplan.netns.Topology, 198.18/15,
MTU 1500 by default). In each namespace the per-namespace keys of --profile are applied
(`keys_in_scope("netns")`) and the host's facts are read from inside, so each side is planned
with what it really sees: role server for the server namespace, role client for each client
namespace (its share of the connections). `c10kplan serve` runs in the server namespace; one
`c10kplan storm --share i/K --start-at T --json` runs in each client namespace, bound to that
client's own 198.18.i.* addresses; their results are merged with storm.merge. Every step is
bounded, and the namespaces go with the Topology (its reaper removes them even after SIGKILL).

Measured per host, while every connection is held (the server's `active` reached N, plus
`settle` s), until the earliest possible end of a hold (T + duration, less END_MARGIN):
- CPU: utime + stime of the processes each namespace runs (serve and its workers; a storm and
  its processes), so the server's cost per message is its own. Kernel fact: with tick-based
  accounting a tick that lands in softirq is charged to the interrupted task as stime; on veth
  the receiver's TCP input runs in NET_RX softirq on the sending CPU (veth_xmit queues to the
  backlog, processed as the sender's bottom half ends), so part of one side's input path is
  charged to the other side's processes. The host line of /proc/stat (softirq included) gives
  the total; both are reported.
- Messages: the server's own counter (bytes_out / message size: one echo reply per message),
  as a rate between two stats documents (their own timestamps), times the CPU window.
- Memory: Slab (host-wide, bytes) over the hold / 2 sockets per connection (both ends are on
  this machine); the server's RSS growth per connection; fds of the busiest process per side.
- TCP segments per round trip: nstat (TcpOutSegs) in every namespace over the window (each
  segment is sent by exactly one namespace). Loopback reads 3.0 (planner/cpu.py).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from c10kplan.errors import BadInput, C10kError, NotReady
from c10kplan.host.parse import parse_proc_stat_cpu
from c10kplan.storm.runner import UNPACED_CONNECT_RATE
from c10kplan.host.process import CLOCK_TICKS_PER_S, open_fds, process_alive, process_ticks, rss_bytes
from c10kplan.host.procfs import ProcFS
from c10kplan.processes import ChildSet, OwnedTempDir, check_processes
from c10kplan.storm.merge import FleetResult, merge_results
from c10kplan.storm.result import StormResult
from c10kplan.verify.compare import Comparison, per, row, verdict_problems
from c10kplan.verify.measure import HostSample, delta, sample_host
from c10kplan.verify.options import VerifyOptions
from c10kplan.verify.result import PlanSummary

LOOPBACK_SEGMENTS_PER_ROUND_TRIP = 3.0  # a sparse echo on loopback (planner/cpu.py)
START_DELAY = 2.0  # s before --start-at, plus START_PER_HOST per client: K storm starts
START_PER_HOST = 0.7  # s: one Python start-up (~0.3 s) on a loaded 2-CPU host, with slack
SAMPLE_EVERY = 0.5  # s between looks at the server while the storms ramp
END_MARGIN = 0.5  # s before the earliest possible end of a hold: the last sample
QUIET = 1.5  # s before --start-at: the host's background busy rate (the storms wait, serve idles)
PREPARE_TIMEOUT = 60.0  # s for the profile and the facts inside one namespace
EXIT_SLACK = 30.0  # s beyond the storms' own bounds before they are stopped


class HostReport(BaseModel):
    """One namespace host: its role, plan and measured-vs-planned rows."""

    model_config = ConfigDict(frozen=True)

    host: str  # "server", "client1" .. "clientK"
    netns: str
    role: str  # server | client
    connections: int
    processes: int  # server workers or storm processes
    addresses: list[str]
    plan: PlanSummary
    rss_bytes: int | None
    comparisons: list[Comparison]


class MultiHostResult(BaseModel):
    """`verify --netns --client-hosts K` (the JSON `--json` prints)."""

    model_config = ConfigDict(frozen=True)

    connections: int
    duration: float
    message_rate: float
    message_size: int
    client_hosts: int
    mtu: int
    profile: str | None
    forced: bool
    server_endpoint: str
    server_sched: str  # serve --sched (verify/server.py server_sched)
    hosts: list[HostReport]
    fleet: FleetResult | None  # the K storm results merged (None: no storm gave a result)
    comparisons: list[Comparison]  # the whole machine: kernel memory, segments, host CPU
    before: HostSample
    during: HostSample | None
    window_seconds: float | None  # the CPU / nstat window
    messages_per_second: float | None  # the server's own count over the window
    segments: dict[str, int]  # TcpOutSegs per namespace host over the window
    server_active: int | None
    server_errors: dict[str, int]
    calibration_file: str | None
    problems: list[str]
    verdict: str


# ------------------------------------------------------------------ input
def check_options(opts: VerifyOptions) -> None:
    """BadInput (one line) for a K or MTU out of range, or --client-hosts without --netns."""
    from c10kplan.netns.topology import MAX_CLIENTS, MTU_MAX, MTU_MIN

    k = opts.client_hosts
    if k is None:
        return
    if not opts.netns:
        raise BadInput("--client-hosts needs --netns (the client hosts are network namespaces)")
    if not 1 <= k <= MAX_CLIENTS:
        raise BadInput(f"--client-hosts must be 1..{MAX_CLIENTS}, not {k}")
    if not MTU_MIN <= opts.mtu <= MTU_MAX:
        raise BadInput(f"--mtu must be {MTU_MIN}..{MTU_MAX}, not {opts.mtu}")
    if opts.connections < k:
        raise BadInput(f"{opts.connections} connections over {k} client hosts leave a host none")


def check_mtu_alone(opts: VerifyOptions) -> None:
    if opts.client_hosts is None and opts.mtu != 1500:
        raise BadInput("--mtu needs --client-hosts (a single --netns runs over loopback)")


def shares(connections: int, k: int) -> list[int]:
    """Connections of client host 1..K (the split `storm --share i/K` takes)."""
    from c10kplan.storm.share import Share

    return [(lambda r: r[1] - r[0])(Share(i, k).range_of(connections)) for i in range(1, k + 1)]


def side_target(opts: VerifyOptions, role: str, connections: int):
    """The target of one side: role server (all N) or client (its share), the bundled programs,
    a fresh namespace (no netfilter rules there)."""
    from c10kplan.planner import Target

    extra = {"connect_rate": opts.connect_rate * connections / opts.connections} if opts.connect_rate > 0 else {}
    return Target(connections=connections, role=role, message_size=opts.message_size,
                  message_rate=opts.message_rate, workload="bundled", fresh_netns=True, **extra)


# ------------------------------------------------------------------ inside one namespace
def prepare_main(argv: list[str]) -> int:
    """`python -m c10kplan.verify.multihost [PROFILE]`, run inside a namespace: apply the
    profile's per-namespace keys there, then print this namespace's HostFacts as JSON."""
    from c10kplan.host.inspect import collect_facts
    from c10kplan.profiles.schema import keys_in_scope
    from c10kplan.verify.netns import _apply_profile, _print_error

    try:
        if argv and argv[0]:
            _apply_profile(argv[0], keys_in_scope("netns"))
        print(collect_facts(ProcFS(), pid=None).model_dump_json())
        return 0
    except C10kError as exc:
        return _print_error(exc)


def _prepare(netns: str, profile: str | None, env: dict[str, str]):
    """Apply the profile in `netns` and read its facts from inside (one Python run there)."""
    from c10kplan.host.inspect import HostFacts
    from c10kplan.errors import EnvironmentProblem
    from c10kplan.netns.ip import run_in
    from c10kplan.verify.netns import raise_error_document

    done = run_in(netns, [sys.executable, "-m", "c10kplan.verify.multihost", profile or ""],
                  timeout=PREPARE_TIMEOUT, check=False, env=env)
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        doc = None
    raise_error_document(doc)
    if done.returncode != 0 or not isinstance(doc, dict):
        err = (done.stderr or "").strip().splitlines()
        raise EnvironmentProblem(f"reading the facts inside netns {netns} failed"
                                 + (f": {err[-1]}" if err else f" (exit {done.returncode})"))
    return HostFacts.model_validate(doc)


# ------------------------------------------------------------------ processes and samples
def process_tree(procfs: ProcFS, pid: int) -> list[int]:
    """`pid` first, then its descendants (verify/target.py: by every /proc/*/stat's ppid); `pid`
    alone once it is gone."""
    from c10kplan.verify.target import process_tree as tree

    return tree([pid], procfs) or [pid]


@dataclass
class Sample:
    """CPU ticks at one moment: the host's busy time, the server's and each client's processes."""

    at: float  # time.monotonic()
    host_busy: int | None
    server: int
    clients: list[int]


def take_sample(procfs: ProcFS, server_pids: list[int], client_pids: list[list[int]]) -> Sample:
    host = parse_proc_stat_cpu(procfs.read("proc/stat"))
    return Sample(time.monotonic(), None if host is None else host.busy_ticks, process_ticks(procfs, server_pids),
                  [process_ticks(procfs, pids) for pids in client_pids])


def us_per_message(ticks: int, messages: float) -> float | None:
    """Clock ticks of CPU time per message, in µs; None without messages or ticks."""
    if messages <= 0 or ticks <= 0:
        return None
    return round(ticks * 1e6 / CLOCK_TICKS_PER_S / messages, 2)


def message_rate_between(first: dict | None, last: dict | None, message_size: int) -> float | None:
    """Replies per second between two serve stats documents (bytes_out over their own times)."""
    if not first or not last or message_size <= 0:
        return None
    seconds = last["time"] - first["time"]
    sent = last["total"].get("bytes_out", 0) - first["total"].get("bytes_out", 0)
    return None if seconds <= 0 else sent / message_size / seconds


@dataclass
class Seen:
    """What the run saw; filled as it goes."""

    before: HostSample
    server_pids: list[int]
    server_rss_idle: int | None
    during: HostSample | None = None
    server_rss: int | None = None
    server_fds: int = 0
    client_pids: list[list[int]] = field(default_factory=list)
    client_rss: list[int | None] = field(default_factory=list)
    client_fds: list[int] = field(default_factory=list)
    first: Sample | None = None
    last: Sample | None = None
    stats_first: dict | None = None
    stats_last: dict | None = None
    nstat_first: dict[str, dict[str, int]] = field(default_factory=dict)
    nstat_last: dict[str, dict[str, int]] = field(default_factory=dict)
    nstat_seconds: float | None = None
    background: float | None = None  # host busy ticks/s before the storms (other jobs on the host)
    server_active: int | None = None
    server_errors: dict[str, int] = field(default_factory=dict)
    crashes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ the run
def run_multihost(opts: VerifyOptions, *, on_event: Callable[[dict], None] | None = None,
                  procfs: ProcFS | None = None) -> MultiHostResult:
    """The whole run; BadInput / NotReady before any storm starts, like verify on one host."""
    from c10kplan.netns.topology import Topology

    check_options(opts)
    procfs = procfs or ProcFS()
    k = opts.client_hosts or 0
    parts = shares(opts.connections, k)
    workers = 1 if opts.workers == "auto" else opts.workers  # `auto`: at least 1 (the plan says later)
    storms = 1 if opts.storm_processes == "auto" else opts.storm_processes
    # the reaper, one setup run at a time, serve and its workers, K storms and their processes
    check_processes(3 + workers + k * (1 + storms), "verify",
                    f"serve with {workers} workers and {k} storms of {storms} processes (at least)")
    with Topology(clients=k, mtu=opts.mtu) as topo, OwnedTempDir("multihost") as work:
        return _run(opts, topo, parts, procfs, work, on_event or (lambda e: None))


def _env() -> dict[str, str]:
    from c10kplan.netns.topology import _same_package_env

    env = _same_package_env()
    env.pop("C10KPLAN_VERIFY_INSIDE_NETNS", None)
    return env


def _run(opts: VerifyOptions, topo, parts: list[int], procfs: ProcFS, work: Path,
         on_event: Callable[[dict], None]) -> MultiHostResult:
    from c10kplan.netns import ip as iplib
    from c10kplan.netns.topology import DEVICE, MAX_SOURCES, PREFIX_LEN, client_addresses, client_source_spec
    from c10kplan.planner import plan
    from c10kplan.verify.run import summarize
    from c10kplan.verify.server import STOP_TIMEOUT, server_sched, server_stats, start_server

    env = _env()
    facts = {h.netns: _prepare(h.netns, opts.profile, env) for h in topo.plan.hosts}
    server_plan = summarize(plan(facts[topo.server.netns], side_target(opts, "server", opts.connections)))
    client_plans = [summarize(plan(facts[c.netns], side_target(opts, "client", n)))
                    for c, n in zip(topo.clients, parts)]
    failing = [f"{h}: {f}" for h, p in [("server", server_plan)] + [(c.role, p) for c, p in zip(topo.clients, client_plans)]
               for f in p.failing]
    if failing and not opts.force:
        raise NotReady("the plan fails, so the target cannot pass: " + "; ".join(failing)
                       + " (fix these with `c10kplan check --role server|client`, or run anyway with --force)")
    workers = max(1, server_plan.server_processes if opts.workers == "auto" else opts.workers)
    storm_procs = [max(1, min(n, p.client_processes if opts.storm_processes == "auto" else opts.storm_processes))
                   for n, p in zip(parts, client_plans)]
    check_processes(2 + workers + len(parts) + sum(storm_procs), "verify",
                    f"{workers} server workers, {len(parts)} storms of {', '.join(map(str, storm_procs))} processes")
    # Each client binds its own block, as many addresses as its plan's fast count (each port
    # range at most a quarter full); the fleet's plan lists the blocks in host order, so that
    # `--share i/K` hands client i exactly its own (storm/share.py).
    per_client = max(1, *(p.fast_source_addresses for p in client_plans))
    if per_client > MAX_SOURCES:
        raise BadInput(f"each client host would need {per_client} source addresses (at most {MAX_SOURCES}):"
                       " add client hosts")
    blocks = [client_addresses(i, per_client) for i in range(1, len(parts) + 1)]
    for c, block in zip(topo.clients, blocks):  # the first address is there already (Topology)
        if len(block) > 1:
            iplib.ip(netns=c.netns, batch=[f"addr add {a}/{PREFIX_LEN} dev {DEVICE}" for a in block[1:]])
    source_plan = ",".join(client_source_spec(i, per_client) for i in range(1, len(parts) + 1))

    server = start_server(workers=workers, backend=opts.backend, trigger=opts.trigger,
                          sched=server_sched(opts.message_rate),
                          host=topo.server.address,
                          prefix=iplib.exec_argv(topo.server.netns, []))
    try:
        idle = server_stats(server)
        pids = [server.pid] + [w["pid"] for w in (idle or {}).get("workers", []) if "pid" in w]
        seen = Seen(before=sample_host(procfs), server_pids=pids,
                    server_rss_idle=rss_bytes(procfs, pids) if idle else None)
        results, storm_problems = _storms(opts, topo, parts, storm_procs, source_plan, server, seen, procfs,
                                          work, env, on_event)
        seen.crashes += [f"server worker {p} died during the run" for p in pids[1:]
                         if process_alive(procfs, p) is False]
        if not server.alive():
            seen.crashes.append(f"the server {server.exit_description()} during the run")
    finally:
        server.close()
    if server.stop_clean is False:
        seen.crashes.append(f"the server did not stop within {STOP_TIMEOUT:g} s of SIGTERM")
    fleet = merge_results(list(results.values()), [f"client{i}" for i in results]) if results else None
    return _report(opts, topo, parts, workers, storm_procs, blocks, server_plan, client_plans,
                   f"{server.host}:{server.port}", seen, results, fleet, storm_problems)


def _storms(opts, topo, parts, storm_procs, source_plan, server, seen: Seen, procfs: ProcFS, work: Path,
            env: dict[str, str], on_event) -> tuple[dict[int, StormResult], list[str]]:
    """Start one storm per client namespace at one --start-at; measure while they hold; collect."""
    from c10kplan.netns import ip as iplib
    from c10kplan.netns.topology import SERVER_ADDRESS
    from c10kplan.storm.runner import DRAIN_SECONDS

    k = len(parts)
    start_at = time.time() + START_DELAY + START_PER_HOST * k
    common = ["--message-size", str(opts.message_size), "--message-rate", f"{opts.message_rate:g}",
              "--duration", f"{opts.duration:g}", "--connect-rate", f"{opts.connect_rate:g}", "--protocol", "echo",
              "--source-ips", source_plan, "--start-at", f"{start_at:.3f}", "--json", "--no-progress"]
    outs = [work / f"storm-{i}.json" for i in range(1, k + 1)]
    errs = [work / f"storm-{i}.err" for i in range(1, k + 1)]
    kids = ChildSet(k)
    files = []
    try:
        for i, (c, n_procs) in enumerate(zip(topo.clients, storm_procs), 1):
            files += [open(outs[i - 1], "wb"), open(errs[i - 1], "wb")]  # noqa: SIM115 - closed below
            argv = [sys.executable, "-m", "c10kplan", "storm", f"{SERVER_ADDRESS}:{server.port}",
                    "-n", str(opts.connections), "--share", f"{i}/{k}", "--processes", str(n_procs), *common]
            kids.run(iplib.exec_argv(c.netns, argv), stdout=files[-2], stderr=files[-1], env=env)
        _watch(opts, topo, kids, server, seen, procfs, start_at, on_event)
        # Bounded: the storm's own ramp and hold bounds, plus slack; then they are stopped.
        ramp = opts.connections / k / (opts.connect_rate / k if opts.connect_rate else UNPACED_CONNECT_RATE) + 15.0
        bound = start_at - time.time() + ramp + opts.duration + DRAIN_SECONDS + EXIT_SLACK
        if not kids.wait_until(lambda: not kids.live, max(1.0, bound)):
            seen.crashes.append("a storm did not finish in time; stopped")
        kids.stop()
    finally:
        kids.close()
        for f in files:
            f.close()
    results, problems = {}, []
    for i, (child, out, err) in enumerate(zip(kids.children, outs, errs), 1):
        try:
            results[i] = StormResult.model_validate_json(out.read_text(errors="replace"))
        except ValueError:
            last = (err.read_text(errors="replace").strip().splitlines() or [child.describe()])[-1]
            problems.append(f"client{i}: storm {child.describe()} without a result: {last}")
    return results, problems


def _watch(opts: VerifyOptions, topo, kids: ChildSet, server, seen: Seen, procfs: ProcFS, start_at: float,
           on_event) -> None:
    """Wait for every connection (the server's count), then sample the window's two ends."""
    from c10kplan.netns import ip as iplib
    from c10kplan.verify.server import server_stats

    n = opts.connections
    _background(kids, seen, procfs, start_at)
    ramp_deadline = start_at + n / (opts.connect_rate or UNPACED_CONNECT_RATE) + 15.0  # time.time()
    active = 0
    while kids.live and time.time() < ramp_deadline:
        kids.pump(SAMPLE_EVERY)
        stats = server_stats(server) if time.time() >= start_at else None
        if stats:
            _held_stats(seen, stats)  # the latest, until the window's end replaces it
            active = stats["total"].get("active", 0)
            on_event({"event": "progress", "index": 0, "established": active,
                      "received": stats["total"].get("bytes_out", 0) // max(1, opts.message_size)})
            if active >= n:
                break
    if active < n or not kids.live:
        return  # no window: the verdict says why (connections not held, a storm that ended)
    kids.wait_until(lambda: False, opts.settle)
    end_at = start_at + opts.duration - END_MARGIN  # no hold can end before this
    hosts = topo.plan.hosts
    seen.during = sample_host(procfs)
    seen.server_rss = rss_bytes(procfs, seen.server_pids)
    seen.server_fds = max((open_fds(procfs, p) for p in seen.server_pids[1:]), default=0)
    seen.client_pids = [process_tree(procfs, child.pid) for child in kids.children]
    seen.client_rss = [rss_bytes(procfs, pids) for pids in seen.client_pids]
    seen.client_fds = [max((open_fds(procfs, p) for p in pids[1:] or pids), default=0) for pids in seen.client_pids]
    if opts.message_rate <= 0 or time.time() >= end_at - 1.0:
        _held_stats(seen, server_stats(server))
        return
    t0 = time.monotonic()
    seen.nstat_first = {h.role: iplib.nstat(h.netns) for h in hosts}
    seen.stats_first = server_stats(server)
    seen.first = take_sample(procfs, seen.server_pids, seen.client_pids)
    kids.wait_until(lambda: not all(c.popen.poll() is None for c in kids.children), max(0.0, end_at - time.time()))
    seen.last = take_sample(procfs, seen.server_pids, seen.client_pids)
    seen.stats_last = server_stats(server)
    seen.nstat_last = {h.role: iplib.nstat(h.netns) for h in hosts}
    seen.nstat_seconds = time.monotonic() - t0
    _held_stats(seen, seen.stats_last)


def _background(kids: ChildSet, seen: Seen, procfs: ProcFS, start_at: float) -> None:
    """The host's busy rate over the QUIET s before --start-at: what else runs on this host
    (the storms sleep until then, serve is idle). Taken out of the window's host busy time."""
    kids.wait_until(lambda: False, max(0.0, start_at - QUIET - time.time()))
    first = take_sample(procfs, [], [])
    kids.wait_until(lambda: False, max(0.0, start_at - time.time()))
    last = take_sample(procfs, [], [])
    if first.host_busy is not None and last.host_busy is not None and last.at - first.at >= QUIET / 2:
        seen.background = (last.host_busy - first.host_busy) / (last.at - first.at)


def kernel_share(seen: Seen) -> float | None:
    """The window's host busy ticks beyond the background, per tick of our own processes: the
    factor that shares the kernel time no process was charged (softirq on an idle CPU, ksoftirqd)
    out over the sides in proportion to their own time, as verify on one host does. >= 1."""
    first, last = seen.first, seen.last
    if first is None or last is None or first.host_busy is None or last.host_busy is None or seen.background is None:
        return None
    ours = (last.server - first.server) + sum(b - a for a, b in zip(first.clients, last.clients))
    if ours <= 0:
        return None
    busy = last.host_busy - first.host_busy - seen.background * (last.at - first.at)
    return max(1.0, busy / ours)


def _held_stats(seen: Seen, stats: dict | None) -> None:
    if stats:
        seen.server_active = stats["total"].get("active")
        seen.server_errors = dict(stats["total"].get("errors") or {})


# ------------------------------------------------------------------ report
CPU_ALONE = "utime + stime of the processes in {ns} / replies, over the window"
CPU_SHARED = ("the same, plus its share (by process time) of the host's busy time no process was charged"
              " (less the background)")


def _report(opts, topo, parts, workers, storm_procs, blocks, server_plan, client_plans, endpoint, seen: Seen,
            results: dict[int, StormResult], fleet: FleetResult | None, storm_problems: list[str]) -> MultiHostResult:
    from c10kplan.netns.ip import counter_delta
    from c10kplan.verify.server import server_sched

    first, last = seen.first, seen.last
    rate = message_rate_between(seen.stats_first, seen.stats_last, opts.message_size)
    window = None if first is None or last is None else last.at - first.at
    messages = rate * window if rate and window else 0.0
    storm = fleet.storm if fleet else None
    held = storm.held if storm else 0
    sockets = 2 * held  # both ends are on this machine (in different namespaces)
    slab = delta(seen.during.slab_bytes, seen.before.slab_bytes) if seen.during else None
    kernel = per(slab, sockets)
    server_user = (None if seen.server_rss is None or seen.server_rss_idle is None
                   else per(seen.server_rss - seen.server_rss_idle, held))
    server_cpu = us_per_message(last.server - first.server, messages) if first and last else None
    share_out = kernel_share(seen)
    shared = (lambda us: None if us is None or share_out is None else round(us * share_out, 2))
    server_busy = (100 * (last.server - first.server) / CLOCK_TICKS_PER_S / window
                   if first and last and window else None)
    srv = topo.server
    server_rows = [
        row("connections held", "connections", seen.server_active, opts.connections,
            "serve: active connections at the end of the window", tolerance=0.0),
        row("user memory per connection", "bytes", server_user, server_plan.user_bytes_per_connection,
            "serve's RSS growth (supervisor + workers) / connections held", tolerance=None),
        row("fds of the busiest worker", "fds", seen.server_fds or None, server_plan.fds_per_process,
            "max open fds (/proc/PID/fd) over the server workers"),
        row("CPU per message", "us", server_cpu, server_plan.server_us_per_message, CPU_ALONE.format(ns=srv.netns)),
        row("CPU per message, shared", "us", shared(server_cpu), server_plan.server_us_per_message, CPU_SHARED),
        row("CPU busy", "% of a CPU", server_busy, 100 * server_plan.required_cores or None,
            "its processes' CPU time / wall time over the window", tolerance=None),
    ]
    reports = [HostReport(host="server", netns=srv.netns, role="server", connections=opts.connections,
                          processes=workers, addresses=[srv.address], plan=server_plan, rss_bytes=seen.server_rss,
                          comparisons=server_rows)]
    client_figures: list[float | None] = []  # what --calibrate keeps per client
    for i, (c, n, procs, p) in enumerate(zip(topo.clients, parts, storm_procs, client_plans), 1):
        part = results.get(i)
        share = n / opts.connections
        ticks = last.clients[i - 1] - first.clients[i - 1] if first and last else 0
        rss = seen.client_rss[i - 1] if i <= len(seen.client_rss) else None
        fds = seen.client_fds[i - 1] if i <= len(seen.client_fds) else 0
        client_cpu = us_per_message(ticks, messages * share)
        client_figures.append(shared(client_cpu) if share_out is not None else client_cpu)
        rows = [
            row("connections held", "connections", None if part is None else part.held, n,
                "its storm: connections still open at the end of the hold", tolerance=0.0),
            row("fds of the busiest process", "fds", fds or None, p.fds_per_process,
                "max open fds (/proc/PID/fd) over its storm processes"),
            row("source addresses", "addresses", None if part is None else part.source_addresses,
                max(1, p.fast_source_addresses), f"its own block from {blocks[i - 1][0]}; planned: each address"
                " at most a quarter of the port range", tolerance=0.0),
            row("CPU per message", "us", client_cpu, p.client_us_per_message,
                CPU_ALONE.format(ns=c.netns) + f" x {n:,}/{opts.connections:,}"),
            row("CPU per message, shared", "us", shared(client_cpu), p.client_us_per_message, CPU_SHARED),
        ]
        reports.append(HostReport(host=c.role, netns=c.netns, role="client", connections=n, processes=procs,
                                  addresses=list(blocks[i - 1]), plan=p, rss_bytes=rss, comparisons=rows))
    segments = {h: counter_delta(seen.nstat_first[h], seen.nstat_last[h]).get("TcpOutSegs", 0)
                for h in seen.nstat_last if h in seen.nstat_first}
    round_trips = rate * seen.nstat_seconds if rate and seen.nstat_seconds else 0
    host_busy = (last.host_busy - first.host_busy - (seen.background or 0) * (last.at - first.at)
                 if first and last and first.host_busy is not None and last.host_busy is not None else 0)
    planned_total = server_plan.server_us_per_message + (client_plans[0].client_us_per_message if client_plans else 0)
    machine = [
        row("kernel memory per socket", "bytes", kernel, server_plan.kernel_bytes_per_socket,
            "Slab delta (/proc/meminfo, host-wide) / sockets held (2 per connection)"),
        row("TCP segments per round trip", "segments", per(sum(segments.values()), round(round_trips)) if segments else None,
            LOOPBACK_SEGMENTS_PER_ROUND_TRIP, "nstat TcpOutSegs over the server + client namespaces / replies;"
            " planned = loopback's 3.0", tolerance=None),
        row("host CPU per message", "us", us_per_message(host_busy, messages), planned_total,
            "host busy time (/proc/stat) less the background before the storms / replies; planned ="
            " server + client",
            tolerance=None),
    ]
    problems = list(storm_problems)
    if storm is not None:
        problems += verdict_problems(connections=opts.connections, storm=storm, server_active=seen.server_active,
                                     server_errors=seen.server_errors, p99_max_ms=opts.p99_max_ms,
                                     crashes=seen.crashes)
        problems += [p for p in fleet.problems if p not in problems]
    else:
        problems += seen.crashes
    if seen.server_active is None:
        problems.append("no server stats could be read during the run")
    calibration_file = None
    if opts.calibrate:
        if kernel and kernel > 0 and storm is not None:
            # The shared figures when there are any: the method of the bundled constants.
            clients = [f for f in client_figures if f]
            calibration_file = _write_calibration(
                opts, kernel, server_user, held, shared(server_cpu) if share_out is not None else server_cpu,
                max(clients) if clients else None, messages, share_out is not None)
        else:
            problems.append("--calibrate: no kernel memory figure could be measured; no file written")
    return MultiHostResult(
        connections=opts.connections, duration=opts.duration, message_rate=opts.message_rate,
        message_size=opts.message_size, client_hosts=len(parts), mtu=opts.mtu, profile=opts.profile,
        forced=opts.force and not (server_plan.ready and all(p.ready for p in client_plans)),
        server_endpoint=endpoint, server_sched=server_sched(opts.message_rate), hosts=reports, fleet=fleet,
        comparisons=machine, before=seen.before, during=seen.during,
        window_seconds=None if window is None else round(window, 3),
        messages_per_second=None if rate is None else round(rate, 1), segments=segments,
        server_active=seen.server_active, server_errors=seen.server_errors, calibration_file=calibration_file,
        problems=problems, verdict="FAIL" if problems else "PASS")


def _write_calibration(opts: VerifyOptions, kernel: float, user: float | None, held: int,
                       server_us: float | None, client_us: float | None, messages: float, shared: bool) -> str:
    """The measured costs, for `check --calibration FILE`: the server's CPU per message from its
    own namespace's processes (`shared`: plus its share of the kernel time no process was
    charged), the client's the highest of the client hosts'."""
    from c10kplan.planner.calibration import Calibration
    from c10kplan.verify.run import MIN_CALIBRATION_MESSAGES  # the same floor as on one host

    cpu = messages >= MIN_CALIBRATION_MESSAGES
    method = (f"c10kplan verify --client-hosts {opts.client_hosts}: {held} connections over veth at MTU"
              f" {opts.mtu}, Slab and RSS deltas per socket")
    if cpu:
        method += (f"; CPU per side from its namespace's processes{' with its share of the kernel time' if shared else ''}"
                   f" over {messages:,.0f} echo round trips")
    Calibration(
        kernel_bytes_per_socket=max(1, round(kernel)),
        user_bytes_per_connection=None if user is None or user < 0 else round(user),
        connections=max(1, held), kernel_release=os.uname().release,
        measured_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), method=method,
        server_cpu_us_per_message=server_us if cpu else None,
        client_cpu_us_per_message=client_us if cpu else None,
    ).write(opts.calibrate)  # type: ignore[arg-type]
    return str(opts.calibrate)


if __name__ == "__main__":
    sys.exit(prepare_main(sys.argv[1:]))
