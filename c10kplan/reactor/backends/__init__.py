"""I/O multiplexing backends behind one small interface (as `selectors.BaseSelector`).

Four verbs: register, modify, unregister, poll (plus close); what each raises is the contract
in `base.py` (AlreadyRegistered, NotRegistered, FdTooLarge), the same on every backend. Event
masks use the poll(2) bit values, which epoll(7) shares, so the epoll backend hands the kernel's
list through untouched:

    EVENT_READ  = POLLIN  (0x001) = EPOLLIN
    EVENT_WRITE = POLLOUT (0x004) = EPOLLOUT
    EVENT_ERROR = POLLERR (0x008) | POLLHUP (0x010): reported whether or not asked for;
                  callers treat it as "readable" so the next recv/send surfaces the error.

`make_backend(name, edge=False)` is the one factory; edge-triggered is an option of epoll only
(`check_trigger` is that rule, shared with the option models of `serve` and `verify`).
"""

from __future__ import annotations

import select as _select  # the stdlib module; `.select` below is our backend submodule

from c10kplan.reactor.backends.base import (
    EVENT_ERROR,
    EVENT_READ,
    EVENT_WRITE,
    AlreadyRegistered,
    Backend,
    FdTooLarge,
    NotRegistered,
)

BACKENDS = ("epoll", "poll", "select")

__all__ = [
    "BACKENDS",
    "AlreadyRegistered",
    "EVENT_ERROR",
    "EVENT_READ",
    "EVENT_WRITE",
    "Backend",
    "FdTooLarge",
    "NotRegistered",
    "available_backends",
    "check_trigger",
    "make_backend",
]


def available_backends() -> tuple[str, ...]:
    """The backends this platform supports, best first."""
    return tuple(name for name in BACKENDS if hasattr(_select, name))


def check_trigger(backend: str, trigger: str) -> None:
    """Refuse edge-triggered mode on anything but epoll: select(2) and poll(2) only report
    readiness levels (EPOLLET exists only in epoll(7)). ValueError, so pydantic reports it."""
    if trigger == "edge" and backend != "epoll":
        raise ValueError(f"--trigger edge needs --backend epoll, not {backend}")


def make_backend(name: str, *, edge: bool = False) -> Backend:
    """Build a backend by name. `edge=True` is only meaningful (and only allowed) for epoll."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    check_trigger(name, "edge" if edge else "level")
    if name == "epoll":
        from c10kplan.reactor.backends.epoll import EpollBackend

        return EpollBackend(edge=edge)
    if name == "poll":
        from c10kplan.reactor.backends.poll import PollBackend

        return PollBackend()
    from c10kplan.reactor.backends.select import SelectBackend

    return SelectBackend()
