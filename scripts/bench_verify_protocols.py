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

    SAMPLE

Reading it: "measured" CPU is the host's busy time over the hold (softirq included) shared out
by the processes' own time, as verify reports it; with other jobs on the host it also carries
their time, "own" leaves out softirq work the processes were not charged for. A message of
each protocol is the same TCP round trip, so planner/cpu.py prices http and websocket as the
echo constants plus what their "own" figures are over echo's in the same --measure-cpu session
(the same host load for all three).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import load_average_text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/integration/thirdparty.py: nginx

TARGETS = {p: ["--protocol", p, "--connections", "100000", "--message-rate", "0.1", "--netns", "--duration", "30"]
           for p in ("websocket", "http")}
CPU_RUNS = {p: ["--protocol", p, "--connections", "20000", "--message-rate", "0.5", "--netns", "--duration", "20"]
            for p in ("echo", "http", "websocket")}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def verify(label: str, args: list[str]) -> tuple[int, dict | None]:
    print(f"[{label}] verify {' '.join(args)}")
    print(f"    load before: {load_average_text()}")
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "c10kplan", "verify", *args, "--json"],
                          capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - t0
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        print(f"    wall {wall:.1f} s  exit {done.returncode}  no result: {done.stderr.strip()[-600:]}")
        return done.returncode or 1, None
    show(doc, wall, done.returncode)
    return done.returncode, doc


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
