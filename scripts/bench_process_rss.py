"""RSS of the processes `verify` runs: an idle serve worker, an idle storm process, and what
each grows by per connection it holds. These are the planner's bundled-workload constants
(planner/memory.py: SERVER_PROCESS_RSS, STORM_PROCESS_RSS, SERVER_BYTES_PER_CONNECTION,
STORM_BYTES_PER_CONNECTION).

Runs inside a fresh network namespace (`unshare -n`, loopback up). Starts `c10kplan serve
--protocol echo` with W workers exactly as verify does (verify/server.py), then the storm with
P processes (storm/runner.py, the code verify runs) holding N idle connections, so each process
holds N/W (N/P) connections, as in verify's 1M run (~19,600 each). Measured:
- idle worker RSS: VmRSS of each worker before any connection (the server's stats);
- idle storm process RSS: VmRSS of each storm process before its first connect (its own report);
- per connection: (RSS while holding - idle RSS) / connections held, per side.
RSS counts pages a forked process still shares with its parent, exactly as verify's
"RSS of every process" sums it, so the figures are comparable with that sum.

    python scripts/bench_process_rss.py                          # W=2, P=2, N=39,000
    python scripts/bench_process_rss.py --workers 2 --processes 2 --connections 39000 --repeat 2

Sample output (build host, 2 vCPUs shared with other jobs, kernel 6.18, Python 3.11, 2026-12-01):

    bench_process_rss: 39,000 idle connections, 2 serve workers (echo), 2 storm processes, in a fresh netns; load avg 0.7 0.3 0.1
    python scripts/bench_process_rss.py --repeat 3      (2026-12-01 12:20 UTC, load avg 5.9 26.3 31.3)
    run  worker idle  storm idle   worker held  storm held   server B/conn  storm B/conn
    1    28.4 MiB     27.1 MiB     30.4 MiB     34.3 MiB     111            384
    2    28.4 MiB     28.2 MiB     30.5 MiB     35.6 MiB     111            400
    3    28.4 MiB     29.8 MiB     30.4 MiB     37.3 MiB     111            400
    (Before the storm made each connection's reply queue at its first send: storm 1,036-1,115 B/conn.)
"""

from __future__ import annotations

import argparse
import sys

from benchlib import add_netns_arguments, ensure_fresh_netns, load_average_text

from c10kplan.host.procfs import ProcFS
from c10kplan.planner.findings import fmt_bytes
from c10kplan.host.inspect import port_range, reserved_ports_in
from c10kplan.storm.config import StormConfig, auto_source_ips
from c10kplan.storm.runner import run_storm
from c10kplan.host.process import rss_bytes
from c10kplan.verify.server import server_stats, start_server

MAX_CONNECTIONS = 100_000  # a bound: never more than this from one run of the script


def measure(workers: int, processes: int, connections: int) -> dict[str, float]:
    procfs = ProcFS()
    server = start_server(workers=workers)
    try:
        idle = server_stats(server) or {}
        worker_idle = [w["rss_bytes"] for w in idle.get("workers", [])]
        pids = [w["pid"] for w in idle.get("workers", [])]
        held: dict[str, float] = {}

        def on_hold(run) -> None:
            run.pump(1.0)  # let the last accepts and allocations settle
            held["server"] = rss_bytes(procfs, pids)
            held["storm"] = rss_bytes(procfs, run.pids)
            held["storm_idle"] = run.rss_start_bytes
            held["active"] = (server_stats(server) or {}).get("total", {}).get("active", 0)

        low, high = port_range(procfs)  # each source address a quarter full, as verify binds them
        sources = auto_source_ips(server.host, connections, low, high, reserved_ports_in(procfs, low, high))
        cfg = StormConfig(host=server.host, port=server.port, connections=connections,
                          source_ips=sources, processes=processes, message_rate=0.0, duration=2.0, protocol="echo")
        result = run_storm(cfg, on_hold=on_hold)
    finally:
        server.close()
    if result.held != connections or held.get("active") != connections:
        raise SystemExit(f"held {result.held} (server {held.get('active')}) of {connections}")
    server_idle = sum(worker_idle)
    return {
        "worker_idle": server_idle / workers, "storm_idle": held["storm_idle"] / processes,
        "worker_held": held["server"] / workers, "storm_held": held["storm"] / processes,
        "server_per_conn": (held["server"] - server_idle) / connections,
        "storm_per_conn": (held["storm"] - held["storm_idle"]) / connections,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--connections", type=int, default=39_000)
    ap.add_argument("--repeat", type=int, default=1)
    add_netns_arguments(ap)
    args = ap.parse_args()
    if not 1 <= args.connections <= MAX_CONNECTIONS or not 1 <= args.repeat <= 10:
        raise SystemExit(f"--connections 1..{MAX_CONNECTIONS:,}, --repeat 1..10")
    where = ensure_fresh_netns(__file__, sys.argv[1:], disabled=args.no_netns)
    print(f"bench_process_rss: {args.connections:,} idle connections, {args.workers} serve workers (echo),"
          f" {args.processes} storm processes, {where}; load avg {load_average_text()}")
    cols = ("worker_idle", "storm_idle", "worker_held", "storm_held")
    print(f"{'run':<5}" + "".join(f"{c.replace('_', ' '):<13}" for c in cols) + "server B/conn  storm B/conn")
    for i in range(1, args.repeat + 1):
        m = measure(args.workers, args.processes, args.connections)
        print(f"{i:<5}" + "".join(f"{fmt_bytes(m[c], unit='MiB'):<13}" for c in cols)
              + f"{m['server_per_conn']:<15.0f}{m['storm_per_conn']:.0f}")


if __name__ == "__main__":
    main()
