"""Fan-out: fork one storm process per share, steer them through ramp -> hold -> close, and
merge their results. The processes are children of one processes.ChildSet (PDEATHSIG SIGKILL,
the one report schema, bounded stops); a crashed child is reported, never waited on forever.

Process facts (Linux):
- Children ignore SIGINT: a Ctrl-C on the terminal reaches the whole foreground process group,
  and the parent alone decides (it stops and reaps them in `close`).
- RLIMIT_NOFILE: each child raises its soft limit to the hard limit (allowed without
  CAP_SYS_RESOURCE); `--processes auto` sized the shares to fit under it.
"""

from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from c10kplan.processes import Child, ChildSet, Reporter, check_processes, describe_status, raise_nofile_soft_limit
from c10kplan.storm.client import DRAIN_SECONDS, StormProcess
from c10kplan.storm.config import StormConfig, split
from c10kplan.storm.result import ProcessResult, StormResult, combine

EXIT_WAIT = 10.0  # seconds a child may take to close its sockets and exit after "close"
HISTORY = 8  # progress reports kept per child (2 s at one per PROGRESS_EVERY)
RAMP_SLICE = 0.25  # s between on_ramp calls


@dataclass
class _Share:
    """What the parent knows of one storm process, from its reports."""

    child: Child
    target: int
    ramped: bool = False
    result: ProcessResult | None = None
    hist: dict[str, str] = field(default_factory=dict)
    error: str = ""
    last: dict = field(default_factory=dict)
    # (at, received) of the latest progress reports, oldest first: places the reply count on the
    # parent's time line (`received_at`).
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    rss_start: int | None = None  # VmRSS before its first connect
    fds_start: int | None = None  # fds open before its first connect

    @property
    def index(self) -> int:
        return self.child.index

    @property
    def pid(self) -> int:
        return self.child.pid

    @property
    def reporting(self) -> bool:
        """Its report pipe is still open (it has not exited)."""
        return self.child.reports is not None


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


def _storm_body(cfg: StormConfig, index: int, start: int, end: int, report: Reporter, control: int | None) -> int:
    """One storm process (forked): its errors reach the parent as an "error" report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise_nofile_soft_limit()
    StormProcess(cfg, index, start, end, control_fd=control, report=report).run()
    return 0


class StormRun:
    """The storm processes of one run. Use as a context manager: leaving it always reaps."""

    def __init__(self, cfg: StormConfig, on_event: Callable[[dict], None] | None = None) -> None:
        self.cfg = cfg
        self.on_event = on_event or (lambda e: None)
        self.kids = ChildSet(cfg.processes, on_report=self._event)
        self.children: list[_Share] = []
        self.first_failure: dict | None = None  # the first "failure" report (stop_on_failure)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        check_processes(self.cfg.processes, "storm")
        for index, (start, end) in enumerate(split(self.cfg.connections, self.cfg.processes)):
            child = self.kids.fork(partial(_storm_body, self.cfg, index, start, end), control=True)
            self.children.append(_Share(child, end - start))

    @property
    def fds_start(self) -> int | None:
        """The most fds any child had open before its first connect (None before all said)."""
        counts = [c.fds_start for c in self.children]
        return None if not counts or None in counts else max(counts)  # type: ignore[type-var]

    @property
    def established(self) -> int:
        """Connections established so far over all processes, from their latest reports."""
        return sum(c.result.established if c.result is not None else c.last.get("established", 0)
                   for c in self.children)

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
        def reported_after(c: _Share) -> bool:
            return c.result is not None or (bool(c.history) and c.history[-1][0] >= t)

        self._wait(reported_after, wait)
        return sum(count_at(c.history, t) for c in self.children)

    @property
    def pids(self) -> list[int]:
        return [c.pid for c in self.children if not c.child.exited]

    def __enter__(self) -> "StormRun":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(kill=exc[0] is not None)

    # -- talking to the children ------------------------------------------------------------

    def command_all(self, cmd: str) -> None:
        for share in self.children:
            share.child.command(cmd)

    def _event(self, child: Child, event: dict) -> None:
        share = self.children[child.index]
        kind = event["event"]
        if kind == "started":
            share.rss_start = event.get("rss_bytes")
            share.fds_start = event.get("fds")
        elif kind == "failure":
            if self.first_failure is None:
                self.first_failure = event
                if self.cfg.stop_on_failure:  # the first failure anywhere ends every ramp
                    self.command_all("halt")
        elif kind == "ramped":
            share.ramped = True
        elif kind == "result":
            share.result = ProcessResult.model_validate(event["result"])
            share.hist = event.get("hist", {})
        elif kind == "error":
            share.error = event.get("message", "")
            event = {"index": child.index, **event}
        if kind in ("progress", "ramped", "failure"):
            share.last = event
        if kind == "progress" and isinstance(event.get("at"), (int, float)):
            share.history.append((float(event["at"]), int(event.get("received", 0))))
        self.on_event(event)

    def _wait(self, done: Callable[[_Share], bool], timeout: float) -> bool:
        return self.kids.wait_until(lambda: all(done(c) for c in self.children if c.reporting), timeout)

    def pump(self, seconds: float) -> None:
        """Keep reading the children's reports for `seconds` (use instead of sleeping)."""
        self.kids.wait_until(lambda: False, seconds)

    def wait_ramped(self, timeout: float, on_slice: Callable[[StormRun], None] | None = None) -> bool:
        """Until every live child finished its ramp (True) or the timeout passed (False).
        `on_slice(run)` is called every RAMP_SLICE s while the ramp lasts."""
        if on_slice is None:
            return self._wait(lambda c: c.ramped, timeout)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if self._wait(lambda c: c.ramped, max(0.0, min(RAMP_SLICE, left))):
                return True
            if left <= 0:
                return False
            on_slice(self)

    def wait_results(self, timeout: float) -> bool:
        return self._wait(lambda c: c.result is not None, timeout)

    def close(self, *, kill: bool = False) -> None:
        """Tell every child to close and exit; SIGKILL any that does not within EXIT_WAIT."""
        if not kill:
            self.command_all("close")
            self.kids.wait_until(lambda: not self.kids.live, EXIT_WAIT, slice_s=0.05)
        self.kids.close()

    # -- results ----------------------------------------------------------------------------

    def process_results(self) -> list[ProcessResult]:
        out = []
        for c in self.children:
            if c.result is not None:
                out.append(c.result)
                continue
            code = c.child.returncode
            status = "killed" if code is not None and code < 0 else "crashed"
            why = describe_status(returncode=code)
            detail = c.error or (why if status == "killed" else f"{why} without a result")
            if code is None:
                status, detail = "killed", "did not answer in time"
            out.append(ProcessResult(index=c.index, pid=c.pid, target=c.target,
                                     established=c.last.get("established", 0), held=0,
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


# Connects per second assumed of an unpaced ramp (--connect-rate 0) when bounding its length.
# Deliberately low, so that the bound errs long: a ramp that has not finished by it is stuck,
# not merely slow. verify's multihost ramp assumes the same rate.
UNPACED_CONNECT_RATE = 2000.0
RAMP_SLACK = 10.0  # s on top of ramp_seconds before a storm's ramp counts as stuck


def ramp_seconds(connections: int, connect_rate: float, connect_timeout: float) -> float:
    """How long a ramp of `connections` may take: paced connects (UNPACED_CONNECT_RATE when
    `connect_rate` is 0) plus one connect timeout, in seconds. Fleet jobs bound theirs with it."""
    return connections / (connect_rate or UNPACED_CONNECT_RATE) + connect_timeout


def ramp_bound(cfg: StormConfig) -> float:
    """The longest this storm's ramp may take: ramp_seconds plus RAMP_SLACK."""
    return ramp_seconds(cfg.connections, cfg.connect_rate, cfg.connect_timeout) + RAMP_SLACK


def hold_bound(cfg: StormConfig) -> float:
    return cfg.duration + DRAIN_SECONDS + 10.0


def run_storm(cfg: StormConfig, on_event: Callable[[dict], None] | None = None,
              on_hold: Callable[[StormRun], None] | None = None,
              on_held: Callable[[StormRun], None] | None = None,
              on_ramp: Callable[[StormRun], None] | None = None) -> StormResult:
    """Run a whole storm: ramp every process, hold together, collect, close, merge.

    `on_hold(run)` is called once every process holds its connections (verify measures the
    host there); `on_held(run)` after the results arrived and before the sockets close;
    `on_ramp(run)` every RAMP_SLICE s during the ramp (verify --find-limit watches there)."""
    with StormRun(cfg, on_event) as run:
        if not run.wait_ramped(ramp_bound(cfg), on_ramp):
            for c in run.children:
                if not c.ramped:
                    c.child.command("stop")
        run.command_all("hold")
        if on_hold is not None:
            on_hold(run)
        if not run.wait_results(hold_bound(cfg)):
            run.command_all("stop")
            run.wait_results(DRAIN_SECONDS + 3.0)
        if on_held is not None:
            on_held(run)
    return run.combined()
