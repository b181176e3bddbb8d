"""The size of a `verify --report DIR`: runs verify once through the CLI (its own namespace, as
the issue's command says) and lists what DIR holds, with the run's wall time.

    python scripts/bench_report_size.py [--connections 100000] [--duration 5] [--message-rate 0]

Sample output (2026-12-01, 2 CPUs shared with other jobs):

    verify --connections 100000 --duration 5 --message-rate 0 --netns --force --report DIR: exit 0 in 21.7 s
    verdict PASS, 100,000 held, Slab +1158.2 MiB; load average 6.4 4.3 4.2
      memory.png     37,598 B
      ramp.png       33,480 B
      report.html     9,887 B
    report: 80,965 B in 3 files (90,112 B on disk)

An idle run (--message-rate 0) has no latency and no CPU figure; a 10,000-connection run at
1 msg/s wrote latency.png 39,229 B and cpu.png 27,144 B.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import load_average_text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connections", type=int, default=100_000)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--message-rate", type=float, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="c10kplan-report-") as tmp:
        folder = Path(tmp) / "report"
        argv = ["verify", "--connections", str(args.connections), "--duration", f"{args.duration:g}",
                "--message-rate", f"{args.message_rate:g}", "--netns", "--force", "--report"]
        t0 = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "c10kplan", *argv, str(folder), "--json"],
                              capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
        wall = time.monotonic() - t0
        print(f"{' '.join(argv)} DIR: exit {done.returncode} in {wall:.1f} s")
        if not done.stdout.strip():
            print(done.stderr.strip())
            return 1
        doc = json.loads(done.stdout)
        slab = (doc["during"]["slab_bytes"] - doc["before"]["slab_bytes"]) / 2**20 if doc.get("during") else 0
        print(f"verdict {doc['verdict']}, {doc['storm']['held']:,} held, Slab {slab:+.1f} MiB; load average {load_average_text()}")
        files = sorted(folder.iterdir())
        for path in files:
            print(f"  {path.name:<13} {path.stat().st_size:>7,} B")
        total = sum(p.stat().st_size for p in files)
        disk = sum(p.stat().st_blocks * 512 for p in files)
        print(f"report: {total:,} B in {len(files)} files ({disk:,} B on disk)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
