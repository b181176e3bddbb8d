"""One contract, every backend and trigger: the real `c10kplan serve` process, real sockets.

Each class-scoped server is started once per variant (epoll level / edge, poll, select) and
protocol; tests measure deltas of its counters, so they do not depend on each other's order.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
import time

import pytest

from c10kplan.host.procfs import ProcFS
from c10kplan.reactor.launch import ServerProcess
from c10kplan.reactor.protocols import rot13
from c10kplan.reactor.server import HIGH_WATER, READ_SIZE
from tests.helpers import wait_for

VARIANTS = {
    "epoll-level": ["--backend", "epoll", "--trigger", "level"],
    "epoll-edge": ["--backend", "epoll", "--trigger", "edge"],
    "poll": ["--backend", "poll"],
    "select": ["--backend", "select"],
}
PAYLOAD_SIZES = [1, 100, 64 * 1024 + 3, 1024 * 1024]


def connect(port: int, timeout: float = 10.0, bufsize: int | None = None) -> socket.socket:
    s = socket.socket()
    if bufsize:  # before connect(), so the window scale matches; the kernel doubles it
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def exchange(port: int, payload: bytes, *, half_close: bool = True) -> bytes:
    """Send payload from a thread while reading in this one (so neither side blocks the other),
    then shut the write side; return everything read until the server closes."""
    s = connect(port)
    try:
        sender = threading.Thread(target=lambda: (s.sendall(payload), half_close and s.shutdown(socket.SHUT_WR)))
        sender.start()
        got = bytearray()
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            got += chunk
        sender.join(10)
        return bytes(got)
    finally:
        s.close()


def push_until(s: socket.socket, data: bytes, done, limit: float = 30.0) -> int:
    """Send (nonblocking) until the send blocks AND `done()` says the server got where the test
    wants it (asked only while blocked); bytes sent. Not "quiet for N ms": a loaded server can
    be slow to read without having stopped."""
    s.setblocking(False)
    sent = 0
    deadline = time.monotonic() + limit
    while sent < len(data):
        try:
            sent += s.send(data[sent : sent + 65536])
            continue
        except BlockingIOError:
            pass
        if done():
            break
        assert time.monotonic() < deadline, f"the server never got there ({sent} bytes sent)"
        select.select([], [s], [], 0.05)  # writable again, or ask again
    s.settimeout(30)
    return sent


def recv_exactly(s: socket.socket, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        chunk = s.recv(n - len(got))
        if not chunk:
            break
        got += chunk
    return bytes(got)


def open_fds(pid: int) -> int:
    return len(ProcFS().listdir(f"proc/{pid}/fd"))


@pytest.fixture(scope="class", params=list(VARIANTS), ids=list(VARIANTS))
def variant(request):
    return request.param


@pytest.fixture(scope="class")
def echo_server(variant):
    with ServerProcess([*VARIANTS[variant], "--protocol", "echo"]) as srv:
        yield srv
        assert srv.stop() == 0, srv.stderr()


@pytest.fixture(scope="class")
def rot13_server(variant):
    with ServerProcess([*VARIANTS[variant], "--protocol", "rot13"]) as srv:
        yield srv
        assert srv.stop() == 0, srv.stderr()


@pytest.fixture(scope="class")
def discard_server(variant):
    with ServerProcess([*VARIANTS[variant], "--protocol", "discard"]) as srv:
        yield srv
        assert srv.stop() == 0, srv.stderr()


class TestServeContract:
    @pytest.mark.parametrize("size", PAYLOAD_SIZES)
    def test_echo_payload(self, echo_server, size):
        payload = os.urandom(size)
        assert exchange(echo_server.port, payload) == payload

    @pytest.mark.parametrize("size", PAYLOAD_SIZES)
    def test_rot13_lines(self, rot13_server, size):
        line = (b"Hello, World! abcxyz ABCXYZ 0123\n" * (size // 33 + 1))[: max(size - 1, 0)] + b"\n"
        assert exchange(rot13_server.port, line) == rot13(line)

    def test_discard_reads_everything_and_never_answers(self, discard_server):
        before = discard_server.stats()["total"]
        assert exchange(discard_server.port, os.urandom(300_000)) == b""  # then EOF at half-close
        after = discard_server.stats()["total"]
        assert after["bytes_in"] - before["bytes_in"] == 300_000
        assert after["bytes_out"] == before["bytes_out"]

    def test_rot13_answers_line_by_line_and_tail_at_half_close(self, rot13_server):
        with connect(rot13_server.port) as s:
            s.sendall(b"Hel")
            s.sendall(b"lo\nwor")
            assert recv_exactly(s, 6) == b"Uryyb\n"
            s.shutdown(socket.SHUT_WR)
            assert recv_exactly(s, 10) == b"jbe"

    def test_many_small_writes(self, echo_server):
        chunks = [os.urandom(1 + i % 7) for i in range(2000)]
        with connect(echo_server.port) as s:
            got = bytearray()
            for i, chunk in enumerate(chunks):
                s.sendall(chunk)
                if i % 50 == 49:  # read back now and then, so both directions interleave
                    want = sum(len(c) for c in chunks[: i + 1])
                    got += recv_exactly(s, want - len(got))
            s.shutdown(socket.SHUT_WR)
            while chunk := s.recv(65536):
                got += chunk
        assert bytes(got) == b"".join(chunks)

    def test_large_reply_needs_partial_sends(self, echo_server):
        """The client does not read until its sends block: the server's sends must stop
        part-way (send buffer full), queue, pause, and resume when the client reads."""
        payload = os.urandom(24 * 1024 * 1024)
        with connect(echo_server.port, timeout=30, bufsize=65536) as s:
            # Until the server queues output: its send to us stopped part-way.
            sent = push_until(s, payload, lambda: echo_server.stats()["total"]["queued_bytes"] > 0)
            assert sent < len(payload), "kernel buffers absorbed 24 MiB: no partial send exercised"
            rest = threading.Thread(target=s.sendall, args=(payload[sent:],))
            rest.start()
            got = recv_exactly(s, len(payload))
            rest.join(10)
        assert got == payload

    def test_client_that_never_reads_bounds_server_memory(self, echo_server):
        before = echo_server.stats()["total"]
        with connect(echo_server.port) as s:
            # Until the server stops reading this connection (paused at the high-water mark).
            pushed = push_until(s, os.urandom(32 * 1024 * 1024),
                                lambda: echo_server.stats()["total"]["paused"] > before["paused"])
            after = echo_server.stats()["total"]
            assert after["paused"] == before["paused"] + 1
            # One connection: its queue stops growing one read past the high-water mark.
            assert after["queued_bytes"] - before["queued_bytes"] <= HIGH_WATER + READ_SIZE
            assert pushed > HIGH_WATER + READ_SIZE  # the peer did try to push far more
            assert after["rss_bytes"] - before["rss_bytes"] < 8 * (HIGH_WATER + READ_SIZE)
        # The client closed with unread data (an RST): the server closes it, and unpauses.
        assert wait_for(lambda: echo_server.stats()["total"]["paused"] == before["paused"])

    def test_reset_mid_stream_closes_only_that_connection(self, echo_server):
        before = echo_server.stats()["total"]
        keeper = connect(echo_server.port)
        s = connect(echo_server.port)
        s.sendall(os.urandom(512 * 1024))
        # SO_LINGER {on, 0}: close() sends RST instead of FIN (the course notes' client).
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        after = wait_for(
            lambda: (d := echo_server.stats()["total"])["closed"] >= before["closed"] + 1 and d
        )
        assert after, "the reset connection was never closed"
        resets = sum(after["errors"].get(n, 0) - before["errors"].get(n, 0) for n in ("ECONNRESET", "EPIPE"))
        assert resets >= 1, after["errors"]
        keeper.sendall(b"still here")
        assert recv_exactly(keeper, 10) == b"still here"
        keeper.close()

    def test_half_close_finishes_sending_then_closes(self, echo_server):
        payload = os.urandom(300_000)
        with connect(echo_server.port) as s:
            s.sendall(payload[:1000])
            first = recv_exactly(s, 1000)  # answered: the rest arrives in reads of its own
            s.sendall(payload[1000:])
            s.shutdown(socket.SHUT_WR)
            got = bytearray(first)
            while chunk := s.recv(65536):
                got += chunk
        assert bytes(got) == payload  # everything, then EOF from the server

    def test_connect_disconnect_cycles_do_not_leak_fds(self, echo_server):
        [worker] = echo_server.worker_pids()
        base_fds = open_fds(worker)
        before = echo_server.stats()["total"]
        for i in range(2000):
            with socket.create_connection(("127.0.0.1", echo_server.port), timeout=5) as s:
                if i % 2:
                    s.sendall(b"x")
                    assert s.recv(1) == b"x"
        after = wait_for(lambda: (d := echo_server.stats()["total"])["active"] == before["active"] and d)
        assert after, "connections left open"
        assert after["accepted"] - before["accepted"] == 2000
        assert after["closed"] - before["closed"] == 2000
        assert open_fds(worker) == base_fds
