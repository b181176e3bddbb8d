"""RLIMIT_NOFILE: a process may raise its soft limit up to the hard limit without privileges;
raising the hard limit needs CAP_SYS_RESOURCE and can never exceed fs.nr_open."""

from __future__ import annotations

import contextlib
import resource

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
