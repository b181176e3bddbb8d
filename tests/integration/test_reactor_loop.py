"""The Reactor in-process (a thread), on real loopback sockets, with a backend we can steer and
the clock the reactor takes (`clock=`): back-offs and log intervals pass when the test moves the
clock, not after a sleep, so no assertion depends on how fast a loaded machine runs the loop."""

from __future__ import annotations

import errno
import signal
import socket
import threading

import pytest

from c10kplan.reactor.backends import FdTooLarge, make_backend
from c10kplan.reactor.server import ACCEPT_BACKOFF, Reactor, make_listener
from tests.helpers import wait_for


class Clock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SteeredBackend:
    """An epoll backend that counts the loop's waits and, while `refuse` is set, refuses
    connection fds (as select(2) refuses fds >= 1024, or with `error`)."""

    def __init__(self, error: Exception | None = None, refuse: bool = False) -> None:
        self.inner = make_backend("epoll")
        self.name, self.edge = "epoll", False
        self.refuse = refuse
        self.error = error
        self.waits = 0

    def register(self, fd, events):
        if self.refuse and len(self.inner) >= 2:  # listener and wake socket come first
            raise self.error or FdTooLarge(f"fd {fd} refused")
        self.inner.register(fd, events)

    def poll(self, timeout=None):
        # A frozen clock keeps a back-off's timeout at its full length: bound each real wait so
        # the loop comes round soon after the test moves the clock.
        events = self.inner.poll(None if timeout is None else min(timeout, 0.02))
        self.waits += 1
        return events

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __len__(self):
        return len(self.inner)


def waits_pass(backend: SteeredBackend, n: int = 3) -> bool:
    """True once the loop has gone round `n` more times (each round one wait)."""
    start = backend.waits
    return bool(wait_for(lambda: backend.waits >= start + n))


@pytest.fixture
def running():
    started = []

    def start(backend=None, listener=None, **kw):
        lsock = listener or make_listener("127.0.0.1", 0, backlog=128, reuseport=False)
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


def echo_ok(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"ok")
        return s.recv(2) == b"ok"


def test_refused_fd_is_rejected_cleanly_and_service_continues(running):
    backend = SteeredBackend(refuse=True)
    reactor, port = running(backend)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        assert s.recv(1) == b""  # closed by the server, not left hanging
    assert reactor.rejected == 1 and reactor.active == 0
    backend.refuse = False
    assert echo_ok(port)


def test_epoll_watch_limit_at_register_drops_one_connection_not_the_worker(running):
    # epoll_ctl(ADD) fails with ENOSPC once fs.epoll.max_user_watches is used up.
    clock = Clock()
    backend = SteeredBackend(OSError(errno.ENOSPC, "No space left on device"), refuse=True)
    reactor, port = running(backend, clock=clock)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        assert s.recv(1) == b""  # closed by the server
    assert reactor.rejected == 1 and reactor.active == 0
    assert reactor.snapshot(0).errors == {"ENOSPC": 1}
    backend.refuse = False
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        assert waits_pass(backend)
        assert reactor.accepted == 0  # accepting is paused for ACCEPT_BACKOFF on the clock
        clock.advance(ACCEPT_BACKOFF)  # the back-off passes: the queued connection is served
        s.sendall(b"ok")
        assert s.recv(2) == b"ok"
    assert reactor.accepted == 1


def test_stop_closes_listener_and_connections(running):
    reactor, port = running()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
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
    assert seen.wait(10)
    snap = reactor.snapshot(worker=3)
    assert snap.worker == 3 and snap.rss_bytes > 0


class EmfileListener:
    """A real listener whose _accept() (what the reactor calls: the bare fd) fails with EMFILE
    while `full` is set, counting calls."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.full = True
        self.calls = 0

    def _accept(self):
        self.calls += 1
        if self.full:
            raise OSError(errno.EMFILE, "Too many open files")
        return self.sock._accept()

    def __getattr__(self, name):
        return getattr(self.sock, name)


@pytest.mark.parametrize("spare", [False, True], ids=["no-spare", "spare-does-not-help"])
def test_emfile_that_the_spare_cannot_fix_backs_off_instead_of_spinning(running, monkeypatch, spare):
    if not spare:
        monkeypatch.setattr(Reactor, "_open_spare", staticmethod(lambda: None))
    per_try = 2 if spare else 1  # with the spare: the retry after closing it fails too
    clock = Clock()
    backend = SteeredBackend()
    listener = EmfileListener(make_listener("127.0.0.1", 0, backlog=16, reuseport=False))
    reactor, port = running(backend, listener=listener, clock=clock)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        # The connection waits in the queue; a level-triggered listener would report it on
        # every wait. The reactor tries once, then stops watching the listener.
        assert wait_for(lambda: listener.calls == per_try)
        assert waits_pass(backend)
        assert listener.calls == per_try  # several waits, no new try: it does not spin
        for tries in (2, 3):  # each back-off that passes on the clock brings exactly one try
            clock.advance(ACCEPT_BACKOFF)
            assert wait_for(lambda: listener.calls == tries * per_try), listener.calls
            assert waits_pass(backend)
            assert listener.calls == tries * per_try
        assert reactor.errors["EMFILE"] == 3  # counted once per try, spare or not
        listener.full = False  # fds are back: the next resume accepts and serves it
        clock.advance(ACCEPT_BACKOFF)
        s.sendall(b"hi")
        assert s.recv(2) == b"hi"


def test_rejections_are_logged_at_a_limited_rate_and_the_burst_tail_is_flushed(running, monkeypatch):
    import c10kplan.reactor.server as server_mod

    monkeypatch.setattr(server_mod, "REJECT_LOG_INTERVAL", 0.3)
    clock = Clock()
    logs: list[dict] = []
    reactor, port = running(SteeredBackend(), max_connections=1, log=logs.append, clock=clock)
    keep = socket.create_connection(("127.0.0.1", port), timeout=10)
    keep.sendall(b"k")
    assert keep.recv(1) == b"k"  # admitted
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            assert s.recv(1) == b""  # accepted and closed at once (counted before the close)
    # The first reject is logged at once; the other four wait for the interval to pass.
    assert [r["reasons"] for r in logs] == [{"max-connections": 1}]
    clock.advance(0.3)  # no further rejects: the timer must still report the burst's tail
    assert wait_for(lambda: len(logs) == 2)
    keep.close()
    assert [r["event"] for r in logs] == ["rejected", "rejected"]
    assert logs[1]["reasons"] == {"max-connections": 4}
    assert reactor.rejected == 5
