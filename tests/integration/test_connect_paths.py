"""The per-connection paths the 1M ramp and teardown run through (issue 10), on real sockets:
the storm's loopback connect, its close, the reactor's accept and close, serve --sched, the
fd count that builds no /proc entries, and the namespace's own TCP hash.

Every server here is a listener of the test's own or `c10kplan serve` on 127.0.0.1:0; the hash
test runs in a network namespace it makes itself (`unshare -n`)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from c10kplan.host.procfs import ProcFS
from c10kplan.processes import unshare_net_argv
from c10kplan.reactor.backends import make_backend
from c10kplan.reactor.server import Reactor, make_listener
from c10kplan.storm.client import CONNECTING, OPEN, StormProcess
from c10kplan.storm.config import StormConfig
from c10kplan.verify.server import server_sched, start_server
from tests.helpers import wait_for


@pytest.fixture
def listener():
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    yield lsock
    lsock.close()


def _storm(port: int, n: int, **kw) -> StormProcess:
    return StormProcess(StormConfig(host="127.0.0.1", port=port, connections=n, **kw), 0, 0, n)


def test_a_loopback_connect_is_open_when_connect_returns(listener):
    listener.listen(16)
    proc = _storm(listener.getsockname()[1], 1)
    try:
        conn = proc._start_connect(0, proc.clock())
        # No poll ran: the handshake ended inside connect() and getpeername() saw it.
        assert conn.state == OPEN and proc.established == 1 and proc.connecting == 0
    finally:
        proc.close_all()


def test_a_connect_whose_syn_was_dropped_waits_for_writability(listener):
    # listen(0): the accept queue holds one connection; the next SYN is dropped (the kernel
    # retries it after 1 s), so getpeername() says ENOTCONN and that connect is left pending.
    listener.listen(0)
    proc = _storm(listener.getsockname()[1], 2, connect_timeout=30)
    accepted: list[socket.socket] = []
    try:
        first = proc._start_connect(0, proc.clock())
        second = proc._start_connect(1, proc.clock())
        assert first.state == OPEN and second.state == CONNECTING
        assert proc.established == 1 and proc.connecting == 1
        listener.setblocking(False)

        def progress() -> bool:
            proc._turn(0.05)
            try:
                accepted.append(listener.accept()[0])
            except BlockingIOError:
                pass
            return proc.established == 2 and len(accepted) == 2

        assert wait_for(progress, timeout=40), (proc.established, len(accepted))
        assert second.state == OPEN and proc.failures == {}
    finally:
        proc.close_all()
        for peer in accepted:
            peer.close()


@pytest.mark.parametrize("how", ["fin", "reset"])
def test_storm_close_sends_fin_or_rst(listener, how):
    listener.listen(16)
    proc = _storm(listener.getsockname()[1], 2, close=how)
    for i in range(2):
        proc._start_connect(i, proc.clock())
    listener.settimeout(10)
    peers = [listener.accept()[0] for _ in range(2)]
    try:
        proc.close_all()
        assert proc.conns == {}
        for peer in peers:
            peer.settimeout(10)
            if how == "fin":
                assert peer.recv(1) == b""
            else:
                with pytest.raises(ConnectionResetError):
                    peer.recv(1)
    finally:
        for peer in peers:
            peer.close()


@pytest.fixture
def reactor():
    lsock = make_listener("127.0.0.1", 0, backlog=128, reuseport=False)
    r = Reactor(lsock, make_backend("epoll"))
    t = threading.Thread(target=r.run, daemon=True)
    t.start()
    yield r, lsock.getsockname()[1]
    r.stop()
    t.join(5)
    r.close()


def test_accepted_connections_inherit_tcp_nodelay_from_the_listener(reactor):
    r, port = reactor
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        [fd] = list(r._live)
        probe = socket.socket(fileno=os.dup(fd))
        try:
            assert probe.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            assert not os.get_blocking(fd)
        finally:
            probe.close()


def test_reactor_close_ends_every_live_connection_at_once():
    lsock = make_listener("127.0.0.1", 0, backlog=128, reuseport=False)
    r = Reactor(lsock, make_backend("epoll"))
    port = lsock.getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(50)]
    try:
        r._accept()
        assert wait_for(lambda: (r._accept(), len(r._live) == 50)[1])
        live = list(r._live)
        r.close()
        assert r.closed == 50 and r.active == 0
        for fd in live:
            with pytest.raises(OSError):
                os.fstat(fd)
        for c in clients:
            c.settimeout(10)
            assert c.recv(1) == b""
    finally:
        for c in clients:
            c.close()


def test_serve_sched_batch_puts_every_worker_under_sched_batch():
    assert server_sched(0) == "batch" and server_sched(0.5) == "inherit"
    for sched, policy in (("batch", os.SCHED_BATCH), ("inherit", os.sched_getscheduler(0))):
        srv = start_server(workers=2, sched=sched)
        try:
            pids = srv.worker_pids()
            assert len(pids) == 2
            assert [os.sched_getscheduler(pid) for pid in pids] == [policy, policy]
            with socket.create_connection((srv.host, srv.port), timeout=10) as s:
                s.sendall(b"ok")
                assert s.recv(2) == b"ok"
        finally:
            srv.close()


def test_serve_refuses_an_unknown_sched_policy():
    done = subprocess.run([sys.executable, "-m", "c10kplan", "serve", "--sched", "fifo"], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("c10kplan: error: --sched")


def test_fd_count_is_the_listing_count_without_listing(tmp_path):
    socks = [socket.socket() for _ in range(40)]
    try:
        real = ProcFS("/")
        listed = len(os.listdir(f"/proc/{os.getpid()}/fd")) - 1  # listdir's own fd
        assert real.count_fds(os.getpid()) == listed
        assert real.count_fds(2**22 + 12345) == 0  # no such process
    finally:
        for s in socks:
            s.close()
    # A captured tree is a directory of files: it is listed.
    fd_dir = tmp_path / "proc" / "77" / "fd"
    fd_dir.mkdir(parents=True)
    for i in range(5):
        (fd_dir / str(i)).write_text("")
    assert ProcFS(tmp_path).count_fds(77) == 5


OWN_HASH = """
import json, sys
from c10kplan.host.procfs import ProcFS
from c10kplan.processes import own_tcp_hash
procfs = ProcFS("/")
before = procfs.read_sysctl("net.ipv4.tcp_ehash_entries")
small = own_tcp_hash(5000, procfs)  # the shared table has room: kept
got = own_tcp_hash(int(sys.argv[1]), procfs)
print(json.dumps({"before": before, "small": small, "got": got,
                  "now": procfs.read_sysctl("net.ipv4.tcp_ehash_entries")}))
"""


def test_own_tcp_hash_gives_the_namespace_a_table_sized_for_its_sockets():
    if ProcFS("/").read_sysctl("net.ipv4.tcp_child_ehash_entries") is None:
        pytest.skip("kernel < 6.1: no net.ipv4.tcp_child_ehash_entries")
    host = ProcFS("/").read_sysctl("net.ipv4.tcp_child_ehash_entries")
    # the host's table, sized at boot (positive in the initial namespace, negative in one sharing it)
    shared = abs(int(ProcFS("/").read_sysctl("net.ipv4.tcp_ehash_entries")))
    sockets = 4 * shared + 1  # more sockets than the shared table has buckets: rounds up to 8 x
    done = subprocess.run([*unshare_net_argv("this test"), sys.executable, "-c", OWN_HASH, str(sockets)],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert int(doc["before"]) == -shared  # the namespace `unshare -n` made shares the host's table
    assert doc["small"] == -shared  # 5,000 sockets: the shared table is big enough, kept
    assert doc["got"] == int(doc["now"]) == 8 * shared  # its own, a power of two >= the sockets
    assert ProcFS("/").read_sysctl("net.ipv4.tcp_child_ehash_entries") == host  # the host is untouched
