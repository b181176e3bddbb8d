"""Memory budget: three kernel figures side by side, plus user-space buffers, against
MemAvailable and tcp_mem.

1. Idle kernel cost: sockets x KERNEL_BYTES_PER_SOCKET (or a calibrated value). This is what N
   idle connections really cost.
2. The course notes' worst case: sockets x (tcp_rmem[default] + tcp_wmem[default]) bytes, as if
   every socket's buffers were filled to their default size at once.
3. In-flight data: sockets x ceil(message_size / page_size) pages. The kernel charges socket
   buffer memory to tcp_mem in whole pages (sk_mem_pages() rounds up to PAGE_SIZE; it was
   SK_MEM_QUANTUM before 6.0), so each socket holding one message costs at least one page. The
   skb overhead in truesize (~0.5 KiB per skb) is ignored: the page minimum dominates small
   messages. tcp_mem is "low pressure high" in PAGES, for all TCP sockets of the host together.
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

# Kernel memory of one idle, established TCP socket registered in epoll, in bytes.
# Measured on this project's build host (kernel 6.18, x86_64): 5,000 loopback connection pairs
# (10,000 sockets, each in an epoll set) inside `unshare -n`; /proc/meminfo Slab grew by
# 4,195 B/socket and MemAvailable fell by 4,013 B/socket. /proc/slabinfo attributes it to:
#   TCP (struct tcp_sock)      2,364 B   sock_inode_cache (socket + inode)  823 B
#   eventpoll_epi (epitem)       255 B   dentry 192 B, filp (struct file)  191 B
#   lsm/kmalloc/anon_vma odds   ~150 B   => slab total 4,029 B/socket
# Socket buffers are not included: an idle socket holds none. Override it with a measured
# value through `--calibration FILE` (written by `verify --calibrate`).
KERNEL_BYTES_PER_SOCKET = 4096

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
    kernel_bytes_per_socket: int
    kernel_bytes_source: str  # "constant (measured, see memory.py)" or "calibration: ..."
    user_bytes_per_connection: int
    page_size: int
    kernel_idle_bytes: int  # 1. sockets x kernel_bytes_per_socket
    send_buffers_bytes: int  # 2a. sockets x tcp_wmem[default]
    recv_buffers_bytes: int  # 2b. sockets x tcp_rmem[default]
    worst_case_bytes: int  # 2. send + recv (the course notes)
    in_flight_pages: int  # 3. sockets x ceil(message_size / page_size)
    in_flight_bytes: int
    user_bytes: int  # sockets x user_bytes_per_connection
    expected_total_bytes: int  # kernel idle + in flight + user
    worst_total_bytes: int  # kernel idle + worst case + user
    mem_available_bytes: int | None
    working: list[Step]


def memory_budget(
    facts: HostFacts, target: Target, calibration: Calibration | None = None
) -> tuple[MemoryBudget, list[Finding]]:
    sockets = target.sockets
    if calibration is not None:
        per_socket = calibration.kernel_bytes_per_socket
        source = calibration_source(calibration)
    else:
        per_socket, source = KERNEL_BYTES_PER_SOCKET, "constant (measured slab cost, see planner/memory.py)"
    per_conn_user = target.app_buffer
    if calibration is not None and calibration.user_bytes_per_connection is not None:
        per_conn_user = calibration.user_bytes_per_connection
    wmem = facts.tcp_wmem_bytes[1] if facts.tcp_wmem_bytes else DEFAULT_TCP_WMEM
    rmem = facts.tcp_rmem_bytes[1] if facts.tcp_rmem_bytes else DEFAULT_TCP_RMEM
    page = facts.page_size_bytes or DEFAULT_PAGE_SIZE

    idle = sockets * per_socket
    send = sockets * wmem
    recv = sockets * rmem
    pages_per_socket = math.ceil(target.message_size / page)
    in_flight_pages = sockets * pages_per_socket
    user = sockets * per_conn_user
    expected = idle + in_flight_pages * page + user
    worst = idle + send + recv + user

    working = [
        step("kernel_idle_bytes", idle, "bytes", "sockets x kernel_bytes_per_socket",
             sockets=sockets, kernel_bytes_per_socket=per_socket),
        step("send_buffers_bytes", send, "bytes", "sockets x tcp_wmem[default]",
             sockets=sockets, tcp_wmem_default=wmem),
        step("recv_buffers_bytes", recv, "bytes", "sockets x tcp_rmem[default]",
             sockets=sockets, tcp_rmem_default=rmem),
        step("in_flight_pages", in_flight_pages, "pages", "sockets x ceil(message_size / page_size)",
             sockets=sockets, message_size=target.message_size, page_size=page),
        step("user_bytes", user, "bytes", "sockets x user_bytes_per_connection",
             sockets=sockets, user_bytes_per_connection=per_conn_user),
        step("expected_total_bytes", expected, "bytes",
             "kernel_idle + in_flight_pages x page_size + user",
             kernel_idle=idle, in_flight_bytes=in_flight_pages * page, user=user),
        step("worst_total_bytes", worst, "bytes", "kernel_idle + send_buffers + recv_buffers + user",
             kernel_idle=idle, send_buffers=send, recv_buffers=recv, user=user),
    ]
    budget = MemoryBudget.model_construct(
        sockets=sockets, kernel_bytes_per_socket=per_socket, kernel_bytes_source=source,
        user_bytes_per_connection=per_conn_user, page_size=page, kernel_idle_bytes=idle,
        send_buffers_bytes=send, recv_buffers_bytes=recv, worst_case_bytes=send + recv,
        in_flight_pages=in_flight_pages, in_flight_bytes=in_flight_pages * page, user_bytes=user,
        expected_total_bytes=expected, worst_total_bytes=worst,
        mem_available_bytes=facts.mem_available_bytes, working=working,
    )
    return budget, [_expected(facts, budget), _worst(facts, budget), _tcp_mem(facts, budget)]


def _expected(facts: HostFacts, b: MemoryBudget) -> Finding:
    formula = f"kernel_idle + in_flight + user <= MemAvailable (WARN above {MEMORY_HEADROOM:.0%})"
    required = fmt_bytes(b.expected_total_bytes)
    fix = "add memory, or split the connections across hosts"
    have = facts.mem_available_bytes
    if have is None:
        return unknown_finding("memory.expected", "MemAvailable", required, fix, formula)
    status = headroom_status(b.expected_total_bytes, have, MEMORY_HEADROOM)
    return finding(id="memory.expected", status=status, observed=fmt_bytes(have) + " available",
                   required=required, fix="" if status == "PASS" else fix, formula=formula)


def _worst(facts: HostFacts, b: MemoryBudget) -> Finding:
    formula = "kernel_idle + sockets x (tcp_rmem[default] + tcp_wmem[default]) + user <= MemAvailable"
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
    room = max(0, int(MEMORY_HEADROOM * have) - b.kernel_idle_bytes - b.user_bytes)
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
    formula = "sockets x ceil(message_size / page_size) pages <= tcp_mem (pressure, high)"
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
