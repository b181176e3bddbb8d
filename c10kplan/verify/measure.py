"""Host-side measurements during verify, all through ProcFS: /proc/meminfo (MemAvailable and
Slab, bytes), /proc/net/sockstat (TCP sockets in use; TCP mem in PAGES), VmRSS and open fds of
the server and storm processes.

Kernel facts:
- Slab (bytes, /proc/meminfo "kB" = KiB) holds struct tcp_sock, socket inodes, dentries, files
  and epoll items: the idle cost of a socket. It is host-wide (not per network namespace), so
  other load on the host shows up in the delta; verify reports the figure it saw.
- /proc/net/sockstat "TCP: inuse" counts sockets of the reader's network namespace; "mem" is
  host-wide tcp_memory_allocated in pages.
- VmRSS of a forked child counts pages it shares with its parent.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from c10kplan.host.inspect import process_rss_bytes
from c10kplan.host.parse import parse_meminfo, parse_sockstat, parse_status
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


def rss_bytes(procfs: ProcFS, pids: list[int]) -> int:
    """Sum of VmRSS of the processes (missing ones count 0)."""
    return sum(process_rss_bytes(procfs, pid) or 0 for pid in pids)


def open_fds(procfs: ProcFS, pid: int) -> int:
    return len(procfs.listdir(f"proc/{pid}/fd"))


def delta(after: int | None, before: int | None) -> int | None:
    return None if after is None or before is None else after - before


def process_alive(procfs: ProcFS, pid: int) -> bool | None:
    """True while the process exists and is not a zombie (State: Z in /proc/PID/status); None
    when this tree cannot tell (a captured tree without live processes: no proc/self)."""
    text = procfs.read(f"proc/{pid}/status")
    if text is None:
        return None if procfs.read("proc/self/status") is None else False
    return not parse_status(text).get("State", "").startswith("Z")
