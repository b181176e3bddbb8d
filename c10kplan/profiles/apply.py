"""Apply a profile to /proc/sys (and, with persist, to files under the root); roll it back.

Order of an apply (after tuned's sysctl plugin): read every original value, save them to the
backup (state dir, mode 0600) BEFORE the first write, write only what changes, re-read each
value to verify, then mark the backup complete. Any failed write restores every key already
written (and every file already replaced) and raises ApplyFailed naming the key and errno.

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

from c10kplan.errors import ApplyFailed, BadInput, ProfileError, errno_name
from c10kplan.files import atomic_write
from c10kplan.host.parse import parse_ints
from c10kplan.host.procfs import ProcFS, sysctl_relpath
from c10kplan.profiles.backup import Backup, StateStore
from c10kplan.profiles.files import read_or_none, restore_file
from c10kplan.profiles.model import Profile, Setting
from c10kplan.profiles.persist import persisted_files
from c10kplan.profiles.schema import SUPPORTED

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
    """`--keys 'net.*,fs.file-max'` -> ("net.*", "fs.file-max")."""
    if keys is None:
        return ()
    pats = tuple(p.strip() for p in keys.split(",") if p.strip())
    if not pats:
        raise BadInput(f"--keys {keys!r}: no pattern given")
    return pats


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


def _restore_sysctls(writer: Writer, procfs: ProcFS, originals: dict[str, str],
                     keys: list[str]) -> list[str]:
    """Write the raw original back for each key that differs; returns failures."""
    failed = []
    for key in reversed(keys):
        raw = originals.get(key)
        if raw is None:
            continue
        current = procfs.read(sysctl_relpath(key))
        if current == raw:
            continue
        try:
            writer(key, raw)
        except OSError as exc:
            failed.append(f"{key}: {_errno_text(exc)}")
    return failed


def _restore_files(root: Path, originals: dict[str, str | None], paths: list[str]) -> list[str]:
    failed = []
    for rel in reversed(paths):
        if rel not in originals:
            continue
        try:
            restore_file(root / rel, originals[rel])
        except OSError as exc:
            failed.append(f"{rel}: {_errno_text(exc)}")
    return failed


def _recover(store: StateStore, backup: Backup, procfs: ProcFS, writer: Writer) -> str:
    """Undo the partial changes of an interrupted apply (its pending_* values)."""
    failed = _restore_sysctls(writer, procfs, backup.pending_sysctl, list(backup.pending_sysctl))
    failed += _restore_files(Path(backup.root), backup.pending_files, list(backup.pending_files))
    if failed:
        raise ApplyFailed(f"an earlier apply of {backup.pending_profile!r} was interrupted and "
                          f"could not be undone: {'; '.join(failed)}")
    if backup.applied:
        store.save(backup.model_copy(update={"pending_profile": None, "pending_sysctl": {},
                                             "pending_files": {}}))
    else:
        store.clear()
    return (f"an earlier apply of {backup.pending_profile!r} was interrupted; its partial "
            f"changes ({len(backup.pending_sysctl)} key(s)) were rolled back first")


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


def apply_profile(
    profile: Profile,
    *,
    procfs: ProcFS,
    store: StateStore,
    patterns: tuple[str, ...] = (),
    dry_run: bool = False,
    persist: bool = False,
    writer: Writer | None = None,
) -> ApplyReport:
    """Apply (or with dry_run, only diff) `profile`. See the module docstring for the order."""
    write = writer or procfs_writer(procfs)
    root = procfs.root.resolve()
    backup = store.load()
    if backup is not None and Path(backup.root) != root:
        raise BadInput(f"{store.file}: holds a backup for root {backup.root}, not {root}; "
                       f"roll that back first (c10kplan rollback --state-dir {store.dir})")
    recovered = None
    if backup is not None and not backup.complete:
        if dry_run:
            recovered = (f"an earlier apply of {backup.pending_profile!r} was interrupted; "
                         "apply or rollback will undo its partial changes first")
        else:
            recovered = _recover(store, backup, procfs, write)
            backup = store.load()

    changes = plan_changes(profile, procfs, patterns)
    files = persisted_files(profile, _persist_entries(changes)) if persist else {}
    common = {"profile": profile.name, "root": str(root), "state_dir": str(store.dir),
              "changes": tuple(changes), "files": tuple(files), "recovered": recovered}
    to_write = [c for c in changes if c.action == "change"]
    if dry_run:
        return ApplyReport(dry_run=True, effects=_effects(profile, procfs, persist, bool(to_write)),
                           **common)

    before_sysctl = {}
    for c in to_write:
        raw = procfs.read(sysctl_relpath(c.key))
        if raw is None:
            raise ApplyFailed(f"{c.key}: cannot read the current value; nothing was changed")
        before_sysctl[c.key] = raw
    before_files: dict[str, str | None] = {}
    for rel in files:
        try:
            before_files[rel] = read_or_none(root / rel)
        except OSError as exc:
            raise ApplyFailed(f"cannot read {root / rel} to back it up: {_errno_text(exc)}; "
                              "nothing was changed") from None
        except UnicodeDecodeError:
            raise ApplyFailed(f"{root / rel} is not UTF-8 text, so it cannot be backed up; "
                              "move it aside; nothing was changed") from None
    prior = backup or Backup(root=str(root))
    in_progress = prior.model_copy(update={
        "pending_profile": profile.name,
        "pending_sysctl": before_sysctl,
        "pending_files": before_files,
        "sysctl": {**before_sysctl, **prior.sysctl},  # an older original wins
        "files": {**before_files, **prior.files},
    })
    store.save(in_progress)  # before the first write

    written: list[str] = []
    replaced: list[str] = []

    def undo(reason: str) -> ApplyFailed:
        failed = _restore_sysctls(write, procfs, before_sysctl, written)
        failed += _restore_files(root, before_files, replaced)
        if failed:
            return ApplyFailed(f"{reason}; restoring FAILED for {'; '.join(failed)} "
                               f"(backup kept in {store.file})")
        if backup is not None:
            store.save(prior)
        else:
            store.clear()
        return ApplyFailed(f"{reason}; restored {len(written)} key(s) already written, "
                           "nothing was changed")

    for c in to_write:
        assert c.new is not None
        try:
            write(c.key, c.new + "\n")
        except OSError as exc:
            raise undo(f"writing {c.key} = {c.new} failed: {_errno_text(exc)}") from None
        written.append(c.key)
        readback = procfs.read_sysctl(c.key)
        if readback is None or _norm(readback) != _norm(c.new):
            raise undo(f"{c.key}: wrote {c.new!r} but the kernel reads back {readback!r}") from None
    for rel, text in files.items():
        try:
            atomic_write(root / rel, text)
        except OSError as exc:
            raise undo(f"writing {root / rel} failed: {_errno_text(exc)}") from None
        replaced.append(rel)

    store.save(in_progress.model_copy(update={
        "pending_profile": None, "pending_sysctl": {}, "pending_files": {},
        "applied": (*prior.applied, profile.name)}))
    return ApplyReport(dry_run=False, written=tuple(written),
                       effects=_effects(profile, procfs, persist, bool(written)), **common)


def rollback(store: StateStore, *, root: Path | str | None = None,
             writer: Writer | None = None) -> RollbackReport:
    """Restore every original value and file the backup holds, then remove the backup.
    Idempotent: with no backup there is nothing to do."""
    backup = store.load()
    if backup is None:
        return RollbackReport(root=None if root is None else str(root), state_dir=str(store.dir),
                              message=f"nothing to roll back (no backup in {store.dir})")
    if root is not None and Path(root).resolve() != Path(backup.root):
        raise BadInput(f"{store.file}: the backup is for root {backup.root}, not {root}")
    procfs = ProcFS(backup.root)
    write = writer or procfs_writer(procfs)
    keys = list(backup.sysctl)
    paths = list(backup.files)
    failed = _restore_sysctls(write, procfs, backup.sysctl, keys)
    failed += _restore_files(Path(backup.root), backup.files, paths)
    if failed:
        raise ApplyFailed(f"rollback could not restore: {'; '.join(failed)} "
                          f"(backup kept in {store.file}; fix and run rollback again)")
    store.clear()
    what = ", ".join([*backup.applied, *([backup.pending_profile] if backup.pending_profile else [])])
    msg = f"restored {len(keys)} key(s) and {len(paths)} file(s) changed by {what}"
    if not backup.complete:
        msg = f"the last apply ({backup.pending_profile!r}) was interrupted; " + msg
    return RollbackReport(root=backup.root, state_dir=str(store.dir), restored=tuple(keys),
                          files=tuple(paths), interrupted=not backup.complete, message=msg)


