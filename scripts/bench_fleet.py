"""The 3-host Ansible storm: 30,000 connections (3 x 10,000) through the exported playbook.

Builds a netns Topology (a server namespace and 3 client namespaces on a bridge, 198.18/15,
MTU 1500), starts `c10kplan serve` in the server namespace (2 SO_REUSEPORT workers: one
process cannot hold 30,000 fds under the 20,000 hard limit), exports
`c10kplan export --format ansible-storm` and runs it with ansible-playbook against an
inventory whose 3 hosts are the client namespaces (ansible_connection=local, commands under
`ip netns exec`). Each host installs c10kplan from a wheel of this checkout (offline), checks
its share, storms at one --start-at, and the controller merges. Prints the per-host counts,
the merged ones (which must equal the sums) and the wall time of the whole play.

    python scripts/bench_fleet.py [--connections 30000] [--message-rate 1] [--duration 10]

Sample output (2 vCPUs shared with other engineers' jobs, kernel 6.18, 2026-12-01):

    ansible storm: 30,000 connections from 3 namespace hosts to serve (2 workers) at 1 msg/s for 10 s, MTU 1500
    host   share  established    held  answered    msg/s corr p99 us  ramp s
    load1  1/3         10,000  10,000   100,000    9,998   1,583,103    0.76
    load2  2/3         10,000  10,000   100,000    9,998   1,582,079    0.81
    load3  3/3         10,000  10,000   100,000    9,996   1,571,839    0.92
    merged             30,000  30,000   300,000   29,992   1,580,031
    merged counts equal the sum of the parts (connections, established, held, messages_sent, ...): yes
    held together 9.84 s of the shortest hold 10.00 s; verdict PASS
    wall time of the whole play (install, check, storm, fetch, merge): 50.2 s
    load average: 10.2 5.8 2.7

With `--message-rate 0` (idle hold): all 30,000 held, sums equal, 45.6 s. The wall time is
about 10 s of --start-delay, the hold, and ~25 s of Ansible: three virtualenvs, pip, check.
The corrected p99 of 1.6 s is the shared host's, not the playbook's: 30,000 msg/s with
server and storm on the same 2 vCPUs needs 1.65 CPUs by the plan's cpu.messages (26.5 + 28.6
us per round trip), on a machine other jobs already loaded (load average 10).
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

from c10kplan.fleet.local import build_wheel, namespace_inventory, run_playbook
from c10kplan.netns.ip import exec_argv
from c10kplan.netns.topology import Topology, client_source_spec
from c10kplan.reactor.launch import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
HOSTS = 3
SUMMED = ("connections", "established", "held", "messages_sent", "messages_received", "bytes_sent",
          "bytes_received", "mismatches", "unanswered", "missed")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=30_000, help="of the whole fleet")
    ap.add_argument("--message-rate", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--sources", type=int, default=2, help="source addresses per client namespace")
    ap.add_argument("--start-delay", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2, help="server workers")
    args = ap.parse_args()
    if not 1 <= args.connections <= 60_000:  # bounded: 3 hosts x 20,000 fds at most
        print("bench_fleet: --connections must be 1..60,000", file=sys.stderr)
        return 2
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory(prefix="c10kplan-bench-fleet-") as tmp:
        work = Path(tmp)
        wheel = build_wheel(ROOT, work)
        with Topology(clients=HOSTS, sources_per_client=args.sources) as topo, \
                ServerProcess(["--host", topo.server.address, "--port", "0", "--workers", str(args.workers),
                               "--max-connections", str(args.connections + 100)],
                              prefix=exec_argv(topo.server.netns, []), env=env) as server:
            plan = ",".join(client_source_spec(i, args.sources) for i in range(1, HOSTS + 1))
            export = [sys.executable, "-m", "c10kplan", "export", "--format", "ansible-storm",
                      "--connections", str(args.connections), "--target", f"{topo.server.address}:{server.port}",
                      "--group", "load_hosts", "--message-rate", f"{args.message_rate:g}",
                      "--duration", f"{args.duration:g}", "--start-delay", f"{args.start_delay:g}",
                      "--source-ips", plan]
            playbook = subprocess.run(export, capture_output=True, text=True, check=True, env=env).stdout
            inv = namespace_inventory(topo, work, group="load_hosts", package=str(wheel),
                                      merge_cmd=["env", f"PYTHONPATH={ROOT}", sys.executable, "-m", "c10kplan"])
            t0 = time.monotonic()
            done = run_playbook(playbook, inv, work, timeout=900)
            wall = time.monotonic() - t0
        if done.returncode != 0:
            print(done.stdout[-3000:], done.stderr[-2000:], sep="\n")
            print(f"bench_fleet: ansible-playbook exited {done.returncode} after {wall:.1f} s", file=sys.stderr)
            return 1
        results = work / "results"
        parts = [json.loads((results / f"storm-load{i}.json").read_text()) for i in range(1, HOSTS + 1)]
        merged = json.loads((results / "merged.json").read_text())
    m = merged["storm"]
    print(f"ansible storm: {args.connections:,} connections from {HOSTS} namespace hosts to serve "
          f"({args.workers} workers) at {args.message_rate:g} msg/s for {args.duration:g} s, MTU 1500")
    print(f"{'host':6} {'share':6} {'established':>11} {'held':>7} {'answered':>9} {'msg/s':>8} "
          f"{'corr p99 us':>11} {'ramp s':>7}")
    for i, p in enumerate(parts, 1):
        ramp = max(pp["ramp_seconds"] for pp in p["per_process"])
        print(f"load{i:<2} {p['placement']['share']:6} {p['established']:>11,} {p['held']:>7,} "
              f"{p['messages_received']:>9,} {p['messages_per_second']:>8,.0f} "
              f"{p['message_latency_us']['corrected']['p99']:>11,} {ramp:>7.2f}")
    print(f"merged        {m['established']:>11,} {m['held']:>7,} {m['messages_received']:>9,} "
          f"{m['messages_per_second']:>8,.0f} {m['message_latency_us']['corrected']['p99']:>11,}")
    sums_ok = all(m[f] == sum(p[f] for p in parts) for f in SUMMED)
    failures = {}
    for p in parts:
        for k, v in p["failures"].items():
            failures[k] = failures.get(k, 0) + v
    sums_ok = sums_ok and m["failures"] == failures
    w = merged["window"]
    print(f"merged counts equal the sum of the parts ({', '.join(SUMMED)}, failures by errno): "
          f"{'yes' if sums_ok else 'NO'}")
    print(f"held together {w['seconds']:.2f} s of the shortest hold {w['shortest_hold']:.2f} s; "
          f"verdict {merged['verdict']}" + (f": {'; '.join(merged['problems'])}" if merged["problems"] else ""))
    print(f"wall time of the whole play (install, check, storm, fetch, merge): {wall:.1f} s")
    print(f"load average: {load_average_text()}")
    return 0 if sums_ok and merged["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
