"""A fresh network namespace. `unshare -n` (util-linux, needs CAP_SYS_ADMIN) runs a command in
a new network namespace whose only interface, `lo`, starts DOWN: `ip link set lo up` before any
loopback traffic."""

from __future__ import annotations

import shutil
import subprocess

from c10kplan.errors import EnvironmentProblem


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
