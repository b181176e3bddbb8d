"""The supervisor: N worker processes, each with its own SO_REUSEPORT listener and reactor.

    supervisor (prints `listening HOST:PORT`, owns stderr and the stats file)
      |-- worker 0: listener (SO_REUSEPORT) + backend + Reactor.run()   --pipe--> supervisor
      |-- worker 1: ...

The workers are children of one processes.ChildSet: forked, heard, reaped and stopped there
(PDEATHSIG SIGTERM: a worker stops with the supervisor, even when it is SIGKILLed). Each worker
reports on its pipe in the one schema ({"event": KIND, "worker": I, ...}): "ready", "stats",
"final" (counters), "error" (message), and the reactor's own log events ("rejected", ...),
which the supervisor prints as they come. It asks for stats with SIGUSR1 (to each worker),
every --stats-interval seconds and whenever it receives SIGUSR1 itself; it writes the stats
file once all answered (or 250 ms passed); a stats file that fails 3 writes in a row stops
serve (exit 3) rather than repeat the error every interval. A worker that needed SIGKILL to stop makes the
stop not clean: exit 1.

Facts this module relies on (Linux):
- SO_REUSEPORT (Linux >= 3.9): sockets of the same user bound to the same address with the
  option set share the port; the kernel hashes each new connection to one LISTENING socket. The
  supervisor binds (but never listens on) a reservation socket first, so that port 0 resolves
  to one port all workers then share; it closes it once the workers listen.
- signal.set_wakeup_fd (processes/wakeup.py) wakes the supervisor's poll on a signal.
- RLIMIT_NOFILE: each worker raises its soft limit to the hard limit at start.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TextIO

from c10kplan.errors import BadInput, EnvironmentProblem, NotReady
from c10kplan.processes import (
    EVENT,
    Child,
    ChildSet,
    Reporter,
    check_processes,
    hard_nofile,
    json_line,
    raise_nofile_soft_limit,
    read_wake_bytes,
    wake_on_signals,
)
from c10kplan.reactor.admission import SharedActive
from c10kplan.reactor.config import ServeConfig, resolve_workers
from c10kplan.reactor.server import Reactor, make_listener
from c10kplan.reactor.stats import StatsDocument, WorkerStats, build_document, write_stats
from c10kplan.report import check_output

COLLECT_TIMEOUT = 0.25  # s: the stats file is written at most this long after a request
STATS_WRITE_TRIES = 3  # stats-file writes failing in a row that stop serve (not a loop of errors)
STOP_TIMEOUT = 10.0  # s: after SIGTERM, a worker still alive after this gets SIGKILL
HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGCHLD)


class WorkerDied(NotReady):
    """A worker process exited without being asked to, or did not stop when asked."""


# ===================================================================== worker side
def _worker_main(cfg: ServeConfig, index: int, port: int, shared: SharedActive | None, reporter: Reporter) -> int:
    """A worker's life. Stats and log events are sent nonblocking (dropped if the pipe is full:
    a stalled supervisor never stalls the loop); ready, final and error wait for room."""
    from c10kplan.reactor.backends import make_backend
    from c10kplan.reactor.sched import apply_policy

    raise_nofile_soft_limit()
    try:
        apply_policy(cfg.sched)
    except OSError as exc:  # EPERM under seccomp, or from SCHED_IDLE past RLIMIT_NICE
        reporter.send("error", message=f"cannot run under --sched {cfg.sched}: {exc.strerror or exc}")
        return 3
    try:
        listener = make_listener(cfg.host, port, backlog=cfg.backlog, reuseport=True)
    except OSError as exc:
        reporter.send("error", message=f"cannot listen on {cfg.host}:{port}: {exc.strerror or exc}")
        return 3
    backend = make_backend(cfg.backend, edge=cfg.trigger == "edge")
    reactor = Reactor(
        listener,
        backend,
        cfg.protocol,
        max_connections=cfg.max_connections,
        shared_active=shared,
        slot=index,
        log=lambda rec: reporter.write({**rec, "worker": index}, wait=False),
        on_stats_request=lambda r: reporter.send("stats", wait=False, **r.snapshot(index).model_dump()),
    )
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    wake_on_signals(reactor.wake_w.fileno(), (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)
    reporter.send("ready", pid=os.getpid())
    try:
        reactor.run()
        reporter.send("final", **reactor.snapshot(index).model_dump())
    finally:
        signal.set_wakeup_fd(-1)
        reactor.close()
    return 0


def _worker_body(cfg: ServeConfig, index: int, port: int, shared: SharedActive | None,
                 cleanup: Callable[[], None], reporter: Reporter, control: int | None) -> int:
    cleanup()  # the supervisor's reservation socket is not the worker's to keep
    return _worker_main(cfg, index, port, shared, reporter)


# ===================================================================== supervisor side
class _WorkerState:
    __slots__ = ("index", "pid", "ready", "expected_exit", "error_reported", "stats")

    def __init__(self, index: int, pid: int) -> None:
        self.index = index
        self.pid = pid
        self.ready = False
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
        self.kids = ChildSet(workers, on_report=self._on_report, on_exit=self._on_exit)
        self.workers: list[_WorkerState] = []
        self._shared: SharedActive | None = None  # per-worker active counts (--max-connections)
        self.listening = False
        self.stopping = False
        self.pending: set[int] = set()  # workers asked for stats that have not answered
        self.collect_by: float | None = None
        self.print_collected = False
        self.next_tick: float | None = None
        self.failure: str | None = None  # why we exit non-zero
        self.startup_error: str | None = None
        self.stats_failures = 0  # stats-file writes that failed in a row
        self.stats_error: str | None = None  # the stats file stayed unwritable: serve stopped

    # ---------------------------------------------------------------- start
    def start(self) -> None:
        # One slot per worker, inherited by fork: each worker publishes its own active count
        # and admits against the sum (reactor/admission.py).
        shared = None
        if self.cfg.max_connections is not None and self.n > 1:
            shared = self._shared = SharedActive(self.n)
        for i in range(self.n):
            body = partial(_worker_body, self.cfg, i, self.port, shared, self._close_reservation)
            child = self.kids.fork(body, pdeathsig=signal.SIGTERM, stamp={"worker": i})
            self.workers.append(_WorkerState(i, child.pid))

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
        self.kids.watch(wake_r.fileno(), lambda: self._on_signals(wake_r))
        try:
            while self.kids.live:
                self.kids.pump(self._timeout())
                self._timers()
        finally:
            signal.set_wakeup_fd(-1)
            self.kids.close()
            wake_r.close()
            wake_w.close()
            self._close_reservation()
        return self._finish()

    def _timeout(self) -> float | None:
        deadlines = [t for t in (self.next_tick, self.collect_by) if t is not None]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _on_signals(self, wake_r: socket.socket) -> None:
        for code in read_wake_bytes(wake_r):
            if code in (signal.SIGINT, signal.SIGTERM):
                self._begin_stop()
            elif code == signal.SIGUSR1:
                self._request_stats(periodic=False)

    def _on_report(self, child: Child, msg: dict[str, Any]) -> None:
        h = self.workers[child.index]
        kind = msg[EVENT]
        if kind == "ready":
            h.ready = True
            if not self.listening and not self.stopping and all(w.ready for w in self.workers):
                self._on_all_listening()
        elif kind in ("stats", "final"):
            h.stats = WorkerStats.model_validate({k: v for k, v in msg.items() if k != EVENT})
            self.pending.discard(h.index)
            if kind == "final":
                h.expected_exit = True
                self._emit({EVENT: "final", **h.stats.model_dump()})
        elif kind == "error":
            text = f"worker {h.index}: {msg.get('message')}"
            h.error_reported = True
            if not self.listening:
                self.startup_error = msg.get("message")
            self._emit({EVENT: "error", "worker": h.index, "message": msg.get("message")})
            self.failure = self.failure or text
        else:  # the reactor's own log events ("rejected", ...), printed as the worker wrote them
            self._emit(msg)

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

    def _on_exit(self, child: Child) -> None:
        h = self.workers[child.index]
        if self._shared is not None:
            self._shared.publish(h.index, 0)  # its connections died with it: free its share
        if not h.expected_exit:  # no final report: what it held is gone with it
            st = h.stats
            h.stats = st.model_copy(update={"active": 0, "closed": st.closed + st.active,
                                            "queued_bytes": 0, "paused": 0, "rss_bytes": 0})
        self.pending.discard(h.index)
        if child.killed:
            why = f"did not stop within {STOP_TIMEOUT:g} s of SIGTERM: {child.describe()}"
            self._emit({EVENT: "worker-killed", "worker": h.index, "pid": h.pid, "status": why})
            self.failure = self.failure or f"worker {h.index} (pid {h.pid}) {why}"
        elif not (h.expected_exit and child.returncode == 0) and not h.error_reported:
            why = child.describe()
            self._emit({EVENT: "worker-died", "worker": h.index, "pid": h.pid, "status": why})
            self.failure = self.failure or f"worker {h.index} (pid {h.pid}) died: {why}"
        if not self.listening or not self.kids.live:
            self._begin_stop()

    def _begin_stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.next_tick = None
        self.kids.terminate(signal.SIGTERM, STOP_TIMEOUT)

    def _request_stats(self, *, periodic: bool) -> None:
        self.print_collected = self.print_collected or periodic
        if self.collect_by is not None:
            return
        if not self.stopping:
            for child in self.kids.live:
                if self.workers[child.index].ready:
                    child.signal(signal.SIGUSR1)
                    self.pending.add(child.index)
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
                    self._emit({EVENT: "stats", "time": doc.time, **w.model_dump()})
            self.print_collected = False
        if self.next_tick is not None and now >= self.next_tick:
            self.next_tick = now + self.cfg.stats_interval
            self._request_stats(periodic=True)

    def _write_stats_file(self, doc: StatsDocument) -> None:
        if self.cfg.stats_file is None:
            return
        try:
            write_stats(self.cfg.stats_file, doc)
        except OSError as exc:  # e.g. the directory went away: report it; serve on a while
            self.stats_failures += 1
            text = f"cannot write {self.cfg.stats_file}: {exc.strerror or exc}"
            self._emit({EVENT: "error", "message": text})
            if self.stats_failures >= STATS_WRITE_TRIES and self.stats_error is None:
                self.stats_error = f"--stats-file: {text} ({self.stats_failures} writes in a row); stopped"
                self._begin_stop()
        else:
            self.stats_failures = 0

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
        self._emit({EVENT: "summary", "time": doc.time, "workers": len(doc.workers),
                    **doc.total.model_dump()})
        if self.failure is not None:
            raise WorkerDied(self.failure)
        if self.stats_error is not None:
            raise EnvironmentProblem(self.stats_error)
        return 0


def serve(cfg: ServeConfig, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the server until SIGINT / SIGTERM. Returns 0 after a graceful stop; raises
    BadInput / EnvironmentProblem when it cannot start, WorkerDied when a worker died."""
    from c10kplan.reactor.backends import available_backends

    if cfg.backend not in available_backends():
        raise EnvironmentProblem(f"backend {cfg.backend} is not available on this platform")
    if cfg.stats_file is not None:
        # A folder (or a link to one) is bad input (2); a folder that refuses a new file
        # (permission, read-only mount) is the environment (3). Probed before anything starts.
        check_output(str(cfg.stats_file), "--stats-file", refused=EnvironmentProblem)
    try:
        n = resolve_workers(cfg.workers, cfg.max_connections, hard_nofile(), os.cpu_count() or 1)
    except ValueError as exc:
        raise EnvironmentProblem(str(exc)) from None
    check_processes(n + 1, "serve", f"{n:,} workers and the supervisor")
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
