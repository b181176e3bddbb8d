"""verify with the protocols of issue 14, the figures that matter pulled out.

Default: the issue's two targets, each a subprocess with --json:
  `c10kplan verify --protocol websocket --connections 100000 --message-rate 0.1 --netns --duration 30`
  `c10kplan verify --protocol http      --connections 100000 --message-rate 0.1 --netns --duration 30`
`--measure-cpu`: echo, http and websocket at 20,000 connections x 0.5 msg/s for 20 s in --netns,
the runs behind planner/cpu.py's per-protocol constants (see "Reading it").
`--nginx N`: `verify --target http://127.0.0.1:PORT/ --pid MASTER -n N --message-rate 0.5` against
nginx (Debian's, in a temp prefix on a free port, 1 worker; tests/integration/thirdparty.py).

For each: wall time, verdict, held, p99 corrected and raw, kernel bytes per socket (Slab delta /
sockets, planned, ratio), CPU per message (server, storm: measured, planned) and the same from
the processes' own utime + stime alone ("own"), host CPUs busy, load averages. Options after
`--` go to verify (the last of a repeated option wins):

    python scripts/bench_verify_protocols.py
    python scripts/bench_verify_protocols.py --measure-cpu
    python scripts/bench_verify_protocols.py --nginx 10000
    python scripts/bench_verify_protocols.py --protocols http -- --duration 20

Sample output (2 cores, kernel 6.18, other helpers' jobs on the same CPUs, 2026-12-01):

    $ python scripts/bench_verify_protocols.py --protocols websocket
    [websocket] verify --protocol websocket --connections 100000 --message-rate 0.1 --netns --duration 30
        load before: 3.1 3.6 4.0
        wall 64.9 s  exit 0  verdict PASS  held 100,000/100,000  server processes 6  storm processes 6  source addresses 15
        p99 corrected 30.7 ms  raw 20.9 ms  messages 300,000/300,000  connect 26.71 s
        kernel bytes/socket measured 5,008 planned 4,096 ratio 1.22
        CPU per message: server 94.1 us (planned 31.5), storm 106.9 us (planned 33.2); own: server 25.5 us, storm 29.0 us; host busy 2.0 of 2 CPUs (planned 0.647); 9,993 messages/s
        load after: 8.2 5.0 4.5
    $ python scripts/bench_verify_protocols.py --protocols http
    [http] verify --protocol http --connections 100000 --message-rate 0.1 --netns --duration 30
        load before: 9.8 7.1 5.5
        wall 48.1 s  exit 0  verdict PASS  held 100,000/100,000  server processes 6  storm processes 6  source addresses 15
        p99 corrected 28.9 ms  raw 17.4 ms  messages 300,000/300,000  connect 11.24 s
        kernel bytes/socket measured -4,778 planned 4,096 ratio -1.17
        CPU per message: server 94.4 us (planned 32.2), storm 98.9 us (planned 30.8); own: server 29.4 us, storm 30.8 us; host busy 1.9 of 2 CPUs (planned 0.63); 9,999 messages/s
        load after: 15.5 9.0 6.2
    $ python scripts/bench_verify_protocols.py --nginx 10000
    [nginx 10000] verify --target http://127.0.0.1:60857/ --pid 28219 --connections 10000 --message-rate 0.5 --duration 20
        load before: 6.5 7.8 6.2
        wall 22.3 s  exit 0  verdict PASS  held 10,000/10,000  server processes 2  storm processes 1  source addresses 2
        p99 corrected 6.0 ms  raw 4.5 ms  messages 100,000/100,000  connect 1.04 s
        kernel bytes/socket measured 4,880 planned 4,096 ratio 1.19
        CPU per message: server 84.4 us (planned 32.2), storm 155.0 us (planned 30.8); own: server 8.2 us, storm 15.1 us; host busy 1.2 of 2 CPUs (planned 0.315); 5,000 messages/s
        server user memory per connection: measured 542.7 planned 8192.0
        server fds per connection: measured 1.0 planned 1.0
        TCP sockets in use: measured 20,001.0 planned 20000.0
        load after: 5.0 7.4 6.1
    $ python scripts/bench_verify_protocols.py --measure-cpu
    (its summary lines, from that session's own us per message, server / storm: echo 9.6 / 14.5,
    http 15.3 / 16.7, websocket 14.8 / 19.3; that run printed them as ratios, the script now
    prints the differences planner/cpu.py uses)
    http: own CPU over echo's: server +5.7 us, storm +2.2 us -> prices server 32.2 us, storm 30.8 us
    websocket: own CPU over echo's: server +5.2 us, storm +4.8 us -> prices server 31.7 us, storm 33.4 us

The http run's Slab delta is negative: Slab is host-wide, and other jobs (load 10-15) freed
more slab than the 200,000 sockets took in that window; its first run (before the storm's
replay of known responses) saw 4,856 B/socket and FAILed on p99 (4.3 s: the storm's h11 cost
52 us a response then, the CPUs were saturated).

Reading it: "measured" CPU is the host's busy time over the hold (softirq included) shared out
by the processes' own time, as verify reports it; with other jobs on the host it also carries
their time, "own" leaves out softirq work the processes were not charged for. A message of
each protocol is the same TCP round trip, so planner/cpu.py prices http and websocket as the
echo constants plus what their "own" figures are over echo's in the same --measure-cpu session
(the same host load for all three).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from benchlib import load_average_text, run_verify

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/integration/thirdparty.py: nginx

TARGETS = {p: ["--protocol", p, "--connections", "100000", "--message-rate", "0.1", "--netns", "--duration", "30"]
           for p in ("websocket", "http")}
CPU_RUNS = {p: ["--protocol", p, "--connections", "20000", "--message-rate", "0.5", "--netns", "--duration", "20"]
            for p in ("echo", "http", "websocket")}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def verify(label: str, args: list[str]) -> tuple[int, dict | None]:
    code, doc, wall = run_verify(label, args, stderr_tail=600)
    if doc is None:
        return code, None
    show(doc, wall, code)
    return code, doc


def own_us(doc: dict) -> tuple[float, float] | None:
    """CPU per message from the processes' own utime + stime alone (verify's figures scaled
    back by process ticks / host busy ticks)."""
    cpu = doc.get("cpu")
    if not cpu or not cpu.get("host_busy_cores"):
        return None
    share = cpu["process_ticks"] / (cpu["host_busy_cores"] * cpu["seconds"] * CLOCK_TICKS)
    return cpu["server_us_per_message"] * share, cpu["storm_us_per_message"] * share


def show(doc: dict, wall: float, code: int) -> None:
    s, rows = doc["storm"], {c["figure"]: c for c in doc["comparisons"]}
    lat = s["message_latency_us"]
    print(f"    wall {wall:.1f} s  exit {code}  verdict {doc['verdict']}  held {s['held']:,}/{doc['connections']:,}"
          f"  server processes {doc['server_workers']}  storm processes {doc['storm_processes']}"
          f"  source addresses {s['source_addresses']}")
    print(f"    p99 corrected {lat['corrected']['p99'] / 1000:.1f} ms  raw {lat['raw']['p99'] / 1000:.1f} ms"
          f"  messages {s['messages_received']:,}/{s['messages_sent']:,}  connect {s['connect_seconds']:.2f} s")
    kern = rows.get("kernel memory per socket")
    if kern and kern["measured"] is not None:
        print(f"    kernel bytes/socket measured {kern['measured']:,.0f} planned {kern['planned']:,.0f}"
              f" ratio {kern['ratio']:.2f}")
    cpu = [rows.get(f"CPU per message, {side}") for side in ("server", "storm")]
    own = own_us(doc)
    if all(c and c["measured"] is not None for c in cpu):
        text = ", ".join(f"{side} {c['measured']:.1f} us (planned {c['planned']:.1f})"
                         for side, c in zip(("server", "storm"), cpu))
        if own:
            text += f"; own: server {own[0]:.1f} us, storm {own[1]:.1f} us"
        busy = rows.get("host CPU busy") or {}
        print(f"    CPU per message: {text}; host busy {busy.get('measured')} of {doc['plan']['cores']} CPUs"
              f" (planned {busy.get('planned')}); {s['messages_per_second']:,.0f} messages/s")
    for figure in ("server user memory per connection", "server fds per connection", "TCP sockets in use"):
        r = rows.get(figure)
        if r and r["measured"] is not None:
            print(f"    {figure}: measured {r['measured']:,} planned {r['planned']}")
    if doc["problems"]:
        print("    problems: " + "; ".join(doc["problems"]))
    print(f"    load after: {load_average_text()}")


def measure_cpu(extra: list[str]) -> int:
    docs, codes = {}, []
    for p, args in CPU_RUNS.items():
        code, doc = verify(f"cpu {p}", [*args, *extra])
        codes.append(code)
        if doc is not None and own_us(doc):
            docs[p] = own_us(doc)
    if "echo" in docs:
        from c10kplan.planner.cpu import CLIENT_US_PER_MESSAGE, SERVER_US_PER_MESSAGE

        for p in ("http", "websocket"):
            if p in docs:
                more = (docs[p][0] - docs["echo"][0], docs[p][1] - docs["echo"][1])
                print(f"{p}: own CPU over echo's: server {more[0]:+.1f} us, storm {more[1]:+.1f} us -> prices"
                      f" server {SERVER_US_PER_MESSAGE + more[0]:.1f} us, storm {CLIENT_US_PER_MESSAGE + more[1]:.1f} us")
    return max(codes)


def against_nginx(n: int, extra: list[str]) -> int:
    from tests.integration.thirdparty import NGINX, Nginx

    if NGINX is None:
        print("nginx is not installed (apt-get install nginx-light)")
        return 3
    with tempfile.TemporaryDirectory(prefix="c10kplan-nginx-") as tmp:
        ng = Nginx(Path(tmp), worker_connections=max(1024, n + 1000))
        try:
            code, _ = verify(f"nginx {n}", ["--target", f"http://127.0.0.1:{ng.port}/", "--pid", str(ng.proc.pid),
                                            "--connections", str(n), "--message-rate", "0.5", "--duration", "20",
                                            *extra])
        finally:
            ng.close()
    return code


def main() -> int:
    ap = argparse.ArgumentParser(description="verify --protocol http|websocket at the issue's scale, and against nginx.")
    ap.add_argument("--protocols", default="websocket,http", help="which of the 100k targets to run")
    ap.add_argument("--measure-cpu", action="store_true", help="the per-protocol CPU runs (20k x 0.5 msg/s)")
    ap.add_argument("--nginx", type=int, metavar="N", help="verify --target against nginx at N connections")
    ap.add_argument("extra", nargs="*", help="extra verify options after --")
    args = ap.parse_args()
    if args.measure_cpu:
        return measure_cpu(args.extra)
    if args.nginx:
        return against_nginx(args.nginx, args.extra)
    codes = [verify(p, [*TARGETS[p], *args.extra])[0] for p in args.protocols.split(",")]
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
