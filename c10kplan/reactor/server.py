"""One worker's reactor: a listener, a backend, one loop, and one close path.

The loop has three phases (`run`): wait (backend.poll), dispatch (listener -> accept, wake
socket -> commands, connection -> read / write), timers (resume accepting after a back-off, log
the tail of a burst of rejections). A connection's read goes through one general path,
`_on_readable` (read, `protocol.feed`, send the answer); echo also has a fast path inlined in
the loop, kept because it measurably pays (the figures are in `run`).

Connections are raw fds (no socket object, no per-connection object) so that an idle
connection costs only its entry in `_live` and its int: state lives in small side tables that
hold an entry only while a connection needs one (queued output, paused, half-closed).

Facts this module relies on (Linux; checked on 6.x):
- Accepted sockets do NOT inherit O_NONBLOCK from the listener (accept(2)), so each one is made
  nonblocking after accept. They DO inherit TCP_NODELAY (the child socket is a copy of the
  listener's tcp_sock, nonagle included): it is set once, on the listener, not per accept.
- accept(2) reserves the new fd BEFORE it looks at the queue: with no fd left it fails with
  EMFILE (per process) / ENFILE (system-wide) even when the queue is empty, and the pending
  connection stays queued, so a level-triggered listener would wake us forever. The fix: keep
  one spare fd; on EMFILE close it, accept, close the new socket (the peer sees a clean
  close), and take the spare back.
- Edge-triggered epoll reports a socket again only when NEW data arrives. A read that returns
  fewer bytes than asked emptied the receive queue at that moment (what nginx relies on too),
  so that counts as reaching EAGAIN; anything arriving later raises a new edge. EXCEPT a FIN or
  RST that arrived together with the data: its edge is the one we are serving, so when the
  event carries EPOLLRDHUP (asked for in edge mode, Linux >= 2.6.17), EPOLLERR or EPOLLHUP we
  read on until EAGAIN, 0 (EOF) or the error.
- send(2) on a nonblocking TCP socket copies what fits into the send buffer (net.ipv4.tcp_wmem,
  bytes) and returns that count; the rest is ours to queue.
- A read of 0 bytes means the peer sent FIN (shut its write side); it may still read, so
  queued output is sent before we close ("half-close").
- ECONNRESET (peer sent RST, e.g. SO_LINGER 0) and EPIPE (writing after the peer's RST) are
  ordinary events from the network: they close that one connection and are counted by name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from c10kplan.counts import errno_name
from c10kplan.processes import read_wake_bytes
from c10kplan.reactor.admission import SharedActive
from c10kplan.reactor.backends import (
    EVENT_ERROR,
    EVENT_READ,
    EVENT_WRITE,
    Backend,
    FdTooLarge,
    NotRegistered,
)
from c10kplan.reactor.protocols import Protocol, make_protocol
from c10kplan.reactor.stats import WorkerStats, self_rss_bytes

READ_SIZE = 65536  # bytes asked of one read
HIGH_WATER = 256 * 1024  # queued output (bytes) above which a connection is no longer read
LOW_WATER = 64 * 1024  # ... until its queue drains below this
ACCEPT_BATCH = 256  # accepts per listener wakeup, so a connect storm cannot starve the others
EDGE_READS = 16  # edge mode: reads per wakeup before the fd is put back on the `again` list
ACCEPT_BACKOFF = 0.1  # s: pause accepting when even the spare fd cannot be taken back
REJECT_LOG_INTERVAL = 1.0  # s: at most one "rejected" log line per interval

WAKE_STOP = 0  # a byte written by stop(); signal numbers arrive as their own byte
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, WAKE_STOP})

EVENT_RDHUP = select.POLLRDHUP  # == EPOLLRDHUP (0x2000): the peer shut its write side
# What the events of one connection ask of us. poll(2) and epoll(7) report POLLERR / POLLHUP
# (EVENT_ERROR) whether asked for or not; the next read or write on the fd then returns the
# error (ECONNRESET, EPIPE) or 0 (EOF), so an error event counts as "read now" and "write now"
# and the one close path takes it from there.
READ_NOW = EVENT_READ | EVENT_ERROR
FLUSH_NOW = EVENT_WRITE | EVENT_ERROR
# Edge mode: with one of these bits the edge also carries a FIN, RST or error, which raises no
# further edge, so a short read does NOT prove the receive queue empty: read until EAGAIN / 0.
READ_TO_THE_END = EVENT_ERROR | EVENT_RDHUP


def make_listener(host: str, port: int, *, backlog: int, reuseport: bool) -> socket.socket:
    """A nonblocking TCP listener; SO_REUSEPORT lets several workers share the port, and the
    kernel spreads new connections across them by a hash of the 4-tuple (Linux >= 3.9)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if backlog:
            # The kernel silently caps the backlog at net.core.somaxconn.
            sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class ReadHold:
    """Which connections are not being read, and why. The one owner of that bookkeeping.

    `paused`: the output queue passed HIGH_WATER; read again once it drains below LOW_WATER.
    `eof`: the peer shut its write side; never read again, close once the queue drains.
    `held` is their union, the one set the loop's hot path checks; the methods below are the
    only writers, so it stays exactly `paused | eof`.
    """

    __slots__ = ("eof", "held", "paused")

    def __init__(self) -> None:
        self.paused: set[int] = set()
        self.eof: set[int] = set()
        self.held: set[int] = set()

    def pause(self, fd: int) -> None:
        self.paused.add(fd)
        self.held.add(fd)

    def resume(self, fd: int) -> None:
        """Lift the pause; a connection at EOF stays held."""
        self.paused.discard(fd)
        if fd not in self.eof:
            self.held.discard(fd)

    def at_eof(self, fd: int) -> None:
        self.eof.add(fd)
        self.held.add(fd)

    def forget(self, fd: int) -> None:
        self.paused.discard(fd)
        self.eof.discard(fd)
        self.held.discard(fd)


class Reactor:
    """Serve `protocol` on `listener` with `backend` until stop() or a stop signal byte."""

    def __init__(
        self,
        listener: socket.socket,
        backend: Backend,
        protocol: str | Protocol = "echo",
        *,
        max_connections: int | None = None,
        shared_active: SharedActive | None = None,
        slot: int = 0,
        log: Callable[[dict[str, Any]], None] | None = None,
        on_stats_request: Callable[[Reactor], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.listener = listener
        listener.setblocking(False)
        self.backend = backend
        self.edge = backend.edge
        self._rmask = EVENT_READ | EVENT_RDHUP if self.edge else EVENT_READ
        self.protocol = make_protocol(protocol) if isinstance(protocol, str) else protocol
        self.max_connections = max_connections
        # Workers of one server publish their active count in one shared array (one slot
        # each) so --max-connections holds for the server total whatever way SO_REUSEPORT
        # spreads connections (reactor/admission.py: checked and reserved under a lock).
        self._shared = shared_active
        self._slot = slot
        self._log = log or (lambda record: None)
        self._on_stats_request = on_stats_request
        self._clock = clock
        # Side tables, keyed by fd. An idle connection is only in _live.
        self._live: set[int] = set()
        self._outq: dict[int, bytearray] = {}  # output the kernel did not take yet
        self._hold = ReadHold()  # connections not being read: paused (queue full) or at EOF
        self._again: set[int] = set()  # edge mode: serve without waiting for a new edge
        # The loop's one read buffer: readv(2) into it costs no allocation per read, where
        # os.read(fd, 64 KiB) allocates 64 KiB and shrinks it. What must outlive one read
        # (queued output, a protocol's input) is copied out of it.
        self._rbuf = bytearray(READ_SIZE)
        self._rbufs, self._rview = [self._rbuf], memoryview(self._rbuf)
        self._reads_per_wakeup = EDGE_READS if self.edge else 1
        # echo answers with what it read: sent straight from the read buffer, no copy, no call.
        self._feed = None if self.protocol.name == "echo" else self.protocol.feed
        # The fds a protocol ends itself after its answer (HTTP `Connection: close`, a WebSocket
        # close; see reactor/protocols.py), or None when it never does.
        self._closing: set[int] | None = getattr(self.protocol, "closing", None)
        self.accepted = 0
        self.closed = 0
        self.rejected = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.errors: dict[str, int] = {}
        self._pending_rejects: dict[str, int] = {}
        self._next_reject_log = 0.0
        self._accept_resume_at: float | None = None
        self._stopping = False
        self._backend_closed = False  # _shutdown closed it: nothing to unregister any more
        self._spare: int | None = self._open_spare()
        if listener.family in (socket.AF_INET, socket.AF_INET6):
            # No Nagle: an echo answers small writes at once (asyncio and uvloop do the same).
            # Set here, every accepted socket inherits it (see the module's facts).
            listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        backend.register(listener.fileno(), EVENT_READ)
        backend.register(self.wake_r.fileno(), EVENT_READ)

    # ----------------------------------------------------------------- control
    def stop(self) -> None:
        """Ask the loop to stop (safe from another thread or a signal handler)."""
        try:
            self.wake_w.send(bytes([WAKE_STOP]))
        except OSError:
            pass

    @property
    def active(self) -> int:
        return len(self._live)

    def snapshot(self, worker: int = 0, pid: int | None = None) -> WorkerStats:
        return WorkerStats(
            worker=worker,
            pid=os.getpid() if pid is None else pid,
            accepted=self.accepted,
            active=len(self._live),
            closed=self.closed,
            rejected=self.rejected,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            errors=dict(sorted(self.errors.items())),
            rss_bytes=self_rss_bytes(),
            queued_bytes=sum(len(q) for q in self._outq.values()),
            paused=len(self._hold.paused),
        )

    # ----------------------------------------------------------------- the loop
    def run(self) -> None:
        """The loop, in three phases: wait, dispatch, timers. Returns after a stop request,
        with every connection and the listener closed."""
        poll = self.backend.poll
        live, outq, held, again = self._live, self._outq, self._hold.held, self._again
        lfd, wfd = self.listener.fileno(), self.wake_r.fileno()
        on_readable, flush = self._on_readable, self._flush
        # The echo fast path, inlined below, pays: scripts/bench_echo.py --tree (100 conns,
        # 64 B, 5 rounds x 3 s, same rounds, 2026-12-01) measured server CPU per request of
        # 3.58 us (level) / 3.55 us (edge) inlined against 4.19 / 4.01 us with echo through
        # the general path (_on_readable: one call, one _send call, attribute loads), and
        # 3.65 / 3.57 us for the loop before this change: the general path costs 13-17 %.
        echo = self._feed is None
        readv, write, rbufs, rview = os.readv, os.write, self._rbufs, self._rview
        nin = nout = 0  # the fast path's byte counts, folded into self at wake-up and exit
        while not self._stopping:
            # -- wait: block until an fd is ready, or only until the next timer is due (at
            #    once while the edge-mode `again` list has fds to serve without a new edge)
            if again or self._accept_resume_at is not None or self._pending_rejects:
                events = poll(self._timeout())
                if again:
                    events = [*events, *((fd, EVENT_READ | READ_TO_THE_END) for fd in again)]
                    again.clear()
            else:
                events = poll(None)
            # -- dispatch
            for fd, ev in events:
                if fd in live:
                    if echo and ev & READ_NOW and fd not in held and fd not in outq:
                        # The echo fast path: one read, written straight back from the read
                        # buffer. Its rare endings go to the general path's methods.
                        got = -1
                        try:
                            got = readv(fd, rbufs)
                            n = write(fd, rview[:got])
                        except OSError as exc:
                            self._echo_failed(fd, ev, got, exc)
                            continue
                        nin += got
                        nout += n
                        if n != got or not got or got == READ_SIZE or ev & READ_TO_THE_END:
                            self._echo_rest(fd, ev, got, n)
                        continue
                    if ev & READ_NOW and fd not in held:
                        on_readable(fd, ev)
                    if ev & FLUSH_NOW and fd in outq:
                        flush(fd)
                elif fd == lfd:
                    self._accept()
                elif fd == wfd:
                    self.bytes_in, self.bytes_out = self.bytes_in + nin, self.bytes_out + nout
                    nin = nout = 0
                    self._on_wake()
            # -- timers
            if self._accept_resume_at is not None or self._pending_rejects:
                self._run_timers()
        self.bytes_in, self.bytes_out = self.bytes_in + nin, self.bytes_out + nout
        self._shutdown()

    def _on_readable(self, fd: int, ev: int) -> None:
        """The general path: read (edge mode: until EAGAIN, at most EDGE_READS times), hand
        each read to the protocol, send its answer. Any error goes through the one close path."""
        for _ in range(self._reads_per_wakeup):
            try:
                got = os.readv(fd, self._rbufs)
            except BlockingIOError:
                return
            except OSError as exc:
                self._close(fd, exc.errno)
                return
            if not got:
                self._on_eof(fd)
                return
            self.bytes_in += got
            data = self._rview[:got]  # echo (no _feed) answers straight from the read buffer
            answer = data if self._feed is None else self._feed(fd, bytes(data))
            if self._closing and fd in self._closing:  # the protocol ends it after this answer
                self._answer_and_end(fd, answer)
                return
            if answer:
                self._send(fd, answer)
                if fd not in self._live or fd in self._hold.held:
                    return  # the send failed and closed it, or its queue is full: read no more
            if got < READ_SIZE and not ev & READ_TO_THE_END:
                return  # a short read emptied the receive queue (module docstring)
        if self.edge:
            self._again.add(fd)  # reads used up: the rest raises no new edge, come back for it

    def _answer_and_end(self, fd: int, answer: bytes | memoryview | None) -> None:
        """Send the protocol's last answer, then end the connection as after the peer's EOF:
        not read again, closed once the queue is written."""
        if answer:
            self._send(fd, answer)
        if fd in self._live:
            self._on_eof(fd)

    def _echo_failed(self, fd: int, ev: int, got: int, exc: OSError) -> None:
        """The echo fast path's read (got < 0) or write raised."""
        if got < 0:
            if not isinstance(exc, BlockingIOError):
                self._close(fd, exc.errno)
            return
        self.bytes_in += got
        if isinstance(exc, BlockingIOError):
            self._echo_rest(fd, ev, got, 0)  # the send buffer is full: queue it all
        else:
            self._close(fd, exc.errno)

    def _echo_rest(self, fd: int, ev: int, got: int, sent: int) -> None:
        """The echo fast path's rare endings: EOF, a partial write, or more to read."""
        if not got:
            self._on_eof(fd)
            return
        if sent != got:
            self._queue(fd, self._rview[sent:got])
            if fd in self._hold.held:
                return
        if self.edge and (got == READ_SIZE or ev & READ_TO_THE_END):
            self._on_readable(fd, ev)  # read on until EAGAIN: no new edge will come for the rest

    def _timeout(self) -> float | None:
        """How long the wait may block: 0 while `again` has work, else until the next timer."""
        if self._again:
            return 0.0
        due = self._accept_resume_at
        if self._pending_rejects and (due is None or self._next_reject_log < due):
            due = self._next_reject_log
        return None if due is None else max(0.0, due - self._clock())

    def _run_timers(self) -> None:
        """Resume accepting after a back-off; log the tail of a burst of rejections."""
        now = self._clock()
        if self._accept_resume_at is not None and now >= self._accept_resume_at:
            self._accept_resume_at = None
            self.backend.modify(self.listener.fileno(), EVENT_READ)
        if self._pending_rejects and now >= self._next_reject_log:
            self._flush_reject_log(now)  # the rest of a burst, one interval later

    # ----------------------------------------------------------------- connections
    def _interest(self, fd: int) -> None:
        mask = (0 if fd in self._hold.held else self._rmask) | (EVENT_WRITE if fd in self._outq else 0)
        self.backend.modify(fd, mask)

    def _queue(self, fd: int, data: bytes | memoryview) -> None:
        """Keep (a copy of) what the kernel did not take; write interest only while something is
        queued. `data` may be a view of the loop's read buffer: it is copied here."""
        q = self._outq.get(fd)
        if q is None:
            self._outq[fd] = q = bytearray(data)
            changed = True
        else:
            q += data
            changed = False
        if len(q) > HIGH_WATER and fd not in self._hold.paused:
            self._hold.pause(fd)
            changed = True
        if changed:
            self._interest(fd)

    def _flush(self, fd: int) -> None:
        q = self._outq[fd]
        try:
            n = os.write(fd, q)
        except BlockingIOError:
            return
        except OSError as exc:
            self._close(fd, exc.errno)
            return
        self.bytes_out += n
        del q[:n]
        changed = False
        if not q:
            del self._outq[fd]
            if fd in self._hold.eof:
                self._close(fd, None)
                return
            changed = True
        if fd in self._hold.paused and len(q) < LOW_WATER:
            self._hold.resume(fd)
            changed = True
            if self.edge and fd not in self._hold.held:
                self._again.add(fd)  # data may be waiting; no new edge will announce it
        if changed:
            self._interest(fd)

    def _send(self, fd: int, data: bytes | memoryview) -> None:
        """Send now what the kernel takes, queue the rest (keeps byte order with the queue)."""
        if fd in self._outq:
            self._queue(fd, data)
            return
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self._close(fd, exc.errno)
            return
        self.bytes_out += n
        if n != len(data):
            self._queue(fd, data[n:])

    def _on_eof(self, fd: int) -> None:
        """The peer shut its write side: answer what is left, send the queue, then close."""
        tail = self.protocol.eof(fd)
        if tail:
            self._send(fd, tail)
        if fd not in self._live:
            return
        if fd in self._outq:
            self._hold.at_eof(fd)
            self._interest(fd)
        else:
            self._close(fd, None)

    def _close(self, fd: int, err: int | None) -> None:
        """The one close path, for every reason a connection ends."""
        if fd not in self._live:
            return
        self._live.discard(fd)
        if self._shared is not None:
            self._shared.publish(self._slot, len(self._live))
        self._outq.pop(fd, None)
        self._hold.forget(fd)
        self._again.discard(fd)
        self.protocol.forget(fd)
        # Every live fd is registered (accept adds it to _live only after register succeeded);
        # NotRegistered is the backends' one error for an fd they do not hold (base.py).
        if not self._backend_closed:
            with contextlib.suppress(NotRegistered):
                self.backend.unregister(fd)
        os.close(fd)
        self.closed += 1
        if err is not None:
            self._count_error(err)

    def _count_error(self, err: int | None) -> None:
        name = errno_name(err)
        self.errors[name] = self.errors.get(name, 0) + 1

    # ----------------------------------------------------------------- accepting
    def _accept(self) -> None:
        lsock = self.listener
        live = self._live
        cap = self.max_connections
        shared = self._shared
        register = self.backend.register
        rmask = self._rmask
        # The listener's own _accept(): accept4(2) giving the bare fd, what the loop keeps anyway;
        # socket.accept() would wrap it in a socket object only to detach it again (1.7 us per
        # connection of 8-10 here, measured).
        accept = lsock._accept
        for _ in range(ACCEPT_BATCH):
            try:
                fd, _addr = accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    if not self._fd_exhausted(exc.errno):
                        return
                    continue
                self._count_error(exc.errno)
                if exc.errno in (errno.ENOBUFS, errno.ENOMEM):
                    self._pause_accepting()  # kernel memory is short: retrying now would spin
                    return
                continue  # ECONNABORTED, EPROTO, EPERM (firewall): that peer is gone
            if cap is not None and not (len(live) < cap if shared is None
                                        else shared.admit(self._slot, len(live), cap)):
                self._reject("max-connections")  # counted before the peer sees the close
                os.close(fd)
                continue
            os.set_blocking(fd, False)  # TCP_NODELAY comes from the listener
            try:
                register(fd, rmask)
            except FdTooLarge:
                self._reject("FD_SETSIZE")  # counted before the peer can see the close
                os.close(fd)
                if shared is not None:
                    shared.publish(self._slot, len(live))  # give back admit()'s reservation
                continue
            except OSError as exc:
                # epoll_ctl(ADD): ENOSPC once fs.epoll.max_user_watches is used up, ENOMEM when
                # kernel memory is short. Drop this one connection; retrying now would spin.
                self._count_error(exc.errno)
                self._reject(errno_name(exc.errno))
                os.close(fd)
                if shared is not None:
                    shared.publish(self._slot, len(live))  # give back admit()'s reservation
                self._pause_accepting()
                return
            live.add(fd)
            self.accepted += 1
            if shared is not None:
                shared.publish(self._slot, len(live))
        if self.edge:
            self._again.add(lsock.fileno())  # batch used up: there may be more, and no new edge

    def _fd_exhausted(self, err: int) -> bool:
        """EMFILE / ENFILE at accept. Returns True to keep accepting (more may be queued)."""
        self._count_error(err)
        drained = stuck = False
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None
            try:
                fd, _addr = self.listener._accept()  # as in _accept: the bare fd
            except BlockingIOError:
                drained = True  # the queue is empty: nothing to drop
            except OSError:
                stuck = True  # even the spare's fd did not help (ENFILE, or taken meanwhile)
            else:
                os.close(fd)
                self._reject(errno_name(err))
            self._spare = self._open_spare()
        if self._spare is None or stuck:
            # Pause rather than spin; resuming re-arms the listener, which also covers edge
            # mode, where connections left in the queue would raise no new edge.
            self._pause_accepting()
            return False
        return not drained

    def _pause_accepting(self) -> None:
        """Stop watching the listener for ACCEPT_BACKOFF; _run_timers() resumes it."""
        self.backend.modify(self.listener.fileno(), 0)
        self._accept_resume_at = self._clock() + ACCEPT_BACKOFF

    @staticmethod
    def _open_spare() -> int | None:
        try:
            return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None

    def _reject(self, reason: str) -> None:
        self.rejected += 1
        self._pending_rejects[reason] = self._pending_rejects.get(reason, 0) + 1
        now = self._clock()
        if now >= self._next_reject_log:
            self._flush_reject_log(now)

    def _flush_reject_log(self, now: float) -> None:
        if self._pending_rejects:
            self._log({"event": "rejected", "reasons": dict(self._pending_rejects)})
            self._pending_rejects.clear()
        self._next_reject_log = now + REJECT_LOG_INTERVAL

    # ----------------------------------------------------------------- wake / stop
    def _on_wake(self) -> None:
        wanted_stats = False
        for code in read_wake_bytes(self.wake_r):
            if code in STOP_SIGNALS:
                self._stopping = True
            elif code == signal.SIGUSR1:
                wanted_stats = True
        if wanted_stats and self._on_stats_request is not None:
            self._on_stats_request(self)

    def _shutdown(self) -> None:
        """Stop accepting, give each connection one last chance to send, close everything."""
        lfd = self.listener.fileno()
        if lfd >= 0:
            with contextlib.suppress(NotRegistered):
                self.backend.unregister(lfd)
            self.listener.close()
        for fd in list(self._outq):
            if fd in self._live:
                self._flush(fd)
        # Then the backend: closing an epoll fd drops every registration in one pass, where
        # the close path would spend an epoll_ctl(DEL) per connection (19,000 syscalls for a
        # full worker at 1M). _close skips the unregister from here on.
        self.backend.close()
        self._backend_closed = True
        for fd in list(self._live):
            self._close(fd, None)
        self._flush_reject_log(self._clock())

    def close(self) -> None:
        """Release what the reactor holds after run() returned (or if it never ran)."""
        for fd in list(self._live):
            self._close(fd, None)
        if self.listener.fileno() >= 0:
            self.listener.close()
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None
        self.wake_r.close()
        self.wake_w.close()
        self.backend.close()  # every backend's close may be called twice (after _shutdown's)
