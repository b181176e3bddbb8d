"""How many processes one command may start on this host, and the refusal past that.

Every command that forks (serve, storm, verify) checks the processes it needs against the cap
before it starts anything; the cap is the smallest of what the host allows:

- CPUs: PER_CPU processes per CPU this process may run on. With every one of them busy, the
  scheduler gives each a turn in rotation: EEVDF (Linux >= 6.6) slices are 0.75 ms x
  (1 + log2 CPUs, at most 8), 1.5 ms on 2 CPUs, so 64 runnable per CPU wait ~96 ms for a turn:
  already past verify's 50 ms p99 bound. More buys fds, never throughput.
- memory: MEMORY_SHARE of MemAvailable (/proc/meminfo, KiB) at PROCESS_RSS_BYTES each; the
  other half is left for the sockets themselves (the planner's memory budget).
- pids: PID_SHARE of the pids still free under kernel.pid_max and, when the cgroup sets one,
  pids.max (cgroup v2 `pids.max`, v1 `pids/.../pids.max`; "max" = none). Threads count as pids;
  /proc/loadavg's 4th field "running/total" gives the total in use host-wide.
- the fd plan: each process holds at least FDS_PER_PROCESS fds (stdio, its poller, pipes) out
  of fs.file-max (host-wide), less what fs.file-nr says is allocated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from c10kplan.errors import BadInput
from c10kplan.host.parse import parse_meminfo
from c10kplan.host.procfs import ProcFS

PER_CPU = 64
# VmRSS of an idle serve worker or storm process: 28,876 kB measured here (Python 3.11, typer
# and pydantic loaded before the fork). Pages shared with the parent count in full: a Python
# process dirties them as it runs (reference counts), so sharing erodes.
PROCESS_RSS_BYTES = 30 * 1024 * 1024
MEMORY_SHARE = 0.5
PID_SHARE = 0.5
FDS_PER_PROCESS = 16


@dataclass(frozen=True)
class ProcessCap:
    """The cap and what each limit allows (known ones only)."""

    cap: int
    limits: tuple[tuple[str, int], ...]

    def explain(self) -> str:
        return "; ".join(f"{what}: {n:,}" for what, n in self.limits)


def _int(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


def tasks_in_use(loadavg: str | None) -> int | None:
    """`0.00 0.01 0.05 2/345 6789` -> 345 (kernel scheduling entities: processes + threads)."""
    fields = (loadavg or "").split()
    if len(fields) < 4:
        return None
    return _int(fields[3].partition("/")[2])


def cgroup_pids_paths(cgroup: str | None) -> list[str]:
    """/proc/self/cgroup -> the relative paths of pids.max and pids.current for this process's
    cgroup (v2 unified line `0::/path`, or v1 line `N:pids:/path`); [] when neither."""
    for line in (cgroup or "").splitlines():
        num, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        path = path.strip().strip("/")
        base = None
        if "pids" in controllers.split(","):
            base = "sys/fs/cgroup/pids"
        elif num == "0" and controllers == "":
            base = "sys/fs/cgroup"
        if base is not None:
            base = f"{base}/{path}" if path else base
            return [f"{base}/pids.max", f"{base}/pids.current"]
    return []


def process_cap(procfs: ProcFS | None = None, cpus: int | None = None) -> ProcessCap:
    """The cap for this host (facts read through `procfs`)."""
    procfs = procfs or ProcFS()
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limits: list[tuple[str, int]] = [(f"{cpus} CPUs x {PER_CPU}", max(1, cpus) * PER_CPU)]
    avail = parse_meminfo(procfs.read("proc/meminfo")).get("MemAvailable")
    if avail is not None:
        limits.append((f"half of MemAvailable {avail >> 20:,} MiB at {PROCESS_RSS_BYTES >> 20} MiB each",
                       int(avail * MEMORY_SHARE) // PROCESS_RSS_BYTES))
    free_pids = _free_pids(procfs)
    if free_pids is not None:
        limits.append((f"half of {free_pids:,} free pids", int(free_pids * PID_SHARE)))
    file_max = _int(procfs.read_sysctl("fs.file-max"))
    nr = (procfs.read_sysctl("fs.file-nr") or "").split()
    if file_max is not None:
        used = _int(nr[0]) if nr else 0
        limits.append((f"fs.file-max at {FDS_PER_PROCESS} fds each",
                       max(0, file_max - (used or 0)) // FDS_PER_PROCESS))
    return ProcessCap(cap=max(1, min(n for _, n in limits)), limits=tuple(limits))


def _free_pids(procfs: ProcFS) -> int | None:
    in_use = tasks_in_use(procfs.read("proc/loadavg"))
    frees = []
    pid_max = _int(procfs.read_sysctl("kernel.pid_max"))
    if pid_max is not None and in_use is not None:
        frees.append(pid_max - in_use)
    paths = cgroup_pids_paths(procfs.read("proc/self/cgroup"))
    if paths:
        limit, current = (_int(procfs.read(p)) for p in paths)
        if limit is not None and current is not None:  # "max" parses as None: no cgroup limit
            frees.append(limit - current)
    return max(0, min(frees)) if frees else None


def check_processes(needed: int, what: str, detail: str = "", procfs: ProcFS | None = None) -> ProcessCap:
    """BadInput, before anything forks, when the command `what` needs more processes than the
    cap: `storm needs 100,000 processes (...); this host allows at most 128 (...)`."""
    cap = process_cap(procfs)
    if needed > cap.cap:
        said = f" ({detail})" if detail else ""
        raise BadInput(f"{what} needs {needed:,} processes{said}; this host allows at most {cap.cap:,}"
                       f" ({cap.explain()})")
    return cap
