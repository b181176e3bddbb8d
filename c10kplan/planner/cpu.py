"""CPU budget: messages/s x CPU time per message against the host's CPUs.

Some facts about the cost of a message on Linux:
- On loopback a send() runs the receiver's TCP input path (NET_RX softirq) on the sending CPU
  before the syscall returns. So most of an echo round trip is kernel time, accounted as
  softirq time of the CPU (/proc/stat); whether it also lands in utime / stime of a process
  depends on the kernel's accounting (CONFIG_IRQ_TIME_ACCOUNTING) and on where it ran
  (ksoftirqd, an idle CPU): the host's busy time is the measure.
- A sparse echo round trip is three TCP segments, not two: the request, the reply (carrying
  the ACK of the request), and the client's ACK of the reply, sent at once as its own segment.
  A connection that received nothing for longer than its RTO re-enters quick-ACK mode
  (tcp_event_data_recv in net/ipv4/tcp_input.c), so at 1 msg/s every reply is ACKed at once;
  measured with nstat at 20,000 connections x 1 msg/s: 300,609 segments in 5 s of 20,000
  round trips/s (3.0 per round trip), TcpExtDelayedACKs 0.
- The cost per message falls as the load grows: one epoll_wait returns more ready events, so
  its syscall and the loop's fixed work are shared by more messages. It rises with the number
  of connections: each socket is touched once per message and is cold in the CPU caches.
- One process of the bundled reactor or storm runs on one CPU at a time; `cores` here is the
  host's total, so the load must be spread over enough processes (see fds / `--workers`).
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
    headroom_status,
    largest_passing,
    step,
    unknown_finding,
)
from c10kplan.planner.target import Target

# CPU time (microseconds) per echo round trip of 64 B, server and storm, near the CPUs' limit, at
# four numbers of connections; between them interpolated in log(connections), below the first
# its figure, above the last extrapolated along the last segment (so 1M is priced 57 us: an
# extrapolation, on the safe side). Measured by `c10kplan verify --netns --force --duration 10`
# on a quiet 2-core VM (kernel 6.18, 2026-12-01 12:2x-12:4x UTC, load < 3), at the highest rate
# each scale held (p99 <= 54 ms, nothing behind schedule): 20,000 x 5 msg/s, 50,000 x 1.5,
# 100,000 x 0.5, 200,000 x 0.25. Each figure is the host's busy time over the hold (softirq
# included) / replies, shared between server and storm by their own utime + stime
# (verify/measure.py). The cost grows with the connections (each message touches a socket,
# its epoll item and its records, colder in the caches the more there are) and falls with the
# load (one wakeup serves more messages): at 20,000 connections 36.9 us at 5,000 round trips/s,
# 15.4 us at 100,000. The plan prices the load near its limit, where verdicts are decided, so
# it undercounts a light load (informational: verify's CPU rows then read above the plan).
# (The earlier single figures, 26.5 + 28.6 us, were measured while other jobs shared the host.)
# `--calibration FILE` overrides them (server_cpu_us_per_message, client_cpu_us_per_message),
# as written by `verify --calibrate` on the user's own host.
ECHO_COST_POINTS: tuple[tuple[int, float, float], ...] = (
    (20_000, 6.0, 9.4),     # 100,000 round trips/s: 1.52 CPUs busy, p99 39 ms
    (50_000, 8.1, 10.9),    # 75,000/s: 1.42 CPUs, p99 29 ms
    (100_000, 11.6, 15.2),  # 50,000/s: 1.34 CPUs, p99 5.7 ms (75,000/s fell behind: saturated)
    (200_000, 16.1, 19.9),  # 50,000/s: 1.78 CPUs, p99 53 ms
)

# What a protocol adds per message, (server us, storm us), over echo's: an HTTP/1.1 keep-alive
# request of 64 B answered by `serve --protocol http` (a 2 B body, ~80 B of headers; h11 parses
# on the storm side), or a 64 B masked WebSocket text frame echoed by `serve --protocol
# websocket` (RFC 6455 codec both sides). A message is the same TCP round trip as an echo one
# (three segments, a few dozen bytes more), so the kernel's share is echo's; what the protocol
# adds is user-space work, measured as the processes' own utime + stime per message over echo's
# in one session: `python scripts/bench_verify_protocols.py --measure-cpu` (verify --protocol P
# --connections 20000 --message-rate 0.5 --duration 20 --netns, 10,000 messages/s, 2-core VM
# with other jobs at load 5-8; 2026-12-01). Own us per message, server / storm, two sessions:
# echo 8.7 / 13.5 and 9.6 / 14.5; websocket 13.7 / 18.1 and 14.8 / 19.3: + 5.1 / + 4.7 (the
# means); http (the storm replaying a response it parsed before: storm/protocols/http.py)
# 15.3 / 16.7: + 5.7 / + 2.2 (before the replay the storm's http cost +38.8: h11 per response).
# A user's own server is priced by the bundled server's figure of its protocol until `verify
# --target --pid --calibrate` measures it.
PROTOCOL_EXTRA_US: dict[str, tuple[float, float]] = {
    "echo": (0.0, 0.0),
    "http": (5.7, 2.2),
    "websocket": (5.1, 4.7),
}


def us_per_message(protocol: str, connections: int) -> tuple[float, float]:
    """(server us, client us) of CPU per message of `protocol` at `connections` (ECHO_COST_POINTS
    and PROTOCOL_EXTRA_US)."""
    pts = ECHO_COST_POINTS
    x = math.log(max(connections, pts[0][0]))
    for (c0, s0, k0), (c1, s1, k1) in zip(pts, pts[1:]):
        if connections <= c1 or (c1, s1, k1) == pts[-1]:
            f = (x - math.log(c0)) / (math.log(c1) - math.log(c0))
            server, client = s0 + f * (s1 - s0), k0 + f * (k1 - k0)
            break
    extra_s, extra_c = PROTOCOL_EXTRA_US[protocol]
    return round(server + extra_s, 2), round(client + extra_c, 2)


# Share of the CPUs the target may use before we WARN. The messages arrive on their own clock
# (open loop), so queueing delay grows sharply as utilisation nears 1: at 70 % the mean wait is
# about 2.3 service times (M/M/1: rho / (1 - rho)); at 90 % it is 9. Above 100 % the queue grows
# without bound: latency rises for as long as the load lasts (FAIL).
CPU_HEADROOM = 0.7

CONSTANT_SOURCE = "constant (measured, see docs/check.md, CPU per message)"


class CpuBudget(BaseModel):
    model_config = RECORD_CONFIG

    messages_per_s: float  # connections x message_rate (one message = one round trip of the protocol)
    server_us_per_message: float  # constant or calibration
    client_us_per_message: float
    cost_source: str  # where the two figures come from
    us_per_message: float  # server (if role serves) + client (if role connects)
    required_cores: float  # messages_per_s x us_per_message / 1e6
    cores: int | None  # facts.cpu_count
    max_messages_per_s: float | None  # what fits in CPU_HEADROOM of the cores; None if unknown
    # Processes each side needs so that none runs above CPU_HEADROOM of one CPU (one process of
    # the bundled reactor or storm runs on one CPU at a time); 0 for a side the role lacks, 1
    # when idle. Never more than the CPUs (more would only add context switches). The planner
    # runs max(this, what the fd limit needs).
    server_processes: int
    client_processes: int
    working: list[Step]


def cpu_budget(
    facts: HostFacts, target: Target, calibration: Calibration | None = None
) -> tuple[CpuBudget, list[Finding]]:
    server_const, client_const = us_per_message(target.protocol, target.connections)
    server_us, server_src = _cost(calibration, "server_cpu_us_per_message", server_const, target.protocol)
    client_us, client_src = _cost(calibration, "client_cpu_us_per_message", client_const, target.protocol)
    source = (server_src if server_src == client_src
              else f"server: {server_src}; client: {client_src}")
    messages = target.connections * target.message_rate
    per_message = (server_us if target.serves else 0.0) + (client_us if target.connects else 0.0)
    server_cores = messages * server_us / 1e6 if target.serves else 0.0
    client_cores = messages * client_us / 1e6 if target.connects else 0.0
    required = server_cores + client_cores  # = messages x per_message / 1e6
    cores = facts.cpu_count
    fit = CPU_HEADROOM * cores * 1e6 / per_message if cores else None
    server_procs = _processes_for(server_cores, cores) if target.serves else 0
    client_procs = _processes_for(client_cores, cores) if target.connects else 0
    working = [
        step("messages_per_s", messages, "messages/s", "connections x message_rate",
             connections=target.connections, message_rate=target.message_rate),
        step("us_per_message", per_message, "us CPU",
             "server_us (if role serves) + client_us (if role connects), each at this many connections"
             " (or calibrated)", role=target.role, connections=target.connections,
             server_us=server_us, client_us=client_us),
        step("required_cores", required, "cores", "messages_per_s x us_per_message / 1e6",
             messages_per_s=messages, us_per_message=per_message),
        step("max_messages_per_s", fit, "messages/s",
             f"{CPU_HEADROOM} x cpus x 1e6 / us_per_message", cpus=cores,
             us_per_message=per_message),
        step("server_processes", server_procs, "processes",
             f"min(cpus, ceil(messages_per_s x server_us / 1e6 / {CPU_HEADROOM})) if role serves else 0",
             messages_per_s=messages, server_us=server_us, cpus=cores),
        step("client_processes", client_procs, "processes",
             f"min(cpus, ceil(messages_per_s x client_us / 1e6 / {CPU_HEADROOM})) if role connects else 0",
             messages_per_s=messages, client_us=client_us, cpus=cores),
    ]
    budget = CpuBudget.model_construct(
        messages_per_s=messages, server_us_per_message=server_us,
        client_us_per_message=client_us, cost_source=source, us_per_message=per_message,
        required_cores=required, cores=cores, max_messages_per_s=fit,
        server_processes=server_procs, client_processes=client_procs, working=working,
    )
    return budget, [_finding(target, budget, calibration)]


def _cost(calibration: Calibration | None, field: str, constant: float, protocol: str) -> tuple[float, str]:
    measured = getattr(calibration, field, None)
    if measured is None:
        return constant, CONSTANT_SOURCE if protocol == "echo" else f"{CONSTANT_SOURCE[:-1]}, {protocol})"
    return measured, calibration_source(calibration)  # type: ignore[arg-type]


def _finding(target: Target, b: CpuBudget, calibration: Calibration | None) -> Finding:
    sides = {"server": "server_us", "client": "client_us", "both": "(server_us + client_us)"}
    formula = (f"connections x message_rate x {sides[target.role]} / 1e6 <= CPUs"
               f" (WARN above {CPU_HEADROOM:.0%})")
    if b.messages_per_s == 0:
        observed = f"{b.cores} CPUs" if b.cores else "CPU count: unknown"
        return finding(id="cpu.messages", status="PASS", observed=observed,
                       required="no message load (idle connections)", formula=formula)
    required = f"{b.required_cores:.2f} cores for {b.messages_per_s:,.0f} messages/s"
    if not b.cores:
        return unknown_finding(
            "cpu.messages", "CPU count", required,
            f"count the CPUs with `nproc` on the host: {cpus_for(b.required_cores)} keep"
            f" it under {CPU_HEADROOM:.0%}", formula)
    status = headroom_status(b.required_cores, b.cores, CPU_HEADROOM)
    fix = "" if status == "PASS" else _fix(target, b, calibration)
    return finding(id="cpu.messages", status=status, observed=f"{b.cores} CPUs",
                   required=required, fix=fix, formula=formula)


def _fix(target: Target, b: CpuBudget, calibration: Calibration | None) -> str:
    """What fits at the CPU_HEADROOM mark on this host, and what the target would need."""
    fit = b.max_messages_per_s or 0.0
    rate = _floor3(fit / target.connections)
    options = [f"--message-rate {rate} for {target.connections:,} connections"]
    connections = _connections_fitting(target, calibration, CPU_HEADROOM * (b.cores or 0))
    if connections >= 1:
        options.append(f"--connections {connections} at {target.message_rate:g} msg/s")
    text = (f"at most {math.floor(fit):,} messages/s fit in {CPU_HEADROOM:.0%} of {b.cores} CPUs:"
            f" {', or '.join(options)}; or {cpus_for(b.required_cores)} CPUs")
    if target.role == "both":
        server = b.messages_per_s * b.server_us_per_message / 1e6
        text += (f"; or the load client on other hosts (frees {b.client_us_per_message:g} us per"
                 f" message): role server needs {server:.2f} cores, {cpus_for(server)} CPUs")
    return text


def _connections_fitting(target: Target, calibration: Calibration | None, cores: float) -> int:
    """The most connections at the target's rate whose messages fit in `cores`, each count
    priced at its own cost per message (it grows with the connections: us_per_message; a
    calibrated side keeps its measured figure)."""
    def need(n: int) -> float:
        server_const, client_const = us_per_message(target.protocol, n)
        server = _cost(calibration, "server_cpu_us_per_message", server_const, target.protocol)[0]
        client = _cost(calibration, "client_cpu_us_per_message", client_const, target.protocol)[0]
        per = (server if target.serves else 0.0) + (client if target.connects else 0.0)
        return n * target.message_rate * per / 1e6

    # The target's own count does not fit (the fix is only written then): the search's bound.
    return largest_passing(lambda n: need(n) <= cores, target.connections)


def _processes_for(cores_needed: float, cpus: int | None) -> int:
    """Processes that keep each at or under CPU_HEADROOM of one CPU, at most one per CPU."""
    return min(cpus_for(cores_needed), cpus) if cpus else cpus_for(cores_needed)


def cpus_for(cores: float) -> int:
    """CPUs that keep `cores` of load at or under CPU_HEADROOM (rounded to 1e-9 first, so that
    1.4 / 0.7 is 2, not 3)."""
    return max(1, math.ceil(round(cores / CPU_HEADROOM, 9)))


def _floor3(x: float) -> str:
    """x rounded down to 3 significant digits (whole numbers kept whole), as a CLI value:
    0.24561 -> "0.245", 12.34 -> "12.3", 24561.4 -> "24561". Down, so the value still fits."""
    if x <= 0:
        return "0"
    decimals = max(0, 2 - math.floor(math.log10(x)))
    if decimals == 0:
        return str(math.floor(x))
    return f"{math.floor(x * 10**decimals) / 10**decimals:.{decimals}f}".rstrip("0").rstrip(".")
