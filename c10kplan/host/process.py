"""Probes of running processes, through ProcFS: CPU time, resident memory, open fds, liveness.

Kernel facts (proc(5)):
- /proc/PID/stat utime + stime: CPU time in clock ticks, SC_CLK_TCK per second (100 on Linux).
- /proc/PID/status VmRSS: resident set size in kB (= KiB); a forked child counts the pages it
  still shares with its parent. State: Z is a zombie (exited, not yet reaped).
- /proc/PID/fd: one entry per open fd.
"""

from __future__ import annotations

import os

from c10kplan.host.parse import parse_pid_stat, parse_status, status_rss_bytes
from c10kplan.host.procfs import ProcFS

# /proc/PID/stat and /proc/stat count CPU time in clock ticks, this many per second (100 on Linux).
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def process_ticks(procfs: ProcFS, pids: list[int]) -> int:
    """Sum of utime + stime (clock ticks) of the processes; missing ones count 0."""
    total = 0
    for pid in pids:
        stat = parse_pid_stat(procfs.read(f"proc/{pid}/stat"))
        if stat is not None:
            total += stat.utime_ticks + stat.stime_ticks
    return total


def process_cpu_seconds(pid: int, procfs: ProcFS | None = None) -> float:
    """utime + stime of a process in seconds (0.0 once it is gone)."""
    return process_ticks(procfs or ProcFS(), [pid]) / CLOCK_TICKS_PER_S


def process_rss_bytes(procfs: ProcFS, pid: int | str = "self") -> int | None:
    """VmRSS of one process in bytes; None when its /proc/PID/status is gone or unreadable."""
    return status_rss_bytes(procfs.read(f"proc/{pid}/status"))


def rss_bytes(procfs: ProcFS, pids: list[int]) -> int:
    """Sum of VmRSS of the processes (missing ones count 0)."""
    return sum(process_rss_bytes(procfs, pid) or 0 for pid in pids)


def open_fds(procfs: ProcFS, pid: int) -> int:
    return procfs.count_fds(pid)


def process_alive(procfs: ProcFS, pid: int) -> bool | None:
    """True while the process exists and is not a zombie (State: Z in /proc/PID/status); None
    when this tree cannot tell (a captured tree without live processes: no proc/self)."""
    text = procfs.read(f"proc/{pid}/status")
    if text is None:
        return None if procfs.read("proc/self/status") is None else False
    return not parse_status(text).get("State", "").startswith("Z")
