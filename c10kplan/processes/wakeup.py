"""Signals into a poll loop. signal.set_wakeup_fd: the C-level handler writes each signal's
number as one byte to the fd (a nonblocking socket the loop watches), so a signal wakes
poll/epoll_wait at once; the Python handlers do nothing."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterable
from typing import Any


def _ignore_signal(signum: int, frame: Any) -> None:
    return None  # the wakeup fd carries the signal; the loop acts on it


def wake_on_signals(wake_fd: int, signals: Iterable[int]) -> None:
    """Route `signals` to `wake_fd`: a do-nothing Python handler for each (so the default
    action does not run) and set_wakeup_fd. Undo with signal.set_wakeup_fd(-1)."""
    for sig in signals:
        signal.signal(sig, _ignore_signal)
    signal.set_wakeup_fd(wake_fd, warn_on_full_buffer=False)


def read_wake_bytes(sock: socket.socket) -> bytes:
    """Everything waiting on a nonblocking wakeup socket: one byte per signal number."""
    chunks = []
    while True:
        try:
            data = sock.recv(256)
        except (BlockingIOError, InterruptedError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)
