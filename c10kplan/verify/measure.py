"""Host-side measurements during verify, all through ProcFS: /proc/meminfo (MemAvailable and
Slab, bytes), /proc/net/sockstat (TCP sockets in use; TCP mem in PAGES), CPU time of the host
and of the server and storm processes (per-process probes: host/process.py).

Kernel facts:
- Slab (bytes, /proc/meminfo "kB" = KiB) holds struct tcp_sock, socket inodes, dentries, files
  and epoll items: the idle cost of a socket. It is host-wide (not per network namespace), so
  other load on the host shows up in the delta; verify reports the figure it saw.
- /proc/net/sockstat "TCP: inuse" counts sockets of the reader's network namespace; "mem" is
  host-wide tcp_memory_allocated in pages.
- CPU time: /proc/PID/stat utime + stime and the host line of /proc/stat are in clock ticks
  (SC_CLK_TCK per second, 100 on Linux). On loopback much of a message's cost is the receiver's
  TCP input path, run in NET_RX softirq; the host line counts it as softirq, while a process is
  charged for it only with tick accounting and only when it was the one interrupted (not with
  CONFIG_IRQ_TIME_ACCOUNTING, not in ksoftirqd). So the host's busy time is the total, and the
  processes' own times only say how to share it between the server and the storm.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from c10kplan.host.parse import parse_meminfo, parse_proc_stat_cpu, parse_sockstat
from c10kplan.host.process import CLOCK_TICKS_PER_S, open_fds, process_ticks, rss_bytes
from c10kplan.host.procfs import ProcFS


class HostSample(BaseModel):
    model_config = ConfigDict(frozen=True)

    mem_available_bytes: int | None
    slab_bytes: int | None
    tcp_inuse: int | None
    tcp_mem_pages: int | None
    sockets_used: int | None


def sample_host(procfs: ProcFS) -> HostSample:
    mem = parse_meminfo(procfs.read("proc/meminfo"))
    sock = parse_sockstat(procfs.read("proc/net/sockstat"))
    return HostSample(
        mem_available_bytes=mem.get("MemAvailable"),
        slab_bytes=mem.get("Slab"),
        tcp_inuse=sock.get("TCP", {}).get("inuse"),
        tcp_mem_pages=sock.get("TCP", {}).get("mem"),
        sockets_used=sock.get("sockets", {}).get("used"),
    )


def delta(after: int | None, before: int | None) -> int | None:
    return None if after is None or before is None else after - before


class CpuSample(BaseModel):
    """CPU time used so far (clock ticks) and the storm's replies so far, at one moment."""

    model_config = ConfigDict(frozen=True)

    at: float  # time.monotonic(), seconds
    host_busy_ticks: int | None  # /proc/stat: user + nice + system + irq + softirq, all CPUs
    server_ticks: int  # utime + stime of the server workers
    storm_ticks: int  # utime + stime of the storm processes
    messages: int  # echo round trips completed (replies received by the storm)


class CpuUse(BaseModel):
    """CPU spent per message between two samples. The host's busy time is split between the
    server and the storm in proportion to their own process times (what the host did beyond
    them, softirq included, is shared out the same way); without the host line, process time only."""

    model_config = ConfigDict(frozen=True)

    seconds: float
    messages: int
    process_ticks: int  # utime + stime of server and storm in the window: the figures' resolution
    host_busy_cores: float | None  # host busy time / wall time
    server_us_per_message: float
    storm_us_per_message: float


def sample_cpu(procfs: ProcFS, server_pids: list[int], storm_pids: list[int], messages: int,
               clock=time.monotonic) -> CpuSample:
    host = parse_proc_stat_cpu(procfs.read("proc/stat"))
    return CpuSample(at=clock(), host_busy_ticks=None if host is None else host.busy_ticks,
                     server_ticks=process_ticks(procfs, server_pids),
                     storm_ticks=process_ticks(procfs, storm_pids), messages=messages)


def storm_at_hold(seen: Any, run: Any, procfs: ProcFS, settle: float, duration: float) -> None:
    """The first sample of the hold, the same for every verify that runs the storm here: let the
    hold settle, then record the host and the storm side on `seen` (verify.run.Observed,
    verify.own_server's record): its pids, RSS now and before its first connect, busiest fds."""
    run.pump(min(settle, duration / 2))
    seen.during = sample_host(procfs)
    seen.storm_pids = run.pids
    seen.storm_rss = rss_bytes(procfs, run.pids)
    seen.storm_rss_start = run.rss_start_bytes
    seen.storm_fds = max((open_fds(procfs, pid) for pid in run.pids), default=0)


def cpu_at(procfs: ProcFS, server_pids: list[int], run: Any) -> CpuSample:
    """A CPU sample of the server and storm processes with the replies at that very moment, not
    at the storm's last progress report (up to PROGRESS_EVERY older): interpolated between the
    reports around it."""
    start = sample_cpu(procfs, server_pids, run.pids, messages=0)
    return start.model_copy(update={"messages": run.received_at(start.at)})


def cpu_use(start: CpuSample | None, end: CpuSample | None,
            ticks_per_s: int = CLOCK_TICKS_PER_S) -> CpuUse | None:
    """CPU per message between `start` and `end`; None without messages or process time."""
    if start is None or end is None:
        return None
    seconds = end.at - start.at
    messages = end.messages - start.messages
    server = max(0, end.server_ticks - start.server_ticks)
    storm = max(0, end.storm_ticks - start.storm_ticks)
    if seconds <= 0 or messages <= 0 or server + storm == 0:
        return None
    busy = None
    total = server + storm
    if start.host_busy_ticks is not None and end.host_busy_ticks is not None:
        busy = end.host_busy_ticks - start.host_busy_ticks
        total = max(total, busy)  # the host's total; the processes' figures are sampled apart
    scale = total / (server + storm) * 1e6 / ticks_per_s / messages
    return CpuUse(
        seconds=round(seconds, 3), messages=messages, process_ticks=server + storm,
        host_busy_cores=None if busy is None else round(busy / ticks_per_s / seconds, 3),
        server_us_per_message=round(server * scale, 2), storm_us_per_message=round(storm * scale, 2),
    )


# Host busy time beyond what the run accounts for (CPUs) above which verify warns that its
# host-wide ratios are unreliable: other jobs' CPU and allocations land in the same counters
# (/proc/stat, Slab) as ours.
BUSY_ELSEWHERE_MAX_CORES = 0.5


def busy_elsewhere(start: CpuSample | None, end: CpuSample | None, planned_cores: float = 0.0,
                   ticks_per_s: int = CLOCK_TICKS_PER_S) -> float | None:
    """CPUs the host was busy with beyond this run between `start` and `end`: host busy time
    minus the larger of our processes' utime + stime and the plan's cores (which include the
    loopback softirq our messages cost, charged to no process), per wall second. None without
    the host line."""
    if start is None or end is None or start.host_busy_ticks is None or end.host_busy_ticks is None:
        return None
    seconds = end.at - start.at
    if seconds <= 0:
        return None
    busy = (end.host_busy_ticks - start.host_busy_ticks) / ticks_per_s / seconds
    ours = (max(0, end.server_ticks - start.server_ticks) + max(0, end.storm_ticks - start.storm_ticks)) \
        / ticks_per_s / seconds
    return round(max(0.0, busy - max(ours, planned_cores)), 3)


def busy_warning(elsewhere: float | None) -> str | None:
    """The warning line for a host busy with other work, or None."""
    if elsewhere is None or elsewhere <= BUSY_ELSEWHERE_MAX_CORES:
        return None
    return (f"the host was busy with {elsewhere:.2f} CPUs of other work during the hold (beyond this run's "
            f"processes and plan; limit {BUSY_ELSEWHERE_MAX_CORES:g}): the measured kernel memory and CPU "
            "per message ratios are unreliable; rerun on a quieter host")
