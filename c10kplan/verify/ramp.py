"""The ramp as verify saw it: connections established and failed over time, from the storm's
progress reports, with the host's Slab sampled at a few points on the way up.

Each storm process reports its own counters (established, failed, ...) every PROGRESS_EVERY
(0.25 s, storm/client.py); the recorder keeps the latest report of every process and records
their sum, at most one sample per `every` seconds, plus one whenever the established count
crosses the next tenth of the target. At those crossings (and the first report) it also reads
/proc/meminfo's Slab through ProcFS: about 50 us per read, 11 reads per run.

Kernel facts: Slab (/proc/meminfo, kB) is host-wide; a TCP socket's kernel memory (struct
tcp_sock ~2.3 KiB, its dentry/inode/file, epoll item) lives in slab caches, so Slab grows by
roughly the planned kernel bytes per socket times the sockets opened (two per loopback
connection: both ends are on this host).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from c10kplan.host.parse import parse_meminfo
from c10kplan.host.procfs import ProcFS

MAX_SAMPLES = 2000  # past this, every other sample is dropped (and `every` doubles)
SLAB_STEPS = 10  # Slab read at each tenth of the target


class RampSample(BaseModel):
    """The storm's counters summed over its processes, `t` seconds after the first report."""

    model_config = ConfigDict(frozen=True)

    t: float
    established: int
    failed: int
    slab_bytes: int | None = None  # /proc/meminfo Slab at this point, when sampled here


class RampRecorder:
    """An on_event hook: records RampSamples from the storm's progress events, then passes every
    event on to `forward`. `clock` is injected (seconds, monotonic)."""

    def __init__(self, target: int, procfs: ProcFS | None, forward: Callable[[dict], None] | None = None,
                 *, clock: Callable[[], float] = time.monotonic, every: float = 0.1) -> None:
        self.target, self.procfs, self.forward, self.clock, self.every = target, procfs, forward, clock, every
        self.samples: list[RampSample] = []
        self._latest: dict[int, dict] = {}
        self._t0: float | None = None
        self._last_t = float("-inf")
        self._next_step = 0  # next tenth of the target at which Slab is read

    def __call__(self, event: dict) -> None:
        if event.get("event") in ("progress", "ramped"):
            self._record(event)
        if self.forward is not None:
            self.forward(event)

    def _record(self, event: dict) -> None:
        self._latest[int(event.get("index", 0))] = event
        now = self.clock()
        if self._t0 is None:
            self._t0 = now
        est = sum(int(e.get("established", 0)) for e in self._latest.values())
        failed = sum(int(e.get("failed", 0)) for e in self._latest.values())
        crossed = est >= self._next_step * self.target / SLAB_STEPS and self._next_step <= SLAB_STEPS
        if not crossed and now - self._last_t < self.every:
            return
        slab = None
        if crossed:
            while self._next_step <= SLAB_STEPS and est >= self._next_step * self.target / SLAB_STEPS:
                self._next_step += 1
            slab = self._slab()
        self._last_t = now
        self.samples.append(RampSample(t=round(now - self._t0, 3), established=est, failed=failed, slab_bytes=slab))
        if len(self.samples) > MAX_SAMPLES:
            self._thin()

    def _slab(self) -> int | None:
        return None if self.procfs is None else parse_meminfo(self.procfs.read("proc/meminfo")).get("Slab")

    def _thin(self) -> None:
        """Keep every other sample (and every one with a Slab reading)."""
        self.samples = [s for i, s in enumerate(self.samples) if i % 2 == 0 or s.slab_bytes is not None]
        self.every *= 2
