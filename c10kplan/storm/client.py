"""One storm process: open its share of the connections, hold them, send messages, measure.

The loop has three phases: ramp (paced nonblocking connects), hold (open-loop messages) and
drain (wait for the last replies). Between phases it reports to the parent and waits for its
command, so every process holds at the same time. One epoll backend, one dispatch.

Kernel facts this module relies on (Linux):
- A nonblocking connect() returns EINPROGRESS; the socket turns writable when the handshake
  ends and SO_ERROR then holds 0 or the errno (ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH...). On
  loopback the answer may come at once (connect_ex returns ECONNREFUSED directly).
- socket() fails with EMFILE at RLIMIT_NOFILE and ENFILE at fs.file-max; connect() fails with
  EADDRNOTAVAIL when the 4-tuples to one destination run out (see config.py).
- A peer's RST shows up as ECONNRESET on recv/send; an orderly close as recv() == b"" ("EOF").
- Latency is measured from the *intended* send time of each message (open loop, one period
  1/message_rate apart per connection): a stalled loop or server cannot hide its stalls by
  sending less (coordinated omission, corrected as wrk2 does). "raw" is from the actual send.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import socket
import struct
import time
from collections import deque
from collections.abc import Callable

from c10kplan.counts import add_counts, errno_name
from c10kplan.reactor.backends import EVENT_ERROR, EVENT_READ, EVENT_WRITE, make_backend
from c10kplan.storm.config import StormConfig, is_loopback
from c10kplan.storm.pacing import TokenBucket
from c10kplan.storm.protocols import make_wire
from c10kplan.storm.result import DROP_PREFIX, ProcessResult
from c10kplan.storm.stats import LatencyRecorder

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
RECV_CHUNK = 65536
CONNECT_BATCH = 64  # connects started per loop turn before polling again
# Messages sent per loop turn before polling again: no more than one poll returns (CPython's
# epoll.poll asks for FD_SETSIZE - 1 events), so reading keeps up with sending when behind.
SEND_BATCH = 1023
# Hold loop pacing (StormConfig.batch_tick, `--batch-ms`). When at least one message falls due
# per tick in this process, the loop wakes once per tick: it sends what is due, reads every reply
# that has arrived (poll with a zero timeout), then sleeps out the tick. Waking on each reply
# instead costs one epoll_wait and a context switch per message: measured here at 30k msg/s
# (30,000 connections), the host spent 1.60 CPUs waking per reply and 1.39 with a 1 ms tick. The
# price: a message falling due just after a tick starts is sent up to one tick late, and a reply
# is timed when it is read, up to one tick after it arrived. So raw latency errs high by at most
# one tick and corrected latency (from the intended send) by at most two (p50 0.27 ms became
# 1.5 ms there; p99 3.3 ms stayed 3.1 ms). `--batch-ms 0` wakes on every reply, for exact timing
# at the higher CPU cost.
PROGRESS_EVERY = 0.25  # seconds between progress reports
DRAIN_SECONDS = 2.0  # how long the last replies may take after the hold
COMMAND_WAIT = 600.0  # the longest a process waits for its parent's next command
FAREWELL_SECONDS = 2.0  # how long a clean protocol close (WebSocket) may take at the end

# CONNECTING: TCP handshake; HANDSHAKE: the protocol's (an HTTP request's response, a WebSocket
# upgrade); OPEN: held; CLOSING: our close sent, waiting for the peer's; CLOSED.
CONNECTING, OPEN, CLOSED, HANDSHAKE, CLOSING = 0, 1, 2, 3, 4
LINGER_ABORT = struct.pack("ii", 1, 0)  # struct linger {l_onoff 1, l_linger 0 s}: close(2) sends RST


class _Conn:
    __slots__ = ("sock", "fd", "state", "started", "pending", "roff", "bad", "out", "next",
                 "proto", "status", "est", "tx")

    def __init__(self, sock: socket.socket, started: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.state = CONNECTING
        self.started = started
        # (intended, actual) send times of the messages awaiting a reply; None until the first
        # send: an empty deque is 760 B, more than the rest of an idle connection's record.
        self.pending: deque[tuple[float, float]] | None = None
        self.roff = 0  # bytes of the current reply received so far (stream protocols)
        self.bad = False
        self.out = b""
        self.next = 0.0
        self.proto = None  # the wire's state for this connection; None while idle
        self.status = 0  # the last HTTP status read
        self.est = 0.0  # when it became established (hold times at drop are counted from here)
        self.tx = 0.0  # when we last sent on it (heartbeats go to connections idle since)


class StormProcess:
    """The storm loop for connections [start, end) of the whole storm."""

    def __init__(self, cfg: StormConfig, index: int, start: int, end: int, *,
                 control_fd: int | None = None, report: Callable[[dict], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.cfg = cfg
        self.index = index
        self.start_i, self.end_i = start, end
        self.control_fd = control_fd
        self.report = report or (lambda event: None)
        self.clock = clock
        self.sleep = sleep
        self.addr = (cfg.host, cfg.port)
        self.loopback = is_loopback(cfg.host)
        self.backend = make_backend("epoll")
        self.conns: dict[int, _Conn] = {}
        self.connecting = 0
        self.established = 0
        self.failures: dict[str, int] = {}
        self.sent = self.received = self.mismatches = self.unanswered = self.missed = 0
        self.lost = 0  # sent messages whose connection dropped before their reply
        self.unexpected = 0  # replies (or, for discard, reads) beyond the messages sent
        self.bytes_sent = self.bytes_received = 0
        self.connect_lat = LatencyRecorder()
        self.corrected = LatencyRecorder()
        self.raw = LatencyRecorder()
        self.drop_times: dict[str, LatencyRecorder] = {}  # hold time at drop, by reason
        self.statuses: dict[str, int] = {}  # HTTP status codes read
        self.close_codes: dict[str, int] = {}  # WebSocket close codes the servers sent
        self.wire = make_wire(cfg, RECV_CHUNK)
        self.expects_reply = self.wire.expects_reply
        # One receive buffer for every connection: recv_into it costs no allocation per read,
        # where recv(64 KiB) allocates 64 KiB and shrinks it. Replies are only compared, never kept.
        self._rbuf = bytearray(RECV_CHUNK)
        self._rview = memoryview(self._rbuf)
        self.commands: deque[str] = deque()
        self.stopping = False
        self.halted = False  # no new connects: `halt` from the parent, or our own first failure
        self.first_failure: str | None = None
        self.ramp_seconds = self.hold_seconds = 0.0
        self._last_progress = 0.0
        if control_fd is not None:
            os.set_blocking(control_fd, False)
            self.backend.register(control_fd, EVENT_READ)

    # -- failures and the one close path ----------------------------------------------------

    def _fail(self, code: int | str) -> None:
        name = errno_name(code)
        self.failures[name] = self.failures.get(name, 0) + 1
        if self.first_failure is None:
            self.first_failure = name
            if self.cfg.stop_on_failure:
                # Said at once (not at the next progress report): the parent halts the others.
                self.halted = True
                self.report({"event": "failure", "index": self.index, "errno": name,
                             "at": self.clock(), **self.counters()})

    def _drop(self, conn: _Conn, code: int | str | None) -> None:
        """The one close path: unregister, close, count why (None = our own orderly close).
        Messages still waiting for a reply are lost with the connection; a connection that
        was established records how long it was held."""
        if conn.state == CLOSED:
            return
        if conn.state in (CONNECTING, HANDSHAKE):
            self.connecting -= 1
        was_open = conn.state in (OPEN, CLOSING)
        conn.state = CLOSED
        conn.proto = None
        self.conns.pop(conn.fd, None)
        try:
            self.backend.unregister(conn.fd)
        except (KeyError, OSError, ValueError):
            pass
        conn.sock.close()
        if conn.pending:
            self.lost += len(conn.pending)
            conn.pending.clear()
        if code is not None:
            self._fail(code)
            if was_open:
                name = errno_name(code)
                rec = self.drop_times.get(name)
                if rec is None:
                    rec = self.drop_times[name] = LatencyRecorder()
                rec.record_seconds(self.clock() - conn.est)

    # -- what the wire (storm/protocols) calls back -----------------------------------------

    drop = _drop

    def reply(self, conn: _Conn, ok: bool, now: float) -> None:
        """One whole reply read on `conn`: it answers the oldest message still waiting."""
        pending = conn.pending
        if not pending:  # more replies than messages sent
            self.unexpected += 1
            return
        intended, actual = pending.popleft()
        self.corrected.record(int((now - intended) * 1_000_000))
        self.raw.record(int((now - actual) * 1_000_000))
        if ok:
            self.received += 1
        else:
            self.mismatches += 1

    def handshaking(self, conn: _Conn) -> bool:
        return conn.state == HANDSHAKE

    def closing(self, conn: _Conn) -> bool:
        return conn.state == CLOSING

    def is_open(self, conn: _Conn) -> bool:
        return conn.state != CLOSED

    def handshaken(self, conn: _Conn, now: float) -> None:
        """The protocol's handshake ended: the connection is established (and timed) now."""
        self.connecting -= 1
        self._opened(conn, now)

    def out(self, conn: _Conn, data: bytes) -> None:
        """Send protocol bytes that are no message (a pong, a close), in order with the rest."""
        if conn.out:
            conn.out += data
            return
        n = self._write(conn, data)
        if n is not None and n < len(data):
            conn.out = data[n:]
            self.backend.modify(conn.fd, EVENT_READ | EVENT_WRITE)

    def count_status(self, status: int) -> None:
        key = str(status)
        self.statuses[key] = self.statuses.get(key, 0) + 1

    def count_close(self, code: int) -> None:
        key = str(code)
        self.close_codes[key] = self.close_codes.get(key, 0) + 1

    # -- connecting -------------------------------------------------------------------------

    def _source(self, i: int) -> str | None:
        ips = self.cfg.source_ips
        return ips[i % len(ips)] if ips else None

    def _start_connect(self, i: int, now: float) -> _Conn | None:
        try:
            # SOCK_NONBLOCK at creation saves a fcntl per connection.
            sock = socket.socket(self.cfg.family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        except OSError as exc:  # EMFILE / ENFILE / ENOBUFS
            self._fail(exc.errno or "EUNKNOWN")
            return None
        src = self._source(i)
        try:
            if src is not None:
                sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                sock.bind((src, 0))
            err = sock.connect_ex(self.addr)
        except OSError as exc:
            sock.close()
            self._fail(exc.errno or "EUNKNOWN")
            return None
        conn = _Conn(sock, now)
        if err == errno.EINPROGRESS and self.loopback:
            # On loopback the handshake usually ends inside connect(): the SYN, the SYN-ACK and
            # the ACK are all processed before it returns (softirq on this CPU, then the
            # socket's backlog at release_sock), yet a nonblocking connect still answers
            # EINPROGRESS. getpeername() succeeds once it is established, so the connection
            # skips the wait for writability, SO_ERROR and the epoll MOD (two syscalls and an
            # event); ENOTCONN (a full backlog dropped the SYN, it is retried) waits as usual.
            try:
                sock.getpeername()
                err = 0
            except OSError:
                pass
        if err == 0:
            self.conns[conn.fd] = conn
            self.backend.register(conn.fd, EVENT_READ)
            self.connecting += 1
            self._connected(conn, self.clock())  # the handshake took place inside connect()
        elif err == errno.EINPROGRESS:
            self.conns[conn.fd] = conn
            self.backend.register(conn.fd, EVENT_WRITE)
            self.connecting += 1
        else:
            sock.close()
            self._fail(err)
            return None
        return conn

    def _opened(self, conn: _Conn, now: float) -> None:
        conn.state = OPEN
        conn.est = conn.tx = now
        self.established += 1
        self.connect_lat.record_seconds(now - conn.started)

    def _connected(self, conn: _Conn, now: float) -> None:
        """TCP is up: established now, or after the protocol's handshake (which is timed too:
        for http and websocket the connect latency runs to the first response / the upgrade)."""
        opening = self.wire.opening(conn)
        if opening is None:
            self.connecting -= 1
            self._opened(conn, now)
            return
        conn.state = HANDSHAKE
        self.out(conn, opening)

    def _connect_done(self, conn: _Conn, now: float) -> None:
        err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._drop(conn, err)
            return
        self.backend.modify(conn.fd, EVENT_READ)
        self._connected(conn, now)

    # -- reading and writing ----------------------------------------------------------------

    def _read(self, conn: _Conn, now: float) -> None:
        try:
            got = conn.sock.recv_into(self._rbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._drop(conn, exc.errno or "EUNKNOWN")
            return
        if not got:
            why = self.wire.eof(self, conn, now)
            self._drop(conn, why or None)
            return
        self.bytes_received += got
        self.wire.received(self, conn, self._rview[:got], now)

    def _send(self, conn: _Conn, intended: float, now: float) -> None:
        if self.expects_reply:
            if conn.pending is None:
                conn.pending = deque()
            conn.pending.append((intended, now))
        self.sent += 1
        conn.tx = now
        self.out(conn, self.wire.message())

    def _flush(self, conn: _Conn) -> None:
        n = self._write(conn, conn.out)
        if not n:  # would block (0) or dropped (None)
            return
        conn.out = conn.out[n:]
        if not conn.out:
            self.backend.modify(conn.fd, EVENT_READ)

    def _write(self, conn: _Conn, data: bytes) -> int | None:
        """send() what the kernel takes now: the bytes sent, 0 when it would block, None when
        the connection failed (dropped, counted by errno)."""
        try:
            n = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            self._drop(conn, exc.errno or "EUNKNOWN")
            return None
        self.bytes_sent += n
        return n

    # -- the one dispatch -------------------------------------------------------------------

    def _turn(self, timeout: float) -> None:
        """Wait for events (at most `timeout` s), dispatch them, report progress."""
        events = self.backend.poll(max(0.0, timeout))
        now = self.clock()
        conns = self.conns
        for fd, mask in events:
            conn = conns.get(fd)
            if conn is None:
                if fd == self.control_fd:
                    self._read_control()
                continue
            if conn.state == CONNECTING:
                self._connect_done(conn, now)
                continue
            if mask & (EVENT_READ | EVENT_ERROR):
                self._read(conn, now)
            if mask & EVENT_WRITE and conn.state != CLOSED and conn.out:
                self._flush(conn)
        if now - self._last_progress >= PROGRESS_EVERY:
            self._last_progress = now
            # `at` (taken after the dispatch the counts include): CLOCK_MONOTONIC is one clock
            # for every process of the host, so the parent can place these counts on its own
            # time line (verify's CPU window).
            self.report({"event": "progress", "index": self.index, "at": self.clock(), **self.counters()})

    def _read_control(self) -> None:
        try:
            data = os.read(self.control_fd, 4096)
        except BlockingIOError:
            return
        if not data:  # the parent closed its end: stop as soon as possible
            self.commands.append("stop")
        else:
            words = data.decode("ascii", "replace").split()
            # `halt` acts at once, wherever the loop is: no new connect after it.
            self.halted = self.halted or "halt" in words
            self.commands.extend(w for w in words if w != "halt")
        if "stop" in self.commands:
            self.stopping = True

    def counters(self) -> dict:
        return {
            "established": self.established,
            "open": len(self.conns) - self.connecting,
            "connecting": self.connecting,
            "failed": sum(self.failures.values()),
            "sent": self.sent,
            "received": self.received,
            "mismatches": self.mismatches,
        }

    # -- phases -----------------------------------------------------------------------------

    def ramp(self) -> None:
        """Open connections [start, end) at the paced rate; returns when none is pending."""
        cfg = self.cfg
        nprocs = max(1, cfg.processes)
        t0 = self.clock()
        bucket = TokenBucket(cfg.connect_rate / nprocs, now=t0)
        started: deque[_Conn] = deque()
        i = self.start_i
        # Halted: no new connect; the pending ones still end (answered or timed out).
        while ((i < self.end_i and not self.halted) or self.connecting) and not self.stopping:
            now = self.clock()
            room = 0 if self.halted else min(CONNECT_BATCH, self.end_i - i, cfg.max_inflight - self.connecting)
            for _ in range(bucket.take(now, room)):
                if self.halted:  # our own failure just now
                    break
                conn = self._start_connect(i, self.clock())
                i += 1
                if conn is not None and conn.state in (CONNECTING, HANDSHAKE):
                    started.append(conn)
            while started and started[0].state not in (CONNECTING, HANDSHAKE):
                started.popleft()
            while started and now - started[0].started >= cfg.connect_timeout:
                conn = started.popleft()
                if conn.state in (CONNECTING, HANDSHAKE):
                    self._drop(conn, errno.ETIMEDOUT)
            if i < self.end_i and self.connecting < cfg.max_inflight and not self.halted:
                timeout = bucket.wait_time(now) if bucket.rate else 0.0
            elif started:
                timeout = max(0.0, started[0].started + cfg.connect_timeout - now)
            else:
                timeout = 0.0
            self._turn(min(timeout, 0.05))
        for conn in list(self.conns.values()):  # stopped while connecting
            if conn.state in (CONNECTING, HANDSHAKE):
                self._drop(conn, "ESTOPPED")
        self.ramp_seconds = self.clock() - t0

    def wait_command(self, timeout: float = COMMAND_WAIT) -> str:
        """Keep the connections served until the parent's next command (or `stop`)."""
        if self.control_fd is None:
            return "hold"
        deadline = self.clock() + timeout
        while not self.commands:
            now = self.clock()
            if now >= deadline:
                return "stop"
            self._turn(min(0.2, deadline - now))
        cmd = self.commands.popleft()
        return "stop" if self.stopping else cmd

    def hold(self) -> None:
        """Hold every open connection for the duration, sending on the open-loop schedule."""
        cfg = self.cfg
        t0 = self.clock()
        deadline = t0 + cfg.duration
        sched: deque[_Conn] = deque()
        if cfg.message_rate > 0:
            period = 1.0 / cfg.message_rate
            opened = [c for c in self.conns.values() if c.state == OPEN]
            n = max(1, len(opened))
            for k, conn in enumerate(opened):  # spread the first sends over one period
                conn.next = t0 + period * k / n
                sched.append(conn)
        else:
            period = 0.0
        tick = cfg.batch_tick  # see "Hold loop pacing" at the top
        batch = tick > 0 and period > 0 and len(sched) * tick >= period
        # Heartbeats: every ping_interval each connection is looked at, and pinged when nothing
        # was sent on it for that long (so an idle one is pinged every one or two intervals).
        every = cfg.ping_interval if self.wire.ping is not None else 0.0
        ping = self.wire.ping() if every else b""
        pings: deque[tuple[float, _Conn]] = deque(
            (t0 + every * (k + 1) / max(1, len(self.conns)), c) for k, c in enumerate(
                [c for c in self.conns.values() if c.state == OPEN] if every else ()))
        while not self.stopping:
            now = self.clock()
            sent = 0
            while pings and pings[0][0] <= now and sent < SEND_BATCH:
                _due, conn = pings.popleft()
                if conn.state != OPEN:
                    continue
                if now - conn.tx >= every:
                    conn.tx = now
                    self.out(conn, ping)
                    sent += 1
                pings.append((now + every, conn))
            while sched and sched[0].next <= now and sent < SEND_BATCH:
                conn = sched.popleft()
                if conn.state != OPEN:
                    continue
                intended = conn.next
                conn.next = intended + period
                self._send(conn, intended, now)
                sent += 1
                if conn.state == OPEN and conn.next < deadline:
                    sched.append(conn)
            if now >= deadline:  # one last send pass for what fell due just before the end
                break
            if sent >= SEND_BATCH:
                timeout = 0.0
            else:
                nxt = sched[0].next if sched else deadline
                if pings:
                    nxt = min(nxt, pings[0][0])
                timeout = min(nxt, deadline) - now
            if batch and timeout > 0:
                self._turn(0.0)  # every reply that has arrived, without waiting for more
                rest = min(now + tick, deadline) - self.clock()
                if rest > 0:
                    self.sleep(rest)
            else:
                self._turn(min(timeout, 0.2))
        self.hold_seconds = self.clock() - t0
        self._count_missed(sched, period, min(deadline, self.clock()))
        self._drain()

    def _count_missed(self, sched: deque[_Conn], period: float, end: float) -> None:
        """Messages the schedule called for before `end` that were never sent (the loop fell
        behind): counted, and recorded in the corrected histogram with their lower bound."""
        if period <= 0:
            return
        now = self.clock()
        for conn in sched:
            if conn.state != OPEN:
                continue
            intended = conn.next
            while intended < end:
                self.missed += 1
                self.corrected.record(int((now - intended) * 1_000_000))
                intended += period

    def _drain(self) -> None:
        """Wait (bounded) for replies to messages already sent; count the rest as unanswered."""
        if not self.expects_reply:
            return
        deadline = self.clock() + DRAIN_SECONDS
        while not self.stopping and self.clock() < deadline:
            if not any(c.pending for c in self.conns.values()):
                break
            self._turn(0.05)
        now = self.clock()
        for conn in self.conns.values():
            if not conn.pending:
                continue
            for intended, _actual in conn.pending:
                # A lower bound for the latency of a reply that never came (open loop).
                self.corrected.record(int((now - intended) * 1_000_000))
                self.unanswered += 1
            conn.pending.clear()

    def close_all(self) -> None:
        """End every connection (after the result was sent: nothing here is counted).

        The epoll fd goes first: closing it drops all its registrations in one pass, where an
        epoll_ctl(DEL) per connection would cost a syscall each (20,000 per process at 1M).
        With `close = reset`, SO_LINGER {on, 0 s} makes close(2) send RST and free the socket
        at once (tcp_close: "linger 0: abort"): one packet instead of the FIN/ACK exchange, and
        no TIME_WAIT entry (60 s each, net.ipv4.tcp_max_tw_buckets per namespace)."""
        farewell = self.wire.farewell()
        if farewell is not None and not self.stopping:
            self._farewell(farewell)
        self.backend.close()
        abort = self.cfg.close == "reset"
        for conn in self.conns.values():
            if conn.state in (CONNECTING, HANDSHAKE):
                self.connecting -= 1
            conn.state = CLOSED
            if abort:
                with contextlib.suppress(OSError):
                    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ABORT)
            conn.sock.close()
        self.conns.clear()

    def _farewell(self, frame: bytes) -> None:
        """The protocol's clean close (WebSocket: our close frame, then the server's answer),
        bounded by FAREWELL_SECONDS; whatever has not answered by then is just closed."""
        for conn in list(self.conns.values()):
            if conn.state == OPEN:
                conn.state = CLOSING
                self.out(conn, frame)
        deadline = self.clock() + FAREWELL_SECONDS
        while not self.stopping and self.clock() < deadline:
            if not any(c.state == CLOSING for c in self.conns.values()):
                break
            self._turn(0.05)

    def result(self, status: str = "ok", detail: str = "") -> tuple[ProcessResult, dict[str, str]]:
        held = sum(1 for c in self.conns.values() if c.state == OPEN)
        res = ProcessResult(
            index=self.index, pid=os.getpid(), target=self.end_i - self.start_i,
            established=self.established, held=held, failures=add_counts({}, self.failures),
            messages_sent=self.sent, messages_received=self.received, mismatches=self.mismatches,
            unanswered=self.unanswered, lost_on_drop=self.lost, unexpected=self.unexpected, missed=self.missed,
            http_statuses=dict(self.statuses), close_codes=dict(self.close_codes),
            bytes_sent=self.bytes_sent, bytes_received=self.bytes_received,
            ramp_seconds=round(self.ramp_seconds, 4), hold_seconds=round(self.hold_seconds, 4),
            status="stopped" if self.stopping and status == "ok" else status, detail=detail,
        )
        hists = {"connect": self.connect_lat.encode(), "corrected": self.corrected.encode(),
                 "raw": self.raw.encode()}
        for why, rec in self.drop_times.items():
            hists[DROP_PREFIX + why] = rec.encode()
        return res, hists

    def run(self) -> ProcessResult:
        """All phases, talking to the parent through `report` and the control fd."""
        from c10kplan.host.process import process_rss_bytes
        from c10kplan.host.procfs import ProcFS

        # Resident memory before any connection: verify subtracts it to get the cost per socket.
        rss = process_rss_bytes(ProcFS())
        # fds already open before the first connect (std streams, pipes, epoll): what RLIMIT_NOFILE
        # leaves for connections is the limit minus these (verify --find-limit's prediction).
        fds = len(os.listdir("/proc/self/fd")) - 1  # minus the fd listdir itself opened
        # Every module the result needs, imported now: at RLIMIT_NOFILE (the point of
        # --find-limit) an import after the ramp would fail with EMFILE opening its file.
        LatencyRecorder().encode()
        self.report({"event": "started", "index": self.index, "rss_bytes": rss, "fds": fds})
        # The cyclic GC would walk every connection record on each full collection: tens of ms
        # at 16k connections right in the latency path, and in the ramp 9 % of the CPU at 1M
        # (perf; its writes to the records also copy the pages shared with the parent since
        # fork). Nothing here forms cycles, reference counting frees it all, so the collector
        # sleeps through the ramp and the hold.
        gc.disable()
        try:
            self.ramp()
            self.report({"event": "ramped", "index": self.index, **self.counters(),
                         "ramp_seconds": self.ramp_seconds})
            if not self.stopping and self.wait_command() == "hold":
                self.hold()
        finally:
            gc.enable()
        res, hists = self.result()
        self.report({"event": "result", "index": self.index, "result": res.model_dump(mode="json"),
                     "hist": hists})
        if self.control_fd is not None and not self.stopping:
            self.wait_command()  # "close" (or stop): keep holding until the parent has measured
        self.close_all()
        return res
