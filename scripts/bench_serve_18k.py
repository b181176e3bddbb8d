"""18,000 concurrent connections on ONE `c10kplan serve` worker, all echoing.

Runs itself inside a fresh network namespace (`unshare -n`). The worker raises its soft
RLIMIT_NOFILE to the hard limit (20,000 here, not raisable), so 18,000 connections fit in one
process. Two client processes open 9,000 connections each, wait until the server reports all
18,000 active, then run --rounds rounds in which EVERY connection sends a 64-byte message and
must get exactly it back. Prints per-round time and throughput, the server's RSS, and a verdict.

    python scripts/bench_serve_18k.py
    python scripts/bench_serve_18k.py --connections 18000 --rounds 5 --trigger edge

Sample output (measured here, 2 cores shared with other jobs):

    bench_serve_18k: 18,000 connections, 1 worker (epoll level), 3 rounds of 64 B; load avg 2.1 1.8 2.4
    connected: 18,000 active on the worker in 7.8 s (rejected 0)
    round    echoed   time (ms)    msgs/s
    1        18,000         681    26,420
    2        18,000         588    30,592
    3        18,000         457    39,401
    server: rss 29.3 MiB, errors {}; verdict PASS (18,000 held and every one echoed in every round)
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import select
import sys
import time

from benchlib import add_netns_arguments, ensure_fresh_netns, load_average_text, open_connections

from c10kplan.planner.findings import fmt_bytes
from c10kplan.reactor.launch import ServerProcess


def client(port: int, n: int, rounds: int, size: int, conn) -> None:
    """Open n connections; per round: send on all, wait for every echo; report (ok, seconds)."""
    socks = open_connections("127.0.0.1", port, n)
    ep = select.epoll()
    for s in socks:
        ep.register(s.fileno(), select.EPOLLIN)
    conn.send(len(socks))
    results = []
    for r in range(rounds):
        conn.recv()  # go
        msg = (b"%08d" % r) * (size // 8)
        want = {s.fileno(): len(msg) for s in socks}
        got_ok = 0
        t0 = time.perf_counter()
        for s in socks:
            s.send(msg)  # 64 B always fits an empty send buffer
        deadline = time.monotonic() + 60
        while want and time.monotonic() < deadline:
            for fd, _ev in ep.poll(1.0):
                data = os.read(fd, 4096)
                if not data:
                    ep.unregister(fd)
                    want.pop(fd, None)
                    continue
                left = want[fd] - len(data)
                if left <= 0:
                    del want[fd]
                    got_ok += data.endswith(msg[-8:])
                else:
                    want[fd] = left
        results.append((got_ok, time.perf_counter() - t0))
        conn.send(results[-1])
    conn.recv()
    for s in socks:
        s.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=18000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--client-procs", type=int, default=2)
    ap.add_argument("--backend", default="epoll")
    ap.add_argument("--trigger", default="level", choices=["level", "edge"])
    add_netns_arguments(ap)
    args = ap.parse_args()
    ensure_fresh_netns(__file__, sys.argv[1:], disabled=args.no_netns)

    load = load_average_text()
    print(f"bench_serve_18k: {args.connections:,} connections, 1 worker ({args.backend} {args.trigger}), "
          f"{args.rounds} rounds of {args.size} B; load avg {load}")
    serve_args = ["--backend", args.backend, "--workers", "1", "--protocol", "echo"]
    if args.trigger == "edge":
        serve_args += ["--trigger", "edge"]
    ctx = mp.get_context("fork")
    with ServerProcess(serve_args) as srv:
        per = [args.connections // args.client_procs + (i < args.connections % args.client_procs)
               for i in range(args.client_procs)]
        pipes, procs = [], []
        t0 = time.monotonic()
        for n in per:
            a, b = ctx.Pipe()
            p = ctx.Process(target=client, args=(srv.port, n, args.rounds, args.size, b))
            p.start()
            pipes.append(a)
            procs.append(p)
        for a in pipes:
            a.recv()
        deadline = time.monotonic() + 60
        while (doc := srv.stats()["total"])["active"] + doc["rejected"] < args.connections:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        print(f"connected: {doc['active']:,} active on the worker in {time.monotonic() - t0:.1f} s "
              f"(rejected {doc['rejected']})")
        print(f"{'round':<7}{'echoed':>8}{'time (ms)':>12}{'msgs/s':>10}")
        all_ok = doc["active"] == args.connections
        for r in range(args.rounds):
            for a in pipes:
                a.send("go")
            res = [a.recv() for a in pipes]
            ok = sum(x for x, _ in res)
            secs = max(t for _, t in res)
            all_ok &= ok == args.connections
            print(f"{r + 1:<7}{ok:>8,}{secs * 1000:>12.0f}{ok / secs:>10,.0f}")
        final = srv.stats()["total"]
        for a in pipes:
            a.send("done")
        for p in procs:
            p.join(30)
    verdict = "PASS" if all_ok else "FAIL"
    print(f"server: rss {fmt_bytes(final['rss_bytes'], unit='MiB')}, errors {final['errors']}; verdict {verdict}"
          + (f" ({args.connections:,} held and every one echoed in every round)" if all_ok else ""))


if __name__ == "__main__":
    main()
