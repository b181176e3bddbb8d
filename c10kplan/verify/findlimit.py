"""`verify --find-limit connections|message-rate`: find where this host breaks, and hold the
planner's prediction for the same shape against it.

connections   one ramp (at --connect-rate) up to --connections N, the ceiling. Every storm
              process ends its ramp at its first failure and the parent halts the others
              (StormConfig.stop_on_failure); the server's errors are read from its stats file
              every RAMP_SLICE s (an accept that fails with EMFILE makes serve close the queued
              connection, so the storm sees EOF: the server's errno is the cause). The
              connections still open after a --duration hold are the observed limit.
message-rate  hold N connections per step at a rate raised geometrically (x RATE_FACTOR) until
              a step fails, then bisected BISECT_STEPS times; a step fails when p99 (corrected)
              passes --p99-max, messages fall behind schedule (over BEHIND_SHARE never sent or
              never answered) or a connection drops. Bounded: MAX_GEOMETRIC_STEPS + BISECT_STEPS
              runs of --duration each.

Prediction: connections = planner capacity() for the verify target's shape, lowered by what the
run pins: fixed --workers / --storm-processes hold at most nofile - (the fds each process had
open before its first connect) connections each, fixed --source-ips N at most N x the ports of
ip_local_port_range (minus reserved ones, minus the server's own listening port when it lies
inside the range: the kernel skips a port bound by bind() for every source address). For
message-rate: the rate at which the plan's CPU budget reaches 100 % of the CPUs.

The guard (never exhaust the host): checked every RAMP_SLICE s, it halts the ramp once
MemAvailable would fall under GUARD_MEM_SHARE of MemTotal, or the host's allocated fds
(fs.file-nr) come within GUARD_FD_SHARE of fs.file-max, within one more slice at the pace of
the last one. A limit the guard stopped short of is reported as not reached.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from c10kplan.host import parse
from c10kplan.host.procfs import ProcFS
from c10kplan.verify.options import VerifyOptions
from c10kplan.verify.result import Limit, LimitStep, VerifyResult
from c10kplan.verify.run import make_plan, run_here, run_planned, summarize

GUARD_MEM_SHARE = 0.10  # MemAvailable / MemTotal floor
GUARD_FD_SHARE = 0.01  # fs.file-nr may come no closer to fs.file-max than this share
RATE_FACTOR = 2.0
MAX_GEOMETRIC_STEPS = 7
BISECT_STEPS = 3
BEHIND_SHARE = 0.01  # of the scheduled messages never sent / never answered: "behind"
# errno names that mean "the peer closed it": on the storm side they follow the server's own
# failure (a rejected accept), which is then the cause.
_CLOSED_BY_PEER = {"EOF", "ECONNRESET", "EPIPE"}


# ------------------------------------------------------------------ the guard (pure)
@dataclass(frozen=True)
class HostLevels:
    """Host-wide levels the guard watches (bytes, fds); None = unknown."""

    mem_total: int | None
    mem_available: int | None
    fds_allocated: int | None
    file_max: int | None


def read_levels(procfs: ProcFS) -> HostLevels:
    mem = parse.parse_meminfo(procfs.read("proc/meminfo"))
    # fs.file-nr: "allocated  free(always 0 since 2.6)  max", host-wide (not per namespace).
    nr = parse.parse_ints(procfs.read_sysctl("fs.file-nr"))
    return HostLevels(mem_total=mem.get("MemTotal"), mem_available=mem.get("MemAvailable"),
                      fds_allocated=nr[0] if nr else None,
                      file_max=parse.parse_int(procfs.read_sysctl("fs.file-max")))


def guard_stop(now: HostLevels, before: HostLevels | None) -> str | None:
    """Why the ramp must halt now (one more slice at the last slice's pace would cross a
    floor), or None."""
    if now.mem_total and now.mem_available is not None:
        pace = max(0, before.mem_available - now.mem_available) if before and before.mem_available else 0
        floor = GUARD_MEM_SHARE * now.mem_total
        if now.mem_available - pace < floor:
            return (f"guard: MemAvailable {now.mem_available >> 20:,} MiB would fall under"
                    f" {GUARD_MEM_SHARE:.0%} of MemTotal")
    if now.file_max and now.fds_allocated is not None:
        pace = max(0, now.fds_allocated - before.fds_allocated) if before and before.fds_allocated else 0
        if now.fds_allocated + pace >= (1 - GUARD_FD_SHARE) * now.file_max:
            return (f"guard: {now.fds_allocated:,} fds allocated (fs.file-nr) would come within"
                    f" {GUARD_FD_SHARE:.0%} of fs.file-max {now.file_max:,}")
    return None


# ------------------------------------------------------------------ the rate search (pure)
def rate_search(start: float, ok: Callable[[float], bool], *, factor: float = RATE_FACTOR,
                geometric: int = MAX_GEOMETRIC_STEPS, bisect: int = BISECT_STEPS) -> tuple[float | None, float | None]:
    """(highest rate that held, lowest that failed): geometric steps up from `start` (down, when
    `start` already fails) until the outcome flips, then `bisect` geometric midpoints. At most
    `geometric + bisect` calls of ok. (x, None): nothing failed up to the last step tried."""
    lo: float | None = None
    hi: float | None = None
    rate = start
    for _ in range(geometric):
        if ok(rate):
            lo = rate
            if hi is not None:
                break
            rate *= factor
        else:
            hi = rate
            if lo is not None:
                break
            rate /= factor
    if lo is None or hi is None:
        return lo, hi
    for _ in range(bisect):
        mid = math.sqrt(lo * hi)
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo, hi


def step_failure(storm, connections: int, p99_max_ms: float) -> str | None:
    """Why a message-rate step failed (a drop's errno, "behind", "p99"), or None."""
    if storm.held < connections:
        names = sorted(storm.failures, key=lambda k: -storm.failures[k])
        return f"{names[0]} (storm)" if names else "dropped"
    scheduled = storm.messages_sent + storm.missed
    if scheduled and (storm.missed + storm.unanswered) > BEHIND_SHARE * scheduled:
        return "behind"
    p99 = storm.message_latency_us.corrected
    if p99.count and p99.p99 > p99_max_ms * 1000:
        return "p99"
    return None


def error_pct(observed: float | None, predicted: float | None) -> float | None:
    """(predicted - observed) / observed, in percent; None when either is unknown."""
    if observed is None or predicted is None or observed <= 0:
        return None
    return round((predicted - observed) / observed * 100, 2)


# ------------------------------------------------------------------ connections: prediction
@dataclass(frozen=True)
class Pins:
    """What the run fixed, and what it measured before the first connect."""

    nofile: int | None  # RLIMIT_NOFILE hard (the storm raises its soft limit to it)
    workers: int | None  # fixed --workers
    server_fds: int | None  # fds of the busiest idle server worker
    storm_processes: int | None  # fixed --storm-processes
    storm_fds: int | None  # most fds of a storm process before its first connect
    addresses: int | None  # fixed --source-ips
    ports: int | None  # ports per address (range - reserved)
    server_port_in_range: bool = False


def predict_connections(cap_connections: int, cap_binding: str | None, pins: Pins) -> tuple[int, str | None, str]:
    """(connections, binding finding id, how): the planner's capacity lowered by the pins."""
    options = [(cap_connections, cap_binding, "planner capacity")]
    if pins.nofile is not None:
        for count, fds, side in ((pins.workers, pins.server_fds, ("server worker", "server workers")),
                                 (pins.storm_processes, pins.storm_fds, ("storm process", "storm processes"))):
            if count is not None and fds is not None:
                options.append((count * max(0, pins.nofile - fds), "fds.nofile",
                                f"{count} {side[count != 1]} x (nofile {pins.nofile:,} - {fds} fds open before"
                                " the first connect)"))
    if pins.addresses is not None and pins.ports is not None:
        usable = pins.ports - (1 if pins.server_port_in_range else 0)
        options.append((pins.addresses * max(0, usable), "ports.ephemeral",
                        f"{pins.addresses} source address{'es' if pins.addresses != 1 else ''} x {usable:,} ports"
                        + (" (the range minus the server's own listening port)" if pins.server_port_in_range else "")))
    return min(options, key=lambda o: o[0])


def classify(storm_first: dict | None, server_errors: dict[str, int], guard: str | None,
             p99_over: bool) -> str | None:
    """The failure that ended the search, named by errno and side; None when nothing failed."""
    if guard is not None:
        return None
    first = (storm_first or {}).get("errno")
    if server_errors and (first is None or first in _CLOSED_BY_PEER):
        name = max(sorted(server_errors), key=lambda k: server_errors[k])
        return f"{name} (server accept)"
    if first is not None:
        where = "storm connect" if storm_first.get("phase", "ramp") == "ramp" else "storm, during the hold"  # type: ignore[union-attr]
        also = "".join(f"; server: {k}" for k in sorted(server_errors))
        return f"{first} ({where}){also}"
    if server_errors:
        return f"{max(sorted(server_errors), key=lambda k: server_errors[k])} (server)"
    return "p99" if p99_over else None


# ------------------------------------------------------------------ the runs
def run_chosen(opts: VerifyOptions, procfs: ProcFS, on_event: Callable[[dict], None] | None,
               *, in_netns: bool = False) -> VerifyResult:
    """What verify runs in this namespace: the search with --find-limit, else run.run_here."""
    if opts.find_limit is None:
        return run_here(opts, procfs, on_event, in_netns=in_netns)
    return find_limit(opts, procfs, on_event, in_netns=in_netns)


def find_limit(opts: VerifyOptions, procfs: ProcFS, on_event: Callable[[dict], None] | None,
               *, in_netns: bool = False) -> VerifyResult:
    if opts.find_limit == "connections":
        return _connections(opts, procfs, on_event, in_netns)
    return _message_rate(opts, procfs, on_event, in_netns)


class _RampWatch:
    """The storm driver for `connections`: run_storm with a look every slice of the ramp."""

    def __init__(self, procfs: ProcFS) -> None:
        self.procfs = procfs
        self.guard: str | None = None
        self.server_fds: int | None = None
        self.storm_fds: int | None = None
        self.server_port: int | None = None
        self.server_errors: dict[str, int] = {}
        self.first: dict | None = None
        self._levels: HostLevels | None = None
        self._halted = False

    def __call__(self, cfg, watch, on_event):
        from c10kplan.host.process import open_fds
        from c10kplan.reactor.stats import read_stats
        from c10kplan.storm.runner import run_storm

        server = watch.server
        self.server_port = server.port
        self.server_fds = max((open_fds(self.procfs, pid) for pid in watch.seen.server_pids), default=None)
        self._levels = read_levels(self.procfs)
        self.guard = guard_stop(self._levels, None)  # already too close: not one connect

        def halt(run) -> None:
            if not self._halted:
                self._halted = True
                run.command_all("halt")

        def on_ramp(run) -> None:
            if run.first_failure is not None and self.first is None:
                self.first = {**run.first_failure, "phase": "ramp"}
            try:
                errors = dict((read_stats(server.stats_file).get("total") or {}).get("errors") or {})
            except Exception:  # noqa: BLE001 - not written yet, or mid-rewrite: next slice
                errors = {}
            if errors and not self.server_errors:
                self.server_errors = errors
                halt(run)
            now = read_levels(self.procfs)
            if self.guard is None:
                self.guard = guard_stop(now, self._levels)
            self._levels = now
            if self.guard is not None:
                halt(run)

        def on_hold(run) -> None:
            self.storm_fds = run.fds_start
            if run.first_failure is not None and self.first is None:
                self.first = {**run.first_failure, "phase": "ramp"}
            watch.on_hold(run)

        if self.guard is not None:
            cfg = cfg.model_copy(update={"connections": 1, "processes": 1})
        result = run_storm(cfg, on_event, on_hold=on_hold, on_held=watch.on_held, on_ramp=on_ramp)
        return result


def _connections(opts: VerifyOptions, procfs: ProcFS, on_event, in_netns: bool) -> VerifyResult:
    from c10kplan.host.inspect import collect_facts
    from c10kplan.planner import verify_target
    from c10kplan.planner.limits import capacity
    from c10kplan.planner.sharding import ports_per_address

    summary = summarize(make_plan(opts, procfs, in_netns))
    drive = _RampWatch(procfs)
    res = run_planned(opts, procfs, summary, on_event, in_netns=in_netns, drive=drive)
    storm = res.storm
    if drive.first is None and storm.failures:  # failed only in the hold: a drop
        drive.first = {"errno": sorted(storm.failures)[0], "phase": "hold"}
    server_errors = res.server_errors or drive.server_errors
    p99 = storm.message_latency_us.corrected
    p99_over = bool(p99.count) and p99.p99 > opts.p99_max_ms * 1000
    failure = classify(drive.first, server_errors, drive.guard, p99_over)

    facts = collect_facts(procfs, pid=None)
    target = verify_target(connections=opts.connections, message_size=opts.message_size,
                           message_rate=opts.message_rate, connect_rate=opts.connect_rate, fresh_netns=in_netns)
    cap = capacity(facts, target)
    low, high = facts.ip_local_port_range or (None, None)
    pins = Pins(
        nofile=facts.nofile_hard,
        workers=None if opts.workers == "auto" else res.server_workers, server_fds=drive.server_fds,
        storm_processes=None if opts.storm_processes == "auto" else res.storm_processes, storm_fds=drive.storm_fds,
        addresses=opts.source_ips,
        ports=ports_per_address(low, high, facts.reserved_ports_in_range or 0) if low is not None else None,
        server_port_in_range=low is not None and drive.server_port is not None and low <= drive.server_port <= high,
    )
    predicted, resource, how = predict_connections(cap.connections, cap.binding, pins)
    held = min(storm.held, res.server_active if res.server_active is not None else storm.held)
    reached = failure is not None
    if drive.guard is not None:
        note = f"not reached: {drive.guard}, at {held:,} connections"
    elif not reached:
        note = f"not reached: all {opts.connections:,} connections (the ceiling) held"
    else:
        note = f"predicted from {how}"
    limit = Limit(mode="connections", observed=held if reached else None, predicted=predicted, resource=resource,
                  failure=failure, error_pct=error_pct(held if reached else None, predicted), reached=reached,
                  ceiling=opts.connections, note=note)
    return res.model_copy(update={"limit": limit})


def _message_rate(opts: VerifyOptions, procfs: ProcFS, on_event, in_netns: bool) -> VerifyResult:

    n = opts.connections
    cpu = make_plan(opts.model_copy(update={"message_rate": 1.0}), procfs, in_netns).cpu
    # The plan's CPU budget at 100 % of the CPUs: cores x 1e6 us/s / us per round trip, per connection.
    predicted = (cpu.cores * 1e6 / cpu.us_per_message / n) if cpu.cores and cpu.us_per_message else None
    start = opts.message_rate if opts.message_rate > 0 else (predicted / 4 if predicted else 1.0)
    steps: list[LimitStep] = []
    runs: dict[float, VerifyResult] = {}

    def ok(rate: float) -> bool:
        o = opts.model_copy(update={"message_rate": round(rate, 6)})
        res = run_planned(o, procfs, summarize(make_plan(o, procfs, in_netns)), on_event, in_netns=in_netns)
        why = step_failure(res.storm, n, opts.p99_max_ms)
        c = res.storm.message_latency_us.corrected
        steps.append(LimitStep(message_rate=o.message_rate, held=res.storm.held,
                               p99_ms=round(c.p99 / 1000, 3) if c.count else None,
                               missed=res.storm.missed + res.storm.unanswered, failure=why))
        runs[rate] = res
        if res.problems:  # a crash is no limit: stop the search there
            raise _Crashed(res)
        return why is None

    try:
        lo, hi = rate_search(start, ok)
    except _Crashed as crashed:
        return crashed.result.model_copy(update={"limit": Limit(
            mode="message-rate", observed=None, predicted=predicted, resource="cpu.messages", failure=None,
            error_pct=None, reached=False, ceiling=steps[-1].message_rate, note="a process crashed", steps=steps)})
    reached = lo is not None and hi is not None
    failing = next((s.failure for s in steps if hi is not None and math.isclose(s.message_rate, round(hi, 6))), None)
    observed = round(lo, 6) if reached else None
    if hi is None:
        note = f"not reached: every step held, up to {steps[-1].message_rate:g} msg/s"
    elif lo is None:
        note = f"not reached: even {steps[-1].message_rate:g} msg/s failed ({steps[-1].failure})"
    else:
        note = (f"predicted: the plan's CPU budget at 100 % of {cpu.cores} CPUs"
                f" ({cpu.us_per_message:g} us per round trip)")
    final = runs[lo if lo is not None else hi]  # type: ignore[index]
    limit = Limit(mode="message-rate", observed=observed, predicted=None if predicted is None else round(predicted, 4),
                  resource="cpu.messages", failure=failing if reached else None,
                  error_pct=error_pct(observed, predicted), reached=reached,
                  ceiling=max(s.message_rate for s in steps), note=note, steps=steps)
    return final.model_copy(update={"limit": limit})


class _Crashed(Exception):
    def __init__(self, result: VerifyResult) -> None:
        super().__init__("crashed")
        self.result = result


FIND_LIMIT_MODES = ("connections", "message-rate")


def check_find_limit(mode: str | None, ceiling: int, source_ips: int | None,
                     rates: tuple[tuple[str, float], ...]) -> None:
    """Bad input, one line each, before anything starts: an unknown mode, a ceiling <= 0, a
    rate that is inf or NaN, more source addresses than 127.0.0.0/8 holds."""
    from c10kplan.errors import BadInput
    from c10kplan.planner.sharding import MAX_SOURCE_ADDRESSES

    if mode is not None and mode not in FIND_LIMIT_MODES:
        raise BadInput(f"--find-limit must be {' or '.join(FIND_LIMIT_MODES)}, not {mode!r}")
    if ceiling <= 0:
        raise BadInput(f"--connections must be at least 1 (the {'ceiling of the search' if mode else 'target'}),"
                       f" not {ceiling}")
    for flag, value in rates:
        if not math.isfinite(value):
            raise BadInput(f"{flag} must be a finite number, not {value}")
    if source_ips is not None and not 1 <= source_ips <= MAX_SOURCE_ADDRESSES:
        raise BadInput(f"--source-ips must be 1..{MAX_SOURCE_ADDRESSES:,} (what 127.0.0.0/8 holds),"
                       f" not {source_ips}")
