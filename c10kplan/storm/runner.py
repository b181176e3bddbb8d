"""Fan-out: fork one storm process per share, steer them through ramp -> hold -> close, and
merge their results. Bounded waits everywhere; a crashed child is reported, never waited on
forever; no child outlives the parent.

Process facts (Linux):
- prctl(PR_SET_PDEATHSIG = 1, SIGKILL) in a child makes the kernel kill it when the thread that
  forked it dies, even if the parent is SIGKILLed and cannot clean up.
- Children ignore SIGINT: a Ctrl-C on the terminal reaches the whole foreground process group,
  and the parent alone decides (it stops and reaps them in `close`).
- RLIMIT_NOFILE: each child raises its soft limit to the hard limit (allowed without
  CAP_SYS_RESOURCE); `--processes auto` sized the shares to fit under it.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from c10kplan.processes import describe_status, die_with_parent, raise_nofile_soft_limit, split_lines
from c10kplan.storm.client import DRAIN_SECONDS, StormProcess, pipe_reporter
from c10kplan.storm.config import StormConfig, split
from c10kplan.storm.result import ProcessResult, StormResult, combine

EXIT_WAIT = 10.0  # seconds a child may take to close its sockets and exit after "close"
HISTORY = 8  # progress reports kept per child (2 s at one per PROGRESS_EVERY)


@dataclass
class _Child:
    index: int
    pid: int
    target: int
    control: int | None  # write end of the command pipe
    reports: int | None  # read end of the event pipe
    buf: bytes = b""
    ramped: bool = False
    result: ProcessResult | None = None
    hist: dict[str, str] = field(default_factory=dict)
    error: str = ""
    exit_status: int | None = None
    last: dict = field(default_factory=dict)
    # (at, received) of the latest progress reports, oldest first: places the reply count on the
    # parent's time line (`received_at`).
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    rss_start: int | None = None  # VmRSS before its first connect


def count_at(history: Sequence[tuple[float, int]], t: float) -> int:
    """A counter's value at time `t` from timestamped readings (oldest first): interpolated
    between the readings around `t`, the nearest one outside them, 0 without any."""
    before = [(at, n) for at, n in history if at <= t]
    after = [(at, n) for at, n in history if at > t]
    if before and after:
        (t0, n0), (t1, n1) = before[-1], after[0]
        return round(n0 + (n1 - n0) * (t - t0) / (t1 - t0))
    if before:
        return before[-1][1]
    return after[0][1] if after else 0


def _child_main(cfg: StormConfig, index: int, start: int, end: int, control: int, reports: int,
                parent: int) -> None:
    code = 1
    try:
        if not die_with_parent(parent):
            return
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise_nofile_soft_limit()
        report = pipe_reporter(reports)
        try:
            StormProcess(cfg, index, start, end, control_fd=control, report=report).run()
            code = 0
        except BaseException as exc:  # report, then exit: the parent names the crash
            detail = f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(BaseException):
                report({"event": "error", "index": index, "message": detail,
                        "trace": traceback.format_exc(limit=5)})
    finally:
        os._exit(code)


class StormRun:
    """The storm processes of one run. Use as a context manager: leaving it always reaps."""

    def __init__(self, cfg: StormConfig, on_event: Callable[[dict], None] | None = None) -> None:
        self.cfg = cfg
        self.on_event = on_event or (lambda e: None)
        self.children: list[_Child] = []

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        parent = os.getpid()
        for index, (start, end) in enumerate(split(self.cfg.connections, self.cfg.processes)):
            ctl_r, ctl_w = os.pipe()
            rep_r, rep_w = os.pipe()
            pid = os.fork()
            if pid == 0:  # child
                os.close(ctl_w)
                os.close(rep_r)
                for other in self.children:
                    for fd in (other.control, other.reports):
                        if fd is not None:
                            with contextlib.suppress(OSError):
                                os.close(fd)
                _child_main(self.cfg, index, start, end, ctl_r, rep_w, parent)
            os.close(ctl_r)
            os.close(rep_w)
            self.children.append(_Child(index, pid, end - start, ctl_w, rep_r))

    @property
    def rss_start_bytes(self) -> int:
        """Sum of the children's VmRSS before their first connect."""
        return sum(c.rss_start or 0 for c in self.children)

    @property
    def received(self) -> int:
        """Replies received so far over all processes: from each result once it arrived, else
        from the last progress report (at most PROGRESS_EVERY old)."""
        return sum(c.result.messages_received if c.result is not None else c.last.get("received", 0)
                   for c in self.children)

    def received_at(self, t: float, wait: float = 1.0) -> int:
        """Replies received by time `t` (time.monotonic) over all processes, from the progress
        reports around `t`: reads reports until each live process has sent one dated after `t`
        (at most `wait` s), then interpolates linearly between the two that bracket `t`."""
        def reported_after(c: _Child) -> bool:
            return c.result is not None or (bool(c.history) and c.history[-1][0] >= t)

        self._wait(reported_after, wait)
        return sum(count_at(c.history, t) for c in self.children)

    @property
    def pids(self) -> list[int]:
        return [c.pid for c in self.children if c.exit_status is None]

    def __enter__(self) -> "StormRun":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(kill=exc[0] is not None)

    # -- talking to the children ------------------------------------------------------------

    def _command(self, child: _Child, cmd: str) -> None:
        if child.control is None:
            return
        try:
            os.write(child.control, (cmd + "\n").encode())
        except OSError:  # the child is gone; its pipe tells the rest
            pass

    def command_all(self, cmd: str) -> None:
        for child in self.children:
            self._command(child, cmd)

    def _pump(self, timeout: float) -> None:
        """Read whatever the children reported within `timeout` seconds."""
        fds = {c.reports: c for c in self.children if c.reports is not None}
        if not fds:
            time.sleep(max(0.0, min(timeout, 0.05)))
            return
        poller = select.poll()  # not select(2): no FD_SETSIZE cap on how many children report
        for fd in fds:
            poller.register(fd, select.POLLIN)
        try:
            ready = [fd for fd, _mask in poller.poll(max(0, int(timeout * 1000)))]
        except InterruptedError:
            return
        for fd in ready:
            child = fds[fd]
            try:
                data = os.read(fd, 1 << 20)
            except OSError:
                data = b""
            if not data:
                os.close(fd)
                child.reports = None
                self._reap(child, block=False)
                continue
            events, child.buf = split_lines(child.buf, data)
            for event in events:  # a line that is not a JSON object is skipped, never raised on
                self._event(child, event)

    def _event(self, child: _Child, event: dict) -> None:
        kind = event.get("event")
        if kind == "started":
            child.rss_start = event.get("rss_bytes")
        elif kind == "ramped":
            child.ramped = True
        elif kind == "result":
            child.result = ProcessResult.model_validate(event["result"])
            child.hist = event.get("hist", {})
        elif kind == "error":
            child.error = event.get("message", "")
        if kind in ("progress", "ramped"):
            child.last = event
        if kind == "progress" and isinstance(event.get("at"), (int, float)):
            child.history.append((float(event["at"]), int(event.get("received", 0))))
        self.on_event(event)

    def _reap(self, child: _Child, *, block: bool) -> None:
        if child.exit_status is not None:
            return
        try:
            pid, status = os.waitpid(child.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            child.exit_status = -1
            return
        if pid:
            child.exit_status = status

    def _wait(self, done: Callable[[_Child], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            live = [c for c in self.children if c.reports is not None and not done(c)]
            if not live:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._pump(min(left, 0.25))

    def pump(self, seconds: float) -> None:
        """Keep reading the children's reports for `seconds` (use instead of sleeping)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._pump(min(left, 0.25))

    def wait_ramped(self, timeout: float) -> bool:
        """Until every live child finished its ramp (True) or the timeout passed (False)."""
        return self._wait(lambda c: c.ramped, timeout)

    def wait_results(self, timeout: float) -> bool:
        return self._wait(lambda c: c.result is not None, timeout)

    def close(self, *, kill: bool = False) -> None:
        """Tell every child to close and exit; SIGKILL any that does not within EXIT_WAIT."""
        if not kill:
            self.command_all("close")
            deadline = time.monotonic() + EXIT_WAIT
            while time.monotonic() < deadline and any(c.exit_status is None for c in self.children):
                self._pump(0.05)
                for c in self.children:
                    self._reap(c, block=False)
        for c in self.children:
            if c.exit_status is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(c.pid, signal.SIGKILL)
                self._reap(c, block=True)
            for fd in (c.control, c.reports):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            c.control = c.reports = None

    # -- results ----------------------------------------------------------------------------

    def process_results(self) -> list[ProcessResult]:
        out = []
        for c in self.children:
            if c.result is not None:
                out.append(c.result)
                continue
            status = "killed" if c.exit_status is not None and os.WIFSIGNALED(c.exit_status) else "crashed"
            why = describe_status(c.exit_status)
            detail = c.error or (why if status == "killed" else f"{why} without a result")
            if c.exit_status is None:
                status, detail = "killed", "did not answer in time"
            last = c.last
            out.append(ProcessResult(index=c.index, pid=c.pid, target=c.target,
                                     established=last.get("established", 0), held=0,
                                     status=status, detail=detail))
        return out

    def combined(self) -> StormResult:
        return combine(
            target=(f"[{self.cfg.host}]" if ":" in self.cfg.host else self.cfg.host) + f":{self.cfg.port}",
            protocol=self.cfg.protocol,
            connections=self.cfg.connections, source_addresses=len(self.cfg.source_ips) or 1,
            processes=self.process_results(), histograms=[c.hist for c in self.children],
            expect_status=self.cfg.expect_status if self.cfg.protocol == "http" else (),
        )


def ramp_bound(cfg: StormConfig) -> float:
    """The longest the ramp may take: paced connects plus one connect timeout, plus slack."""
    rate = cfg.connect_rate or 2000.0  # unpaced: assume a slow 2k/s for the bound
    return cfg.connections / rate + cfg.connect_timeout + 10.0


def hold_bound(cfg: StormConfig) -> float:
    return cfg.duration + DRAIN_SECONDS + 10.0


def run_storm(cfg: StormConfig, on_event: Callable[[dict], None] | None = None,
              on_hold: Callable[[StormRun], None] | None = None,
              on_held: Callable[[StormRun], None] | None = None) -> StormResult:
    """Run a whole storm: ramp every process, hold together, collect, close, merge.

    `on_hold(run)` is called once every process holds its connections (verify measures the
    host there); `on_held(run)` after the results arrived and before the sockets close."""
    with StormRun(cfg, on_event) as run:
        if not run.wait_ramped(ramp_bound(cfg)):
            for c in run.children:
                if not c.ramped:
                    run._command(c, "stop")
        run.command_all("hold")
        if on_hold is not None:
            on_hold(run)
        if not run.wait_results(hold_bound(cfg)):
            run.command_all("stop")
            run.wait_results(DRAIN_SECONDS + 3.0)
        if on_held is not None:
            on_held(run)
    return run.combined()
