"""The one bounded read: every file c10kplan reads goes through `read_bytes` / `read_text`.

A user-given path can name anything: a 22 MB profile (it took 18.7 s and 1.47 GB before
failing), /dev/zero (MemoryError), /dev/urandom or a FIFO (a read that never ends, an open
that waits for a writer). So each read
- opens with O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer
  (fifo(7)); on regular files and /proc and /sys files the flag changes nothing;
- refuses anything fstat(2) does not call a regular file (S_ISREG), after symlinks are
  followed: a FIFO, a character or block device, a directory. /proc and /sys files are regular
  files (of st_size 0: their size is only known by reading them);
- reads at most `limit` bytes, one more to tell "exactly the limit" from "larger", so a file
  that grows while it is read cannot go past the limit either (`files.read_bounded`, the loop
  apply's backup and persisted-file reads use as well, on the fds they open themselves).
The refusals are OSError subclasses (EFBIG, EINVAL, EILSEQ), so a caller that already turns an
OSError into one line of its own handles them with no new code.

The limits below are in bytes, each far above what the tool itself writes.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Annotated

from pydantic import AfterValidator

from c10kplan.files import read_bounded

PROFILE_LIMIT = 1 << 20  # 1 MiB: a profile (the shipped ones are 1-3 KiB)
HOST_FACTS_LIMIT = 4 << 20  # 4 MiB: a `snapshot` file (~3 KiB; 32,768 reserved-port ranges ~1 MiB)
CALIBRATION_LIMIT = 1 << 20  # 1 MiB: a `verify --calibrate` file (~0.5 KiB)
PROC_LIMIT = 4 << 20  # 4 MiB: one /proc or /sys file (/proc/self/smaps of the tool ~0.3 MiB)


class FileTooLarge(OSError):
    """The file holds more than the limit for its kind."""


class NotRegularFile(OSError):
    """The path is a FIFO, a device, a directory or a socket, not a regular file."""


class NotText(OSError):
    """The file is not UTF-8 text."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 and not limit % (1 << 20) else f"{limit:,} bytes"


def read_bytes(path: str | os.PathLike[str], limit: int) -> bytes:
    """The whole file, at most `limit` bytes. Raises OSError (FileTooLarge, NotRegularFile, or
    the open's own: ENOENT, EACCES, ...)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, f"{_kind(mode)}, not a regular file", os.fspath(path))
        data = read_bounded(fd, limit)  # the read loop apply's own reads use too
        if len(data) > limit:
            raise FileTooLarge(errno.EFBIG, f"larger than the {_size(limit)} limit", os.fspath(path))
        return data
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike[str], limit: int, *, errors: str = "strict") -> str:
    """`read_bytes` decoded as UTF-8; NotText (an OSError) when it is not, unless `errors`
    says otherwise ("replace" for /proc files)."""
    data = read_bytes(path, limit)
    try:
        return data.decode("utf-8", errors)
    except UnicodeDecodeError:
        raise NotText(errno.EILSEQ, "not UTF-8 text", os.fspath(path)) from None


def printable(text: str) -> str:
    """`text` with every character that is not printable (control characters such as the ESC
    of ANSI sequences, bidi overrides, line breaks) written as its escape (\\x1b, \\u202e), so
    text from a file cannot drive the terminal it is printed on."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


# A str field of a model loaded from a file: kept printable (see `printable`).
PrintableStr = Annotated[str, AfterValidator(printable)]
