"""The Reactor in-process (a thread), on real loopback sockets, with a backend we can steer."""

from __future__ import annotations

import errno
import signal
import socket
import threading
import time

import pytest

from c10kplan.reactor.backends import FdTooLarge, make_backend
from c10kplan.reactor.server import Reactor, make_listener


class RefusingBackend:
    """An epoll backend that refuses connection fds like select(2) refuses fds >= 1024."""

    def __init__(self, error: Exception | None = None) -> None:
        self.inner = make_backend("epoll")
        self.name, self.edge = "epoll", False
        self.allowed: set[int] = set()
        self.refuse = True
        self.error = error

    def register(self, fd, events):
        if self.refuse and len(self.inner) >= 2:  # listener and wake socket come first
            raise self.error or FdTooLarge(f"fd {fd} refused")
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


def test_epoll_watch_limit_at_register_drops_one_connection_not_the_worker(running):
    # epoll_ctl(ADD) fails with ENOSPC once fs.epoll.max_user_watches is used up.
    backend = RefusingBackend(OSError(errno.ENOSPC, "No space left on device"))
    reactor, port = running(backend)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        assert s.recv(1) == b""  # closed by the server
    assert reactor.rejected == 1 and reactor.active == 0
    assert reactor.snapshot(0).errors == {"ENOSPC": 1}
    backend.refuse = False
    time.sleep(0.25)  # the accept back-off (ACCEPT_BACKOFF) passes, then service resumes
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


class EmfileListener:
    """A real listener whose accept() fails with EMFILE while `full` is set, counting calls."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.full = True
        self.calls = 0

    def accept(self):
        self.calls += 1
        if self.full:
            raise OSError(errno.EMFILE, "Too many open files")
        return self.sock.accept()

    def __getattr__(self, name):
        return getattr(self.sock, name)


@pytest.mark.parametrize("spare", [False, True], ids=["no-spare", "spare-does-not-help"])
def test_emfile_that_the_spare_cannot_fix_backs_off_instead_of_spinning(monkeypatch, spare):
    if not spare:
        monkeypatch.setattr(Reactor, "_open_spare", staticmethod(lambda: None))
    lsock = make_listener("127.0.0.1", 0, backlog=16, reuseport=False)
    listener = EmfileListener(lsock)
    reactor = Reactor(listener, make_backend("epoll"))  # type: ignore[arg-type]
    t = threading.Thread(target=reactor.run, daemon=True)
    t.start()
    try:
        with socket.create_connection(lsock.getsockname(), timeout=5) as s:
            time.sleep(0.5)  # the connection waits in the queue; a level-triggered loop would spin
            # ~one try (two with the spare: the retry after closing it) per 100 ms back-off
            assert 2 <= listener.calls <= 20, listener.calls
            assert reactor.errors.get("EMFILE", 0) >= listener.calls // 2
            listener.full = False  # fds are back: the next resume accepts and serves it
            s.sendall(b"hi")
            assert s.recv(2) == b"hi"
    finally:
        reactor.stop()
        t.join(5)
        reactor.close()


def test_rejections_are_logged_at_a_limited_rate_and_the_burst_tail_is_flushed(running, monkeypatch):
    import c10kplan.reactor.server as server_mod

    monkeypatch.setattr(server_mod, "REJECT_LOG_INTERVAL", 0.3)
    logs: list[dict] = []
    reactor, port = running(max_connections=1, log=logs.append)
    keep = socket.create_connection(("127.0.0.1", port), timeout=5)
    keep.sendall(b"k")
    assert keep.recv(1) == b"k"  # admitted
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            assert s.recv(1) == b""  # accepted and closed at once
    time.sleep(0.6)  # no further rejects: the timer must still report the burst's tail
    keep.close()
    assert [r["event"] for r in logs] == ["rejected", "rejected"]
    assert sum(r["reasons"]["max-connections"] for r in logs) == 5 == reactor.rejected
