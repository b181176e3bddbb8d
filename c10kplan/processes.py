"""Process plumbing shared by serve workers, storm processes, verify and the bench.

Facts this module relies on (Linux):
- prctl(PR_SET_PDEATHSIG, sig) (PR_SET_PDEATHSIG = 1 in <linux/prctl.h>, Linux >= 2.1.57): the
  kernel sends `sig` to this process when the thread that forked it exits, even if the parent
  is SIGKILLed and cannot clean up. If the parent died before prctl ran, the signal never comes:
  callers compare os.getppid() with the parent's pid afterwards (`die_with_parent`).
- RLIMIT_NOFILE: a process may raise its soft limit up to the hard limit without privileges;
  raising the hard limit needs CAP_SYS_RESOURCE and can never exceed fs.nr_open.
"""

from __future__ import annotations

import contextlib
import ctypes
import resource
import signal

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
    import os

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
