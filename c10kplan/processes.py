"""Process plumbing shared by serve workers, storm processes, verify and the bench.

Facts this module relies on (Linux):
- prctl(PR_SET_PDEATHSIG, sig) (PR_SET_PDEATHSIG = 1 in <linux/prctl.h>, Linux >= 2.1.57): the
  kernel sends `sig` to this process when the thread that forked it exits, even if the parent
  is SIGKILLed and cannot clean up. If the parent died before prctl ran, the signal never comes:
  callers compare os.getppid() with the parent's pid afterwards (`die_with_parent`).
- RLIMIT_NOFILE: a process may raise its soft limit up to the hard limit without privileges;
  raising the hard limit needs CAP_SYS_RESOURCE and can never exceed fs.nr_open.
- Exit status: waitpid(2) packs "exited with code N" or "killed by signal S" into one int
  (os.waitstatus_to_exitcode unpacks it); Popen.returncode is N, or -S for a signal. Signals
  32..64 (SIGRTMIN..SIGRTMAX; glibc keeps 32 and 33 for itself) are mostly not members of
  signal.Signals: they are named by number.
- Process groups: a child started with start_new_session=True leads its own session and group
  (pgid == its pid), so killpg reaches it and every descendant that did not leave the group,
  even after the leader itself exited.
- Pipes: a write of at most PIPE_BUF (4096) bytes is atomic, so one short JSON line per write
  never interleaves with another writer's; a reader may still get a line in pieces.
- signal.set_wakeup_fd: the C-level handler writes each signal's number as one byte to the fd
  (a nonblocking socket the loop watches), so a signal wakes poll/epoll_wait at once.
- `unshare -n` (util-linux, needs CAP_SYS_ADMIN) runs a command in a new network namespace
  whose only interface, `lo`, starts DOWN: `ip link set lo up` before any loopback traffic.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any

from c10kplan.errors import EnvironmentProblem

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def set_pdeathsig(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies (best effort: a
    no-op where prctl is missing). Usable as a subprocess `preexec_fn`."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def die_with_parent(parent: int, sig: int = signal.SIGKILL) -> bool:
    """In a forked child: arrange `sig` on the parent's death. False when the parent (pid
    `parent`) is already gone, in which case the child should exit at once."""
    set_pdeathsig(sig)
    return os.getppid() == parent


NOFILE_UNLIMITED = 1 << 30  # fds: stands in for RLIM_INFINITY (Linux caps NOFILE at fs.nr_open anyway)


def hard_nofile() -> int:
    """This process's hard RLIMIT_NOFILE in fds (NOFILE_UNLIMITED for RLIM_INFINITY)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return NOFILE_UNLIMITED if hard == resource.RLIM_INFINITY else hard


def raise_nofile_soft_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (no capability needed).
    Returns (soft, hard) as they are afterwards (hard as hard_nofile() reports it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard_nofile()
    if hard != NOFILE_UNLIMITED and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft, hard


def signal_name(sig: int) -> str:
    """`SIGKILL` for 9, `signal 40` for a number signal.Signals has no member for."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def describe_status(status: int | None = None, *, returncode: int | None = None) -> str:
    """How a child ended, in words: `killed by SIGKILL`, `killed by signal 40`, `exited with
    status 3`, or `still running` when neither is known.

    Pass a waitpid(2) status as `status`, or a Popen.returncode as `returncode`."""
    if status is not None:
        returncode = os.waitstatus_to_exitcode(status)
    if returncode is None:
        return "still running"
    if returncode < 0:
        return f"killed by {signal_name(-returncode)}"
    return f"exited with status {returncode}"


KILL_WAIT = 5.0  # s to reap a child after SIGKILL (only a task stuck in the kernel takes longer)


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0, *,
                 group: bool = False) -> int | None:
    """Send `sig`, wait up to `timeout` s for the child to exit, then SIGKILL it and reap it.

    group=True (a child started with start_new_session=True): both signals go to its whole
    process group, and the SIGKILL is sent even when the leader exited in time, for members
    that outlived it. Idempotent. Returns the child's returncode (None only if it could not be
    reaped within KILL_WAIT s of the SIGKILL)."""
    if proc.poll() is None:
        _send(proc, sig, group)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    if group or proc.poll() is None:
        _send(proc, signal.SIGKILL, group)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(KILL_WAIT)
    return proc.returncode


def _send(proc: subprocess.Popen, sig: int, group: bool) -> None:
    if not group:
        proc.send_signal(sig)  # a no-op once the child was reaped
        return
    with contextlib.suppress(ProcessLookupError):  # the group is already empty
        os.killpg(proc.pid, sig)


# ------------------------------------------------------------------ JSON lines over a pipe
def json_line(record: Mapping[str, Any]) -> str:
    """One record as one compact JSON line, newline included (ASCII: non-ASCII is escaped)."""
    return json.dumps(record, separators=(",", ":")) + "\n"


def encode_line(record: Mapping[str, Any]) -> bytes:
    """json_line() as bytes, ready for os.write."""
    return json_line(record).encode()


def decode_line(raw: str | bytes) -> dict[str, Any] | None:
    """The record on one line; None for a blank line, bad JSON (or UTF-8), or a non-object."""
    if not raw.strip():
        return None
    try:
        record = json.loads(raw)
    except ValueError:  # UnicodeDecodeError is a ValueError too
        return None
    return record if isinstance(record, dict) else None


def split_lines(buf: bytes, data: bytes) -> tuple[list[dict[str, Any]], bytes]:
    """Add `data` to `buf` (the unfinished line from the last read). Returns the records of
    every complete line, skipping the ones decode_line rejects, and the new unfinished tail."""
    *lines, rest = (buf + data).split(b"\n")
    records = [rec for rec in map(decode_line, lines) if rec is not None]
    return records, rest


# ------------------------------------------------------------------ signals into a loop
def _ignore_signal(signum: int, frame: Any) -> None:
    return None  # the wakeup fd carries the signal; the loop acts on it


def wake_on_signals(wake_fd: int, signals: Iterable[int]) -> None:
    """Route `signals` to `wake_fd`: a do-nothing Python handler for each (so the default
    action does not run) and set_wakeup_fd. Undo with signal.set_wakeup_fd(-1)."""
    for sig in signals:
        signal.signal(sig, _ignore_signal)
    signal.set_wakeup_fd(wake_fd, warn_on_full_buffer=False)


def read_wake_bytes(sock: socket.socket) -> bytes:
    """Everything waiting on a nonblocking wakeup socket: one byte per signal number."""
    chunks = []
    while True:
        try:
            data = sock.recv(256)
        except (BlockingIOError, InterruptedError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


# ------------------------------------------------------------------ network namespaces
def unshare_net_argv(purpose: str) -> list[str]:
    """`unshare -n --`, to prefix a command that should run in a new network namespace.
    EnvironmentProblem names `purpose` when unshare(1) is missing."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise EnvironmentProblem(f"{purpose} needs unshare(1) from util-linux")
    return [unshare, "-n", "--"]


def bring_loopback_up(purpose: str) -> None:
    """`ip link set lo up` in this (new) network namespace; EnvironmentProblem if it fails."""
    ip = shutil.which("ip")
    if ip is None:
        raise EnvironmentProblem(f"{purpose} needs ip(8) from iproute2 to bring loopback up")
    done = subprocess.run([ip, "link", "set", "lo", "up"], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise EnvironmentProblem(f"ip link set lo up failed: {done.stderr.strip()}")
