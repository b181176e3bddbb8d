"""poll(2) backend.

Facts: poll has no FD_SETSIZE limit (the array is sized by the caller), but every call copies
the whole pollfd array (8 bytes per fd) into the kernel and the kernel walks all of it, so the
cost of one wait grows linearly with the number of registered fds, ready or not.
"""

from __future__ import annotations

import select


class PollBackend:
    name = "poll"
    edge = False

    def __init__(self) -> None:
        self._poll = select.poll()
        self._count = 0

    def register(self, fd: int, events: int) -> None:
        self._poll.register(fd, events)
        self._count += 1

    def modify(self, fd: int, events: int) -> None:
        self._poll.modify(fd, events)

    def unregister(self, fd: int) -> None:
        self._poll.unregister(fd)
        self._count -= 1

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        # poll(2) takes milliseconds; None blocks. Round a positive timeout up so that a
        # sub-millisecond timeout does not turn into a busy 0 ms poll.
        ms = None if timeout is None else (0 if timeout <= 0 else max(1, int(timeout * 1000 + 0.999)))
        return self._poll.poll(ms)

    def close(self) -> None:
        self._poll = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return self._count
