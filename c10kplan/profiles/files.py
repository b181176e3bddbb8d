"""Reading and restoring the files a profile manages (limits.d, sysctl.d, the state file).

Writes go through `c10kplan.files.atomic_write` (temp file, fsync, rename), so a reader sees the
old file or the new one, never half of it.
"""

from __future__ import annotations

from pathlib import Path

from c10kplan.files import atomic_write


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
