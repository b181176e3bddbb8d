"""The state directory: one backup of the values c10kplan replaced, written before any change,
and the lock that lets one apply or rollback at a time use it.

Layout: `<state-dir>/backup.json` (mode 0600, replaced atomically) and `<state-dir>/lock`.
backup.json holds
- `sysctl` / `files` (+ `meta`: mode and owner, `dirs`: directories apply created): the values
  and files as they were BEFORE c10kplan first touched them (a second apply adds keys it did not
  hold yet, never overwrites an original), so rollback returns the host to its pre-c10kplan state;
- `pending_*`: the same for the apply in progress, with `pending_profile` set while it runs. A
  backup found with `pending_profile` set means an apply was interrupted; the next apply or
  rollback restores `pending_*` first.

The backup is not trusted blindly: rollback writes as root wherever it says. It is used only
when the state dir and the file are owned by the running user and writable by nobody else, the
file is a regular file (not a symlink), and every path in it is one apply itself writes
(`persist.MANAGED_FILES` / `MANAGED_DIRS`) under an absolute, normalized root. Anything else is
refused with one line and exit 3 (UnsafePath).

Kernel facts:
- flock(2) locks belong to the open file description: the kernel drops them when the last fd
  closes, including when the holder is killed with SIGKILL, so a crashed apply never leaves a
  stale lock. Two open()s of the lock file in one process conflict like two processes.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from c10kplan.errors import EnvironmentProblem
from c10kplan.files import Step, no_step, read_regular_at, remove_temp_files, write_at
from c10kplan.profiles.files import FileMeta, UnsafePath
from c10kplan.profiles.persist import MANAGED_DIRS, MANAGED_FILES
from c10kplan.profiles.schema import key_problem

DEFAULT_STATE_DIR = Path("/var/lib/c10kplan")
STATE_DIR_ENV = "C10KPLAN_STATE_DIR"
STATE_FILE = "backup.json"
LOCK_FILE = "lock"
LOCK_TIMEOUT_S = 5.0  # how long a second apply / rollback waits for the first
LOCK_POLL_S = 0.05
# A backup holds at most three managed files of <= 1 MiB each (files.MAX_FILE_BYTES) plus a
# few dozen keys; 8 MiB bounds the read of anything that is not one.
MAX_BACKUP_BYTES = 8 << 20


def default_state_dir(root: Path | str | None = None) -> Path:
    """$C10KPLAN_STATE_DIR, else ROOT/var/lib/c10kplan (/var/lib/c10kplan on the real root): a
    --root tree keeps its backup inside itself, never in the host's /var/lib."""
    env = os.environ.get(STATE_DIR_ENV)
    if env:
        return Path(env)
    return DEFAULT_STATE_DIR if root is None else Path(root) / DEFAULT_STATE_DIR.relative_to("/")


class Backup(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int = 2  # 1: before meta / dirs (still read; files come back 0644)
    root: str
    applied: tuple[str, ...] = ()  # profiles whose apply completed, oldest first
    pending_profile: str | None = None  # the apply in progress (None when complete)
    sysctl: dict[str, str] = {}  # key -> raw original text (as read from /proc/sys)
    files: dict[str, str | None] = {}  # path under root -> original text, None = did not exist
    meta: dict[str, FileMeta] = {}  # path under root -> mode / owner of the original
    dirs: tuple[str, ...] = ()  # directories under root that apply created
    pending_sysctl: dict[str, str] = {}
    pending_files: dict[str, str | None] = {}
    pending_meta: dict[str, FileMeta] = {}
    pending_dirs: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.pending_profile is None


def backup_problem(b: Backup) -> str | None:
    """Why a loaded backup must not be used, or None: every path in it is one apply writes."""
    if b.version not in (1, 2):
        return f"unknown version {b.version}"
    if not b.root.startswith("/") or os.path.normpath(b.root) != b.root:
        return f"root {b.root!r} is not an absolute, normalized path"
    for rel in [*b.files, *b.meta, *b.pending_files, *b.pending_meta]:
        if rel not in MANAGED_FILES:
            return (f"path {rel!r} is not one of the files apply writes "
                    f"({', '.join(MANAGED_FILES)})")
    for rel in [*b.dirs, *b.pending_dirs]:
        if rel not in MANAGED_DIRS:
            return f"directory {rel!r} is not one apply creates"
    for key in [*b.sysctl, *b.pending_sysctl]:
        if (why := key_problem(key)) is not None:
            return f"sysctl key {key!r}: {why}"
    for m in [*b.meta.values(), *b.pending_meta.values()]:
        if not (0 <= m.mode <= 0o7777 and 0 <= m.uid < 2**32 and 0 <= m.gid < 2**32):
            return f"mode / owner {m} out of range"
    return None


def _check_owned(st: os.stat_result, what: str, path: Path) -> None:
    """Refuse what another user owns or can write: they could have planted the backup."""
    uid = os.geteuid()
    if st.st_uid != uid:
        raise UnsafePath(f"{path}: the {what} is owned by uid {st.st_uid}, not by the running "
                         f"user (uid {uid}); refusing to trust it")
    if st.st_mode & 0o022:
        raise UnsafePath(f"{path}: the {what} is writable by group or others (mode "
                         f"{stat.S_IMODE(st.st_mode):04o}); refusing to trust it: "
                         f"chmod go-w it, or use another --state-dir")


class StateStore:
    """Reads and writes `backup.json` in one state directory, under its lock."""

    def __init__(self, state_dir: Path | str | None = None, *, root: Path | str | None = None,
                 lock_timeout: float = LOCK_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.dir = Path(state_dir) if state_dir is not None else default_state_dir(root)
        self.file = self.dir / STATE_FILE
        self.lock_file = self.dir / LOCK_FILE
        self.lock_timeout = lock_timeout
        self._clock, self._sleep = clock, sleep
        self._fd: int | None = None  # the state dir, while locked

    # -- the directory and the lock ----------------------------------------------------------

    def exists(self) -> bool:
        return os.path.lexists(self.dir)

    def _open_dir(self) -> int:
        """An fd on the state dir, checked: a directory owned by us, writable only by us."""
        try:
            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise EnvironmentProblem(f"{self.dir}: cannot open the state directory: "
                                     f"{exc.strerror or exc}") from None
        try:
            _check_owned(os.fstat(fd), "state directory", self.dir)
        except BaseException:
            os.close(fd)
            raise
        return fd

    @contextmanager
    def locked(self, on_wait: Step = no_step) -> Iterator[None]:
        """Hold the state dir's lock (creating the dir, 0700, if needed). Waits up to
        lock_timeout seconds for another apply / rollback, then refuses (exit 3). On entry,
        sweeps temp files a killed writer of backup.json left."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise EnvironmentProblem(f"{self.dir}: cannot create the state directory: "
                                     f"{exc.strerror or exc}; nothing was changed") from None
        dir_fd = self._open_dir()
        try:
            lock_fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                              0o600, dir_fd=dir_fd)
        except OSError as exc:
            os.close(dir_fd)
            raise UnsafePath(f"{self.lock_file}: cannot open the lock file: "
                             f"{exc.strerror or exc} (a symlink is refused)") from None
        try:
            st = os.fstat(lock_fd)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafePath(f"{self.lock_file}: the lock file is not a regular file")
            _check_owned(st, "lock file", self.lock_file)
            self._wait_for_lock(lock_fd, on_wait)
            self._fd = dir_fd
            remove_temp_files(dir_fd, STATE_FILE)  # under the lock, any temp file is stale
            yield
        finally:
            self._fd = None
            os.close(lock_fd)  # releases the flock
            os.close(dir_fd)

    def _wait_for_lock(self, lock_fd: int, on_wait: Step) -> None:
        deadline = self._clock() + self.lock_timeout
        while True:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
            if self._clock() >= deadline:
                raise EnvironmentProblem(
                    f"{self.lock_file}: another c10kplan apply or rollback holds the lock "
                    f"(waited {self.lock_timeout:g} s); run it again when that one is done; "
                    "nothing was changed")
            on_wait("lock-wait")
            self._sleep(LOCK_POLL_S)

    # -- the backup --------------------------------------------------------------------------

    def load(self) -> Backup | None:
        """The backup, checked (see the module docstring), or None when there is none."""
        if self._fd is None and not self.exists():
            return None
        dir_fd = self._fd if self._fd is not None else self._open_dir()
        try:
            text = self._read(dir_fd)
        finally:
            if dir_fd != self._fd:
                os.close(dir_fd)
        if text is None:
            return None
        try:
            backup = Backup.model_validate(json.loads(text))
        except (ValueError, ValidationError, RecursionError):
            raise EnvironmentProblem(f"{self.file}: the backup is corrupt; inspect it and "
                                     "restore by hand, or remove it") from None
        if (why := backup_problem(backup)) is not None:
            raise UnsafePath(f"{self.file}: refusing the backup: {why}")
        return backup

    def _read(self, dir_fd: int) -> str | None:
        def check(st: os.stat_result) -> None:
            if not stat.S_ISREG(st.st_mode):
                raise UnsafePath(f"{self.file}: the backup is not a regular file")
            _check_owned(st, "backup", self.file)

        try:
            data, _st = read_regular_at(dir_fd, STATE_FILE, MAX_BACKUP_BYTES, check)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePath(f"{self.file}: cannot read the backup: it is a symlink") from None
            raise EnvironmentProblem(f"{self.file}: cannot read the backup: "
                                     f"{exc.strerror or exc}") from None
        if len(data) > MAX_BACKUP_BYTES:
            raise UnsafePath(f"{self.file}: the backup is larger than {MAX_BACKUP_BYTES} bytes; "
                             "it is not one c10kplan wrote")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise EnvironmentProblem(f"{self.file}: the backup is corrupt (not UTF-8); inspect "
                                     "it and restore by hand, or remove it") from None

    def save(self, backup: Backup, *, step: Step = no_step) -> None:
        """Replace backup.json atomically (0600, fsynced). Only under `locked()`."""
        assert self._fd is not None, "StateStore.save outside locked()"
        try:
            write_at(self._fd, STATE_FILE, backup.model_dump_json(indent=2) + "\n", 0o600,
                     step=step)
        except OSError as exc:
            raise EnvironmentProblem(f"{self.file}: cannot write the backup: "
                                     f"{exc.strerror or exc}; nothing was changed") from None

    def clear(self, *, step: Step = no_step) -> None:
        assert self._fd is not None, "StateStore.clear outside locked()"
        step("remove-backup")
        try:
            os.unlink(STATE_FILE, dir_fd=self._fd)
        except FileNotFoundError:
            return
        os.fsync(self._fd)
