"""poll(2) backend.

Facts: poll has no FD_SETSIZE limit (the array is sized by the caller), but every call copies
the whole pollfd array (8 bytes per fd) into the kernel and the kernel walks all of it, so the
cost of one wait grows linearly with the number of registered fds, ready or not.
CPython's poll object silently re-registers an fd it already holds and raises KeyError for
unregister of an unknown one, so this backend keeps the set of registered fds itself to keep the
contract (AlreadyRegistered / NotRegistered, base.py).
"""

from __future__ import annotations

import select

from c10kplan.reactor.backends.base import AlreadyRegistered, NotRegistered


class PollBackend:
    name = "poll"
    edge = False

    def __init__(self) -> None:
        self._poll = select.poll()
        self._fds: set[int] = set()

    def register(self, fd: int, events: int) -> None:
        if fd in self._fds:
            raise AlreadyRegistered(fd)
        self._poll.register(fd, events)
        self._fds.add(fd)

    def modify(self, fd: int, events: int) -> None:
        if fd not in self._fds:
            raise NotRegistered(fd)
        self._poll.modify(fd, events)

    def unregister(self, fd: int) -> None:
        if fd not in self._fds:
            raise NotRegistered(fd)
        self._poll.unregister(fd)
        self._fds.discard(fd)

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        # poll(2) takes milliseconds; None blocks. Round a positive timeout up so that a
        # sub-millisecond timeout does not turn into a busy 0 ms poll.
        ms = None if timeout is None else (0 if timeout <= 0 else max(1, int(timeout * 1000 + 0.999)))
        return self._poll.poll(ms)

    def close(self) -> None:
        self._poll = None  # type: ignore[assignment]
        self._fds.clear()

    def __len__(self) -> int:
        return len(self._fds)
