"""Server RSS per idle connection: `c10kplan serve --protocol discard` holding 15,000 connections.

Runs itself inside a fresh network namespace (`unshare -n`, loopback brought up) so the 15,000
client ports do not come out of the host's range. The client is a second process with plain
nonblocking sockets. The figure is (worker RSS with N idle connections - worker RSS with none) / N,
read from the server's own stats (VmRSS of /proc/self/status in the worker). Kernel memory for
the sockets (skbuffs, struct sock, epoll items) is not in RSS and is not counted here; the
planner budgets it separately. Target: <= 512 bytes per connection.

    python scripts/bench_idle_rss.py                       # epoll level, 15,000 connections
    python scripts/bench_idle_rss.py --backends epoll poll --trigger edge --connections 15000

Sample output (measured here, 2 cores shared with other jobs):

    bench_idle_rss: 15,000 idle connections per server, in a fresh netns; load avg 2.1 1.8 2.4
    backend  trigger         rss idle        rss at N        delta  bytes/conn  target  verdict
    epoll    level           28.1 MiB        29.0 MiB      0.9 MiB          61     512  PASS
    poll     level           28.2 MiB        30.1 MiB      1.9 MiB         132     512  PASS
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time

from benchlib import add_netns_arguments, ensure_fresh_netns, load_average_text, open_connections

from c10kplan.planner.findings import fmt_bytes
from c10kplan.reactor.launch import ServerProcess

TARGET = 512


def hold_connections(port: int, n: int, conn) -> None:
    """Open n nonblocking connections in paced batches, report, hold them until told to stop."""
    socks = open_connections("127.0.0.1", port, n)
    conn.send(len(socks))
    conn.recv()  # wait for "done"
    for s in socks:
        s.close()


def measure(backend: str, trigger: str, n: int) -> tuple[int, int]:
    args = ["--backend", backend, "--protocol", "discard", "--workers", "1"]
    if trigger == "edge":
        args += ["--trigger", "edge"]
    with ServerProcess(args) as srv:
        time.sleep(0.3)
        idle = srv.stats()["total"]["rss_bytes"]
        parent, child = mp.Pipe()
        proc = mp.get_context("fork").Process(target=hold_connections, args=(srv.port, n, child))
        proc.start()
        parent.recv()
        deadline = time.monotonic() + 60
        while (doc := srv.stats()["total"])["active"] < n:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {doc['active']} of {n} connections arrived: {doc}")
            time.sleep(0.1)
        time.sleep(0.5)
        loaded = srv.stats()["total"]["rss_bytes"]
        parent.send("done")
        proc.join(30)
    return idle, loaded


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=15000)
    ap.add_argument("--backends", nargs="*", default=["epoll"])
    ap.add_argument("--trigger", default="level", choices=["level", "edge"])
    add_netns_arguments(ap)
    args = ap.parse_args()
    where = ensure_fresh_netns(__file__, sys.argv[1:], disabled=args.no_netns)
    load = load_average_text()
    print(f"bench_idle_rss: {args.connections:,} idle connections per server, {where}; load avg {load}")
    print(f"{'backend':<9}{'trigger':<9}{'rss idle':>15}{'rss at N':>16}{'delta':>13}"
          f"{'bytes/conn':>12}{'target':>8}  verdict")
    for backend in args.backends:
        trigger = args.trigger if backend == "epoll" else "level"
        idle, loaded = measure(backend, trigger, args.connections)
        per = (loaded - idle) / args.connections
        verdict = "PASS" if per <= TARGET else "FAIL"
        print(f"{backend:<9}{trigger:<9}{fmt_bytes(idle, unit='MiB'):>15}{fmt_bytes(loaded, unit='MiB'):>16}"
              f"{fmt_bytes(loaded - idle, unit='MiB'):>13}"
              f"{per:>12.0f}{TARGET:>8}  {verdict}")


if __name__ == "__main__":
    main()
