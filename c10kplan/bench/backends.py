"""The select / poll / epoll scaling measurement (method of libevent's test/bench.c).

For each descriptor count N: N socket ends registered for reading with every backend, K of them
active. One run writes one byte into each of the K active descriptors' peers, then loops: wait,
and for every ready descriptor read its byte and write one byte that makes the *next* descriptor
readable, until W chained writes are done and every byte has been read. The run's wall time
(wait + dispatch only; the K initial writes are outside the clock) divided by the number of loop
iterations is the cost of one iteration, in microseconds. R runs give the median and the spread
(p10 / p90, min / max). Runs are interleaved across backends (run r of epoll, of poll, of select,
then run r+1) so that load from other processes spreads over all of them alike.

Facts this module relies on (Linux; checked on 6.x):
- A socketpair is two connected AF_UNIX stream sockets; a byte written on one end makes the
  *other* end readable at once (no softirq, no timer). So both ends of a pair are registered,
  and the descriptor count N costs N file descriptors (N / 2 socketpairs), not 2N: N = 10,000
  fits under this machine's RLIMIT_NOFILE hard limit of 20,000, which 2N + a few would not.
  libevent registers one end of each of N pairs; for the cost of a wait only the *registered*
  descriptors count, so the two layouts measure the same thing.
- select(2): fd_set is a bitmap of FD_SETSIZE = 1024 bits; an fd >= 1024 cannot be watched
  (the backend raises FdTooLarge), so select gets an "n/a" row there instead of a failure.
  Cost per wait: O(highest fd), three bitmaps copied in and out.
- poll(2): cost per wait O(N): the whole pollfd array (8 bytes per fd) is copied in and the
  kernel calls every file's poll method.
- epoll_wait(2): cost per wait O(ready), not O(registered): the kernel keeps a ready list that
  the sockets' wakeup callbacks fill. Registering costs ~160 bytes of kernel memory per fd.
- Waits are non-blocking (timeout 0), as bench.c's EVLOOP_NONBLOCK: the byte is already queued
  when the wait starts, and a blocking poll(2) would also pay for hooking a wait-queue entry on
  every fd it scans before the ready one (measured: ~10% more at N = 1,000).
- poll's cost per registered fd is not a constant of the kernel: it is a few cache lines of
  struct file + struct socket + struct sock per fd. On the 2-vCPU KVM guest this was written on,
  it is ~100 ns per fd up to ~4,500 distinct sockets and ~450 ns per fd from ~6,000 on, while
  10,000 dup()s of 200 sockets stay at ~57 ns per fd. The step sits where the lines poll
  touches per socket (f_op / private_data of the file, ops / sk of the socket, the receive
  queue and state of the sock: ~3-4 cache lines, ~220 bytes) times ~4,700 sockets fills the
  1 MiB L2 of a core; past it every scanned fd costs L3 / memory misses. (No PMU counters in
  this VM to prove it; the dup() experiment rules out the fd count itself.) So poll is linear
  in N piecewise, and the step from 1,000 to 10,000 fds costs more than x10.
- The process's soft RLIMIT_NOFILE is raised to its hard limit (setrlimit, no capability
  needed); the hard limit cannot be raised without CAP_SYS_RESOURCE, so a larger N is clamped.
"""

from __future__ import annotations

import os
import platform
import resource
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, computed_field, field_validator
from pydantic_core import PydanticCustomError

from c10kplan.errors import BadInput, EnvironmentProblem
from c10kplan.numeric import parse_int
from c10kplan.processes import raise_nofile_soft_limit
from c10kplan.reactor.backends import (
    EVENT_READ,
    Backend,
    FdTooLarge,
    available_backends,
    make_backend,
)
from c10kplan.reactor.backends.select import FD_SETSIZE

DEFAULT_FDS = (10, 100, 1000, 10000)
# File descriptors kept free for the interpreter, the backends themselves (epoll fd), the test
# runner, and a PNG writer: N is clamped to RLIMIT_NOFILE soft - RESERVED_FDS.
RESERVED_FDS = 64
# Waits never block (bench.c's EVLOOP_NONBLOCK). A byte written on a socketpair is readable at
# once, so empty waits mean the chain broke: give up after this long.
STALL_TIMEOUT_NS = 1_000_000_000

Clock = Callable[[], int]


class BackendsOptions(BaseModel):
    """What to measure. Validated before a single socket is opened."""

    model_config = ConfigDict(frozen=True)

    fds: tuple[int, ...] = Field(DEFAULT_FDS, min_length=1)
    active: int = Field(1, ge=1, description="K: descriptors active at once (chains in flight)")
    writes: int = Field(100, ge=1, le=1_000_000, description="W: chained writes per run")
    repeat: int = Field(25, ge=1, le=10_000, description="R: runs per backend and N")
    backends: tuple[str, ...] = Field(default_factory=available_backends, min_length=1)

    @field_validator("fds")
    @classmethod
    def _fds_positive(cls, fds: tuple[int, ...]) -> tuple[int, ...]:
        if any(n < 1 for n in fds):
            raise PydanticCustomError("fds_too_small", "every descriptor count must be >= 1")
        return tuple(sorted(set(fds)))

    @field_validator("active")
    @classmethod
    def _active_fits(cls, active: int, info: ValidationInfo) -> int:
        fds = info.data.get("fds")
        if fds and active > min(fds):
            raise PydanticCustomError(
                "active_too_large",
                "{active} active descriptors need every N >= {active}; the smallest N is {n}",
                {"active": active, "n": min(fds)},
            )
        return active

    @field_validator("backends")
    @classmethod
    def _known_backends(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if name not in available_backends():
                raise PydanticCustomError(
                    "unknown_backend",
                    "{name} is not available here; choose from {choices}",
                    {"name": name, "choices": ", ".join(available_backends())},
                )
        return names


class BackendPoint(BaseModel):
    """One backend at one N: per-iteration cost in microseconds, or why it was not measured."""

    model_config = ConfigDict(frozen=True)

    backend: str
    fds: int
    skipped: str | None = None
    samples_us: tuple[float, ...] = ()  # one per run: run wall time / loop iterations
    iterations: tuple[int, ...] = ()  # loop iterations (waits) per run
    reads_per_run: int = 0  # bytes read per run: K + W
    median_us: float | None = None
    p10_us: float | None = None
    p90_us: float | None = None
    min_us: float | None = None
    max_us: float | None = None

    @property
    def measured(self) -> bool:
        return self.skipped is None and bool(self.samples_us)


class Growth(BaseModel):
    """How much a backend's median cost grew from its smallest to its largest measured N."""

    model_config = ConfigDict(frozen=True)

    backend: str
    from_fds: int
    to_fds: int
    from_us: float
    to_us: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ratio(self) -> float:
        """Cost at to_fds over cost at from_fds."""
        return round(self.to_us / self.from_us, 3) if self.from_us > 0 else float("inf")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ns_per_fd(self) -> float:
        """Slope: extra nanoseconds per iteration for each extra registered descriptor."""
        return round((self.to_us - self.from_us) * 1000 / (self.to_fds - self.from_fds), 2)


class BackendsBench(BaseModel):
    """The whole measurement: options, limits, environment, and one point per backend and N."""

    model_config = ConfigDict(frozen=True)

    active: int
    writes: int
    repeat: int
    fds_requested: tuple[int, ...]
    fds_measured: tuple[int, ...]
    clamp_notes: tuple[str, ...] = ()
    nofile_soft: int
    nofile_hard: int
    kernel: str
    python: str
    loadavg_before: tuple[float, float, float]
    loadavg_after: tuple[float, float, float]
    points: tuple[BackendPoint, ...]

    def point(self, backend: str, fds: int) -> BackendPoint | None:
        for p in self.points:
            if p.backend == backend and p.fds == fds:
                return p
        return None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def growth(self) -> tuple[Growth, ...]:
        return growth_of(self.points)


def growth_of(points: Sequence[BackendPoint]) -> tuple[Growth, ...]:
    """Per backend: median at the largest measured N over median at the smallest measured N."""
    out = []
    for name in dict.fromkeys(p.backend for p in points):
        measured = sorted(
            (p for p in points if p.backend == name and p.measured and p.median_us is not None),
            key=lambda p: p.fds,
        )
        if len(measured) >= 2:
            lo, hi = measured[0], measured[-1]
            out.append(
                Growth(
                    backend=name,
                    from_fds=lo.fds,
                    to_fds=hi.fds,
                    from_us=lo.median_us or 0.0,
                    to_us=hi.median_us or 0.0,
                )
            )
    return tuple(out)


def parse_counts(text: str, *, option: str = "--fds") -> tuple[int, ...]:
    """'10,100,1000' -> (10, 100, 1000): whole numbers, comma-separated, duplicates dropped."""
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise BadInput(f"{option}: give at least one number, e.g. {option} 10,100,1000")
    counts = []
    for part in parts:
        if not part:
            continue
        try:
            counts.append(parse_int(part))
        except ValueError as exc:
            raise BadInput(f"{option}: {exc}") from None
    return tuple(sorted(set(counts)))


def parse_names(text: str) -> tuple[str, ...]:
    """'epoll,poll' -> ('epoll', 'poll'); validity is checked by BackendsOptions."""
    return tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an already sorted, non-empty sequence."""
    if not sorted_values:
        raise ValueError("percentile of nothing")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def fit_counts(requested: Sequence[int], limit: int) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Clamp each N to `limit` descriptors; say which were clamped; drop resulting duplicates."""
    notes = []
    counts = []
    for n in sorted(set(requested)):
        if n > limit:
            notes.append(
                f"N={n} clamped to {limit}: RLIMIT_NOFILE allows {limit + RESERVED_FDS} open fds "
                f"and {RESERVED_FDS} are kept for the process itself"
            )
            n = limit
        if n not in counts:
            counts.append(n)
    return tuple(counts), tuple(notes)


@dataclass
class Ring:
    """N descriptors, both ends of N/2 socketpairs; byte on peers[i] makes fds[i] readable."""

    fds: list[int] = field(default_factory=list)
    peers: list[int] = field(default_factory=list)
    index: dict[int, int] = field(default_factory=dict)
    _socks: list[socket.socket] = field(default_factory=list)

    @classmethod
    def open(cls, n: int) -> Ring:
        ring = cls()
        try:
            while len(ring.fds) < n:
                a, b = socket.socketpair()
                ring._socks += (a, b)
                a.setblocking(False)
                b.setblocking(False)
                for end, peer in ((a, b), (b, a)):
                    if len(ring.fds) < n:
                        ring.index[end.fileno()] = len(ring.fds)
                        ring.fds.append(end.fileno())
                        ring.peers.append(peer.fileno())
        except OSError as exc:
            ring.close()
            raise EnvironmentProblem(
                f"cannot open {n} descriptors ({n // 2 + n % 2} socketpairs): {exc.strerror}; "
                f"RLIMIT_NOFILE is {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}"
            ) from exc
        return ring

    def close(self) -> None:
        for s in self._socks:
            s.close()
        self._socks.clear()

    def __enter__(self) -> Ring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_chain(
    backend: Backend, ring: Ring, active: int, writes: int, clock: Clock
) -> tuple[int, int, int]:
    """One run of the chain. Returns (elapsed ns of the loop, loop iterations, bytes read)."""
    fds, peers, index = ring.fds, ring.peers, ring.index
    n = len(fds)
    space = n // active  # active descriptors spread evenly over the ring, as in bench.c
    for i in range(active):
        os.write(peers[i * space], b"e")
    fired = active
    count = 0
    left = writes
    iterations = 0
    poll = backend.poll
    read = os.read
    write = os.write
    start = clock()
    while count < fired:
        events = poll(0)
        iterations += 1
        if not events and clock() - start > STALL_TIMEOUT_NS:
            raise EnvironmentProblem(
                f"{backend.name}: no descriptor became ready within "
                f"{STALL_TIMEOUT_NS / 1e9:g} s with {fired - count} byte(s) in flight"
            )
        for fd, _mask in events:
            # One byte per callback: when two chains meet on one descriptor it holds two bytes;
            # level-triggered backends report it again on the next wait.
            read(fd, 1)
            count += 1
            if left:
                nxt = index[fd] + 1
                write(peers[nxt if nxt < n else 0], b"e")
                left -= 1
                fired += 1
    return clock() - start, iterations, count


def _summarise(name: str, n: int, runs: list[tuple[int, int, int]]) -> BackendPoint:
    samples = [elapsed / iters / 1000.0 for elapsed, iters, _ in runs]
    ordered = sorted(samples)
    return BackendPoint(
        backend=name,
        fds=n,
        samples_us=tuple(round(s, 3) for s in samples),
        iterations=tuple(iters for _, iters, _ in runs),
        reads_per_run=runs[0][2],
        median_us=round(percentile(ordered, 50), 3),
        p10_us=round(percentile(ordered, 10), 3),
        p90_us=round(percentile(ordered, 90), 3),
        min_us=round(ordered[0], 3),
        max_us=round(ordered[-1], 3),
    )


def measure_at(n: int, opts: BackendsOptions, clock: Clock) -> list[BackendPoint]:
    """Every backend at one N, on one shared ring of descriptors, runs interleaved."""
    points: dict[str, BackendPoint] = {}
    live: list[Backend] = []
    with Ring.open(n) as ring:
        try:
            for name in opts.backends:
                backend = make_backend(name)
                try:
                    for fd in ring.fds:
                        backend.register(fd, EVENT_READ)
                except FdTooLarge:
                    backend.close()
                    points[name] = BackendPoint(
                        backend=name,
                        fds=n,
                        skipped=f"n/a: fd {max(ring.fds)} >= FD_SETSIZE ({FD_SETSIZE})",
                    )
                    continue
                live.append(backend)
            runs: dict[str, list[tuple[int, int, int]]] = {b.name: [] for b in live}
            for backend in live:  # warm-up run: caches, lazy allocations; not recorded
                run_chain(backend, ring, opts.active, opts.writes, clock)
            for _ in range(opts.repeat):
                for backend in live:
                    runs[backend.name].append(
                        run_chain(backend, ring, opts.active, opts.writes, clock)
                    )
        finally:
            for backend in live:
                backend.close()
    for name, rs in runs.items():
        points[name] = _summarise(name, n, rs)
    return [points[name] for name in opts.backends]


def run_backends_bench(
    opts: BackendsOptions,
    *,
    clock: Clock = time.perf_counter_ns,
    progress: Callable[[str], None] | None = None,
) -> BackendsBench:
    """Measure every backend at every N (clamped to what RLIMIT_NOFILE allows)."""
    soft, hard = raise_nofile_soft_limit()
    counts, notes = fit_counts(opts.fds, soft - RESERVED_FDS)
    if not counts or counts[-1] < 1:
        raise EnvironmentProblem(f"RLIMIT_NOFILE soft limit {soft} leaves no room for the bench")
    before = os.getloadavg()
    points: list[BackendPoint] = []
    for n in counts:
        if progress:
            progress(f"measuring N={n} ({', '.join(opts.backends)}, {opts.repeat} runs each)")
        points += measure_at(n, opts, clock)
    return BackendsBench(
        active=opts.active,
        writes=opts.writes,
        repeat=opts.repeat,
        fds_requested=opts.fds,
        fds_measured=counts,
        clamp_notes=notes,
        nofile_soft=soft,
        nofile_hard=hard,
        kernel=platform.release(),
        python=platform.python_version(),
        loadavg_before=tuple(round(x, 2) for x in before),  # type: ignore[arg-type]
        loadavg_after=tuple(round(x, 2) for x in os.getloadavg()),  # type: ignore[arg-type]
        points=tuple(points),
    )


def table_rows(bench: BackendsBench) -> list[list[str]]:
    """Rows for the table: backend, N, median, p10, p90, min, max, x vs smallest N."""
    base = {g.backend: g.from_us for g in bench.growth}
    rows = []
    for p in bench.points:
        if not p.measured:
            rows.append([p.backend, str(p.fds), p.skipped or "n/a", "", "", "", "", ""])
            continue
        ref = base.get(p.backend)
        rel = f"{p.median_us / ref:.2f}x" if ref and p.median_us is not None else "1.00x"
        rows.append(
            [
                p.backend,
                str(p.fds),
                f"{p.median_us:.2f}",
                f"{p.p10_us:.2f}",
                f"{p.p90_us:.2f}",
                f"{p.min_us:.2f}",
                f"{p.max_us:.2f}",
                rel,
            ]
        )
    return rows


TABLE_HEADERS = ("backend", "fds", "median us", "p10 us", "p90 us", "min us", "max us", "vs smallest N")


def closing_note(bench: BackendsBench) -> list[str]:
    """The lines printed under the table: method, growth ratios, load."""
    lines = [
        f"cost of one loop iteration (wait + dispatch), {bench.repeat} runs per row; "
        f"each run: {bench.active} active, {bench.writes} chained writes "
        f"({bench.active + bench.writes} reads).",
    ]
    for g in bench.growth:
        lines.append(
            f"{g.backend}: N {g.from_fds} -> {g.to_fds} (x{g.to_fds / g.from_fds:g} descriptors): "
            f"cost x{g.ratio:.2f} ({g.from_us:.2f} -> {g.to_us:.2f} us, "
            f"{g.ns_per_fd:.1f} ns per extra fd)"
        )
    lines += list(bench.clamp_notes)
    lines.append(
        f"load average before {bench.loadavg_before[0]:.2f}, after {bench.loadavg_after[0]:.2f} "
        f"(1 min); kernel {bench.kernel}, Python {bench.python}"
    )
    return lines
