"""The seam for host facts that only a program prints: the netfilter ruleset (`nft list
ruleset`, `iptables-save`, `ip6tables-save`). The kernel shows the rules over netlink only, not
in /proc, so reading them means running the program; this is the one place that does.

`HostCommands(procfs)` answers `output(name)`:
- for the real host (ProcFS root "/"), by running the program (when on PATH) with a bounded
  timeout; stdout on exit 0, else None (not installed, no permission: CAP_NET_ADMIN, timeout);
- for any other root (a captured or fixture tree), by reading ROOT/commands/NAME through the
  same ProcFS: what `scripts/capture_proc.py` saved, or a test's fixture. Nothing is run for a
  tree: its programs would describe this host, not that one.
Tests inject `runner` instead of running anything.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from c10kplan.host.procfs import ProcFS

# name -> argv. The names are also the file names under ROOT/commands/.
COMMANDS: dict[str, tuple[str, ...]] = {
    "nft-list-ruleset": ("nft", "list", "ruleset"),
    "iptables-save": ("iptables-save",),
    "ip6tables-save": ("ip6tables-save",),
}
TIMEOUT_S = 5.0  # seconds one program may take (a big ruleset lists in well under one)

Runner = Callable[[Sequence[str]], "str | None"]


def run_program(argv: Sequence[str]) -> str | None:
    """stdout of argv when it is on PATH and exits 0 within TIMEOUT_S; None otherwise."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=TIMEOUT_S, env={"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


class HostCommands:
    """Outputs of the programs in COMMANDS, for the host or tree `procfs` reads."""

    def __init__(self, procfs: ProcFS, runner: Runner | None = None) -> None:
        self.procfs = procfs
        self.live = runner is not None or procfs.root.resolve() == Path("/")
        self.runner = runner or run_program

    def output(self, name: str) -> str | None:
        argv = COMMANDS[name]
        if self.live:
            return self.runner(argv)
        return self.procfs.read(f"commands/{name}")
