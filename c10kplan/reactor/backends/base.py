"""The backend interface: the four verbs of `selectors.BaseSelector`, on raw fds."""

from __future__ import annotations

import select
from typing import Protocol

# poll(2) and epoll(7) share these bit values on Linux (POLLIN == EPOLLIN == 0x001, ...).
EVENT_READ: int = select.POLLIN
EVENT_WRITE: int = select.POLLOUT
EVENT_ERROR: int = select.POLLERR | select.POLLHUP


class FdTooLarge(ValueError):
    """select(2) cannot watch this fd: fd_set is a fixed bitmap of FD_SETSIZE (1024) bits."""


class Backend(Protocol):
    """What the reactor needs from a multiplexer. `poll` returns [(fd, mask), ...]."""

    name: str
    edge: bool

    def register(self, fd: int, events: int) -> None: ...

    def modify(self, fd: int, events: int) -> None: ...

    def unregister(self, fd: int) -> None: ...

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]: ...

    def close(self) -> None: ...

    def __len__(self) -> int: ...
