"""The user's own server, measured from the outside through ProcFS: its processes (the PIDs
given and all their descendants), their memory, fds, threads and CPU time, and which sockets
listen where. Shared by `verify --target` (verify/own_server.py) and `verify --storm-results`.

    measure_server(pids) -> ServerMeasurement      one sample of the process tree
    ServerSampler(pids).start() / .end() / .use()  two samples and what changed between them
    check_listening(pids, host, port)             BadInput unless the tree listens there

Kernel facts (proc(5)):
- /proc/PID/stat field 4 is the parent PID; the descendants of a PID are found by walking every
  /proc/*/stat (/proc/PID/task/TID/children needs CONFIG_PROC_CHILDREN and lists one thread's
  children only). A worker forked after a sample is seen at the next one.
- /proc/PID/status: VmRSS in kB (= KiB, pages still shared with the parent count in each
  process, so a forked tree's sum errs high by the shared pages: the same at both samples, so
  the growth between them is right); Threads: the thread count.
- /proc/PID/fd: one entry per open fd; a socket's link reads `socket:[INODE]`.
- /proc/PID/stat utime + stime: clock ticks (SC_CLK_TCK per second, 100 on Linux). A child
  that exited and was reaped takes its ticks into its parent's cutime/cstime, not counted here:
  a tree is measured by the processes alive at both samples.
- /proc/PID/net/tcp and tcp6 list the TCP sockets of that process's network namespace: state
  0A is LISTEN; local_address is HEX_IP:HEX_PORT (the IPv4 address as one host-order 32-bit
  word, so 127.0.0.1 reads 0100007F on little-endian x86; IPv6 as four such words); field 10 is
  the socket's inode, the number in `socket:[INODE]`.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import time
from collections.abc import Callable, Iterable

from pydantic import BaseModel, ConfigDict

from c10kplan.errors import BadInput
from c10kplan.host.parse import parse_pid_stat, parse_status
from c10kplan.host.process import CLOCK_TICKS_PER_S, open_fds, process_rss_bytes
from c10kplan.host.procfs import ProcFS

TCP_LISTEN = "0A"  # include/net/tcp_states.h: TCP_LISTEN = 10


class ServerMeasurement(BaseModel):
    """One sample of the server's processes (the PIDs given and their descendants)."""

    model_config = ConfigDict(frozen=True)

    at: float  # the clock's time, seconds (time.monotonic() by default; time.time for Unix-time windows)
    pids: list[int]  # alive at the sample: the ones given first, then their descendants
    rss_bytes: int  # sum of VmRSS
    fds: int  # sum of open fds
    fds_max: int  # open fds of the busiest process (what its nofile limit must hold)
    threads: int  # sum of Threads
    cpu_ticks: int  # sum of utime + stime, clock ticks


class ServerUse(BaseModel):
    """What changed between two samples of the server."""

    model_config = ConfigDict(frozen=True)

    seconds: float
    processes: int  # alive at the end
    rss_growth_bytes: int
    fds_growth: int
    threads: int  # at the end
    cpu_seconds: float

    def cpu_us_per_message(self, messages: int) -> float | None:
        """The server's own CPU time (utime + stime) per message; None without messages or ticks."""
        if messages <= 0 or self.cpu_seconds <= 0:
            return None
        return round(self.cpu_seconds * 1e6 / messages, 2)


def process_tree(pids: Iterable[int], procfs: ProcFS | None = None) -> list[int]:
    """The PIDs that exist, then all their descendants (by the ppid of every /proc/*/stat)."""
    procfs = procfs or ProcFS()
    roots = [pid for pid in dict.fromkeys(pids) if parse_pid_stat(procfs.read(f"proc/{pid}/stat"))]
    children: dict[int, list[int]] = {}
    for name in procfs.listdir("proc"):
        if name.isdigit():
            stat = parse_pid_stat(procfs.read(f"proc/{name}/stat"))
            if stat is not None:
                children.setdefault(stat.ppid, []).append(int(name))
    tree, todo = list(roots), list(roots)
    seen = set(roots)
    while todo:
        for child in sorted(children.get(todo.pop(0), ())):
            if child not in seen:
                seen.add(child)
                tree.append(child)
                todo.append(child)
    return tree


def measure_server(pids: Iterable[int], procfs: ProcFS | None = None,
                   clock: Callable[[], float] = time.monotonic) -> ServerMeasurement:
    """Sample the processes `pids` and their descendants: RSS, fds, threads, CPU ticks."""
    procfs = procfs or ProcFS()
    at = clock()
    rss = fds = fds_max = threads = ticks = 0
    alive = []
    for pid in process_tree(pids, procfs):
        status = procfs.read(f"proc/{pid}/status")
        stat = parse_pid_stat(procfs.read(f"proc/{pid}/stat"))
        if status is None or stat is None or stat.state == "Z":
            continue  # gone between the walk and the read, or a zombie: holds nothing
        alive.append(pid)
        rss += process_rss_bytes(procfs, pid) or 0
        mine = open_fds(procfs, pid)
        fds += mine
        fds_max = max(fds_max, mine)
        threads += int(parse_status(status).get("Threads", "1") or 1)
        ticks += stat.utime_ticks + stat.stime_ticks
    return ServerMeasurement(at=at, pids=alive, rss_bytes=rss, fds=fds, fds_max=fds_max, threads=threads,
                             cpu_ticks=ticks)


class ServerSampler:
    """Two samples of the server: `start()` before (or at the start of) the window, `end()`
    after it; `use()` is what changed."""

    def __init__(self, pids: Iterable[int], procfs: ProcFS | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.pids = list(pids)
        self.procfs = procfs or ProcFS()
        self.clock = clock
        self.first: ServerMeasurement | None = None
        self.last: ServerMeasurement | None = None

    def start(self) -> ServerMeasurement:
        self.first = measure_server(self.pids, self.procfs, self.clock)
        return self.first

    def end(self) -> ServerMeasurement:
        self.last = measure_server(self.pids, self.procfs, self.clock)
        return self.last

    def use(self, ticks_per_s: int = CLOCK_TICKS_PER_S) -> ServerUse | None:
        return server_use(self.first, self.last, ticks_per_s)


def server_use(first: ServerMeasurement | None, last: ServerMeasurement | None,
               ticks_per_s: int = CLOCK_TICKS_PER_S) -> ServerUse | None:
    """`last` - `first`; CPU only of the processes alive at both (a process started in between
    brings the ticks it had at `last`, a process gone in between takes its ticks away: neither
    is the window's). None without both samples."""
    if first is None or last is None:
        return None
    return ServerUse(
        seconds=round(last.at - first.at, 3), processes=len(last.pids),
        rss_growth_bytes=last.rss_bytes - first.rss_bytes, fds_growth=last.fds - first.fds,
        threads=last.threads, cpu_seconds=max(0, last.cpu_ticks - first.cpu_ticks) / ticks_per_s,
    )


# ------------------------------------------------------------------ who listens where
def listening_inodes(procfs: ProcFS, pid: int | str, port: int, host: str | None = None) -> dict[int, str]:
    """Listening TCP sockets on `port` in the network namespace of `pid`: inode -> the local
    address as `IP:PORT`. With `host`, only sockets bound to it or to the wildcard address."""
    found: dict[int, str] = {}
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in (procfs.read(f"proc/{pid}/net/{table}") or "").splitlines()[1:]:
            parsed = _listener(line, family)
            if parsed is None:
                continue
            inode, ip, lport = parsed
            if lport == port and (host is None or _covers(ip, host)):
                found[inode] = f"[{ip}]:{lport}" if family == socket.AF_INET6 else f"{ip}:{lport}"
    return found


def _listener(line: str, family: int) -> tuple[int, str, int] | None:
    fields = line.split()
    if len(fields) < 10 or fields[3] != TCP_LISTEN:
        return None
    addr, _, port_hex = fields[1].partition(":")
    try:
        raw = bytes.fromhex(addr)
        # each 32-bit word of the address is printed in host byte order
        words = b"".join(raw[i:i + 4][::-1] if sys.byteorder == "little" else raw[i:i + 4]
                         for i in range(0, len(raw), 4))
        return int(fields[9]), socket.inet_ntop(family, words), int(port_hex, 16)
    except (ValueError, OSError):
        return None


def _covers(bound: str, host: str) -> bool:
    """A socket bound to `bound` takes connections to `host` (the same address, or the wildcard;
    an IPv6 wildcard takes IPv4 too unless IPV6_V6ONLY, which the table does not show)."""
    try:
        b, h = ipaddress.ip_address(bound), ipaddress.ip_address(host)
    except ValueError:
        return False
    if b.is_unspecified:
        return b.version == h.version or b.version == 6
    mapped = getattr(b, "ipv4_mapped", None)
    return b == h or (mapped is not None and mapped == h)


def socket_inodes(procfs: ProcFS, pid: int) -> set[int]:
    """Inodes of the sockets process `pid` holds open (its /proc/PID/fd links `socket:[N]`)."""
    out = set()
    for fd in procfs.listdir(f"proc/{pid}/fd"):
        link = procfs.readlink(f"proc/{pid}/fd/{fd}") or ""
        if link.startswith("socket:[") and link.endswith("]"):
            out.add(int(link[8:-1]))
    return out


def process_name(procfs: ProcFS, pid: int) -> str:
    """`PID 123 (nginx)`."""
    return "PID " + _named(procfs, pid)


def check_listening(pids: list[int], host: str, port: int, procfs: ProcFS | None = None) -> list[int]:
    """The PIDs' tree; BadInput (one line) when a PID does not exist, or when none of the PIDs
    themselves holds a socket listening on HOST:PORT (a forked server's master holds its
    listening socket; a descendant's alone does not do: PID 1 is everyone's ancestor), naming
    what does listen there."""
    procfs = procfs or ProcFS()
    for pid in pids:
        if parse_pid_stat(procfs.read(f"proc/{pid}/stat")) is None:
            raise BadInput(f"--pid {pid}: no such process")
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    listeners = listening_inodes(procfs, pids[0], port, host)
    if any(socket_inodes(procfs, pid) & listeners.keys() for pid in pids):
        return process_tree(pids, procfs)
    given = ", ".join(_named(procfs, pid) for pid in pids)
    raise BadInput(f"--pid {given} is not listening on {where}; {_what_listens(procfs, listeners, where)}")


def _named(procfs: ProcFS, pid: int) -> str:
    comm = (procfs.read(f"proc/{pid}/comm") or "").strip()
    return f"{pid} ({comm})" if comm else str(pid)


def _what_listens(procfs: ProcFS, listeners: dict[int, str], where: str) -> str:
    if not listeners:
        return f"nothing listens on {where}"
    owners = []
    for name in procfs.listdir("proc"):
        if name.isdigit() and socket_inodes(procfs, int(name)) & listeners.keys():
            owners.append(int(name))
    if not owners:
        return f"what listens there (socket inode {', '.join(map(str, sorted(listeners)))}) belongs to no process visible here"
    # the first owner is the oldest (the lowest PID, usually the master of a forked server)
    shown = ", ".join(process_name(procfs, pid) for pid in owners[:3])
    more = f" and {len(owners) - 3} more" if len(owners) > 3 else ""
    return f"what listens there: {shown}{more}"
