"""The files a profile manages under a root (sysctl.d, limits.d, the systemd drop-in): read the
original with its mode and owner, write the new one, put the original back exactly.

Nothing here follows a symlink. Every path is relative to the root and walked one component at
a time with openat(O_DIRECTORY | O_NOFOLLOW), so neither a symlink at the target nor one at a
parent directory (`etc/sysctl.d -> /root/.ssh`) can redirect a read or a write: both are
refused (UnsafePath, exit 3). Writes go through `c10kplan.files.write_at` (temp file, fsync,
rename, fsync of the directory), so a reader sees the old file or the new one, never half of it.

Kernel facts:
- open(O_NOFOLLOW) on a symlink fails with ELOOP; with O_DIRECTORY, a non-directory fails with
  ENOTDIR. lstat tells the two apart for the message.
- open(O_NONBLOCK) of a FIFO returns at once instead of waiting for a writer; fstat then shows it
  is not a regular file and it is refused before any read.
- rename(2) over a name with st_nlink > 1 detaches that name from the other links: the content
  would survive there, not here, so such a target is refused rather than silently split.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict

from c10kplan.errors import EnvironmentProblem
from c10kplan.files import Step, no_step, read_regular_at, remove_temp_files, write_at

# A managed configuration file above 1 MiB is not one c10kplan writes (ours are < 4 KiB): refuse
# to back it up rather than copy it into the backup.
MAX_FILE_BYTES = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(EnvironmentProblem):
    """A path or state file c10kplan refuses to use: a symlink, a file that is not regular, a
    directory others can write to, a path outside the root."""


class FileMeta(BaseModel):
    """Mode and owner of an original file, restored with its content."""

    model_config = ConfigDict(frozen=True)

    mode: int  # permission bits, S_IMODE (0..0o7777)
    uid: int
    gid: int


def rel_problem(rel: str) -> str | None:
    """Why `rel` is not a clean relative path under a root, or None."""
    p = PurePosixPath(rel)
    if not rel or p.is_absolute():
        return "an absolute or empty path"
    if any(part in ("..", ".", "") for part in rel.split("/")):
        return "a path with '..', '.' or an empty segment"
    return None


def parent_dirs(rel: str) -> list[str]:
    """`etc/sysctl.d/x.conf` -> ["etc", "etc/sysctl.d"] (outermost first)."""
    parts = rel.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


class RootDir:
    """Reads and writes files under one root without following symlinks below it. The root
    itself is the user's --root (resolved once); everything below it is walked safely."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def show(self, rel: str) -> Path:
        return self.root / rel

    def _refuse(self, rel: str, why: str) -> UnsafePath:
        return UnsafePath(f"{self.show(rel)} {why}; c10kplan never follows or replaces it "
                          "(remove it, or make it a regular file or directory)")

    def _open_dir(self, rel: str, *, create: bool, step: Step = no_step) -> int | None:
        """An fd on directory `rel` (walked from the root with O_NOFOLLOW), or None when a
        component is missing (and not create). A missing component is made (0755) with create;
        an existing non-directory raises FileExistsError, as mkdir(2) would."""
        if rel and rel_problem(rel):
            raise self._refuse(rel, "is not a clean path under the root")
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        done = ""
        try:
            for part in rel.split("/") if rel else []:
                done = f"{done}/{part}" if done else part
                try:
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        os.close(fd)
                        return None
                    step("mkdir")
                    os.mkdir(part, 0o755, dir_fd=fd)
                    os.fsync(fd)  # the new entry is durable before anything goes into it
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except (NotADirectoryError, OSError) as exc:
                    kind = self._kind(fd, part)
                    if kind == "symlink":
                        raise self._refuse(done, "is a symlink") from None
                    if kind == "other" or isinstance(exc, NotADirectoryError):
                        if not create:
                            os.close(fd)
                            return None  # a non-directory parent: the file does not exist
                        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST),
                                              str(self.show(done))) from None
                    raise
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open_parent(self, rel: str, *, create: bool = False,
                     step: Step = no_step) -> tuple[int | None, str]:
        """(fd on the directory holding `rel` or None when it is missing, the last name)."""
        parent, _, name = rel.rpartition("/")
        return self._open_dir(parent, create=create, step=step), name

    @staticmethod
    def _kind(dir_fd: int, name: str) -> str:
        try:
            st = os.lstat(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return "missing"
        if stat.S_ISLNK(st.st_mode):
            return "symlink"
        return "dir" if stat.S_ISDIR(st.st_mode) else "other"

    def missing_dirs(self, rel: str) -> list[str]:
        """The parent directories of `rel` that do not exist yet (outermost first): what a
        write would create. A symlinked parent is refused here, before anything changes."""
        fd = self._open_dir("", create=False)
        assert fd is not None
        try:
            for i, d in enumerate(parents := parent_dirs(rel)):
                name = d.rsplit("/", 1)[-1]
                kind = self._kind(fd, name)
                if kind == "missing":
                    return parents[i:]
                if kind == "symlink":
                    raise self._refuse(d, "is a symlink")
                if kind == "other":
                    return []  # the write fails with EEXIST, as mkdir(2) would
                nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nxt
            return []
        finally:
            os.close(fd)

    def read(self, rel: str) -> tuple[str, FileMeta] | None:
        """The file's text and mode/owner, or None when it (or a parent) does not exist.
        Refuses a symlink, a non-regular file, a file with several hard links or one above
        MAX_FILE_BYTES (UnsafePath). EISDIR / EACCES raise OSError; non-UTF-8 raises
        UnicodeDecodeError."""
        dir_fd, name = self._open_parent(rel)
        if dir_fd is None:
            return None
        def check(st: os.stat_result) -> None:
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(self.show(rel)))
            if not stat.S_ISREG(st.st_mode):
                raise self._refuse(rel, "is not a regular file")
            if st.st_nlink > 1:
                raise self._refuse(rel, f"has {st.st_nlink} hard links")
            if st.st_size > MAX_FILE_BYTES:
                raise self._refuse(rel, f"is larger than {MAX_FILE_BYTES} bytes")

        try:
            try:
                data, st = read_regular_at(dir_fd, name, MAX_FILE_BYTES, check)
            except FileNotFoundError:
                return None
            except IsADirectoryError:
                raise
            except OSError as exc:
                if exc.errno == errno.ELOOP or self._kind(dir_fd, name) == "symlink":
                    raise self._refuse(rel, "is a symlink") from None
                raise
            if len(data) > MAX_FILE_BYTES:
                raise self._refuse(rel, f"is larger than {MAX_FILE_BYTES} bytes")
        finally:
            os.close(dir_fd)
        meta = FileMeta(mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid)
        return data.decode("utf-8"), meta  # "\r" and "\r\n" kept as they are

    def write(self, rel: str, text: str, meta: FileMeta | None = None, *,
              step: Step = no_step) -> None:
        """Replace `rel` with `text` atomically (mode 0644 and the caller's owner, or `meta`),
        creating missing parents (0755). A symlink at the target or a parent is refused."""
        dir_fd, name = self._open_parent(rel, create=True, step=step)
        assert dir_fd is not None
        try:
            if self._kind(dir_fd, name) == "symlink":
                raise self._refuse(rel, "is a symlink")
            write_at(dir_fd, name, text, meta.mode if meta else 0o644,
                     owner=(meta.uid, meta.gid) if meta else None, step=step)
        finally:
            os.close(dir_fd)

    def restore(self, rel: str, text: str | None, meta: FileMeta | None, *,
                step: Step = no_step) -> None:
        """Put `rel` back as it was: removed if it did not exist, else its original content,
        mode and owner (a backup without `meta` keeps 0644). Also sweeps its stale temp files."""
        self.remove_temps(rel)
        current = self._current(rel)
        if text is None:
            if current is not None:
                dir_fd, name = self._open_parent(rel)
                assert dir_fd is not None
                try:
                    step("unlink")
                    os.unlink(name, dir_fd=dir_fd)
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            return
        if current is not None and current[0] == text and (meta is None or current[1] == meta):
            return
        self.write(rel, text, meta, step=step)

    def _current(self, rel: str) -> tuple[str | None, FileMeta] | None:
        """What is at `rel` now: (text, meta), text None when it is not UTF-8; None if absent."""
        try:
            return self.read(rel)
        except UnicodeDecodeError:
            dir_fd, name = self._open_parent(rel)
            assert dir_fd is not None
            try:
                st = os.lstat(name, dir_fd=dir_fd)
            finally:
                os.close(dir_fd)
            return None, FileMeta(mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid)

    def remove_temps(self, rel: str) -> list[str]:
        """Remove the `.<name>.*.tmp` files a killed write of `rel` left behind."""
        dir_fd, name = self._open_parent(rel)
        if dir_fd is None:
            return []
        try:
            return remove_temp_files(dir_fd, name)
        finally:
            os.close(dir_fd)

    def remove_dirs(self, dirs: list[str], *, step: Step = no_step) -> None:
        """rmdir each of `dirs` (innermost first) if it is still there and empty: a directory
        someone put a file into since is theirs now and stays."""
        for d in sorted(dirs, key=lambda x: x.count("/"), reverse=True):
            dir_fd, name = self._open_parent(d)
            if dir_fd is None:
                continue
            try:
                if self._kind(dir_fd, name) != "dir":
                    continue
                step("rmdir")
                os.rmdir(name, dir_fd=dir_fd)
                os.fsync(dir_fd)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    raise
            finally:
                os.close(dir_fd)
