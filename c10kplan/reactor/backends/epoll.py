"""epoll(7) backend, level- or edge-triggered.

Some facts about epoll this module relies on (Linux >= 2.6.x; checked on 6.x):
- epoll_wait returns only ready fds, so the cost of one wait is O(ready), not O(registered):
  that is why it stays flat where select/poll grow linearly with the number of fds.
- Level-triggered (the default): an fd is reported on every wait while it stays readable.
  Edge-triggered (EPOLLET): it is reported once per *change* (new data arriving); the caller
  must read (or accept, or write) until EAGAIN, or it will not hear about that fd again.
- EPOLLERR and EPOLLHUP are always reported, asked for or not.
- Each registration costs kernel memory (struct epitem + eppoll_entry, ~160 bytes on x86_64),
  bounded per user by fs.epoll.max_user_watches.
- Closing an fd removes it from the epoll set only once every dup of it is closed; we always
  unregister before close.
- epoll_ctl(ADD) of an fd already in the set fails with EEXIST, MOD / DEL of an fd not in it with
  ENOENT; CPython raises those as FileExistsError / FileNotFoundError, which this backend turns
  into the contract's AlreadyRegistered / NotRegistered (base.py).
"""

from __future__ import annotations

import select

from c10kplan.reactor.backends.base import AlreadyRegistered, NotRegistered


class EpollBackend:
    name = "epoll"

    def __init__(self, *, edge: bool = False) -> None:
        self.edge = edge
        self._ep = select.epoll()
        self._flags = select.EPOLLET if edge else 0
        self._count = 0

    def register(self, fd: int, events: int) -> None:
        try:
            self._ep.register(fd, events | self._flags)
        except FileExistsError:  # EEXIST
            raise AlreadyRegistered(fd) from None
        self._count += 1

    def modify(self, fd: int, events: int) -> None:
        try:
            self._ep.modify(fd, events | self._flags)
        except FileNotFoundError:  # ENOENT
            raise NotRegistered(fd) from None

    def unregister(self, fd: int) -> None:
        try:
            self._ep.unregister(fd)
        except FileNotFoundError:  # ENOENT
            raise NotRegistered(fd) from None
        self._count -= 1

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        # maxevents=-1: CPython asks for FD_SETSIZE - 1 (1023) events per wait; more ready fds
        # come with the next wait (epoll keeps them on its ready list, level or edge), and a
        # bounded array keeps each call's allocation small. EPOLLIN/OUT/ERR/HUP have the
        # poll(2) values, so the kernel's list is returned as is.
        return self._ep.poll(-1 if timeout is None else timeout)

    def fileno(self) -> int:
        return self._ep.fileno()

    def close(self) -> None:
        self._ep.close()

    def __len__(self) -> int:
        return self._count
