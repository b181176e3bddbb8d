"""A fresh network namespace. `unshare -n` (util-linux, needs CAP_SYS_ADMIN) runs a command in
a new network namespace whose only interface, `lo`, starts DOWN: `ip link set lo up` before any
loopback traffic."""

from __future__ import annotations

import shutil

from c10kplan.errors import EnvironmentProblem
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
