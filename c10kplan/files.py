"""Atomic file replacement: the one writer for every file c10kplan persists.

Write a temp file in the same directory, optionally fsync it, then rename(2) it over the target:
rename within one filesystem is atomic, so a reader (systemd, PAM, sysctl --system, `verify`
polling a stats file) sees either the old file or the new one, never half of it. The temp file
is removed when anything fails, so no `.NAME.*.tmp` is left behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: str | os.PathLike[str], text: str, mode: int = 0o644, *,
                 fsync: bool = True, parents: bool = True) -> None:
    """Replace `path` with `text` atomically. Raises OSError.

    fsync: flush the data to disk before the rename, so a crash cannot leave an empty file
    under the new name (persisted configuration, backups). A file rewritten every second
    (server stats) passes False. parents: create missing parent directories first."""
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass  # the directory went away too; the first error is the one to report
        raise
