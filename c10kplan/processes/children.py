"""ChildSet: the children of one job (serve's workers, a storm's processes, verify's server),
started, heard, reaped and stopped in one place.

    kids = ChildSet(limit=n, on_report=handle)      # at most n children, ever
    kids.fork(body, control=True)                    # body(reporter, control_fd) -> exit code
    kids.run(argv, report=True, new_session=True)    # exec a command (its pipe fd in the env)
    kids.pump(0.25)                                  # reports -> handle(child, record); reaps
    kids.stop(signal.SIGTERM, 10.0)                  # signal, wait, SIGKILL the rest

Every child gets PR_SET_PDEATHSIG (see the package docstring). A child that needed SIGKILL to
stop is marked `killed`, so callers report the stop as not clean.

Kernel facts used here (Linux):
- pidfd_open(2) (Linux >= 5.3): an fd that polls readable once the process has exited, so one
  poll waits for reports and exits together, with a timeout. Without it (ENOSYS), exits are
  found by waitpid(WNOHANG) at least every FALLBACK_POLL s.
- A forked child inherits every fd of the parent: it closes its siblings' pipes and pidfds at
  once, so that a sibling's EOF is not held up by another child keeping its write end open.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from c10kplan.errors import BadInput, EnvironmentProblem
from c10kplan.processes.reports import REPORT_FD_ENV, Reporter, is_report, split_lines
from c10kplan.processes.status import STATUS_LOST, describe_status

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
KILL_WAIT = 5.0  # s to reap a child after SIGKILL (only a task stuck in the kernel takes longer)
FALLBACK_POLL = 0.02  # s between waitpid checks when pidfd_open is missing
CRASH_STATUS = 70  # exit status of a forked body that raised (EX_SOFTWARE)

_upstream: list[int] = []  # this process's own report fd (a child itself): closed in its children


def set_pdeathsig(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies (best effort: a
    no-op where prctl is missing)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def die_with_parent(parent: int, sig: int = signal.SIGKILL) -> bool:
    """In a child: arrange `sig` on the parent's death. False when the parent (pid `parent`)
    is already gone (the child should exit at once)."""
    set_pdeathsig(sig)
    return os.getppid() == parent


def upstream_reporter(**stamp: Any) -> Reporter | None:
    """In an exec'd child: the Reporter its parent's ChildSet.run(report=True) set up, or None.
    Its fd is kept out of this process's own children."""
    reporter = Reporter.from_env(**stamp)
    if reporter is not None and reporter.fd not in _upstream:
        _upstream.append(reporter.fd)
    return reporter


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _close(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def _read_ready(fd: int) -> tuple[bytes, bool]:
    """Everything a non-blocking `fd` has now (read until EAGAIN), and whether it ended: EOF, or
    a read error, which ends it as well."""
    out = bytearray()
    while True:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return bytes(out), False
        except OSError:
            return bytes(out), True
        if not data:
            return bytes(out), True
        out += data


@dataclass(eq=False)
class Child:
    """One child process. `returncode` is set once it was reaped: N, or -S when a signal S
    ended it. `killed`: a stop had to SIGKILL it (or what it left in its process group)."""

    index: int
    pid: int
    reports: int | None = None  # read end of its report pipe
    control: int | None = None  # write end of its command pipe
    pidfd: int | None = None
    group: bool = False  # leads its own session and process group
    popen: subprocess.Popen | None = None
    buf: bytes = b""
    returncode: int | None = None
    killed: bool = False

    @property
    def exited(self) -> bool:
        return self.returncode is not None

    @property
    def clean(self) -> bool:
        """Exited by itself with status 0."""
        return self.returncode == 0 and not self.killed

    def describe(self) -> str:
        """`exited with status 0`, `killed by SIGKILL (it did not stop in time)`, ..."""
        text = describe_status(returncode=self.returncode)
        return text + " (it did not stop in time)" if self.killed else text

    def signal(self, sig: int) -> None:
        """Send `sig` to the child (its whole group if it leads one); a no-op once reaped."""
        if self.returncode is not None and not self.group:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self.group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)

    def group_alive(self) -> bool:
        """Something still runs in the process group it leads."""
        if not self.group:
            return False
        try:
            os.killpg(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def command(self, text: str) -> bool:
        """Write one command line to its control pipe; False when it is gone."""
        if self.control is None:
            return False
        try:
            os.write(self.control, (text + "\n").encode())
        except OSError:  # it exited; its report pipe tells the rest
            return False
        return True

    def fds(self) -> list[int]:
        return [fd for fd in (self.reports, self.control, self.pidfd) if fd is not None]


class ChildSet:
    """At most `limit` children, ever. `on_report(child, record)` gets every record of the one
    schema (reports.py); `on_exit(child)` runs once per child, when it is reaped."""

    def __init__(self, limit: int, *, on_report: Callable[[Child, dict], None] | None = None,
                 on_exit: Callable[[Child], None] | None = None) -> None:
        self.limit = limit
        self.on_report = on_report or (lambda child, record: None)
        self.on_exit = on_exit or (lambda child: None)
        self.children: list[Child] = []
        self._poller = select.poll()
        self._by_fd: dict[int, Child] = {}  # report fds and pidfds
        self._watched: dict[int, Callable[[], None]] = {}
        self.kill_at: float | None = None  # the stop deadline, once terminate() ran

    # ---------------------------------------------------------------- start
    def _admit(self) -> int:
        if len(self.children) >= self.limit:
            raise BadInput(f"refusing to start more than {self.limit} child processes here")
        return len(self.children)

    def fork(self, body: Callable[[Reporter, int | None], int], *, pdeathsig: int = signal.SIGKILL,
             control: bool = False, stamp: dict[str, Any] | None = None) -> Child:
        """Fork a child that runs body(reporter, control_fd) and exits with its return value
        (CRASH_STATUS, after an "error" report, if it raised). control=True gives it a command
        pipe (Child.command); control_fd is None otherwise."""
        index = self._admit()
        parent = os.getpid()
        rep_r, rep_w = os.pipe()
        ctl_r, ctl_w = os.pipe() if control else (None, None)
        inherited = [fd for c in self.children for fd in c.fds()] + list(self._watched) + _upstream
        pid = os.fork()
        if pid == 0:  # child: never returns
            _child(body, Reporter(rep_w, **(stamp or {})), ctl_r, parent, pdeathsig,
                   [rep_r, *([ctl_w] if ctl_w is not None else []), *inherited])
        os.close(rep_w)
        _close(ctl_r)
        return self._add(Child(index, pid, reports=rep_r, control=ctl_w, pidfd=_pidfd(pid)))

    def run(self, argv: Sequence[str], *, stdin: Any = subprocess.DEVNULL, stdout: Any = None,
            stderr: Any = None, env: dict[str, str] | None = None, new_session: bool = False,
            pdeathsig: int = signal.SIGKILL, report: bool = False) -> Child:
        """Exec `argv` as a child (stdin/stdout/stderr as for Popen). report=True gives it a
        report pipe, whose fd it finds in the environment (upstream_reporter()). pdeathsig=0
        leaves the child running when this process dies."""
        index = self._admit()
        parent = os.getpid()
        rep_r, rep_w = os.pipe() if report else (None, None)
        env = dict(os.environ if env is None else env)
        env.pop(REPORT_FD_ENV, None)  # this process's own pipe is not the child's
        if rep_w is not None:
            env[REPORT_FD_ENV] = str(rep_w)

        def before_exec() -> None:  # in the child, between fork and exec
            if not die_with_parent(parent, pdeathsig):
                os.kill(os.getpid(), signal.SIGKILL)

        try:
            popen = subprocess.Popen(list(argv), stdin=stdin, stdout=stdout, stderr=stderr, env=env,
                                     start_new_session=new_session, preexec_fn=before_exec if pdeathsig else None,
                                     pass_fds=() if rep_w is None else (rep_w,))
        except OSError as exc:
            _close(rep_r)
            raise EnvironmentProblem(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        finally:
            _close(rep_w)
        return self._add(Child(index, popen.pid, reports=rep_r, pidfd=_pidfd(popen.pid), group=new_session,
                               popen=popen))

    def _add(self, child: Child) -> Child:
        self.children.append(child)
        for fd in (child.reports, child.pidfd):
            if fd is not None:
                if fd == child.reports:
                    os.set_blocking(fd, False)
                self._poller.register(fd, select.POLLIN)
                self._by_fd[fd] = child
        return child

    def watch(self, fd: int, on_readable: Callable[[], None]) -> None:
        """Also wake pump() for `fd` (a signal wakeup socket, a child's stderr)."""
        self._watched[fd] = on_readable
        self._poller.register(fd, select.POLLIN)

    def watch_lines(self, stream: IO[bytes], on_line: Callable[[str], None]) -> None:
        """Hand on each line a child writes to `stream` (its stdout or stderr pipe), decoded,
        without the newline; the unfinished rest at EOF, which also ends the watch."""
        fd = stream.fileno()
        os.set_blocking(fd, False)
        buf = bytearray()

        def on_readable() -> None:
            data, eof = _read_ready(fd)
            buf.extend(data)
            *lines, rest = buf.split(b"\n")
            buf[:] = rest
            for line in lines:
                on_line(line.decode("utf-8", "replace"))
            if eof:
                if buf:
                    on_line(buf.decode("utf-8", "replace"))
                self.unwatch(fd)

        self.watch(fd, on_readable)

    def wait_line(self, child: Child, timeout: float, stream: IO[bytes] | None = None) -> bytes | None:
        """The first line `child` writes to `stream` (default: its stdout pipe), with its
        newline; at EOF what came before it (b"" for nothing), without one; None when no line
        came within `timeout` s. Bytes after the line are read and dropped: the caller reads
        nothing more from this stream."""
        stream = stream if stream is not None else child.popen.stdout
        fd = stream.fileno()
        deadline = time.monotonic() + timeout
        blocking = os.get_blocking(fd)
        os.set_blocking(fd, False)
        buf = b""
        try:
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    return None
                data, eof = _read_ready(fd)
                buf += data
                if eof and b"\n" not in buf:
                    return buf
        finally:
            os.set_blocking(fd, blocking)
        return buf[:buf.index(b"\n") + 1]

    def watching(self, fd: int) -> bool:
        return fd in self._watched

    def unwatch(self, fd: int) -> None:
        if self._watched.pop(fd, None) is not None:
            self._poller.unregister(fd)

    # ---------------------------------------------------------------- hear and reap
    @property
    def live(self) -> list[Child]:
        return [c for c in self.children if c.returncode is None]

    def pump(self, timeout: float | None) -> None:
        """Wait up to `timeout` s (None: until something happens) for a report, an exit or a
        watched fd; handle all that is ready; reap; SIGKILL what outlived the stop deadline."""
        now = time.monotonic()
        if self.kill_at is not None:
            timeout = max(0.0, self.kill_at - now) if timeout is None else min(timeout, max(0.0, self.kill_at - now))
        if any(c.pidfd is None for c in self.live):
            timeout = FALLBACK_POLL if timeout is None else min(timeout, FALLBACK_POLL)
        ms = -1 if timeout is None else max(0, int(timeout * 1000 + 0.999))
        for fd, _mask in self._poller.poll(ms):
            child = self._by_fd.get(fd)
            if child is not None:
                if fd == child.reports:
                    self._drain(child)
            elif fd in self._watched:
                self._watched[fd]()
        self.reap()
        if self.kill_at is not None and time.monotonic() >= self.kill_at:
            self.kill()

    def _drain(self, child: Child) -> None:
        """Read and hand on everything the child has written; close the pipe at EOF."""
        if child.reports is None:
            return
        data, eof = _read_ready(child.reports)
        records, child.buf = split_lines(child.buf, data)
        for record in records:
            if is_report(record):
                self.on_report(child, record)
        if eof and child.reports is not None:
            self._forget(child.reports)
            child.reports = None

    def _forget(self, fd: int) -> None:
        if self._by_fd.pop(fd, None) is not None:
            self._poller.unregister(fd)
        _close(fd)

    def _exit_code(self, child: Child) -> int | None:
        if child.popen is not None:
            return child.popen.poll()
        try:
            pid, status = os.waitpid(child.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: its status is lost, so not clean
            return -signal.SIGKILL if child.killed else STATUS_LOST
        return os.waitstatus_to_exitcode(status) if pid else None

    def reap(self) -> list[Child]:
        """Collect the exit of every child that ended (its last reports first). Returns them."""
        done = []
        for child in self.live:
            code = self._exit_code(child)
            if code is None:
                continue
            self._drain(child)  # it may have said goodbye just before exiting
            child.returncode = code
            for fd in (child.reports, child.pidfd):
                if fd is not None:
                    self._forget(fd)
            child.reports = child.pidfd = None
            done.append(child)
            self.on_exit(child)
        return done

    def wait_until(self, done: Callable[[], bool], timeout: float, slice_s: float = 0.25) -> bool:
        """Pump until done() (True) or `timeout` s passed (False)."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.pump(min(left, slice_s))
        return True

    # ---------------------------------------------------------------- stop
    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 10.0,
                  children: Sequence[Child] | None = None) -> None:
        """Send `sig` to the live children (or those given) and set the stop deadline: pump()
        SIGKILLs whatever is still running `timeout` s from now."""
        for child in children if children is not None else self.live:
            child.signal(sig)
        deadline = time.monotonic() + timeout
        self.kill_at = deadline if self.kill_at is None else min(self.kill_at, deadline)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> bool:
        """Signal every live child, wait (hearing their reports) up to `timeout` s, then SIGKILL
        what is left, its process group included. True when nothing needed SIGKILL."""
        if any(not c.exited or c.group_alive() for c in self.children):
            self.terminate(sig, timeout)
            self.wait_until(lambda: not any(not c.exited or c.group_alive() for c in self.children), timeout)
        self.kill()
        return not any(c.killed for c in self.children)

    def kill(self) -> None:
        """SIGKILL every live child and what is left in the groups they lead; mark them killed
        and reap them (KILL_WAIT s at most each)."""
        self.kill_at = None
        for child in self.children:
            if not child.exited or child.group_alive():
                child.killed = True
                child.signal(signal.SIGKILL)
        deadline = time.monotonic() + KILL_WAIT
        while self.live and time.monotonic() < deadline:
            self.pump(min(0.1, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        """SIGKILL and reap anything still running, then close every pipe. Idempotent."""
        if self.live or any(c.group_alive() for c in self.children):
            self.kill()
        for child in self.children:
            for fd in child.fds():
                if fd in self._by_fd:
                    self._forget(fd)
                else:
                    _close(fd)
            child.reports = child.control = child.pidfd = None
            if child.popen is not None:
                for stream in (child.popen.stdin, child.popen.stdout, child.popen.stderr):
                    if stream is not None:
                        stream.close()
        for fd in list(self._watched):
            self.unwatch(fd)

    def __enter__(self) -> ChildSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _child(body: Callable[[Reporter, int | None], int], reporter: Reporter, control: int | None,
           parent: int, pdeathsig: int, inherited: list[int]) -> None:
    """The forked side: PDEATHSIG, drop the parent's other fds, run the body, exit."""
    code = CRASH_STATUS
    try:
        if not die_with_parent(parent, pdeathsig):  # the parent died before prctl
            os._exit(0)
        for fd in inherited:
            _close(fd)
        _upstream.clear()
        code = body(reporter, control)
    except BaseException as exc:  # noqa: BLE001 - report, then exit: the parent names the crash
        with contextlib.suppress(BaseException):
            reporter.send("error", message=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc(limit=5))
    finally:
        os._exit(code)
