"""User-space bytes per idle connection, storm and serve, per protocol, at 18,000 connections.

One storm process holds N connections to one `c10kplan serve --workers 1` of the same protocol
(echo, http, websocket), idle after the handshake (the first HTTP response, the WebSocket
upgrade). Storm figure: (VmRSS of the storm process while holding - its VmRSS before its first
connect) / N. Serve figure: (worker VmRSS while holding - worker VmRSS with none) / N. Kernel
memory of the sockets is not in RSS (the planner budgets it apart). Runs in a fresh network
namespace (`unshare -n`) so the N client ports do not come out of the host's range. Targets:
storm <= 2 KiB per idle connection (issue 14), serve a few hundred bytes over echo.

    python scripts/bench_storm_rss.py                          # echo, http, websocket at 18,000
    python scripts/bench_storm_rss.py --protocols http --connections 5000

Sample output (measured here, 2 cores shared with other jobs):

    bench_storm_rss: 18,000 idle connections, 1 storm process, 1 serve worker, in a fresh netns; load avg 5.0 2.8 1.4
    protocol    storm rss 0   storm rss N  storm B/conn  serve B/conn  established  verdict
    echo           25.8 MiB      45.4 MiB          1146            60        18000  PASS
    http           27.4 MiB      46.0 MiB          1084            59        18000  PASS
    websocket      28.7 MiB      48.4 MiB          1149           124        18000  PASS
"""

from __future__ import annotations

import argparse
import sys
import time

from benchlib import add_netns_arguments, ensure_fresh_netns, load_average_text

from c10kplan.host.procfs import ProcFS
from c10kplan.planner.findings import fmt_bytes
from c10kplan.storm.config import StormConfig
from c10kplan.storm.runner import run_storm
from c10kplan.host.process import rss_bytes
from c10kplan.verify.server import start_server

STORM_TARGET = 2048


def measure(protocol: str, n: int, connect_rate: float) -> dict:
    srv = start_server(workers=1, protocol=protocol)
    try:
        time.sleep(0.3)  # let the worker settle before its idle figure (no connection exists)
        serve_idle = srv.stats()["total"]["rss_bytes"]
        got: dict = {}

        def on_hold(run) -> None:
            time.sleep(0.5)  # connections established and idle: the figure is of the held state
            got["storm_rss"] = rss_bytes(ProcFS(), run.pids)
            got["storm_rss0"] = run.rss_start_bytes
            got["serve_rss"] = srv.stats()["total"]["rss_bytes"]

        cfg = StormConfig(host=srv.host, port=srv.port, connections=n, processes=1, duration=1.0,
                          connect_rate=connect_rate, protocol=protocol, connect_timeout=20,
                          server_name=f"{srv.host}:{srv.port}")
        res = run_storm(cfg, on_hold=on_hold)
    finally:
        srv.close()
    got["serve_idle"] = serve_idle
    got["established"] = res.established
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=18_000)
    ap.add_argument("--protocols", nargs="*", default=["echo", "http", "websocket"])
    ap.add_argument("--connect-rate", type=float, default=10_000)
    add_netns_arguments(ap)
    args = ap.parse_args()
    where = ensure_fresh_netns(__file__, sys.argv[1:], disabled=args.no_netns)
    n = args.connections
    print(f"bench_storm_rss: {n:,} idle connections, 1 storm process, 1 serve worker, {where}; "
          f"load avg {load_average_text()}")
    print(f"{'protocol':<10}{'storm rss 0':>13}{'storm rss N':>14}{'storm B/conn':>14}{'serve B/conn':>14}"
          f"{'established':>13}  verdict")
    for proto in args.protocols:
        m = measure(proto, n, args.connect_rate)
        storm = (m["storm_rss"] - m["storm_rss0"]) / n
        serve = (m["serve_rss"] - m["serve_idle"]) / n
        ok = storm <= STORM_TARGET and m["established"] == n
        print(f"{proto:<10}{fmt_bytes(m['storm_rss0'], unit='MiB'):>13}{fmt_bytes(m['storm_rss'], unit='MiB'):>14}"
              f"{storm:>14.0f}{serve:>14.0f}{m['established']:>13}  {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
