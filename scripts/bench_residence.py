"""How long a message stays in socket buffers (the residence time of planner/memory.py's in-flight
term, Little's law: bytes in buffers = messages/s x truesize per message x residence time).

Runs inside a fresh network namespace (`unshare -n`, loopback up): `c10kplan serve --protocol
echo` (W workers) and the storm (P processes) holding N connections at each message rate, the
code `verify` runs. During each hold it samples `ss -tmnH` SAMPLES times and sums, over every
TCP socket, skmem r (rmem_alloc: bytes of skbs in the receive queue) + w (wmem_queued: bytes
in the write queue, kept until ACKed) + t (wmem_alloc, skbs handed down but not yet freed).
Each echo round trip passes through the server's receive queue and the storm's (and their
write queues until ACKed). Little's law gives the time one round trip spends in buffers:

    residence = mean(sum of r + w + t) / (round trips per second x truesize(message_size))

with truesize from planner/memory.py (832 B of sk_buff overhead + the payload, measured).
The tcp_mem figure of /proc/net/sockstat ("TCP: ... mem PAGES") is printed too: it also counts
memory reserved ahead (forward alloc, per-CPU reserves of up to net.core.mem_pcpu_rsv pages),
so it is coarser than the skmem sum.

    python scripts/bench_residence.py                               # N=20,000 at 0.25 0.5 1 msg/s
    python scripts/bench_residence.py --connections 20000 --rates 0.25 0.5 1 --duration 6

Sample output (build host, 2 vCPUs, kernel 6.18, 2026-12-01; the first run on a quiet host, the
second with other jobs saturating both CPUs: residence is a queueing delay):

    bench_residence: 20,000 connections, 64 B echo, 1 serve workers, 1 storm processes, in a fresh netns; load avg 1.3 0.6 0.2
    rate  round_trips/s  buffered_bytes  tcp_mem_pages  residence_us  p99_ms
    0.25  5,000          3,674           194            820           6.7
    0.5   10,000         6,272           106            700           4.6
    0.75  15,000         8,333           84             620           6.2
    1     20,000         12,275          84             685           2.4

    bench_residence: 20,000 connections, 64 B echo, 1 serve workers, 1 storm processes, in a fresh netns; load avg 9.6 5.9 2.8
    rate  round_trips/s  buffered_bytes  tcp_mem_pages  residence_us  p99_ms
    0.25  5,000          10,752          139            2,400         19.1
    0.5   10,000         163,699         274            18,270        535.0
    1     20,000         457,408         730            25,525        1350.7
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

from benchlib import add_netns_arguments, ensure_fresh_netns, load_average_text

from c10kplan.host.inspect import port_range, reserved_ports_in
from c10kplan.host.parse import parse_sockstat
from c10kplan.host.procfs import ProcFS
from c10kplan.planner.memory import truesize_bytes
from c10kplan.storm.config import StormConfig, auto_source_ips
from c10kplan.storm.runner import run_storm
from c10kplan.verify.server import start_server

MAX_CONNECTIONS = 100_000
SKMEM_FIELDS = ("r", "t", "w")  # rmem_alloc, wmem_alloc, wmem_queued (bytes)


def skmem_bytes(ss_output: str) -> int:
    """Sum of r + t + w over every `skmem:(r..,rb..,t..,tb..,f..,w..,...)` of `ss -tm` output."""
    total = 0
    for part in ss_output.split("skmem:(")[1:]:
        fields = part.split(")", 1)[0].split(",")
        for field in fields:
            name = field.rstrip("0123456789")
            if name in SKMEM_FIELDS:
                total += int(field[len(name):])
    return total


def measure(workers: int, processes: int, connections: int, rate: float, size: int,
            duration: float, samples: int) -> dict[str, float]:
    procfs = ProcFS()
    server = start_server(workers=workers)
    got: dict[str, list[int]] = {"bytes": [], "pages": []}
    try:
        def on_hold(run) -> None:
            run.pump(min(1.0, duration / 4))  # past the first messages of every connection
            for _ in range(samples):
                out = subprocess.run(["ss", "-tmnH"], capture_output=True, text=True, timeout=30).stdout
                got["bytes"].append(skmem_bytes(out))
                got["pages"].append(parse_sockstat(procfs.read("proc/net/sockstat")).get("TCP", {}).get("mem", 0))
                run.pump(duration / (2 * samples))

        low, high = port_range(procfs)  # each source address a quarter full, as verify binds them
        sources = auto_source_ips(server.host, connections, low, high, reserved_ports_in(procfs, low, high))
        cfg = StormConfig(host=server.host, port=server.port, connections=connections,
                          source_ips=sources,
                          processes=processes, message_size=size, message_rate=rate,
                          duration=duration, protocol="echo")
        result = run_storm(cfg, on_hold=on_hold)
    finally:
        server.close()
    round_trips = connections * rate
    buffered = statistics.mean(got["bytes"])
    return {
        "round_trips": round_trips, "buffered": buffered, "pages": statistics.mean(got["pages"]),
        "residence_us": buffered / (round_trips * truesize_bytes(size)) * 1e6,
        "p99_ms": result.message_latency_us.corrected.p99 / 1000, "held": result.held,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=20_000)
    ap.add_argument("--rates", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    ap.add_argument("--message-size", type=int, default=64)
    ap.add_argument("--duration", type=float, default=6.0)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--processes", type=int, default=1)
    add_netns_arguments(ap)
    args = ap.parse_args()
    if not 1 <= args.connections <= MAX_CONNECTIONS or not all(0 < r <= 10 for r in args.rates):
        raise SystemExit(f"--connections 1..{MAX_CONNECTIONS:,}, --rates in (0, 10]")
    if not 0 < args.duration <= 60 or not 1 <= args.samples <= 20:
        raise SystemExit("--duration (0, 60], --samples 1..20")
    where = ensure_fresh_netns(__file__, sys.argv[1:], disabled=args.no_netns)
    print(f"bench_residence: {args.connections:,} connections, {args.message_size} B echo,"
          f" {args.workers} serve workers, {args.processes} storm processes, {where};"
          f" load avg {load_average_text()}")
    print(f"{'rate':<6}{'round_trips/s':<15}{'buffered_bytes':<16}{'tcp_mem_pages':<15}{'residence_us':<14}p99_ms")
    for rate in args.rates:
        m = measure(args.workers, args.processes, args.connections, rate, args.message_size,
                    args.duration, args.samples)
        print(f"{rate:<6g}{m['round_trips']:<15,.0f}{m['buffered']:<16,.0f}{m['pages']:<15,.0f}"
              f"{m['residence_us']:<14,.0f}{m['p99_ms']:.1f}")


if __name__ == "__main__":
    main()
