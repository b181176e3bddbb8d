"""One contract, every backend, on real socketpairs (as CPython's test_selectors does).

The contract is written in c10kplan/reactor/backends/base.py; `TestBackendContract` runs each
clause on select, poll, epoll level- and edge-triggered.
"""

from __future__ import annotations

import socket

import pytest

from c10kplan.reactor.backends import (
    EVENT_ERROR,
    EVENT_READ,
    EVENT_WRITE,
    AlreadyRegistered,
    FdTooLarge,
    NotRegistered,
    available_backends,
    make_backend,
)

VARIANTS = [(name, False) for name in available_backends()] + [("epoll", True)]


@pytest.fixture(params=VARIANTS, ids=lambda v: f"{v[0]}-{'edge' if v[1] else 'level'}")
def backend(request):
    name, edge = request.param
    b = make_backend(name, edge=edge)
    yield b
    b.close()


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


class TestBackendContract:
    def test_nothing_ready_returns_empty(self, backend, pair):
        backend.register(pair[0].fileno(), EVENT_READ)
        assert backend.poll(0) == []
        assert len(backend) == 1

    def test_readable_after_peer_writes(self, backend, pair):
        a, b = pair
        backend.register(a.fileno(), EVENT_READ)
        b.send(b"x")
        assert backend.poll(1.0) == [(a.fileno(), EVENT_READ)]

    def test_level_repeats_edge_does_not(self, backend, pair):
        a, b = pair
        backend.register(a.fileno(), EVENT_READ)
        b.send(b"x")
        backend.poll(1.0)
        again = backend.poll(0)
        if backend.edge:
            assert again == []
        else:
            assert again == [(a.fileno(), EVENT_READ)]

    def test_modify_adds_write_interest(self, backend, pair):
        a, _ = pair
        backend.register(a.fileno(), EVENT_READ)
        backend.modify(a.fileno(), EVENT_READ | EVENT_WRITE)
        assert backend.poll(1.0) == [(a.fileno(), EVENT_WRITE)]

    def test_modify_to_no_interest_keeps_the_fd_registered_and_quiet(self, backend, pair):
        a, b = pair
        backend.register(a.fileno(), EVENT_READ)
        backend.modify(a.fileno(), 0)
        b.send(b"x")
        assert backend.poll(0) == []
        assert len(backend) == 1
        backend.modify(a.fileno(), EVENT_READ)
        assert backend.poll(1.0) == [(a.fileno(), EVENT_READ)]

    def test_unregister_stops_events(self, backend, pair):
        a, b = pair
        backend.register(a.fileno(), EVENT_READ)
        backend.unregister(a.fileno())
        b.send(b"x")
        assert backend.poll(0) == []
        assert len(backend) == 0

    def test_peer_close_is_reported(self, backend, pair):
        a, b = pair
        backend.register(a.fileno(), EVENT_READ)
        b.close()
        [(fd, mask)] = backend.poll(1.0)
        assert fd == a.fileno()
        assert mask & (EVENT_READ | EVENT_ERROR)
        assert a.recv(1) == b""

    def test_register_twice_raises_already_registered_and_keeps_the_first(self, backend, pair):
        a, b = pair
        backend.register(a.fileno(), EVENT_READ)
        with pytest.raises(AlreadyRegistered, match=f"fd {a.fileno()} is already registered"):
            backend.register(a.fileno(), EVENT_WRITE)
        assert len(backend) == 1
        b.send(b"x")  # still watched for reading, not writing
        assert backend.poll(1.0) == [(a.fileno(), EVENT_READ)]

    def test_unregister_of_an_unknown_fd_raises_not_registered(self, backend, pair):
        a, b = pair
        with pytest.raises(NotRegistered, match=f"fd {a.fileno()} is not registered"):
            backend.unregister(a.fileno())
        backend.register(a.fileno(), EVENT_READ)
        backend.unregister(a.fileno())
        with pytest.raises(NotRegistered):  # twice: the second one is unknown again
            backend.unregister(a.fileno())
        assert len(backend) == 0
        backend.register(a.fileno(), EVENT_READ)  # and it can be registered afresh
        b.send(b"x")
        assert backend.poll(1.0) == [(a.fileno(), EVENT_READ)]

    def test_modify_of_an_unknown_fd_raises_not_registered(self, backend, pair):
        a, _ = pair
        with pytest.raises(NotRegistered):
            backend.modify(a.fileno(), EVENT_READ)
        assert len(backend) == 0

    def test_the_contract_errors_are_value_errors(self):
        # Callers that catch ValueError (a mistake about an fd, not an I/O failure) keep working.
        assert issubclass(AlreadyRegistered, ValueError)
        assert issubclass(NotRegistered, ValueError)
        assert issubclass(FdTooLarge, ValueError)


def test_select_refuses_fd_at_fd_setsize():
    b = make_backend("select")
    socks = []
    try:
        # Open descriptors until one is >= 1024, the glibc FD_SETSIZE.
        while not socks or socks[-1].fileno() < 1024:
            socks.append(socket.socket())
        with pytest.raises(FdTooLarge, match="FD_SETSIZE"):
            b.register(socks[-1].fileno(), EVENT_READ)
        b.register(socks[0].fileno(), EVENT_READ)  # a low fd is still fine
    finally:
        for s in socks:
            s.close()


def test_edge_needs_epoll():
    with pytest.raises(ValueError, match="epoll"):
        make_backend("poll", edge=True)
