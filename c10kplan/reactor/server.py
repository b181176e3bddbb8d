"""One worker's reactor: a listener, a backend, one loop, and one close path.

The loop has three phases: wait (backend.poll), dispatch (listener -> accept, wake socket ->
commands, connection -> read / write), timers (resume accepting after fd exhaustion).

Connections are raw fds (no socket object, no per-connection object) so that an idle
connection costs only its entry in `_live` and its int: state lives in small side tables that
hold an entry only while a connection needs one (queued output, paused, half-closed).

Facts this module relies on (Linux; checked on 6.x):
- Accepted sockets do NOT inherit O_NONBLOCK from the listener (accept(2)), so each one is made
  nonblocking after accept.
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

import errno
import os
import select
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from c10kplan.errors import errno_name
from c10kplan.processes import read_wake_bytes
from c10kplan.reactor.backends import EVENT_ERROR, EVENT_READ, EVENT_WRITE, Backend, FdTooLarge
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
_RE = EVENT_READ | EVENT_ERROR  # error/hangup: read, and let read surface the error
_WE = EVENT_WRITE | EVENT_ERROR
_DRAIN = EVENT_ERROR | EVENT_RDHUP  # edge mode: a short read is not enough, read to the end


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


class Reactor:
    """Serve `protocol` on `listener` with `backend` until stop() or a stop signal byte."""

    def __init__(
        self,
        listener: socket.socket,
        backend: Backend,
        protocol: str | Protocol = "echo",
        *,
        max_connections: int | None = None,
        shared_active: memoryview | None = None,
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
        # spreads connections; two workers admitting at the same instant can overshoot the
        # total by at most (workers - 1).
        self._shared = shared_active
        self._slot = slot
        self._log = log or (lambda record: None)
        self._on_stats_request = on_stats_request
        self._clock = clock
        # Side tables, keyed by fd. An idle connection is only in _live.
        self._live: set[int] = set()
        self._outq: dict[int, bytearray] = {}  # output the kernel did not take yet
        self._paused: set[int] = set()  # queue above HIGH_WATER: not read until below LOW_WATER
        self._eof: set[int] = set()  # peer shut its write side: close once the queue drains
        self._noread: set[int] = set()  # _paused | _eof, the one set the hot path checks
        self._again: set[int] = set()  # edge mode: serve without waiting for a new edge
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
        self._spare: int | None = self._open_spare()
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
            paused=len(self._paused),
        )

    # ----------------------------------------------------------------- the loop
    def run(self) -> None:
        """The loop: wait, dispatch, timers. Returns after a stop request, with every
        connection and the listener closed."""
        poll = self.backend.poll
        readv = os.readv
        write = os.write
        # One read buffer for the whole loop: readv(2) into it costs no allocation per read, where
        # os.read(fd, 64 KiB) allocates 64 KiB and shrinks it. What must outlive this iteration
        # (queued output, a protocol's input) is copied out of it.
        rbuf = bytearray(READ_SIZE)
        rbufs, rview = [rbuf], memoryview(rbuf)
        live = self._live
        outq = self._outq
        noread = self._noread
        again = self._again
        edge = self.edge
        feed = None if self.protocol.name == "echo" else self.protocol.feed
        closing = getattr(self.protocol, "closing", None)  # see reactor/protocols.py
        lfd = self.listener.fileno()
        wfd = self.wake_r.fileno()
        reads_per_wakeup = EDGE_READS if edge else 1
        close = self._close
        queue = self._queue
        flush = self._flush
        read_size, want_read, want_write, drain = READ_SIZE, _RE, _WE, _DRAIN
        nin = nout = 0  # bytes counted locally in the hot path, folded into self on wake / exit

        while not self._stopping:
            # -- wait
            if again or self._accept_resume_at is not None or self._pending_rejects:
                events = poll(self._timers())
                if again:
                    events = list(events)
                    events.extend((fd, EVENT_READ | _DRAIN) for fd in again)
                    again.clear()
            else:
                events = poll(None)
            # -- dispatch
            for fd, ev in events:
                if fd in live:
                    if ev & want_read and fd not in noread:
                        left = reads_per_wakeup
                        while True:
                            try:
                                got = readv(fd, rbufs)
                            except BlockingIOError:
                                break
                            except OSError as exc:
                                close(fd, exc.errno)
                                break
                            if not got:
                                self._on_eof(fd)
                                break
                            nin += got
                            data = rview[:got]  # echo: written straight from the read buffer
                            if feed is not None:
                                data = feed(fd, bytes(data))
                                if closing and fd in closing:  # the protocol ends it after `data`
                                    if data:
                                        self._send(fd, data)
                                    self._on_eof(fd)
                                    break
                            if data:
                                if fd in outq:
                                    queue(fd, data)
                                    if fd in noread:
                                        break
                                else:
                                    try:
                                        n = write(fd, data)
                                    except BlockingIOError:
                                        n = 0
                                    except OSError as exc:
                                        close(fd, exc.errno)
                                        break
                                    nout += n
                                    if n != len(data):
                                        queue(fd, data[n:])
                                        if fd in noread:
                                            break
                            if got < read_size and not ev & drain:
                                break
                            left -= 1
                            if not left:
                                if edge:
                                    again.add(fd)
                                break
                    if ev & want_write and fd in outq:
                        flush(fd)
                elif fd == lfd:
                    self._accept()
                elif fd == wfd:
                    self.bytes_in += nin
                    self.bytes_out += nout
                    nin = nout = 0
                    self._on_wake()
        self.bytes_in += nin
        self.bytes_out += nout
        self._shutdown()

    def _timers(self) -> float | None:
        """Run due timers; return how long the next wait may block (0 when work is queued)."""
        now = self._clock()
        due: list[float] = [now] if self._again else []
        if self._accept_resume_at is not None:
            if now >= self._accept_resume_at:
                self._accept_resume_at = None
                self.backend.modify(self.listener.fileno(), EVENT_READ)
                due.append(now)
            else:
                due.append(self._accept_resume_at)
        if self._pending_rejects:
            if now >= self._next_reject_log:
                self._flush_reject_log(now)  # the rest of a burst, one interval later
            else:
                due.append(self._next_reject_log)
        return max(0.0, min(due) - now) if due else None

    # ----------------------------------------------------------------- connections
    def _interest(self, fd: int) -> None:
        mask = (0 if fd in self._noread else self._rmask) | (EVENT_WRITE if fd in self._outq else 0)
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
        if len(q) > HIGH_WATER and fd not in self._paused:
            self._paused.add(fd)
            self._noread.add(fd)
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
            if fd in self._eof:
                self._close(fd, None)
                return
            changed = True
        if fd in self._paused and len(q) < LOW_WATER:
            self._paused.discard(fd)
            self._noread.discard(fd)
            changed = True
            if self.edge:
                self._again.add(fd)  # data may be waiting; no new edge will announce it
        if changed:
            self._interest(fd)

    def _send(self, fd: int, data: bytes) -> None:
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
            self._eof.add(fd)
            self._noread.add(fd)
            self._interest(fd)
        else:
            self._close(fd, None)

    def _close(self, fd: int, err: int | None) -> None:
        """The one close path, for every reason a connection ends."""
        if fd not in self._live:
            return
        self._live.discard(fd)
        if self._shared is not None:
            self._shared[self._slot] = len(self._live)
        self._outq.pop(fd, None)
        self._paused.discard(fd)
        self._eof.discard(fd)
        self._noread.discard(fd)
        self._again.discard(fd)
        self.protocol.forget(fd)
        try:
            self.backend.unregister(fd)
        except (KeyError, ValueError, OSError):
            pass
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
        for _ in range(ACCEPT_BATCH):
            try:
                sock, _addr = lsock.accept()
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
            if cap is not None and (len(live) if shared is None else sum(shared)) >= cap:
                self._reject("max-connections")  # counted before the peer sees the close
                sock.close()
                continue
            sock.setblocking(False)
            # No Nagle: an echo answers small writes at once (asyncio and uvloop do the same).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            fd = sock.detach()
            try:
                register(fd, rmask)
            except FdTooLarge:
                self._reject("FD_SETSIZE")  # counted before the peer can see the close
                os.close(fd)
                continue
            except OSError as exc:
                # epoll_ctl(ADD): ENOSPC once fs.epoll.max_user_watches is used up, ENOMEM when
                # kernel memory is short. Drop this one connection; retrying now would spin.
                self._count_error(exc.errno)
                self._reject(errno_name(exc.errno))
                os.close(fd)
                self._pause_accepting()
                return
            live.add(fd)
            self.accepted += 1
            if shared is not None:
                shared[self._slot] = len(live)
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
                sock, _addr = self.listener.accept()
            except BlockingIOError:
                drained = True  # the queue is empty: nothing to drop
            except OSError:
                stuck = True  # even the spare's fd did not help (ENFILE, or taken meanwhile)
            else:
                sock.close()
                self._reject(errno_name(err))
            self._spare = self._open_spare()
        if self._spare is None or stuck:
            # Pause rather than spin; resuming re-arms the listener, which also covers edge
            # mode, where connections left in the queue would raise no new edge.
            self._pause_accepting()
            return False
        return not drained

    def _pause_accepting(self) -> None:
        """Stop watching the listener for ACCEPT_BACKOFF; _timers() resumes it."""
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
            try:
                self.backend.unregister(lfd)
            except (KeyError, ValueError, OSError):
                pass
            self.listener.close()
        for fd in list(self._live):
            if fd in self._outq:
                self._flush(fd)
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
        self.backend.close()
