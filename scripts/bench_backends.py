#!/usr/bin/env python3
"""Reproduce the select / poll / epoll scaling figure, check its shape, explain poll's step.

Command (about 30 s; nothing on the host is changed, only socketpairs inside this process):

    python3 scripts/bench_backends.py --plot /tmp/backends.png

Sample output (2-vCPU KVM guest, AMD EPYC, kernel 6.18, Python 3.11, 07:58 UTC; load average
1.58 before, 18.3 after: four other engineers were running tests on the same 2 cores):

    backend    fds    median us   p10 us    p90 us    min us    max us    vs smallest N
    ---------  -----  ----------  --------  --------  --------  --------  ---------------
    epoll      10     6.93        6.67      7.53      6.44      7.72      1.00x
    poll       10     7.32        7.13      7.55      6.78      7.75      1.00x
    select     10     10.35       9.97      10.84     9.70      12.44     1.00x
    epoll      100    7.23        6.93      7.47      6.88      7.87      1.04x
    poll       100    16.82       16.27     17.29     15.60     17.70     2.30x
    select     100    22.90       22.08     23.89     21.82     24.50     2.21x
    epoll      1000   7.52        7.27      8.15      7.09      8.79      1.09x
    poll       1000   124.06      121.87    126.63    121.31    127.09    16.96x
    select     1000   164.50      161.35    167.57    159.06    172.83    15.90x
    epoll      10000  8.69        6.67      11.34     6.14      36.85     1.25x
    poll       10000  6925.02     4429.50   7724.08   4239.41   9464.80   946.56x
    select     10000  n/a: fd 10004 >= FD_SETSIZE (1024)

    cost of one loop iteration (wait + dispatch), 25 runs per row; each run: 1 active, ...
    epoll: N 10 -> 10000 (x1000 descriptors): cost x1.25 (6.93 -> 8.69 us, 0.2 ns per extra fd)
    poll: N 10 -> 10000 (x1000 descriptors): cost x946.56 (7.32 -> 6925.02 us, 692.5 ns ...)
    select: N 10 -> 1000 (x100 descriptors): cost x15.90 (10.35 -> 164.50 us, 155.7 ns ...)
    load average before 1.58, after 18.33 (1 min); kernel 6.18.44-fc-v782, Python 3.11.7
    expected shape
      epoll 10000 vs 100: x1.20 (expected <= 1.5): ok
      poll   100 -> 1000: x7.37, 1000 -> 10000: x55.82 (linear: x(N ratio) each)
      select 100 -> 1000: x7.18 (linear: x(N ratio) each)

    why poll's cost per fd steps up (idle poll(2), nothing ready, median):
    fds    distinct sockets us    dups of 200 sockets us
    -----  ---------------------  ------------------------
    2000   245                    210
    4000   552                    426
    6000   3650                   620
    10000  4291                   818

The last table is the explanation: poll(2) costs per fd it scans, and that cost is the memory
traffic for each socket's kernel objects. N dup()s of 200 sockets stay linear (~57 ns/fd on a
quiet machine); N distinct sockets step up from ~100 to ~450 ns/fd between ~4,500 and ~6,000
sockets: ~3-4 cache lines per socket x ~4,700 sockets fill a core's 1 MiB L2, past which every
scanned fd misses to L3 or memory (inferred: this VM has no PMU counters). So poll is linear in N
piecewise, and 1,000 -> 10,000 fds costs x40..x55 instead of x10.

Exit status: 0 when epoll's cost at the largest N is within 1.5x of its cost at 100 (the
issue's expectation), 1 otherwise. Options: --fds, --active, --writes, --repeat, --plot,
--json FILE (the raw figures), --no-probe (skip the dup() probe).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from c10kplan.bench.backends import (
    TABLE_HEADERS,
    BackendsBench,
    BackendsOptions,
    Ring,
    closing_note,
    parse_counts,
    run_backends_bench,
    table_rows,
)
from c10kplan.cli import render
from c10kplan.reactor.backends import EVENT_READ, make_backend

EPOLL_FLAT = 1.5  # the issue: epoll at 10,000 fds within 1.5x of its cost at 100


def _ratio(bench: BackendsBench, name: str, lo: int, hi: int) -> float | None:
    a, b = bench.point(name, lo), bench.point(name, hi)
    if a is None or b is None or not (a.measured and b.measured):
        return None
    return b.median_us / a.median_us


def shape_lines(bench: BackendsBench) -> tuple[list[str], bool]:
    """The issue's expectations, measured. Returns (lines, epoll_is_flat)."""
    ns = bench.fds_measured
    lines = ["expected shape"]
    flat = True
    base = 100 if 100 in ns else ns[0]
    top = ns[-1]
    r = _ratio(bench, "epoll", base, top)
    if r is not None:
        flat = r <= EPOLL_FLAT
        verdict = "ok" if flat else "NOT FLAT"
        lines.append(f"  epoll {top} vs {base}: x{r:.2f} (expected <= {EPOLL_FLAT}): {verdict}")
    for name in ("poll", "select"):
        steps = []
        for lo, hi in zip(ns, ns[1:]):
            r = _ratio(bench, name, lo, hi)
            if r is not None and lo >= 100:
                steps.append(f"{lo} -> {hi}: x{r:.2f}")
        if steps:
            lines.append(f"  {name:6} {', '.join(steps)} (linear: x(N ratio) each)")
    return lines, flat


def probe_poll(counts: tuple[int, ...], distinct_cap: int = 200, waits: int = 200) -> list[list]:
    """Median cost of an idle poll(2) over N distinct sockets vs N dup()s of `distinct_cap`."""
    import os

    rows = []
    for n in counts:
        row = [n]
        for distinct in (n, min(n, distinct_cap)):
            with Ring.open(distinct) as ring:
                extra = [os.dup(ring.fds[i % distinct]) for i in range(n - distinct)]
                try:
                    backend = make_backend("poll")
                    for fd in ring.fds + extra:
                        backend.register(fd, EVENT_READ)
                    backend.poll(0)
                    samples = []
                    for _ in range(waits):
                        t = time.perf_counter_ns()
                        backend.poll(0)
                        samples.append(time.perf_counter_ns() - t)
                    row.append(round(statistics.median(samples) / 1000))
                    backend.close()
                finally:
                    for fd in extra:
                        os.close(fd)
        rows.append(row)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fds", default="10,100,1000,10000")
    ap.add_argument("--active", type=int, default=1)
    ap.add_argument("--writes", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=25)
    ap.add_argument("--plot", type=Path)
    ap.add_argument("--json", type=Path, help="write the raw figures (JSON) here")
    ap.add_argument("--no-probe", action="store_true")
    args = ap.parse_args()

    opts = BackendsOptions(
        fds=parse_counts(args.fds), active=args.active, writes=args.writes, repeat=args.repeat
    )
    if args.plot:
        from c10kplan.bench.plot import check_plot_path, require_matplotlib

        require_matplotlib()
        check_plot_path(args.plot)
    bench = run_backends_bench(opts, progress=render.note)
    render.table(table_rows(bench), TABLE_HEADERS)
    render.line()
    for text in closing_note(bench):
        render.line(text)
    lines, flat = shape_lines(bench)
    for text in lines:
        render.line(text)
    if not args.no_probe:
        counts = tuple(n for n in (2000, 4000, 6000, 10000) if n <= max(bench.fds_measured))
        if counts:
            render.line()
            render.table(
                probe_poll(counts),
                ["fds", "distinct sockets us", "dups of 200 sockets us"],
                title="why poll's cost per fd steps up (idle poll(2), nothing ready, median):",
            )
    if args.plot:
        from c10kplan.bench.plot import write_plot

        write_plot(bench, args.plot)
        render.line(f"plot written to {args.plot}")
    if args.json:
        args.json.write_text(bench.model_dump_json(indent=2))
        render.line(f"raw figures written to {args.json}")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
