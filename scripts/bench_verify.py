"""The issue's verify targets, timed, with the figures that matter pulled out.

1. `c10kplan verify --connections 10000 --duration 10`                (PASS, < 30 s wall)
2. `c10kplan verify --connections 100000 --duration 30 --message-rate 1 --netns`
   The issue's headline target. The plan's `cpu.messages` finding FAILs it on a 2-CPU host, so
   verify refuses before starting anything (exit 1, in about a second).
3. the same with --force: what happens when it runs anyway (the measured ceiling).
4. the same at --message-rate 0.25: 25,000 round trips/s, inside the plan's 70 % CPU mark.

Each runs as a subprocess with --json; the script prints wall time, verdict, held
connections, kernel bytes per socket (measured / planned / ratio), CPU per message (server,
storm; measured / planned), host CPUs busy, p99 corrected and raw, and the load averages
(1, 5, 15 min) before and after. `--only N` runs one of them; options after `--` are added to
verify's (the last of a repeated option wins):

    python scripts/bench_verify.py
    python scripts/bench_verify.py --only 4 -- --message-rate 0.3

SAMPLE_OUTPUT
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from benchlib import load_average_text

HEADLINE = ["--connections", "100000", "--duration", "30", "--message-rate", "1", "--netns"]
RUNS = {
    1: ["--connections", "10000", "--duration", "10"],
    2: HEADLINE,
    3: [*HEADLINE, "--force"],
    4: [*HEADLINE, "--message-rate", "0.25"],
}


def run(n: int, extra: list[str]) -> int:
    args = [*RUNS[n], *extra]
    print(f"[{n}] verify {' '.join(args)}")
    print(f"    load before: {load_average_text()}")
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "c10kplan", "verify", *args, "--json"],
                          capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - t0
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        print(f"    wall {wall:.1f} s  exit {done.returncode}  no result: {done.stderr.strip()[-400:]}")
        return done.returncode or 1
    s = doc["storm"]
    kern = next(c for c in doc["comparisons"] if c["figure"] == "kernel memory per socket")
    lat = s["message_latency_us"]
    print(f"    wall {wall:.1f} s  exit {done.returncode}  verdict {doc['verdict']}  held {s['held']}/{doc['connections']}"
          f"  workers {doc['server_workers']}  storm processes {doc['storm_processes']}"
          f"  source addresses {s['source_addresses']}")
    ratio = "-" if kern["ratio"] is None else f"{kern['ratio']:.2f}"
    measured = "-" if kern["measured"] is None else f"{kern['measured']:,.0f}"
    print(f"    kernel bytes/socket measured {measured} planned {kern['planned']:,.0f} ratio {ratio}"
          f" ({'within' if kern['within'] else 'NOT within'} 25%)")
    print(f"    p99 corrected {lat['corrected']['p99'] / 1000:.1f} ms  raw {lat['raw']['p99'] / 1000:.1f} ms"
          f"  p99.9 corrected {lat['corrected']['p999'] / 1000:.1f} ms  messages {s['messages_received']:,}/{s['messages_sent']:,}"
          f"  connect {s['connect_seconds']:.2f} s ({s['connect_rate']:,.0f}/s)")
    rows = {c["figure"]: c for c in doc["comparisons"]}
    cpu = [rows.get(f"CPU per message, {side}") for side in ("server", "storm")]
    busy = rows.get("host CPU busy")
    if all(cpu) and busy and busy["measured"] is not None:
        print("    CPU per message: " + ", ".join(
            f"{side} {c['measured']:.1f} us (planned {c['planned']:.1f})" for side, c in zip(("server", "storm"), cpu))
            + f"; host busy {busy['measured']:.2f} of {doc['plan']['cores'] or '?'} CPUs (planned {busy['planned']:.2f})"
            + f"; {s['messages_per_second']:,.0f} round trips/s")
    if doc["problems"]:
        print("    problems: " + "; ".join(doc["problems"]))
    print(f"    load after: {load_average_text()}")
    return done.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description="Run the issue's verify targets and summarize them.")
    ap.add_argument("--only", type=int, choices=sorted(RUNS))
    ap.add_argument("extra", nargs="*", help="extra verify options after --, e.g. -- --message-rate 0.1")
    args = ap.parse_args()
    codes = [run(n, args.extra) for n in sorted(RUNS) if args.only in (None, n)]
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
