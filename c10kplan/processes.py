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
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import subprocess

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


def raise_nofile_soft_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (no capability needed).
    Returns (soft, hard) as they are afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
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
