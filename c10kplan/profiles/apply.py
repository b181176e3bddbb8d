"""Apply a profile to /proc/sys (and, with persist, to files under the root); roll it back.

An apply is a `Transaction` (after tuned's sysctl plugin, made all-or-nothing), run under the
state dir's lock (`StateStore.locked`: a second apply or rollback waits a bounded time, then
refuses with exit 3):
- begin: read every original value and file (with mode and owner; a symlink, FIFO or
  hard-linked target is refused, nothing changed) and save them to the backup (mode 0600)
  BEFORE the first write;
- write_key / write_file: change one thing; each key is re-read to verify;
- commit: mark the backup complete.
Any failed write undoes every key and file whose write started (the failing one included: a
write can fail after truncating) and raises ApplyFailed naming the key and errno. A kill -9
leaves the backup incomplete; the next apply or rollback undoes the partial changes first.

Kernel facts:
- A sysctl write is one write(2) to /proc/sys/<key with dots as slashes>; the kernel rejects
  a bad value with EINVAL, a read-only key (mode 0444, e.g. in a container or a host-wide key
  seen from a user namespace) with EACCES/EPERM, a read-only /proc/sys mount with EROFS.
- Multi-value sysctls read back tab-separated; we compare integers, not text.
- Host-wide keys (fs.*, tcp_mem, ...) do not exist inside a fresh network namespace: they are
  reported as "skipped" there, not an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from c10kplan.counts import errno_name
from c10kplan.errors import ApplyFailed, BadInput, ProfileError
from c10kplan.files import Step, no_step
from c10kplan.host.parse import parse_ints
from c10kplan.host.procfs import ProcFS, sysctl_relpath
from c10kplan.profiles.backup import Backup, StateStore
from c10kplan.profiles.files import FileMeta, RootDir, UnsafePath
from c10kplan.profiles.model import Profile, Setting
from c10kplan.profiles.persist import persisted_files
from c10kplan.profiles.schema import SUPPORTED, expand_selectors

Action = Literal["change", "same", "kept-higher", "skipped"]

# The writer seam: (sysctl key, exact text to write). Tests inject failures here.
Writer = Callable[[str, str], None]


def procfs_writer(procfs: ProcFS) -> Writer:
    def write(key: str, text: str) -> None:
        procfs.write(sysctl_relpath(key), text)

    return write


class Change(BaseModel):
    """One row of the diff: what apply does with one key."""

    model_config = ConfigDict(frozen=True)

    key: str
    current: str | None
    wanted: str  # the profile's value ('>' = raise only)
    new: str | None  # what will be written; None unless action == "change"
    action: Action
    reason: str = ""
    source: str


class ApplyReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    profile: str
    root: str
    state_dir: str
    dry_run: bool
    changes: tuple[Change, ...]
    written: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # files (under root) written or to be written by --persist
    recovered: str | None = None  # what was done about an interrupted earlier apply
    effects: tuple[str, ...] = ()


class RollbackReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    root: str | None
    state_dir: str
    restored: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    interrupted: bool = False
    message: str


def parse_patterns(keys: str | None) -> tuple[str, ...]:
    """`--keys 'net.*,fs.file-max'` -> ("net.*", "fs.file-max"); `netns` / `host` name a scope
    (schema.expand_selectors)."""
    if keys is None:
        return ()
    pats = tuple(p.strip() for p in keys.split(",") if p.strip())
    if not pats:
        raise BadInput(f"--keys {keys!r}: no pattern given")
    return expand_selectors(pats)


def _norm(text: str) -> tuple[int, ...] | str:
    ints = parse_ints(text)
    return ints if ints is not None else " ".join(text.split())


def decide(current: str, setting: Setting) -> tuple[Action, str | None]:
    """The action for one key given its current text, and the text to write if any."""
    cur = parse_ints(current)
    if setting.ints is not None and cur is not None and len(cur) == len(setting.ints):
        if setting.raise_only:
            # Raise only, element by element; the max of two non-decreasing triples is still
            # non-decreasing, so tcp_rmem/tcp_mem orderings survive.
            eff = tuple(max(a, b) for a, b in zip(cur, setting.ints))
            if eff == cur:
                return ("same" if cur == setting.ints else "kept-higher"), None
            return "change", " ".join(map(str, eff))
        return ("same", None) if cur == setting.ints else ("change", setting.text)
    if _norm(current) == _norm(setting.text):
        return "same", None
    return "change", setting.text


def plan_changes(profile: Profile, procfs: ProcFS, patterns: tuple[str, ...]) -> list[Change]:
    """The diff: reads current values, changes nothing. Raises ProfileError for an
    allow_unknown key that does not exist under /proc/sys."""
    if not procfs.exists("proc/sys"):
        raise BadInput(f"--root {procfs.root}: there is no proc/sys under it")
    rows: list[Change] = []
    for key, s in profile.sysctl.items():
        base = {"key": key, "wanted": s.display, "source": s.source}
        if patterns and not any(fnmatchcase(key, p) for p in patterns):
            rows.append(Change(current=None, new=None, action="skipped",
                               reason="not selected by --keys", **base))
            continue
        current = procfs.read_sysctl(key)
        if current is None:
            if not s.known:
                raise ProfileError(f"{s.source}: {key}: unknown key does not exist under "
                                   f"{procfs.path(sysctl_relpath(key)).parent}")
            rows.append(Change(current=None, new=None, action="skipped",
                               reason="not present under /proc/sys (host-wide key in a network "
                                      "namespace, or not in this kernel)", **base))
            continue
        if _host_key_read_only(procfs, key):
            rows.append(Change(current=" ".join(current.split()), new=None, action="skipped",
                               reason="read-only here (host-wide key seen from a network "
                                      "namespace; only the initial namespace can change it)",
                               **base))
            continue
        action, new = decide(current, s)
        rows.append(Change(current=" ".join(current.split()), new=new, action=action, **base))
    return rows


def _host_key_read_only(procfs: ProcFS, key: str) -> bool:
    """A host-wide key whose /proc/sys file refuses writes. /proc/sys permission checks use
    the file mode even for root (proc_sys_permission), so access(2) tells the truth there."""
    spec = SUPPORTED.get(key)
    if spec is None or spec.scope != "host":
        return False
    return not os.access(procfs.path(sysctl_relpath(key)), os.W_OK)


def _persist_entries(changes: list[Change]) -> list[tuple[str, str, str]]:
    """sysctl.d lines: the value each applied key holds after the apply."""
    out = []
    for c in changes:
        if c.action == "skipped":
            continue
        value = c.new if c.new is not None else (c.current or "")
        note = "host value already higher than the profile's " + c.wanted \
            if c.action == "kept-higher" else ""
        out.append((c.key, value, note))
    return out


def _errno_text(exc: OSError) -> str:
    return f"{errno_name(exc.errno)} ({exc.errno}): {exc.strerror or exc}"




def _effects(profile: Profile, procfs: ProcFS, persist: bool, changed: bool) -> tuple[str, ...]:
    out = []
    if changed:
        out.append("sysctl values are live now for new sockets; a listening service picks up "
                   "somaxconn / tcp_max_syn_backlog at its next listen(), so restart it")
    lim = profile.limits
    if lim.nofile_soft is None and lim.nofile_hard is None:
        return tuple(out)
    pair = f"nofile soft {lim.nofile_soft} / hard {lim.nofile_hard}"
    if persist:
        out.append(f"{pair}: written to limits.d (takes effect at the next login) and a systemd "
                   "drop-in (run `systemctl daemon-reexec`, then restart each service)")
    else:
        out.append(f"{pair}: NOT applied (running processes cannot raise a hard limit without "
                   "CAP_SYS_RESOURCE); use --persist or `c10kplan export --format limits.d`")
    nr_open = parse_ints(procfs.read_sysctl("fs.nr_open"), 1)
    if nr_open and lim.nofile_hard and lim.nofile_hard > nr_open[0]:
        out.append(f"warning: this host's fs.nr_open is {nr_open[0]} < nofile hard "
                   f"{lim.nofile_hard}: setrlimit will fail until fs.nr_open is raised")
    return tuple(out)


def _restore(writer: Writer, procfs: ProcFS, rootdir: RootDir, sysctl: dict[str, str],
             keys: list[str], files: dict[str, str | None], meta: dict[str, FileMeta],
             paths: list[str], dirs: list[str], step: Step) -> tuple[int, list[str]]:
    """Put back each of `keys` and `paths` (newest first) that differs from its original, then
    remove the `dirs` apply created. Returns (keys rewritten, failures as text)."""
    failed = []
    restored = 0
    for key in reversed(keys):
        raw = sysctl.get(key)
        if raw is None or procfs.read(sysctl_relpath(key)) == raw:
            continue
        try:
            step("restore-key")
            writer(key, raw)
            restored += 1
        except OSError as exc:
            failed.append(f"{key}: {_errno_text(exc)}")
    for rel in reversed(paths):
        if rel not in files:
            continue
        try:
            rootdir.restore(rel, files[rel], meta.get(rel), step=step)
        except OSError as exc:
            failed.append(f"{rel}: {_errno_text(exc)}")
        except (UnsafePath, UnicodeDecodeError) as exc:
            failed.append(f"{rel}: {exc}")
    if not failed:
        try:
            rootdir.remove_dirs(dirs, step=step)
        except (OSError, UnsafePath) as exc:
            failed.append(f"{exc}")
    return restored, failed


class Transaction:
    """One apply: `begin` saves the originals (before any change), `write_key` / `write_file`
    change one thing each and read a key back, `commit` marks the backup complete. A failed
    write calls `undo`, which restores every key and file whose write STARTED (a write that
    failed half-way may have truncated its target), removes the directories this apply made,
    and returns the ApplyFailed to raise. A kill -9 anywhere leaves `pending_*` in the backup
    for the next apply or rollback to undo."""

    def __init__(self, store: StateStore, procfs: ProcFS, writer: Writer, prior: Backup | None,
                 step: Step) -> None:
        self.store, self.procfs, self.write, self.prior, self.step = (store, procfs, writer,
                                                                      prior, step)
        self.rootdir = RootDir(procfs.root.resolve())
        self.keys: list[str] = []  # keys whose write started
        self.paths: list[str] = []  # files whose write started
        self.state = prior or Backup(root=str(self.rootdir.root))

    def begin(self, profile: str, keys: list[str], files: dict[str, str]) -> None:
        sysctl = {}
        for key in keys:
            raw = self.procfs.read(sysctl_relpath(key))
            if raw is None:
                raise ApplyFailed(f"{key}: cannot read the current value; nothing was changed")
            sysctl[key] = raw
        texts: dict[str, str | None] = {}
        meta: dict[str, FileMeta] = {}
        dirs: list[str] = []
        for rel in files:
            path = self.rootdir.show(rel)
            try:
                dirs += [d for d in self.rootdir.missing_dirs(rel) if d not in dirs]
                found = self.rootdir.read(rel)
            except UnsafePath as exc:
                raise UnsafePath(f"{exc}; nothing was changed") from None
            except OSError as exc:
                raise ApplyFailed(f"cannot read {path} to back it up: {_errno_text(exc)}; "
                                  "nothing was changed") from None
            except UnicodeDecodeError:
                raise ApplyFailed(f"{path} is not UTF-8 text, so it cannot be backed up; "
                                  "move it aside; nothing was changed") from None
            texts[rel] = found[0] if found else None
            if found:
                meta[rel] = found[1]
        prior = self.state
        self.state = prior.model_copy(update={
            "version": 2, "pending_profile": profile, "pending_sysctl": sysctl,
            "pending_files": texts, "pending_meta": meta, "pending_dirs": tuple(dirs),
            # an older original wins: rollback returns to the state before the first apply
            "sysctl": {**sysctl, **prior.sysctl},
            "files": {**texts, **prior.files},
            "meta": {**{r: m for r, m in meta.items() if r not in prior.files}, **prior.meta},
            "dirs": (*prior.dirs, *(d for d in dirs if d not in prior.dirs)),
        })
        self.store.save(self.state, step=self.step)  # before the first write

    def write_key(self, key: str, text: str) -> None:
        self.keys.append(key)
        try:
            self.step("write-key")
            self.write(key, text + "\n")
        except OSError as exc:
            raise self.undo(f"writing {key} = {text} failed: {_errno_text(exc)}") from None
        self.step("read-back")
        readback = self.procfs.read_sysctl(key)
        if readback is None or _norm(readback) != _norm(text):
            raise self.undo(f"{key}: wrote {text!r} but the kernel reads back {readback!r}")

    def write_file(self, rel: str, text: str) -> None:
        self.paths.append(rel)
        try:
            self.rootdir.write(rel, text, step=self.step)
        except OSError as exc:
            raise self.undo(f"writing {self.rootdir.show(rel)} failed: "
                            f"{_errno_text(exc)}") from None
        except UnsafePath as exc:
            raise self.undo(str(exc)) from None

    def commit(self) -> None:
        self.store.save(_without_pending(self.state, applied=self.state.pending_profile),
                        step=self.step)

    def undo(self, reason: str) -> ApplyFailed:
        s = self.state
        restored, failed = _restore(self.write, self.procfs, self.rootdir, s.pending_sysctl,
                                    self.keys, s.pending_files, s.pending_meta, self.paths,
                                    list(s.pending_dirs), self.step)
        if failed:
            return ApplyFailed(f"{reason}; restoring FAILED for {'; '.join(failed)} "
                               f"(backup kept in {self.store.file})")
        if self.prior is not None:
            self.store.save(self.prior, step=self.step)
        else:
            self.store.clear(step=self.step)
        return ApplyFailed(f"{reason}; restored {restored} key(s) already written, "
                           "nothing was changed")


def _without_pending(backup: Backup, applied: str | None = None) -> Backup:
    return backup.model_copy(update={
        "pending_profile": None, "pending_sysctl": {}, "pending_files": {}, "pending_meta": {},
        "pending_dirs": (), "applied": (*backup.applied, *([applied] if applied else []))})


def _recover(store: StateStore, backup: Backup, procfs: ProcFS, writer: Writer,
             step: Step) -> tuple[str, Backup | None]:
    """Undo the partial changes of an interrupted apply (its pending_* values); returns what
    was done and the backup left (None when no earlier apply completed)."""
    _, failed = _restore(writer, procfs, RootDir(backup.root), backup.pending_sysctl,
                         list(backup.pending_sysctl), backup.pending_files, backup.pending_meta,
                         list(backup.pending_files), list(backup.pending_dirs), step)
    if failed:
        raise ApplyFailed(f"an earlier apply of {backup.pending_profile!r} was interrupted and "
                          f"could not be undone: {'; '.join(failed)}")
    left = _without_pending(backup) if backup.applied else None
    if left is not None:
        store.save(left, step=step)
    else:
        store.clear(step=step)
    return (f"an earlier apply of {backup.pending_profile!r} was interrupted; its partial "
            f"changes ({len(backup.pending_sysctl)} key(s)) were rolled back first"), left


def _load_for(store: StateStore, root: Path) -> Backup | None:
    backup = store.load()
    if backup is not None and Path(backup.root) != root:
        raise BadInput(f"{store.file}: holds a backup for root {backup.root}, not {root}; "
                       f"roll that back first (c10kplan rollback --state-dir {store.dir})")
    return backup


def apply_profile(
    profile: Profile,
    *,
    procfs: ProcFS,
    store: StateStore,
    patterns: tuple[str, ...] = (),
    dry_run: bool = False,
    persist: bool = False,
    writer: Writer | None = None,
    on_step: Step | None = None,
) -> ApplyReport:
    """Apply (or with dry_run, only diff) `profile`. See the module docstring for the order.
    on_step: called before each change on disk (tests kill the process there)."""
    write, step, root = writer or procfs_writer(procfs), on_step or no_step, procfs.root.resolve()
    if dry_run:
        backup = _load_for(store, root)
        recovered = None if backup is None or backup.complete else (
            f"an earlier apply of {backup.pending_profile!r} was interrupted; "
            "apply or rollback will undo its partial changes first")
        return _report(profile, procfs, store, patterns, persist, recovered, None)
    with store.locked(on_wait=step):
        backup, recovered = _load_for(store, root), None
        if backup is not None and not backup.complete:
            recovered, backup = _recover(store, backup, procfs, write, step)
        txn = Transaction(store, procfs, write, backup, step)
        return _report(profile, procfs, store, patterns, persist, recovered, txn)


def _report(profile: Profile, procfs: ProcFS, store: StateStore, patterns: tuple[str, ...],
            persist: bool, recovered: str | None, txn: Transaction | None) -> ApplyReport:
    """Plan the diff and, given a transaction, carry it out; the report either way."""
    changes = plan_changes(profile, procfs, patterns)
    files = persisted_files(profile, _persist_entries(changes)) if persist else {}
    to_write = [(c.key, c.new) for c in changes if c.action == "change" and c.new is not None]
    if txn is not None:
        txn.begin(profile.name, [key for key, _ in to_write], files)
        for key, new in to_write:
            txn.write_key(key, new)
        for rel, text in files.items():
            txn.write_file(rel, text)
        txn.commit()
    return ApplyReport(profile=profile.name, root=str(procfs.root.resolve()),
                       state_dir=str(store.dir), changes=tuple(changes), files=tuple(files),
                       recovered=recovered, dry_run=txn is None,
                       written=tuple(txn.keys) if txn else (),
                       effects=_effects(profile, procfs, persist, bool(to_write)))


def rollback(store: StateStore, *, root: Path | str | None = None,
             writer: Writer | None = None, on_step: Step | None = None) -> RollbackReport:
    """Restore every original value and file the backup holds (content, mode, owner), remove
    the directories apply created, then remove the backup. Idempotent: with no backup there is
    nothing to do."""
    step = on_step or no_step
    nothing = RollbackReport(root=None if root is None else str(root), state_dir=str(store.dir),
                             message=f"nothing to roll back (no backup in {store.dir})")
    if not store.exists():
        return nothing
    with store.locked(on_wait=step):
        backup = store.load()
        if backup is None:
            return nothing
        if root is not None and Path(root).resolve() != Path(backup.root):
            raise BadInput(f"{store.file}: the backup is for root {backup.root}, not {root}")
        procfs = ProcFS(backup.root)
        keys, paths = list(backup.sysctl), list(backup.files)
        _, failed = _restore(writer or procfs_writer(procfs), procfs, RootDir(backup.root),
                             backup.sysctl, keys, backup.files, backup.meta, paths,
                             list(backup.dirs), step)
        if failed:
            raise ApplyFailed(f"rollback could not restore: {'; '.join(failed)} "
                              f"(backup kept in {store.file}; fix and run rollback again)")
        store.clear(step=step)
    what = ", ".join([*backup.applied, *([backup.pending_profile] if backup.pending_profile else [])])
    msg = f"restored {len(keys)} key(s) and {len(paths)} file(s) changed by {what}"
    if not backup.complete:
        msg = f"the last apply ({backup.pending_profile!r}) was interrupted; " + msg
    return RollbackReport(root=backup.root, state_dir=str(store.dir), restored=tuple(keys),
                          files=tuple(paths), interrupted=not backup.complete, message=msg)
