"""Atomic file replacement: the one writer for every file c10kplan persists.

Write a temp file in the same directory, optionally fsync it, then rename(2) it over the target:
rename within one filesystem is atomic, so a reader (systemd, PAM, sysctl --system, `verify`
polling a stats file) sees either the old file or the new one, never half of it. The temp file
is removed when anything fails, so no `.NAME.*.tmp` is left behind; a process killed between
creating and renaming it (kill -9) leaves one, which `remove_temp_files` sweeps.

Kernel facts:
- rename(2) replaces a symlink at the target name, it never writes through it; the temp file is
  created with O_CREAT | O_EXCL | O_NOFOLLOW, so a planted name fails instead of being followed.
- rename(2) is durable only once the directory holding the new entry is fsynced (ext4, xfs):
  fsync the file, rename, then fsync the directory (a crash in between keeps the old file).
- `*at` calls on a directory fd (openat / renameat / unlinkat) resolve names relative to the
  directory the fd already holds, so a parent swapped for a symlink later cannot redirect them.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

# A step hook: called with a name before each system call that changes something on disk, so a
# test can kill the process (SIGKILL) between any two of them.
Step = Callable[[str], None]


def no_step(_name: str) -> None:
    pass


def temp_prefix(name: str) -> str:
    """Temp files for `name` are `.<name>.<random>.tmp` in the same directory."""
    return f".{name}."


def write_at(dir_fd: int, name: str, text: str, mode: int = 0o644, *, fsync: bool = True,
             owner: tuple[int, int] | None = None, step: Step = no_step) -> None:
    """Replace `name` in the directory `dir_fd` with `text` atomically; mode (exact, not
    masked by the umask) and owner (uid, gid; None = the caller's) are set on the temp file
    before the rename, so the target never shows another mode. Raises OSError."""
    tmp = f"{temp_prefix(name)}{secrets.token_hex(4)}.tmp"
    step("create-temp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=dir_fd)
    try:
        try:
            step("write-temp")
            data = text.encode("utf-8")
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            step("chmod-temp")
            os.fchmod(fd, mode)
            if owner is not None:
                step("chown-temp")
                os.fchown(fd, *owner)
            if fsync:
                step("fsync-temp")
                os.fsync(fd)
        finally:
            os.close(fd)
        step("rename")
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass  # the directory went away too; the first error is the one to report
        raise
    if fsync:
        step("fsync-dir")
        os.fsync(dir_fd)


def read_bounded(fd: int, limit: int) -> bytes:
    """Read from `fd` until EOF or until more than `limit` bytes (returns at most limit + 1, so
    the caller can tell "too big" from "exactly limit"), whatever fstat's size claims."""
    data = b""
    while len(data) <= limit:
        # At most 64 KiB per read(2): a /proc/sys read allocates a kernel buffer of the size
        # asked for and fails with ENOMEM above KMALLOC_MAX_SIZE (4 MiB; proc_sys_call_handler).
        chunk = os.read(fd, min(1 << 16, limit + 1 - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def atomic_write(path: str | os.PathLike[str], text: str, mode: int = 0o644, *,
                 fsync: bool = True, parents: bool = True) -> None:
    """Replace `path` with `text` atomically. Raises OSError.

    fsync: flush the data, and after the rename the directory, to disk, so a crash cannot leave
    an empty file or the old name (persisted configuration, backups). A file rewritten every
    second (server stats) passes False. parents: create missing parent directories first."""
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        write_at(dir_fd, path.name, text, mode, fsync=fsync)
    finally:
        os.close(dir_fd)


def remove_temp_files(dir_fd: int, name: str) -> list[str]:
    """Remove the `.<name>.*.tmp` files a killed writer left in `dir_fd`; returns their names.
    Only call this while holding the lock that serializes the writers of `name`."""
    prefix = temp_prefix(name)
    removed = []
    for entry in os.listdir(dir_fd):
        if entry.startswith(prefix) and entry.endswith(".tmp"):
            try:
                os.unlink(entry, dir_fd=dir_fd)
                removed.append(entry)
            except FileNotFoundError:
                pass
    return removed


def _no_check(_st: os.stat_result) -> None:
    pass


def read_regular_at(dir_fd: int, name: str, limit: int,
                    check: Callable[[os.stat_result], None] = _no_check) -> tuple[bytes, os.stat_result]:
    """The bytes (at most limit + 1: more than `limit` means too big) and fstat of the regular
    file `name` in the directory `dir_fd`, opened with O_NOFOLLOW (a symlink there fails with
    OSError ELOOP instead of being followed) and O_NONBLOCK (opening a FIFO does not wait for a
    writer). `check(st)` runs on the open file before anything is read (the caller's refusals:
    owner, mode, links, size); then anything but a regular file is OSError EINVAL. A missing
    `name` is FileNotFoundError."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        check(st)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", name)
        return read_bounded(fd, limit), st
    finally:
        os.close(fd)
