"""select(2) backend.

Facts: fd_set is a fixed bitmap of FD_SETSIZE bits (1024 in glibc's <sys/select.h>:
`#define __FD_SETSIZE 1024`); FD_SET on an fd >= FD_SETSIZE is undefined behaviour in C and
CPython's select.select raises ValueError for it. So this backend refuses such an fd at
register time with `FdTooLarge`, and the server rejects that one connection cleanly. Each call
copies three bitmaps into the kernel and scans up to maxfd: O(maxfd) per wait.
"""

from __future__ import annotations

import select as _select

from c10kplan.reactor.backends.base import (
    EVENT_READ,
    EVENT_WRITE,
    AlreadyRegistered,
    FdTooLarge,
    NotRegistered,
)

FD_SETSIZE = 1024


class SelectBackend:
    name = "select"
    edge = False

    def __init__(self) -> None:
        self._events: dict[int, int] = {}
        self._readers: set[int] = set()
        self._writers: set[int] = set()

    def register(self, fd: int, events: int) -> None:
        if fd >= FD_SETSIZE:
            raise FdTooLarge(f"fd {fd} >= FD_SETSIZE ({FD_SETSIZE}): select(2) cannot watch it")
        if fd in self._events:
            raise AlreadyRegistered(fd)
        self._set(fd, events)

    def modify(self, fd: int, events: int) -> None:
        if fd not in self._events:
            raise NotRegistered(fd)
        self._set(fd, events)

    def _set(self, fd: int, events: int) -> None:
        self._events[fd] = events
        (self._readers.add if events & EVENT_READ else self._readers.discard)(fd)
        (self._writers.add if events & EVENT_WRITE else self._writers.discard)(fd)

    def unregister(self, fd: int) -> None:
        if self._events.pop(fd, None) is None:
            raise NotRegistered(fd)
        self._readers.discard(fd)
        self._writers.discard(fd)

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        if timeout is not None and timeout < 0:
            timeout = 0
        r, w, _ = _select.select(self._readers, self._writers, (), timeout)
        ready: dict[int, int] = {}
        for fd in r:
            ready[fd] = EVENT_READ
        for fd in w:
            ready[fd] = ready.get(fd, 0) | EVENT_WRITE
        return list(ready.items())

    def close(self) -> None:
        self._events.clear()
        self._readers.clear()
        self._writers.clear()

    def __len__(self) -> int:
        return len(self._events)
