"""Memory budget: what the target really uses, against MemAvailable and tcp_mem, plus the
course notes' worst case as its own figure (never part of the verdict).

expected = kernel idle cost + data in flight + user space per socket + processes:
1. Idle kernel cost: sockets x KERNEL_BYTES_PER_SOCKET (or a calibrated value): what N idle
   connections really cost (struct tcp_sock, inode, file, epoll item; no buffers).
2. In flight, by Little's law: data is in socket buffers only while a message waits there, so
   messages in buffers = messages/s x RESIDENCE_S (the time one echo round trip spends in this
   host's socket queues, measured), each charged its skb truesize (truesize_bytes). Idle
   connections hold nothing. tcp_mem is charged in whole PAGES per socket (sk_mem_pages() rounds
   up to PAGE_SIZE; SK_MEM_QUANTUM before 6.0), so each message waiting alone in a socket costs
   ceil(truesize / page) pages of tcp_mem ("low pressure high" in PAGES, host-wide).
3. User space per socket: for the bundled workload (verify's serve + storm) the measured growth
   of each process per connection it holds; for a custom one `--app-buffer` (Target).
4. Processes: the bundled workload's idle RSS per server worker and per storm process, measured,
   times the processes the plan runs.
The course notes' worst case: sockets x (tcp_rmem[default] + tcp_wmem[default]) bytes, as if
every socket's buffers were filled to their default size at once.
"""

from __future__ import annotations

import math

from pydantic import BaseModel

from c10kplan.host.inspect import HostFacts
from c10kplan.planner.calibration import Calibration, calibration_source
from c10kplan.planner.findings import (
    RECORD_CONFIG,
    Finding,
    Step,
    finding,
    fmt_bytes,
    headroom_status,
    step,
    unknown_finding,
)
from c10kplan.planner.target import Target

# Kernel memory of one idle, established TCP socket registered in epoll, in bytes: the socket's
# own objects plus its /proc/PID/fd entry. Measured on this project's build host (kernel 6.18,
# x86_64) in verify's 1M run (1,000,000 loopback connection pairs, 2,000,000 sockets, fresh
# netns), /proc/slabinfo before and during the hold, bytes per socket (slab pages, so each
# cache's free slots are in):
#   the socket:  TCP (struct tcp_sock) 2,520   sock_inode_cache (socket + inode) 862
#                dentry 195   filp (struct file) 195   eventpoll_epi (epitem) 193
#                lsm_inode 32 + lsm_file 24 + ep_head 16 + kmalloc-* ~75 + anon_vma_chain 65
#                => ~4,180 B; at 200,000 connections the same (4,190 B)
#   its /proc/PID/fd entry: proc_inode_cache 712 + dentry 195 + lsm_inode 32 => ~940 B
# The fd entry exists once anything lists the process's fds (readdir of /proc/PID/fd builds a
# dentry and a proc inode per fd, kept while the fd is open): lsof, `ss -p`, monitoring agents,
# Prometheus process collectors; on this host the init process lists every process's fds
# within ~3 s of their creation. The plan assumes it is built (Slab grew 5,081-5,138 B/socket
# over the 1M run's hold); on a host where nothing lists them it is ~18 % high, and
# `verify --calibrate` measures the host's own figure. Socket buffers are not included: an
# idle socket holds none. `--calibration FILE` replaces the constant.
SOCKET_KERNEL_BYTES = 4180
PROC_FD_ENTRY_BYTES = 940
KERNEL_BYTES_PER_SOCKET = SOCKET_KERNEL_BYTES + PROC_FD_ENTRY_BYTES

# What the kernel charges for a message held in a socket buffer: skb->truesize, in bytes, =
# the payload + the sk_buff (256 B, cache-aligned), its skb_shared_info (320 B) and the head
# buffer TCP reserves for headers (MAX_TCP_HEADER rounded by the allocator). Measured on 6.18
# (x86_64) with `ss -tm`: a loopback socket holding one unread message of B bytes shows
# skmem r (rmem_alloc) = 832 + B, for B from 1 to 16,384; 64 KiB arrive as two skbs (+1,664).
# A later small message sent before the first is read coalesces into the tail skb (+B only).
SKB_OVERHEAD_BYTES = 832
# Payload per skb on loopback: its MTU is 65,536 B (GSO: up to 64 KiB per skb).
SKB_MAX_PAYLOAD = 65536


def truesize_bytes(message_size: int) -> int:
    """Bytes the kernel charges for one message of `message_size` bytes in a socket queue."""
    skbs = max(1, math.ceil(message_size / SKB_MAX_PAYLOAD))
    return message_size + skbs * SKB_OVERHEAD_BYTES


# How long one echo round trip's data stays in this host's socket buffers (seconds): the request
# in the server's receive queue until a worker reads it, the reply in the client's, and both in
# their senders' write queues until ACKed (at once on loopback). Measured with
# `python scripts/bench_residence.py` (20,000 connections of 64 B echo, 1 serve worker + 1 storm
# process, fresh netns, 2 vCPUs): Little's law on the sum of `ss -tm` skmem r + w + t over every
# socket. Quiet host (load < 1.5): 0.40-0.82 ms at 5,000-20,000 round trips/s over two runs, once
# 2.5 ms at 20,000. The constant is that highest quiet figure. It is a queueing delay, so it grows
# with CPU contention: with other jobs saturating both CPUs (load 9.6) it was 2.4 ms at 5,000,
# 18 ms at 10,000 and 26 ms at 20,000 (p99 0.5-1.4 s) -- even then 0.46 MB in flight: in-flight
# memory of small messages is tiny beside the idle kernel cost. Past the CPU budget the queues
# grow without bound and cpu.messages FAILs first. It is loopback's: over a network the write
# queue keeps each message one round-trip time longer (until the peer's ACK).
RESIDENCE_S = 0.0025

# The bundled workload (`c10kplan serve --protocol echo` workers and `c10kplan storm` processes,
# as verify runs them), measured with `python scripts/bench_process_rss.py` (2 workers + 2 storm
# processes holding 39,000 idle connections, 19,500 each, as in verify's 1M run; fresh netns,
# kernel 6.18, Python 3.11; three runs, the constants are the means). Bytes of VmRSS:
# - an idle serve worker (before any connection): 28.4 MiB in all three;
# - an idle storm process (before its first connect): 27.1-29.8 MiB, mean 28.4 MiB;
# - growth per connection held: serve 111 B (the connection record; the read buffer is
#   shared), storm 384-400 B, mean 395 B (the connection record: its socket object, slots,
#   dict entry; the reply queue is made at the first send, so an idle one has none).
SERVER_PROCESS_RSS = 29_780_000
STORM_PROCESS_RSS = 29_750_000
SERVER_BYTES_PER_SOCKET = 111
STORM_BYTES_PER_SOCKET = 395
# With messages each storm connection keeps a reply queue from its first send (a deque: 760 B
# by sys.getsizeof on 3.11); measured as the idle growth with the queue made up front (1,036-
# 1,115 B, mean 1,086) less the figure without it: 691 B.
STORM_REPLY_QUEUE_BYTES = 691
BUNDLED_SOURCE = "measured: bundled serve + storm (see docs/check.md, Memory as it is really used)"

# Kernel defaults used when a sysctl is hidden (bytes): tcp_rmem/tcp_wmem "default" fields.
DEFAULT_TCP_RMEM = 131072
DEFAULT_TCP_WMEM = 16384
DEFAULT_PAGE_SIZE = 4096
# Share of MemAvailable the target may use before we WARN (the rest is headroom for page cache,
# other processes and bursts).
MEMORY_HEADROOM = 0.8


class MemoryBudget(BaseModel):
    model_config = RECORD_CONFIG

    sockets: int
    workload: str  # "bundled" (serve + storm, measured) or "custom" (--app-buffer)
    kernel_bytes_per_socket: int
    kernel_bytes_source: str  # "constant (measured slab cost, see docs/check.md, ...)" or "calibration: ..."
    user_bytes_per_connection: int  # user space per SOCKET (the mean over both sides of role both)
    user_bytes_source: str
    page_size: int
    kernel_idle_bytes: int  # 1. sockets x kernel_bytes_per_socket
    messages_per_s: float  # connections x message_rate (echo round trips)
    residence_s: float  # RESIDENCE_S
    truesize_bytes: int  # what the kernel charges per message held (skb truesize)
    in_flight_messages: float  # 2. messages_per_s x residence_s (Little's law)
    in_flight_bytes: int  # in_flight_messages x truesize
    in_flight_pages: int  # ceil(in_flight_messages) x ceil(truesize / page_size): tcp_mem's charge
    user_bytes: int  # 3. per socket, both sides
    server_processes: int
    client_processes: int
    process_bytes: int  # 4. processes x idle RSS (bundled); 0 for custom
    send_buffers_bytes: int  # course notes: sockets x tcp_wmem[default]
    recv_buffers_bytes: int  # course notes: sockets x tcp_rmem[default]
    worst_case_bytes: int  # send + recv (the course notes)
    expected_total_bytes: int  # kernel idle + in flight + user + processes
    worst_total_bytes: int  # kernel idle + worst case + user + processes
    mem_available_bytes: int | None
    working: list[Step]


def memory_budget(
    facts: HostFacts, target: Target, calibration: Calibration | None = None, *,
    server_processes: int = 0, client_processes: int = 0,
) -> tuple[MemoryBudget, list[Finding]]:
    """`*_processes`: what the plan runs (fd and CPU budgets); each bundled process costs its
    idle RSS."""
    sockets = target.sockets
    if calibration is not None:
        per_socket = calibration.kernel_bytes_per_socket
        source = calibration_source(calibration)
    else:
        per_socket, source = KERNEL_BYTES_PER_SOCKET, "constant (measured slab cost, see docs/check.md, Memory as it is really used)"
    wmem = facts.tcp_wmem_bytes[1] if facts.tcp_wmem_bytes else DEFAULT_TCP_WMEM
    rmem = facts.tcp_rmem_bytes[1] if facts.tcp_rmem_bytes else DEFAULT_TCP_RMEM
    page = facts.page_size_bytes or DEFAULT_PAGE_SIZE

    idle = sockets * per_socket
    messages = target.connections * target.message_rate
    truesize = truesize_bytes(target.message_size)
    in_flight_messages = messages * RESIDENCE_S
    in_flight_bytes = math.ceil(in_flight_messages * truesize)
    in_flight_pages = math.ceil(in_flight_messages) * math.ceil(truesize / page)
    user, user_source, user_steps = _user(target, calibration)
    per_conn_user = round(user / sockets)
    bundled = target.runs == "bundled"
    procs = ((server_processes * SERVER_PROCESS_RSS if target.serves else 0)
             + (client_processes * STORM_PROCESS_RSS if target.connects else 0)) if bundled else 0
    send = sockets * wmem
    recv = sockets * rmem
    expected = idle + in_flight_bytes + user + procs
    worst = idle + send + recv + user + procs

    working = [
        step("kernel_idle_bytes", idle, "bytes", "sockets x kernel_bytes_per_socket",
             sockets=sockets, kernel_bytes_per_socket=per_socket),
        step("in_flight_messages", in_flight_messages, "messages",
             "connections x message_rate x residence_s (Little's law)",
             connections=target.connections, message_rate=target.message_rate, residence_s=RESIDENCE_S),
        step("in_flight_bytes", in_flight_bytes, "bytes",
             f"in_flight_messages x truesize (message_size + {SKB_OVERHEAD_BYTES} B sk_buff per skb)",
             in_flight_messages=in_flight_messages, truesize=truesize),
        step("in_flight_pages", in_flight_pages, "pages",
             "ceil(in_flight_messages) x ceil(truesize / page_size) (tcp_mem: whole pages per socket)",
             in_flight_messages=in_flight_messages, truesize=truesize, page_size=page),
        *user_steps,
        step("process_bytes", procs, "bytes",
             "server_processes x server_rss + client_processes x storm_rss (bundled; 0 for custom)",
             workload=target.runs, server_processes=server_processes if target.serves else 0,
             server_rss=SERVER_PROCESS_RSS, client_processes=client_processes if target.connects else 0,
             storm_rss=STORM_PROCESS_RSS),
        step("expected_total_bytes", expected, "bytes",
             "kernel_idle + in_flight_bytes + user + process_bytes",
             kernel_idle=idle, in_flight_bytes=in_flight_bytes, user=user, process_bytes=procs),
        step("send_buffers_bytes", send, "bytes", "sockets x tcp_wmem[default]",
             sockets=sockets, tcp_wmem_default=wmem),
        step("recv_buffers_bytes", recv, "bytes", "sockets x tcp_rmem[default]",
             sockets=sockets, tcp_rmem_default=rmem),
        step("worst_total_bytes", worst, "bytes",
             "kernel_idle + send_buffers + recv_buffers + user + process_bytes (course notes)",
             kernel_idle=idle, send_buffers=send, recv_buffers=recv, user=user, process_bytes=procs),
    ]
    budget = MemoryBudget.model_construct(
        sockets=sockets, workload=target.runs, kernel_bytes_per_socket=per_socket,
        kernel_bytes_source=source, user_bytes_per_connection=per_conn_user,
        user_bytes_source=user_source, page_size=page, kernel_idle_bytes=idle,
        messages_per_s=messages, residence_s=RESIDENCE_S, truesize_bytes=truesize,
        in_flight_messages=in_flight_messages, in_flight_bytes=in_flight_bytes,
        in_flight_pages=in_flight_pages, user_bytes=user,
        server_processes=server_processes if target.serves else 0,
        client_processes=client_processes if target.connects else 0, process_bytes=procs,
        send_buffers_bytes=send, recv_buffers_bytes=recv, worst_case_bytes=send + recv,
        expected_total_bytes=expected, worst_total_bytes=worst,
        mem_available_bytes=facts.mem_available_bytes, working=working,
    )
    return budget, [_expected(facts, budget), _worst(facts, budget), _tcp_mem(facts, budget)]


def _user(target: Target, calibration: Calibration | None) -> tuple[int, str, list[Step]]:
    """User-space bytes of all sockets: a calibrated figure per socket, the bundled workload's
    measured growth per socket of each side, or --app-buffer per socket (custom)."""
    sockets = target.sockets
    if calibration is not None and calibration.user_bytes_per_connection is not None:
        per = calibration.user_bytes_per_connection
        return sockets * per, calibration_source(calibration), [
            step("user_bytes", sockets * per, "bytes", "sockets x user_bytes_per_socket (calibration)",
                 sockets=sockets, user_bytes_per_socket=per)]
    if target.runs == "bundled":
        server = SERVER_BYTES_PER_SOCKET if target.serves else 0
        queue = STORM_REPLY_QUEUE_BYTES if target.message_rate > 0 else 0
        client = STORM_BYTES_PER_SOCKET + queue if target.connects else 0
        user = target.connections * (server + client)
        return user, BUNDLED_SOURCE, [
            step("user_bytes", user, "bytes",
                 "connections x (serve_bytes_per_socket if role serves + storm_bytes_per_socket"
                 " (+ its reply queue with messages) if role connects)",
                 connections=target.connections, serve_bytes_per_socket=server, storm_bytes_per_socket=client)]
    per = target.app_buffer_bytes
    source = "--app-buffer" if target.app_buffer is not None else f"default --app-buffer {per} (see docs/check.md, Options)"
    return sockets * per, source, [
        step("user_bytes", sockets * per, "bytes", "sockets x app_buffer (custom workload)",
             sockets=sockets, app_buffer=per)]


def _expected(facts: HostFacts, b: MemoryBudget) -> Finding:
    formula = (f"kernel_idle + in_flight + user + processes <= MemAvailable"
               f" (WARN above {MEMORY_HEADROOM:.0%})")
    required = fmt_bytes(b.expected_total_bytes)
    fix = "add memory, or split the connections across hosts"
    have = facts.mem_available_bytes
    if have is None:
        return unknown_finding("memory.expected", "MemAvailable", required, fix, formula)
    status = headroom_status(b.expected_total_bytes, have, MEMORY_HEADROOM)
    return finding(id="memory.expected", status=status, observed=fmt_bytes(have) + " available",
                   required=required, fix="" if status == "PASS" else fix, formula=formula)


def _worst(facts: HostFacts, b: MemoryBudget) -> Finding:
    formula = ("kernel_idle + sockets x (tcp_rmem[default] + tcp_wmem[default]) + user + processes"
               " <= MemAvailable (course notes)")
    required = fmt_bytes(b.worst_total_bytes)
    have = facts.mem_available_bytes
    if have is None:
        return unknown_finding("memory.worst_case", "MemAvailable", required,
                               "check MemAvailable in /proc/meminfo", formula)
    observed = fmt_bytes(have) + " available"
    if facts.tcp_rmem_bytes is None or facts.tcp_wmem_bytes is None:
        return finding(id="memory.worst_case", status="WARN", required=required, formula=formula,
                       observed=observed + "; tcp_rmem/tcp_wmem unknown (kernel defaults assumed)",
                       fix="cat /proc/sys/net/ipv4/tcp_rmem /proc/sys/net/ipv4/tcp_wmem on the host")
    if b.worst_total_bytes <= have:
        return finding(id="memory.worst_case", status="PASS", observed=observed, required=required,
                       formula=formula)
    # Scale both defaults down so the worst case fits in the headroom share (never below 4096,
    # the usual "min" field; buffers still autotune up to "max" when data is queued).
    room = max(0, int(MEMORY_HEADROOM * have) - b.kernel_idle_bytes - b.user_bytes - b.process_bytes)
    per_socket = room // max(1, b.sockets)
    total_default = b.send_buffers_bytes + b.recv_buffers_bytes
    rmem = max(4096, per_socket * b.recv_buffers_bytes // max(1, total_default))
    wmem = max(4096, per_socket * b.send_buffers_bytes // max(1, total_default))
    rmax, wmax = facts.tcp_rmem_bytes[2], facts.tcp_wmem_bytes[2]  # both known (checked above)
    fix = (f"sysctl -w net.ipv4.tcp_rmem='4096 {rmem} {rmax}' net.ipv4.tcp_wmem='4096 {wmem} {wmax}'"
           " (only if most connections will carry data at once)")
    return finding(id="memory.worst_case", status="WARN", observed=observed, required=required,
                   fix=fix, formula=formula)


def _tcp_mem(facts: HostFacts, b: MemoryBudget) -> Finding:
    formula = ("ceil(messages/s x residence_s) x ceil(truesize / page_size) pages"
               " <= tcp_mem (pressure, high)")
    required = f"{b.in_flight_pages:,} pages ({fmt_bytes(b.in_flight_bytes)})"
    if facts.tcp_mem_pages is None:
        return unknown_finding("memory.tcp_mem", "net.ipv4.tcp_mem", required,
                               "cat /proc/sys/net/ipv4/tcp_mem on the host", formula)
    low, pressure, high = facts.tcp_mem_pages
    observed = f"{low:,} {pressure:,} {high:,} pages (high = {fmt_bytes(high * b.page_size)})"
    if b.in_flight_pages <= pressure:
        return finding(id="memory.tcp_mem", status="PASS", observed=observed, required=required,
                       formula=formula)
    # Keep the kernel's ratios: pressure and high at 1.33x and 2x of low.
    new_low = math.ceil(b.in_flight_pages * 1.25)
    fix = f"sysctl -w net.ipv4.tcp_mem='{new_low} {new_low * 4 // 3} {new_low * 2}'"
    status = "FAIL" if b.in_flight_pages > high else "WARN"
    return finding(id="memory.tcp_mem", status=status, observed=observed, required=required,
                   fix=fix, formula=formula)
