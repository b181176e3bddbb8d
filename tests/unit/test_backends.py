"""One contract, every backend, on real socketpairs (as CPython's test_selectors does)."""

from __future__ import annotations

import socket

import pytest

from c10kplan.reactor.backends import (
    EVENT_ERROR,
    EVENT_READ,
    EVENT_WRITE,
    FdTooLarge,
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


def test_nothing_ready_returns_empty(backend, pair):
    backend.register(pair[0].fileno(), EVENT_READ)
    assert backend.poll(0) == []
    assert len(backend) == 1


def test_readable_after_peer_writes(backend, pair):
    a, b = pair
    backend.register(a.fileno(), EVENT_READ)
    b.send(b"x")
    assert backend.poll(1.0) == [(a.fileno(), EVENT_READ)]


def test_level_repeats_edge_does_not(backend, pair):
    a, b = pair
    backend.register(a.fileno(), EVENT_READ)
    b.send(b"x")
    backend.poll(1.0)
    again = backend.poll(0)
    if backend.edge:
        assert again == []
    else:
        assert again == [(a.fileno(), EVENT_READ)]


def test_modify_adds_write_interest(backend, pair):
    a, _ = pair
    backend.register(a.fileno(), EVENT_READ)
    backend.modify(a.fileno(), EVENT_READ | EVENT_WRITE)
    assert backend.poll(1.0) == [(a.fileno(), EVENT_WRITE)]


def test_unregister_stops_events(backend, pair):
    a, b = pair
    backend.register(a.fileno(), EVENT_READ)
    backend.unregister(a.fileno())
    b.send(b"x")
    assert backend.poll(0) == []
    assert len(backend) == 0


def test_peer_close_is_reported(backend, pair):
    a, b = pair
    backend.register(a.fileno(), EVENT_READ)
    b.close()
    [(fd, mask)] = backend.poll(1.0)
    assert fd == a.fileno()
    assert mask & (EVENT_READ | EVENT_ERROR)
    assert a.recv(1) == b""


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
