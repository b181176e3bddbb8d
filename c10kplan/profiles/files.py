"""Atomic file replacement for persisted configuration and the state file.

Write a temp file in the same directory, fsync it, then rename(2) it over the target: rename
within one filesystem is atomic, so a reader (systemd, PAM, sysctl --system) sees either the
old file or the new one, never half of it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace `path` with `text` atomically (creating parent directories). Raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_or_none(path: Path) -> str | None:
    """The file's text, or None when it does not exist (a missing or non-directory parent
    counts as not existing). Other errors (EISDIR, EACCES) raise OSError."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:  # keep "\r" and "\r\n" as they are
            return fh.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def restore_file(path: Path, original: str | None) -> None:
    """Put `path` back as it was: remove it if it did not exist, else rewrite the original."""
    if original is None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    elif read_or_none(path) != original:
        atomic_write(path, original)
