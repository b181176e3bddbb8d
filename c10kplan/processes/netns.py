"""A fresh network namespace. `unshare -n` (util-linux, needs CAP_SYS_ADMIN) runs a command in
a new network namespace whose only interface, `lo`, starts DOWN: `ip link set lo up` before any
loopback traffic."""

from __future__ import annotations

import ctypes
import os
import shutil

from c10kplan.errors import EnvironmentProblem
from c10kplan.host.procfs import ProcFS, sysctl_relpath
from c10kplan.netns.ip import ip, ip_binary


def unshare_net_argv(purpose: str) -> list[str]:
    """`unshare -n --`, to prefix a command that should run in a new network namespace.
    EnvironmentProblem names `purpose` when unshare(1) is missing."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise EnvironmentProblem(f"{purpose} needs unshare(1) from util-linux")
    return [unshare, "-n", "--"]


def bring_loopback_up(purpose: str) -> None:
    """`ip link set lo up` in this (new) network namespace; EnvironmentProblem if it fails."""
    try:
        ip_binary()
    except EnvironmentProblem:
        raise EnvironmentProblem(f"{purpose} needs ip(8) from iproute2 to bring loopback up") from None
    ip("link", "set", "lo", "up")  # the one ip(8) runner: "ip link set lo up failed: ..." on error


# net.ipv4.tcp_child_ehash_entries (Linux >= 6.1) accepts at most 16 Mi buckets (2**24).
MAX_CHILD_EHASH = 1 << 24
CHILD_EHASH_KEY = "net.ipv4.tcp_child_ehash_entries"
CLONE_NEWNET = 0x40000000  # <sched.h>


def own_tcp_hash(sockets: int, procfs: ProcFS) -> int | None:
    """Move this process into a new network namespace with its own TCP established hash of
    at least `sockets` buckets, when the shared one is smaller; returns the table's buckets
    (negative: the shared one kept, as net.ipv4.tcp_ehash_entries says it; it is kept on a
    kernel without tcp_child_ehash_entries too).

    Kernel facts: a namespace made by unshare(CLONE_NEWNET) shares the host's established hash
    (sized at boot from RAM: 262,144 buckets on this 24 GiB host; `net.ipv4.tcp_ehash_entries`
    reads it negated) unless the namespace that makes it has `net.ipv4.tcp_child_ehash_entries`
    set (Linux >= 6.1; rounded up to a power of two, at most 2**24; 8 bytes a bucket). Every
    packet and every connect() looks up its 4-tuple in that table, walking one bucket's chain:
    2,000,000 sockets in 262,144 buckets are chains of 7.6 (cache misses each). The sysctl is
    per namespace: it is set in the throwaway namespace verify already runs in, never on the
    host. Call it before anything opens a socket or starts a thread (unshare(2) moves only the
    calling thread; verify's inner process has none)."""
    shared = tcp_ehash_entries(procfs)
    if procfs.read_sysctl(CHILD_EHASH_KEY) is None:
        return shared
    buckets = min(MAX_CHILD_EHASH, 1 << max(10, (max(1, sockets) - 1).bit_length()))
    if shared is not None and buckets <= abs(shared):
        # The shared table is as big: nothing to gain, and a smaller own one would lower the
        # namespace's defaults the kernel derives from its size (tcp_set_hashinfo:
        # tcp_max_tw_buckets = buckets / 2, tcp_max_syn_backlog = max(128, buckets / 128)).
        return shared
    procfs.write(sysctl_relpath(CHILD_EHASH_KEY), f"{buckets}\n")
    _unshare(CLONE_NEWNET)
    return tcp_ehash_entries(procfs)


def tcp_ehash_entries(procfs: ProcFS) -> int | None:
    """net.ipv4.tcp_ehash_entries of this namespace: its table's buckets, negative when it is
    the host's shared one; None when unreadable."""
    got = procfs.read_sysctl("net.ipv4.tcp_ehash_entries")
    return int(got) if got is not None and got.lstrip("-").isdigit() else None


def _unshare(flags: int) -> None:
    """unshare(2): os.unshare from Python 3.12, else libc's through ctypes."""
    if hasattr(os, "unshare"):
        os.unshare(flags)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
