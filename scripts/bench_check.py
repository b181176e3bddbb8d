"""Wall time of `c10kplan check --connections 100000`, median of N runs (the issue asks < 300 ms).

    python scripts/bench_check.py            # 5 runs + 1 warm-up
    python scripts/bench_check.py --runs 11 --connections 1000000

Sample output (2 cores, four other engineers' tests running; kernel 6.18, Python 3.11.7):

    c10kplan check --connections 100000  (runs: 5, exit 0)
    command              : /root/.pyenv/versions/3.11.7/bin/c10kplan
    wall ms (sorted)     : 535 540 544 596 703
    median ms            : 544   (target < 300; min 535)
    cpu ms (median)      : 534   (user + sys)
    baseline ms (median) : python -c pass 74 (cpu 73) | bare typer app 339 (cpu 331) | c10kplan --help 361 (cpu 358)
    load                 : 2.12 2.87 1.81 (uptime)

The baselines show what any command of this CLI pays before doing anything: the interpreter,
then typer (which itself imports pydantic at parse time). The difference between the median and
the bare-typer baseline is what `check` itself costs (facts, plan, table).

Each run is a fresh process started from the installed entry-point script (not through a pyenv
shim, which adds ~80 ms of bash), stdout and stderr discarded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BARE_TYPER = """
import typer
app = typer.Typer()
@app.command()
def check(connections: str = typer.Option("1", "--connections")) -> None:
    print(connections)
@app.command()
def other() -> None:
    pass
app()
"""


# Where the time of one `check` goes, measured in a fresh interpreter, phase by phase, in the
# order the real command pays them (typer parses first, which imports pydantic).
PHASES = """
import time
t = [("start", time.perf_counter())]
def mark(name):
    t.append((name, time.perf_counter()))
import typer._adapters; mark("typer + pydantic")
import c10kplan.cli.app; mark("c10kplan.cli.app (all commands)")
from c10kplan.host.inspect import facts_for; mark("host.inspect")
from c10kplan.planner import Target, plan; import c10kplan.planner.planning; mark("planner")
import tabulate; mark("tabulate")
facts = facts_for(); mark("read facts")
p = plan(facts, Target.model_validate({"connections": "%d"})); mark("validate target + plan")
print(" | ".join(f"{n} {1000 * (b - a):.0f}" for (_, a), (n, b) in zip(t, t[1:])))
"""


def entry_point() -> list[str]:
    """The c10kplan console script next to this interpreter, else `python -m c10kplan`."""
    script = Path(sys.executable).with_name("c10kplan")
    if script.exists():
        return [str(script)]
    found = shutil.which("c10kplan")
    return [found] if found and "shims" not in found else [sys.executable, "-m", "c10kplan"]


# What a user's shell normally has: Python caches compiled modules (.pyc). Some sandboxes set
# PYTHONDONTWRITEBYTECODE=1, which makes every run re-compile c10kplan's own modules from
# source (~50 ms here); the runs below drop it so the warm-up run writes the cache.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall_ms(cmd: list[str], runs: int) -> tuple[list[float], list[float], int]:
    """Sorted wall times and sorted CPU times (user + sys of the child), in ms, and the last
    exit code. CPU time is far less disturbed by other load on the machine than wall time."""
    walls, cpus, code = [], [], 0
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=CHILD_ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append((time.perf_counter() - start) * 1000)
        cpus.append((usage.ru_utime + usage.ru_stime) * 1000)
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code
    return sorted(walls), sorted(cpus), code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--connections", type=int, default=100_000)
    ap.add_argument("--no-baseline", action="store_true", help="skip the baseline commands")
    args = ap.parse_args()

    cmd = [*entry_point(), "check", "--connections", str(args.connections)]
    if "PYTHONDONTWRITEBYTECODE" in os.environ:
        print("note: PYTHONDONTWRITEBYTECODE is set here; the measured runs drop it (see CHILD_ENV)")
    wall_ms(cmd, 1)  # warm the page cache and write the bytecode cache
    times, cpus, code = wall_ms(cmd, args.runs)
    print(f"c10kplan check --connections {args.connections}  (runs: {args.runs}, exit {code})")
    print(f"command              : {' '.join(cmd[:-3])}")
    print(f"wall ms (sorted)     : {' '.join(f'{t:.0f}' for t in times)}")
    print(f"median ms            : {statistics.median(times):.0f}   (target < 300; min {times[0]:.0f})")
    print(f"cpu ms (median)      : {statistics.median(cpus):.0f}   (user + sys)")
    if not args.no_baseline:
        bare = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("bare typer app", [sys.executable, "-c", BARE_TYPER, "check", "--connections", "5"]),
            ("c10kplan --help", [*entry_point(), "--help"]),
        ]
        parts = []
        for label, base in bare:
            wall_ms(base, 1)
            walls, cpus_base, _ = wall_ms(base, args.runs)
            parts.append(f"{label} {statistics.median(walls):.0f} (cpu {statistics.median(cpus_base):.0f})")
        print(f"baseline ms (median) : {' | '.join(parts)}")
    phases = subprocess.run([sys.executable, "-c", PHASES % args.connections], capture_output=True,
                            text=True, check=True, env=CHILD_ENV).stdout.strip()
    print(f"phases ms (one run)  : {phases}")
    print(f"load                 : {' '.join(f'{x:.2f}' for x in os.getloadavg())} (uptime)")


if __name__ == "__main__":
    main()
