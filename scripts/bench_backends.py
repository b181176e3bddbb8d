#!/usr/bin/env python3
"""Reproduce the select / poll / epoll scaling figure, check its shape, explain poll's step.

Command (about 30 s; nothing on the host is changed, only socketpairs inside this process):

    python3 scripts/bench_backends.py --plot /tmp/backends.png

Sample output (2-vCPU KVM guest, AMD EPYC, kernel 6.18, Python 3.11; load 1-min 0.4 while four
other engineers were working on the same 2 cores):

    backend      fds  median us    p10 us    p90 us    min us    max us  vs smallest N
    ---------  -----  -----------  --------  --------  --------  --------  -------------
    epoll         10  6.68             6.35      7.14      5.93      7.23  1.00x
    poll          10  6.95             6.26      7.03      4.98      7.04  1.00x
    select        10  9.88             9.28     10.23      6.69     11.18  1.00x
    epoll        100  7.32             7.02      7.93      6.74      8.1   1.10x
    poll         100  13.86           13.34     14.51     13.02     14.6   1.99x
    select       100  20.72           19.94     21.68     19.58     21.84  2.10x
    epoll       1000  7.98             7.73      8.32      7.48      8.45  1.19x
    poll        1000  102.28         100.98    105.08    100.89    105.67  14.71x
    select      1000  143.59         140.03    148.35    139.78    158.2   14.53x
    epoll      10000  6.51             6.29      9.45      6.18     11.39  0.97x
    poll       10000  4037.72       3899.42   5062.56   3797.09   5119.59  580.63x
    select     10000  n/a: fd 10004 >= FD_SETSIZE (1024)
    ...
    expected shape
      epoll 10000 vs 100: x0.89 (expected <= 1.5): ok
      poll  100 -> 1000: x7.38, 1000 -> 10000: x39.48 (linear would be x10 each)
      select 100 -> 1000: x6.93 (linear would be x10; select stops at FD_SETSIZE 1024)
    why poll's step from 1000 to 10000 is more than x10 (idle poll(2), nothing ready):
        fds  distinct sockets us   dups of 200 sockets us
       2000                 178                      126
       6000                2588                      408
      10000                3911                      573

The last table is the explanation: poll(2) costs per fd it scans, and that cost is the memory
traffic for each socket's kernel objects. 10,000 dup()s of 200 sockets stay linear (~57 ns/fd);
10,000 distinct sockets step up from ~100 to ~450 ns/fd once they no longer fit the caches/TLB.

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
