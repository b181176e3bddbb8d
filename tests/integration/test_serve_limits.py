"""Limits the server must survive: fd exhaustion (EMFILE), select's FD_SETSIZE, --max-connections."""

from __future__ import annotations

import shutil
import socket
import time

import pytest

from c10kplan.reactor.launch import ServerProcess, process_cpu_seconds
from tests.helpers import wait_for


def echo_ok(s: socket.socket, msg: bytes = b"ping") -> bool:
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(len(msg) - len(got))
        if not chunk:
            return False
        got += chunk
    return got == msg


def closed_by_server(s: socket.socket, timeout: float = 5.0) -> bool:
    """True when the server closed (EOF) or reset this connection."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux)")
@pytest.mark.parametrize(
    "variant",
    [["--backend", "epoll"], ["--backend", "epoll", "--trigger", "edge"], ["--backend", "poll"], ["--backend", "select"]],
    ids=["epoll-level", "epoll-edge", "poll", "select"],
)
def test_emfile_keeps_serving_and_does_not_spin(variant):
    """Under `prlimit --nofile=48`, connections past the fd limit are accepted-and-closed with
    the spare fd; existing connections keep working; pending connects do not make it spin."""
    with ServerProcess(variant, prefix=["prlimit", "--nofile=48:48"]) as srv:
        [worker] = srv.worker_pids()
        held: list[socket.socket] = []
        extra: list[socket.socket] = []
        try:
            for _ in range(80):  # well past 48 fds
                held.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
            stats = wait_for(lambda: (t := srv.stats()["total"])["active"] + t["rejected"] >= 80 and t)
            assert stats, "not every connection was served or rejected"
            assert 20 <= stats["active"] < 48
            assert stats["rejected"] >= 80 - 48
            assert stats["errors"].get("EMFILE", 0) >= 1
            assert sum(closed_by_server(s, 0.5) for s in held[60:]) == 20  # the last ones were dropped
            # Saturated: one second with more connections arriving must cost little CPU.
            # (CPU seconds of the worker, not wall time: other load on the machine only lowers it.)
            cpu0 = process_cpu_seconds(worker)
            t_end = time.monotonic() + 1.0
            while time.monotonic() < t_end:
                extra.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
                time.sleep(0.02)  # pacing of this bounded load loop (~50 connects/s), not a window
            assert all(closed_by_server(s, 5) for s in extra)  # each one was dealt with
            used = process_cpu_seconds(worker) - cpu0
            assert used < 0.4, f"worker used {used:.2f} s CPU in ~1 s while out of fds"
            # The first connections (accepted before the limit) still echo.
            assert all(echo_ok(s) for s in held[:10])
        finally:
            for s in held + extra:
                s.close()
        assert srv.stop() == 0
        assert '"event":"rejected"' in srv.stderr()


def test_select_backend_rejects_fds_above_fd_setsize_cleanly():
    with ServerProcess(["--backend", "select"]) as srv:
        conns = []
        try:
            for _ in range(1100):
                conns.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
            stats = wait_for(lambda: (t := srv.stats()["total"])["active"] + t["rejected"] >= 1100 and t)
            assert stats, srv.stats()["total"]
            assert 1000 <= stats["active"] < 1024  # every fd below FD_SETSIZE, less the server's own
            assert stats["rejected"] == 1100 - stats["active"]
            assert closed_by_server(conns[-1])
            assert echo_ok(conns[0]) and echo_ok(conns[stats["active"] - 1])
        finally:
            for s in conns:
                s.close()
        # Once fds are free again the same server accepts and serves.
        assert wait_for(lambda: srv.stats()["total"]["active"] == 0)
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            assert echo_ok(s)
        assert srv.stop() == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_max_connections_is_a_server_total(workers):
    with ServerProcess(["--max-connections", "6", "--workers", str(workers)]) as srv:
        conns = []
        try:
            for _ in range(10):
                conns.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
            stats = wait_for(lambda: (t := srv.stats()["total"])["active"] + t["rejected"] >= 10 and t)
            # A server total, whichever worker SO_REUSEPORT picked for each connection.
            assert stats["active"] == 6
            assert stats["rejected"] == 4
            if workers == 1:
                assert [closed_by_server(s, 0.2) for s in conns] == [False] * 6 + [True] * 4
        finally:
            for s in conns:
                s.close()
        assert srv.stop() == 0
