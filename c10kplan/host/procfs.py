"""The seam: the only code in the package that opens files under /proc and /sys.

`ProcFS(root)` resolves `proc/...` and `sys/...` relative to `root` (default "/", env
C10KPLAN_ROOT), so tests and users point it at a captured tree instead of patching `open`.
Reads never raise for a missing or unreadable file: they return None and the caller records
the fact as unknown. Writes (sysctl apply) raise OSError with the kernel's errno intact.
"""

from __future__ import annotations

import os
from pathlib import Path

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
            return self.path(relpath).read_text(encoding="utf-8", errors="replace")
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
        with open(self.path(relpath), "w", encoding="utf-8") as fh:
            fh.write(text)
