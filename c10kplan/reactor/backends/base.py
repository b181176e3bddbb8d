"""The backend interface: the four verbs of `selectors.BaseSelector`, on raw fds.

The contract every backend (select, poll, epoll) keeps, checked by the shared backend test class
(tests/integration/test_backends.py) on real socketpairs:

- `register(fd, events)` watches an fd that is not watched yet. Registering an fd that is
  already registered raises `AlreadyRegistered` (and leaves its registration as it was).
  select(2) refuses an fd >= FD_SETSIZE with `FdTooLarge`; the kernel's own refusals
  (epoll_ctl: ENOSPC once fs.epoll.max_user_watches is used up, ENOMEM) pass through as OSError.
- `modify(fd, events)` replaces the mask of a registered fd; an unknown fd raises `NotRegistered`.
  A mask of 0 keeps the fd registered but reports nothing for it (except, on poll and epoll,
  the error / hangup bits, which the kernel reports whether asked for or not).
- `unregister(fd)` stops watching a registered fd; an unknown fd raises `NotRegistered`.
  Unregister BEFORE closing the fd (epoll drops a closed fd only once every dup is closed).
- `poll(timeout)` waits up to `timeout` seconds (None: no limit, <= 0: do not block) and returns
  `[(fd, mask), ...]`, each fd at most once; `len(backend)` is the number of registered fds.

All three errors are ValueError (a caller's mistake about an fd, not an I/O failure), so code
that catches ValueError keeps working.
"""

from __future__ import annotations

import select
from typing import Protocol

# poll(2) and epoll(7) share these bit values on Linux (POLLIN == EPOLLIN == 0x001, ...).
EVENT_READ: int = select.POLLIN
EVENT_WRITE: int = select.POLLOUT
EVENT_ERROR: int = select.POLLERR | select.POLLHUP


class FdTooLarge(ValueError):
    """select(2) cannot watch this fd: fd_set is a fixed bitmap of FD_SETSIZE (1024) bits."""


class AlreadyRegistered(ValueError):
    """register() of an fd this backend already watches."""

    def __init__(self, fd: int) -> None:
        super().__init__(f"fd {fd} is already registered")
        self.fd = fd


class NotRegistered(ValueError):
    """modify() or unregister() of an fd this backend does not watch."""

    def __init__(self, fd: int) -> None:
        super().__init__(f"fd {fd} is not registered")
        self.fd = fd


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
