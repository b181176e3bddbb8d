"""The server-wide `--max-connections` total, shared by the workers of one server.

SO_REUSEPORT spreads connections over the workers as the kernel hashes them, so a per-worker
share of the cap would reject while another worker is idle. Instead every worker publishes its
active count in one slot of a shared array and admits a connection only while the sum is
under the cap.

Check and publish happen under a POSIX record lock (fcntl(F_SETLKW) via `lockf`) on the memfd
that backs the array. Record locks belong to the process, not to the inherited descriptor, so
they exclude between forked workers (flock would not: a forked child shares the parent's open
file description and with it the lock), and the kernel drops a dead worker's lock with it.
Without the lock two workers admitting at the same instant could both see `cap - 1` and
overshoot by up to (workers - 1). The lock costs two fcntl calls per accepted connection, only
when the cap is set and more than one worker runs.
"""

from __future__ import annotations

import fcntl
import mmap
import os

SLOT_BYTES = 8  # one signed 64-bit count per worker


class SharedActive:
    """Per-worker active counts in a MAP_SHARED memfd, inherited by fork."""

    def __init__(self, workers: int) -> None:
        self._fd = os.memfd_create("c10kplan-active", os.MFD_CLOEXEC)
        os.ftruncate(self._fd, SLOT_BYTES * workers)
        self._map = mmap.mmap(self._fd, SLOT_BYTES * workers)
        self._counts = memoryview(self._map).cast("q")

    def admit(self, slot: int, own: int, cap: int) -> bool:
        """Reserve a place for one more connection of worker `slot` (which holds `own`)."""
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            if sum(self._counts) >= cap:
                return False
            self._counts[slot] = own + 1  # reserved now; publish() settles it after register
            return True
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def publish(self, slot: int, own: int) -> None:
        """Worker `slot` now holds `own` connections (a single aligned 8-byte store)."""
        self._counts[slot] = own

    def total(self) -> int:
        return sum(self._counts)
