"""The Reactor in-process (a thread), on real loopback sockets, with a backend we can steer."""

from __future__ import annotations

import signal
import socket
import threading

import pytest

from c10kplan.reactor.backends import FdTooLarge, make_backend
from c10kplan.reactor.server import Reactor, make_listener


class RefusingBackend:
    """An epoll backend that refuses connection fds like select(2) refuses fds >= 1024."""

    def __init__(self) -> None:
        self.inner = make_backend("epoll")
        self.name, self.edge = "epoll", False
        self.allowed: set[int] = set()
        self.refuse = True

    def register(self, fd, events):
        if self.refuse and len(self.inner) >= 2:  # listener and wake socket come first
            raise FdTooLarge(f"fd {fd} refused")
        self.inner.register(fd, events)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __len__(self):
        return len(self.inner)


@pytest.fixture
def running():
    started = []

    def start(backend=None, **kw):
        lsock = make_listener("127.0.0.1", 0, backlog=128, reuseport=False)
        r = Reactor(lsock, make_backend("epoll") if backend is None else backend, **kw)
        t = threading.Thread(target=r.run, daemon=True)
        t.start()
        started.append((r, t))
        return r, lsock.getsockname()[1]

    yield start
    for r, t in started:
        r.stop()
        t.join(5)
        r.close()


def test_refused_fd_is_rejected_cleanly_and_service_continues(running):
    backend = RefusingBackend()
    reactor, port = running(backend)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        assert s.recv(1) == b""  # closed by the server, not left hanging
    assert reactor.rejected == 1 and reactor.active == 0
    backend.refuse = False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"ok")
        assert s.recv(2) == b"ok"


def test_stop_closes_listener_and_connections(running):
    reactor, port = running()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"a")
    assert s.recv(1) == b"a"
    reactor.stop()
    assert s.recv(1) == b""
    s.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_sigusr1_byte_requests_stats(running):
    seen = threading.Event()
    reactor, port = running(on_stats_request=lambda r: seen.set())
    reactor.wake_w.send(bytes([signal.SIGUSR1]))
    assert seen.wait(5)
    snap = reactor.snapshot(worker=3)
    assert snap.worker == 3 and snap.rss_bytes > 0
