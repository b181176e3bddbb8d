"""Temp dirs that name their owner, and the sweep that removes them once the owner is dead.

A process killed by SIGKILL cannot remove its temp dir; PDEATHSIG takes its children down, but
the dir stays. So each dir is named `c10kplan-PURPOSE-PID-XXXXXXXX` (PID: the process that made
it), and every new one first sweeps the dirs of its purpose whose owner no longer runs. A
reused pid only delays a sweep: a live owner's dir is never removed.

Safety: only directories (never symlinks) owned by this user, in the temp dir, are swept.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from c10kplan.pids import pid_alive

_NAME = re.compile(r"^c10kplan-(?P<purpose>[a-z]+(?:-[a-z]+)*)-(?P<pid>\d+)-[A-Za-z0-9_]+$")


def sweep_stale(purpose: str, tmp: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the `purpose` dirs (see above) whose owner pid is dead; returns those removed."""
    base = Path(tmp or tempfile.gettempdir())
    removed = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        match = _NAME.match(entry.name)
        if match is None or match["purpose"] != purpose:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            continue
        if int(match["pid"]) == os.getpid() or pid_alive(int(match["pid"])):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


class OwnedTempDir:
    """A temp dir named for this process (see above), made after a sweep of stale ones of the
    same purpose. `.path`; `cleanup()` (idempotent) or use as a context manager."""

    def __init__(self, purpose: str, tmp: str | os.PathLike[str] | None = None) -> None:
        sweep_stale(purpose, tmp)
        self.path = Path(tempfile.mkdtemp(prefix=f"c10kplan-{purpose}-{os.getpid()}-", dir=tmp))

    def cleanup(self) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(self.path)

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
