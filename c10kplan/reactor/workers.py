"""The supervisor: N worker processes, each with its own SO_REUSEPORT listener and reactor.

    supervisor (prints `listening HOST:PORT`, owns stderr and the stats file)
      |-- worker 0: listener (SO_REUSEPORT) + backend + Reactor.run()   --pipe--> supervisor
      |-- worker 1: ...

Protocol between them: each worker writes JSON lines to its own pipe: {"type": "ready"},
{"type": "stats", ...counters}, {"type": "log", ...}, {"type": "final", ...counters},
{"type": "error", "message": ..}. The supervisor asks for stats with SIGUSR1 (to each worker),
every --stats-interval seconds and whenever it receives SIGUSR1 itself; it writes the stats file
once all answered (or 250 ms passed).

Facts this module relies on (Linux):
- SO_REUSEPORT (Linux >= 3.9): sockets of the same user bound to the same address with the
  option set share the port; the kernel hashes each new connection to one LISTENING socket. The
  supervisor binds (but never listens on) a reservation socket first, so that port 0 resolves
  to one port all workers then share; it closes it once the workers listen.
- prctl(PR_SET_PDEATHSIG, SIGTERM) (Linux >= 2.1.57) has the kernel signal a worker when the
  supervisor dies, even by SIGKILL: no orphans. It is checked against a race with getppid().
- signal.set_wakeup_fd: the C-level handler writes the signal number as one byte to a socket
  the loop watches, so a signal wakes epoll_wait/poll at once; the Python handlers do nothing.
- RLIMIT_NOFILE: a process may raise its soft limit up to the hard limit without privileges;
  each worker does so at start.
"""

from __future__ import annotations

import mmap
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from c10kplan.errors import BadInput, EnvironmentProblem, NotReady
from c10kplan.processes import (
    describe_status,
    die_with_parent,
    encode_line,
    hard_nofile,
    json_line,
    raise_nofile_soft_limit,
    read_wake_bytes,
    split_lines,
    wake_on_signals,
)
from c10kplan.reactor.config import ServeConfig, resolve_workers
from c10kplan.reactor.server import Reactor, make_listener
from c10kplan.reactor.stats import StatsDocument, WorkerStats, build_document, write_stats

COLLECT_TIMEOUT = 0.25  # s: the stats file is written at most this long after a request
STOP_TIMEOUT = 10.0  # s: after SIGTERM, a worker still alive after this gets SIGKILL
HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGCHLD)


class WorkerDied(NotReady):
    """A worker process exited without being asked to."""


# ===================================================================== worker side
class _Reporter:
    """JSON lines to the supervisor over a pipe. Lines under PIPE_BUF (4096 bytes) are written
    atomically. Stats and logs are written nonblocking and dropped if the pipe is full, so a
    stalled supervisor (say, its stderr is a pipe nobody reads) never stalls a worker's loop;
    `ready` and `final` are written blocking."""

    def __init__(self, fd: int, index: int) -> None:
        self.fd = fd
        self.index = index
        self.dropped = 0

    def send(self, kind: str, record: dict[str, Any], *, wait: bool = False) -> None:
        try:
            os.set_blocking(self.fd, wait)
            os.write(self.fd, encode_line({"type": kind, "worker": self.index, **record}))
        except BlockingIOError:
            self.dropped += 1
        except OSError:
            pass  # the supervisor is gone; PDEATHSIG is stopping us


def _worker_main(cfg: ServeConfig, index: int, port: int, shared: memoryview | None, report_fd: int) -> int:
    from c10kplan.reactor.backends import make_backend

    reporter = _Reporter(report_fd, index)
    raise_nofile_soft_limit()
    try:
        listener = make_listener(cfg.host, port, backlog=cfg.backlog, reuseport=True)
    except OSError as exc:
        reporter.send("error", {"message": f"cannot listen on {cfg.host}:{port}: {exc.strerror or exc}"}, wait=True)
        return 3
    backend = make_backend(cfg.backend, edge=cfg.trigger == "edge")
    reactor = Reactor(
        listener,
        backend,
        cfg.protocol,
        max_connections=cfg.max_connections,
        shared_active=shared,
        slot=index,
        log=lambda rec: reporter.send("log", rec),
        on_stats_request=lambda r: reporter.send("stats", r.snapshot(index).model_dump()),
    )
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    wake_on_signals(reactor.wake_w.fileno(), (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)
    reporter.send("ready", {"pid": os.getpid()}, wait=True)
    try:
        reactor.run()
        reporter.send("final", reactor.snapshot(index).model_dump(), wait=True)
    finally:
        signal.set_wakeup_fd(-1)
        reactor.close()
    return 0


def _worker_process(cfg: ServeConfig, index: int, port: int, shared: memoryview | None, report_fd: int,
                    parent: int, inherited: list[int], cleanup: Callable[[], None]) -> None:
    """Body of the forked child; never returns."""
    code = 70
    try:
        if not die_with_parent(parent, signal.SIGTERM):  # the supervisor died before prctl
            os._exit(0)
        for fd in inherited:
            try:
                os.close(fd)
            except OSError:
                pass
        cleanup()
        code = _worker_main(cfg, index, port, shared, report_fd)
    except BaseException as exc:  # noqa: BLE001 - a worker must never print a traceback
        _Reporter(report_fd, index).send("error", {"message": f"worker crashed: {exc!r}"}, wait=True)
    finally:
        os._exit(code)


# ===================================================================== supervisor side
class _WorkerHandle:
    __slots__ = ("index", "pid", "fd", "buf", "ready", "exited", "expected_exit", "error_reported", "stats")

    def __init__(self, index: int, pid: int, fd: int) -> None:
        self.index = index
        self.pid = pid
        self.fd: int | None = fd
        self.buf = b""
        self.ready = False
        self.exited: int | None = None  # wait status once reaped
        self.expected_exit = False  # it sent its final stats
        self.error_reported = False
        self.stats = WorkerStats(worker=index, pid=pid)


class Supervisor:
    def __init__(self, cfg: ServeConfig, workers: int, port: int, reservation: socket.socket,
                 out: TextIO, err: TextIO) -> None:
        self.cfg = cfg
        self.n = workers
        self.port = port
        self.reservation: socket.socket | None = reservation
        self.out = out
        self.err = err
        self.workers: list[_WorkerHandle] = []
        self._shared_map: mmap.mmap | None = None
        self._shared: memoryview | None = None  # per-worker active counts (--max-connections)
        self.by_fd: dict[int, _WorkerHandle] = {}
        self.listening = False
        self.stopping = False
        self.kill_at: float | None = None
        self.pending: set[int] = set()  # workers asked for stats that have not answered
        self.collect_by: float | None = None
        self.print_collected = False
        self.next_tick: float | None = None
        self.failure: str | None = None  # why we exit non-zero
        self.startup_error: str | None = None

    # ---------------------------------------------------------------- start
    def start(self) -> None:
        # One int64 slot per worker in an anonymous MAP_SHARED mapping, inherited by fork:
        # each worker writes its own active count, reads the sum to enforce the total cap.
        shared = None
        if self.cfg.max_connections is not None and self.n > 1:
            self._shared_map = mmap.mmap(-1, 8 * self.n)
            shared = self._shared = memoryview(self._shared_map).cast("q")
        me = os.getpid()
        for i in range(self.n):
            r, w = os.pipe()
            inherited = [r, *(h.fd for h in self.workers if h.fd is not None)]
            pid = os.fork()
            if pid == 0:
                _worker_process(self.cfg, i, self.port, shared, w, me, inherited, self._close_reservation)
            os.close(w)
            os.set_blocking(r, False)
            handle = _WorkerHandle(i, pid, r)
            self.workers.append(handle)
            self.by_fd[r] = handle

    # ---------------------------------------------------------------- loop
    def run(self) -> int:
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
        try:
            self.start()
            wake_r, wake_w = socket.socketpair()  # after the forks: workers make their own
            wake_r.setblocking(False)
            wake_w.setblocking(False)
            wake_on_signals(wake_w.fileno(), HANDLED)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        poller = select.poll()
        poller.register(wake_r.fileno(), select.POLLIN)
        for h in self.workers:
            poller.register(h.fd, select.POLLIN)
        try:
            while not self._done():
                timeout = self._timeout()
                for fd, _ev in poller.poll(None if timeout is None else max(0, int(timeout * 1000) + 1)):
                    if fd == wake_r.fileno():
                        self._on_signals(wake_r)
                    else:
                        self._on_pipe(fd, poller)
                self._reap()
                self._timers()
        finally:
            signal.set_wakeup_fd(-1)
            wake_r.close()
            wake_w.close()
            self._kill_all(signal.SIGKILL)
            self._close_reservation()
        return self._finish()

    def _done(self) -> bool:
        return all(h.exited is not None for h in self.workers) and all(h.fd is None for h in self.workers)

    def _timeout(self) -> float | None:
        now = time.monotonic()
        deadlines = [t for t in (self.next_tick, self.collect_by, self.kill_at) if t is not None]
        if any(h.exited is None and h.fd is None for h in self.workers):
            deadlines.append(now + 0.05)  # pipe closed, exit status not reaped yet
        return max(0.0, min(deadlines) - now) if deadlines else None

    def _on_signals(self, wake_r: socket.socket) -> None:
        for code in read_wake_bytes(wake_r):
            if code in (signal.SIGINT, signal.SIGTERM):
                self._begin_stop()
            elif code == signal.SIGUSR1:
                self._request_stats(periodic=False)

    def _on_pipe(self, fd: int, poller: select.poll) -> None:
        h = self.by_fd[fd]
        if not self._drain(h):
            poller.unregister(fd)
            os.close(fd)
            h.fd = None
            del self.by_fd[fd]

    def _drain(self, h: _WorkerHandle) -> bool:
        """Read and handle what the worker wrote; False once its pipe reached EOF."""
        while h.fd is not None:
            try:
                data = os.read(h.fd, 65536)
            except BlockingIOError:
                return True
            except OSError:
                data = b""
            if not data:
                return False
            messages, h.buf = split_lines(h.buf, data)
            for msg in messages:
                self._on_message(h, msg)
        return False

    def _on_message(self, h: _WorkerHandle, msg: dict[str, Any]) -> None:
        kind = msg.pop("type", None)
        if kind == "ready":
            h.ready = True
            if not self.listening and not self.stopping and all(w.ready for w in self.workers):
                self._on_all_listening()
        elif kind in ("stats", "final"):
            h.stats = WorkerStats.model_validate(msg)
            self.pending.discard(h.index)
            if kind == "final":
                h.expected_exit = True
                self._emit({"event": "final", **h.stats.model_dump()})
        elif kind == "log":
            self._emit(msg)
        elif kind == "error":
            text = f"worker {h.index}: {msg.get('message')}"
            h.error_reported = True
            if not self.listening:
                self.startup_error = msg.get("message")
            self._emit({"event": "error", "worker": h.index, "message": msg.get("message")})
            self.failure = self.failure or text

    def _close_reservation(self) -> None:
        if self.reservation is not None:
            self.reservation.close()
            self.reservation = None

    def _on_all_listening(self) -> None:
        self.listening = True
        self._close_reservation()
        host = f"[{self.cfg.host}]" if ":" in self.cfg.host else self.cfg.host
        try:
            print(f"listening {host}:{self.port}", file=self.out, flush=True)
        except OSError:
            pass  # nobody reads our stdout (closed pipe): serve anyway
        self._request_stats(periodic=False)
        if self.cfg.stats_interval > 0:
            self.next_tick = time.monotonic() + self.cfg.stats_interval

    def _reap(self) -> None:
        for h in self.workers:
            if h.exited is not None:
                continue
            try:
                pid, status = os.waitpid(h.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = h.pid, 0
            if pid == 0:
                continue
            self._drain(h)  # it may have said goodbye just before exiting: read that first
            h.exited = status
            if self._shared is not None:
                self._shared[h.index] = 0  # its connections died with it: free its share
            if not h.expected_exit:  # no final report: what it held is gone with it
                st = h.stats
                h.stats = st.model_copy(update={"active": 0, "closed": st.closed + st.active,
                                                "queued_bytes": 0, "paused": 0, "rss_bytes": 0})
            self.pending.discard(h.index)
            if not (h.expected_exit and status == 0) and not h.error_reported:
                why = describe_status(status)
                self._emit({"event": "worker-died", "worker": h.index, "pid": h.pid, "status": why})
                self.failure = self.failure or f"worker {h.index} (pid {h.pid}) died: {why}"
            if not self.listening or all(w.exited is not None for w in self.workers):
                self._begin_stop()

    def _begin_stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.next_tick = None
        self.kill_at = time.monotonic() + STOP_TIMEOUT
        self._kill_all(signal.SIGTERM)

    def _kill_all(self, sig: int) -> None:
        for h in self.workers:
            if h.exited is None:
                try:
                    os.kill(h.pid, sig)
                except ProcessLookupError:
                    pass
                if sig == signal.SIGKILL:
                    try:
                        os.waitpid(h.pid, 0)
                    except ChildProcessError:
                        pass
                    h.exited = -sig

    def _request_stats(self, *, periodic: bool) -> None:
        self.print_collected = self.print_collected or periodic
        if self.collect_by is not None:
            return
        alive = [h for h in self.workers if h.ready and h.exited is None and not self.stopping]
        for h in alive:
            try:
                os.kill(h.pid, signal.SIGUSR1)
            except ProcessLookupError:
                continue
            self.pending.add(h.index)
        self.collect_by = time.monotonic() + COLLECT_TIMEOUT

    def _timers(self) -> None:
        now = time.monotonic()
        if self.collect_by is not None and (not self.pending or now >= self.collect_by):
            self.collect_by = None
            self.pending.clear()
            doc = self._document()
            self._write_stats_file(doc)
            if self.print_collected:
                for w in doc.workers:
                    self._emit({"event": "stats", "time": doc.time, **w.model_dump()})
            self.print_collected = False
        if self.next_tick is not None and now >= self.next_tick:
            self.next_tick = now + self.cfg.stats_interval
            self._request_stats(periodic=True)
        if self.kill_at is not None and now >= self.kill_at:
            self.kill_at = None
            self._kill_all(signal.SIGKILL)

    def _write_stats_file(self, doc: StatsDocument) -> None:
        if self.cfg.stats_file is None:
            return
        try:
            write_stats(self.cfg.stats_file, doc)
        except OSError as exc:  # e.g. the directory went away: report it, keep serving
            self._emit({"event": "error", "message": f"cannot write {self.cfg.stats_file}: {exc.strerror or exc}"})

    def _document(self) -> StatsDocument:
        return build_document({h.index: h.stats for h in self.workers}, time.time())

    def _emit(self, record: dict[str, Any]) -> None:
        try:
            self.err.write(json_line(record))
            self.err.flush()
        except (OSError, ValueError):
            pass

    def _finish(self) -> int:
        if self.startup_error is not None and not self.listening:
            raise EnvironmentProblem(self.startup_error)
        doc = self._document()
        self._write_stats_file(doc)
        self._emit({"event": "summary", "time": doc.time, "workers": len(doc.workers),
                    **doc.total.model_dump()})
        if self.failure is not None:
            raise WorkerDied(self.failure)
        return 0


def serve(cfg: ServeConfig, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the server until SIGINT / SIGTERM. Returns 0 after a graceful stop; raises
    BadInput / EnvironmentProblem when it cannot start, WorkerDied when a worker died."""
    from c10kplan.reactor.backends import available_backends

    if cfg.backend not in available_backends():
        raise EnvironmentProblem(f"backend {cfg.backend} is not available on this platform")
    if cfg.stats_file is not None and not cfg.stats_file.resolve().parent.is_dir():
        raise BadInput(f"--stats-file: directory {cfg.stats_file.parent} does not exist")
    try:
        n = resolve_workers(cfg.workers, cfg.max_connections, hard_nofile(), os.cpu_count() or 1)
    except ValueError as exc:
        raise EnvironmentProblem(str(exc)) from None
    try:
        # SO_REUSEPORT would let us silently share a port another server (of this user) is
        # already listening on. A probe bound WITHOUT it fails with EADDRINUSE if anything
        # listens there (SO_REUSEADDR still ignores TIME_WAIT leftovers); then the reservation
        # takes the same port with SO_REUSEPORT for the workers to share.
        probe = make_listener(cfg.host, cfg.port, backlog=0, reuseport=False)
        port = probe.getsockname()[1]
        probe.close()
        reservation = make_listener(cfg.host, port, backlog=0, reuseport=True)
    except socket.gaierror as exc:
        raise BadInput(f"--host {cfg.host}: {exc.strerror}") from None
    except OSError as exc:
        raise EnvironmentProblem(f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}") from None
    sup = Supervisor(cfg, n, port, reservation, out or sys.stdout, err or sys.stderr)
    return sup.run()
