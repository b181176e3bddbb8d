"""The seam: the only code in the package that opens files under /proc and /sys.

`ProcFS(root)` resolves `proc/...` and `sys/...` relative to `root` (default "/", env
C10KPLAN_ROOT), so tests and users point it at a captured tree instead of patching `open`.
Reads never raise for a missing or unreadable file: they return None and the caller records
the fact as unknown. Every read is the one bounded read (c10kplan/boundedread.py): at most
PROC_LIMIT bytes of a regular file, so a FIFO, /dev/zero or /dev/urandom planted in a --root
tree (or a symlink to one) reads as unknown instead of hanging or exhausting memory. Writes
(sysctl apply) raise OSError with the kernel's errno intact; they open with O_NONBLOCK and
refuse anything but a regular file too (a FIFO would block, a device is not a sysctl).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from c10kplan.boundedread import PROC_LIMIT, NotRegularFile, read_text

ROOT_ENV = "C10KPLAN_ROOT"


def default_root() -> Path:
    return Path(os.environ.get(ROOT_ENV) or "/")


def sysctl_relpath(key: str) -> str:
    """`net.core.somaxconn` -> `proc/sys/net/core/somaxconn` (sysctl(8) naming)."""
    return "proc/sys/" + key.replace(".", "/")


class ProcFS:
    """Read (and, for apply, write) files of a /proc + /sys tree rooted at `root`."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def path(self, relpath: str) -> Path:
        rel = relpath.lstrip("/")
        if ".." in Path(rel).parts:
            raise ValueError(f"path escapes the root: {relpath!r}")
        return self.root / rel

    def read(self, relpath: str) -> str | None:
        """The file's text, or None when it is missing, unreadable or not text."""
        try:
            return read_text(self.path(relpath), PROC_LIMIT, errors="replace")
        except (OSError, ValueError):
            return None

    def exists(self, relpath: str) -> bool:
        try:
            return self.path(relpath).exists()
        except (OSError, ValueError):
            return False

    def listdir(self, relpath: str) -> list[str]:
        try:
            return sorted(os.listdir(self.path(relpath)))
        except (OSError, ValueError):
            return []

    def count_fds(self, pid: int | str) -> int:
        """Open fds of a process (0 when it is gone).

        Kernel facts: since Linux 6.2, stat(2) of /proc/PID/fd reports the number of open fds as
        st_size (a popcount of the fd bitmap: no entry is built). Listing the directory instead
        makes the kernel build a dentry (192 B) and a proc inode (696 B) for every fd, kept in
        Slab until memory pressure reclaims them: counting a worker with 19,000 sockets that
        way adds 17 MB of Slab, which a later Slab sample would bill to the sockets. A captured
        tree (not /proc itself) or an older kernel (st_size 0) is listed."""
        path = self.path(f"proc/{pid}/fd")
        if self.root == Path("/"):
            try:
                size = os.stat(path).st_size
            except (OSError, ValueError):
                return 0
            if size > 0:
                return size
        return len(self.listdir(f"proc/{pid}/fd"))

    def readlink(self, relpath: str) -> str | None:
        """Where a symlink points (`socket:[INODE]` for a socket fd), or None."""
        try:
            return os.readlink(self.path(relpath))
        except (OSError, ValueError):
            return None

    def read_sysctl(self, key: str) -> str | None:
        text = self.read(sysctl_relpath(key))
        return None if text is None else text.strip()

    def write(self, relpath: str, text: str) -> None:
        """Write text to an existing file (a sysctl). Raises OSError with the kernel's errno."""
        path = self.path(relpath)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        with open(fd, "w", encoding="utf-8") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise NotRegularFile(errno.EINVAL, "not a regular file", str(path))
            fh.write(text)
