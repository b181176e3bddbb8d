"""The level- versus edge-triggered epoll experiment of the course notes.

A client connects over loopback TCP and writes one byte; the server registers its end for
reading with epoll and never reads. For a fixed window (default 100 ms) the server calls
epoll_wait with the time that is left, and counts the waits that report its socket.

Facts this relies on (epoll(7), Linux >= 2.6):
- Level-triggered (the default): epoll_wait reports an fd on every call while the condition
  holds; the unread byte keeps the socket readable, so every wait returns at once: the server
  spins, one wakeup per call, for the whole window.
- Edge-triggered (EPOLLET): an fd is reported when its state changes (a segment arrives), once.
  With the byte still unread and nothing new arriving, the next wait sleeps out the window.
  That is why an edge-triggered server must read until EAGAIN.
- One write of one byte on loopback is one segment, so "once" is exactly one wakeup.
"""

from __future__ import annotations

import socket
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, computed_field

from c10kplan.errors import BadInput
from c10kplan.reactor.backends import EVENT_READ, make_backend

MAX_WINDOW_MS = 10_000
EXPLANATION = (
    "level-triggered epoll reports the unread byte on every epoll_wait (the server spins); "
    "edge-triggered reports it once, when it arrives, and then sleeps: read until EAGAIN."
)


class TriggerRun(BaseModel):
    """One mode over the window: how many epoll_wait calls, and how many reported the socket."""

    model_config = ConfigDict(frozen=True)

    mode: Literal["level", "edge"]
    window_ms: float
    waits: int
    wakeups: int
    elapsed_ms: float


class TriggerReport(BaseModel):
    """Both modes side by side."""

    model_config = ConfigDict(frozen=True)

    bytes_written: int
    window_ms: float
    level: TriggerRun
    edge: TriggerRun
    explanation: str = EXPLANATION

    @computed_field  # type: ignore[prop-decorator]
    @property
    def level_wakes_more(self) -> bool:
        return self.level.wakeups > self.edge.wakeups


def _connected_pair() -> tuple[socket.socket, socket.socket]:
    """(client, server-side connection) over 127.0.0.1 on a port the kernel picks."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname(), timeout=5)
        conn, _ = listener.accept()
    conn.setblocking(False)
    return client, conn


def count_wakeups(edge: bool, window_ms: float) -> TriggerRun:
    """Peer writes one byte, the server never reads; count wakeups over `window_ms`."""
    client, conn = _connected_pair()
    backend = make_backend("epoll", edge=edge)
    try:
        backend.register(conn.fileno(), EVENT_READ)
        client.sendall(b"x")
        waits = wakeups = 0
        start = time.monotonic()
        deadline = start + window_ms / 1000.0
        while (left := deadline - time.monotonic()) > 0:
            events = backend.poll(left)
            waits += 1
            wakeups += sum(1 for fd, _ in events if fd == conn.fileno())
        elapsed = time.monotonic() - start
    finally:
        backend.close()
        conn.close()
        client.close()
    return TriggerRun(
        mode="edge" if edge else "level",
        window_ms=window_ms,
        waits=waits,
        wakeups=wakeups,
        elapsed_ms=round(elapsed * 1000.0, 3),
    )


def run_trigger(window_ms: float = 100.0) -> TriggerReport:
    """Level then edge, each over its own fresh connection and the same window."""
    if not 1 <= window_ms <= MAX_WINDOW_MS:
        raise BadInput(f"--window-ms must be in 1..{MAX_WINDOW_MS}, got {window_ms:g}")
    return TriggerReport(
        bytes_written=1,
        window_ms=window_ms,
        level=count_wakeups(False, window_ms),
        edge=count_wakeups(True, window_ms),
    )


def trigger_rows(report: TriggerReport) -> list[list[str]]:
    """Side by side: one row per measure, one column per mode."""
    lv, ed = report.level, report.edge
    return [
        ["epoll_wait calls", f"{lv.waits:,}", f"{ed.waits:,}"],
        ["wakeups reporting the socket", f"{lv.wakeups:,}", f"{ed.wakeups:,}"],
        ["elapsed ms", f"{lv.elapsed_ms:.1f}", f"{ed.elapsed_ms:.1f}"],
    ]


TRIGGER_HEADERS = ("", "level-triggered", "edge-triggered")
