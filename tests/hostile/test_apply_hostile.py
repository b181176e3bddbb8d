"""apply / rollback against an attacker and a careless admin (issue 12): planted backups,
unsafe state dirs, symlinks at persist targets, a held lock, a write that fails half-way,
metadata that must come back exactly. Every refusal is one line on stderr, exit 3, and changes
nothing. All on fake trees under tmp_path; the state dir lives beside the tree."""

from __future__ import annotations

import errno
import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from c10kplan.cli.app import main
from c10kplan.errors import ApplyFailed, EnvironmentProblem
from c10kplan.host.procfs import ProcFS, sysctl_relpath
from c10kplan.profiles.apply import apply_profile, procfs_writer, rollback
from c10kplan.profiles.backup import LOCK_FILE, StateStore
from c10kplan.profiles.merge import resolve
from c10kplan.profiles.persist import LIMITS_CONF, MANAGED_DIRS, SYSCTL_CONF, SYSTEMD_DROPIN
from tests.hostile.tree_state import full_snapshot, temp_files
from tests.unit.test_profiles_apply import DEFAULTS, make_tree, read

REPO = Path(__file__).resolve().parents[2]
OTHER_UID, OTHER_GID = 4321, 8765  # not the running user (tests run as root: chown works)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "root")


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def assert_refused(code: int, err: str, *words: str) -> None:
    """Exit 3, exactly one line `c10kplan: error: ...`, naming what was refused."""
    assert code == 3, err
    assert err.count("\n") == 1 and err.startswith("c10kplan: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)


def planted_backup(root: str, files: dict, **extra: object) -> str:
    return json.dumps({"version": 2, "root": root, "applied": ["c10k"], "files": files,
                       **extra})


def plant(state: Path, text: str | bytes, dir_mode: int = 0o700, file_mode: int = 0o600) -> None:
    state.mkdir(exist_ok=True)
    os.chmod(state, dir_mode)
    data = text.encode() if isinstance(text, str) else text
    (state / "backup.json").write_bytes(data)
    os.chmod(state / "backup.json", file_mode)


# -- backup.json is not trusted blindly ----------------------------------------------------------

def test_world_writable_state_dir_with_planted_backup_is_refused(tmp_path, capsys) -> None:
    """The issue's setup: `mkdir -m777 S`, a backup naming ../planted_rel.conf and an absolute
    path. Rollback must refuse before creating either."""
    root = tmp_path / "r"
    root.mkdir()
    state = tmp_path / "S"
    plant(state, planted_backup(str(root), {"../planted_rel.conf": "x = 1\n",
                                            str(tmp_path / "x" / "planted_abs.conf"): "y\n"}),
          dir_mode=0o777)
    code, _, err = cli(["rollback", "--state-dir", str(state)], capsys)
    assert_refused(code, err, "writable by group or others", "0777")
    assert not (tmp_path / "planted_rel.conf").exists()
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o720])
def test_group_or_world_writable_state_dir_refused_by_apply_and_rollback(tree, tmp_path, capsys,
                                                                         mode) -> None:
    state = tmp_path / "S"
    state.mkdir()
    os.chmod(state, mode)
    before = full_snapshot(tree)
    code, _, err = cli(["apply", "-p", "c10k", "--yes", "--root", str(tree),
                        "--state-dir", str(state)], capsys)
    assert_refused(code, err, "writable by group or others")
    code, _, err = cli(["rollback", "--state-dir", str(state)], capsys)
    assert_refused(code, err, "writable by group or others")
    assert full_snapshot(tree) == before and os.listdir(state) == []


def test_state_dir_owned_by_another_user_is_refused(tree, tmp_path, capsys) -> None:
    state = tmp_path / "S"
    state.mkdir(mode=0o700)
    os.chown(state, OTHER_UID, OTHER_GID)
    before = full_snapshot(tree)
    code, _, err = cli(["apply", "-p", "c10k", "--yes", "--root", str(tree),
                        "--state-dir", str(state)], capsys)
    assert_refused(code, err, f"owned by uid {OTHER_UID}")
    code, _, err = cli(["apply", "-p", "c10k", "--dry-run", "--root", str(tree),
                        "--state-dir", str(state)], capsys)
    assert_refused(code, err, f"owned by uid {OTHER_UID}")
    assert full_snapshot(tree) == before


@pytest.mark.parametrize("how", ["mode 0666", "mode 0620", "other owner", "symlink"])
def test_unsafe_backup_file_is_refused(tmp_path, capsys, how) -> None:
    root = tmp_path / "r"
    root.mkdir()
    state = tmp_path / "S"
    text = planted_backup(str(root), {SYSCTL_CONF: "planted = 1\n"})
    if how == "symlink":
        elsewhere = tmp_path / "elsewhere.json"
        elsewhere.write_text(text)
        state.mkdir(mode=0o700)
        (state / "backup.json").symlink_to(elsewhere)
    else:
        plant(state, text, file_mode=0o666 if how == "mode 0666" else 0o620 if how == "mode 0620"
              else 0o600)
        if how == "other owner":
            os.chown(state / "backup.json", OTHER_UID, OTHER_GID)
    code, _, err = cli(["rollback", "--state-dir", str(state)], capsys)
    assert_refused(code, err, "backup")
    assert not (root / SYSCTL_CONF).exists()


@pytest.mark.parametrize("files,dirs,sysctl,root_of,word", [
    ({"../planted_rel.conf": "x\n"}, [], {}, None, "not one of the files apply writes"),
    ({"/tmp/x/planted_abs.conf": "x\n"}, [], {}, None, "not one of the files apply writes"),
    ({"etc/sysctl.d/../../../planted.conf": "x\n"}, [], {}, None, "not one of the files"),
    ({"etc/passwd": "root::0:0::/:/bin/sh\n"}, [], {}, None, "not one of the files"),
    ({}, ["../../outside"], {}, None, "not one apply creates"),
    ({}, ["etc/ssh"], {}, None, "not one apply creates"),
    ({}, [], {"net/../../../etc/shadow": "x"}, None, "sysctl key"),
    ({}, [], {"net..core": "1"}, None, "sysctl key"),
    ({SYSCTL_CONF: "x\n"}, [], {}, "relative/root", "not an absolute, normalized path"),
    ({SYSCTL_CONF: "x\n"}, [], {}, "/tmp/a/../b", "not an absolute, normalized path"),
])
def test_backup_paths_that_escape_the_root_are_refused(tmp_path, capsys, files, dirs, sysctl,
                                                       root_of, word) -> None:
    root = tmp_path / "r"
    root.mkdir()
    state = tmp_path / "S"
    plant(state, planted_backup(root_of or str(root), files, dirs=dirs, sysctl=sysctl))
    before = full_snapshot(tmp_path, skip=("S",))
    code, _, err = cli(["rollback", "--state-dir", str(state)], capsys)
    assert_refused(code, err, "refusing the backup", word)
    assert full_snapshot(tmp_path, skip=("S",)) == before
    assert (state / "backup.json").exists()  # kept for a human to inspect


def test_backup_through_a_symlinked_parent_is_refused(tmp_path, capsys) -> None:
    root = tmp_path / "r"
    (root / "etc").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "etc" / "sysctl.d").symlink_to(outside)
    state = tmp_path / "S"
    plant(state, planted_backup(str(root), {SYSCTL_CONF: "planted = 1\n"}))
    code, _, err = cli(["rollback", "--state-dir", str(state)], capsys)
    assert_refused(code, err, "etc/sysctl.d is a symlink")
    assert os.listdir(outside) == []


@pytest.mark.parametrize("content,word", [
    (b"\xff\xfe{not utf-8", "not UTF-8"),
    (b"[" * 5000 + b"]" * 5000, "corrupt"),
    (b'{"root": "/x", "sysctl": {"a": ' + b"9" * 5000 + b"}}", "corrupt"),
    (b"", "corrupt"),
])
def test_corrupt_backup_is_one_line(tmp_path, capsys, content, word) -> None:
    state = tmp_path / "S"
    plant(state, content)
    code, _, err = cli(["rollback", "--state-dir", str(state)], capsys)
    assert_refused(code, err, word)


def test_huge_backup_is_refused_with_a_bounded_read(tmp_path, capsys) -> None:
    state = tmp_path / "S"
    plant(state, b"")
    with open(state / "backup.json", "wb") as fh:
        fh.truncate(1 << 30)  # 1 GiB, sparse: an unbounded read would take a GiB of RAM
    code, _, err = cli(["rollback", "--state-dir", str(state)], capsys)
    assert_refused(code, err, "larger than")


def run_cli_bounded(args: list[str]) -> subprocess.CompletedProcess[str]:
    """The CLI in a child with a deadline: a case that could hang must not hang the suite."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "c10kplan", *args], capture_output=True,
                          text=True, timeout=60, env=env, cwd=REPO)


def test_backup_that_is_a_fifo_is_refused_without_hanging(tmp_path) -> None:
    state = tmp_path / "S"
    state.mkdir(mode=0o700)
    os.mkfifo(state / "backup.json", 0o600)
    proc = run_cli_bounded(["rollback", "--state-dir", str(state)])
    assert_refused(proc.returncode, proc.stderr, "not a regular file")


@pytest.mark.parametrize("what", ["lock symlink", "state dir is a file"])
def test_odd_state_dir_entries_are_refused(tree, tmp_path, capsys, what) -> None:
    state = tmp_path / "S"
    if what == "lock symlink":
        state.mkdir(mode=0o700)
        (state / LOCK_FILE).symlink_to(tmp_path / "target-of-lock")
    else:
        state.write_text("a file\n")
    before = full_snapshot(tree)
    code, _, err = cli(["apply", "-p", "c10k", "--yes", "--root", str(tree),
                        "--state-dir", str(state)], capsys)
    assert_refused(code, err, str(state))
    assert full_snapshot(tree) == before
    assert not (tmp_path / "target-of-lock").exists()


# -- symlinks and odd files at the persist targets -------------------------------------------------

def _link(tree: Path, rel: str, target: Path) -> None:
    (tree / rel).parent.mkdir(parents=True, exist_ok=True)
    (tree / rel).symlink_to(target)


@pytest.mark.parametrize("setup,word", [
    ("symlink to a 0600 secret", "is a symlink"),
    ("dangling symlink", "is a symlink"),
    ("symlinked parent", "etc/security/limits.d is a symlink"),
    ("symlinked etc", "/etc is a symlink"),
    ("fifo", "not a regular file"),
    ("hard link", "has 2 hard links"),
    ("huge", "larger than"),
])
def test_odd_persist_target_is_refused_and_nothing_changes(tree, tmp_path, setup, word) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret"
    secret.write_text("the secret\n")
    os.chmod(secret, 0o600)
    if setup == "symlink to a 0600 secret":
        _link(tree, SYSCTL_CONF, secret)
    elif setup == "dangling symlink":
        _link(tree, SYSCTL_CONF, outside / "nothing-here")
    elif setup == "symlinked parent":
        (tree / "etc" / "security").mkdir(parents=True)
        (tree / "etc" / "security" / "limits.d").symlink_to(outside)
    elif setup == "symlinked etc":
        (tree / "etc").symlink_to(outside)
    elif setup == "fifo":
        (tree / SYSCTL_CONF).parent.mkdir(parents=True)
        os.mkfifo(tree / SYSCTL_CONF)
    elif setup == "hard link":
        (tree / SYSCTL_CONF).parent.mkdir(parents=True)
        os.link(secret, tree / SYSCTL_CONF)
    elif setup == "huge":
        (tree / LIMITS_CONF).parent.mkdir(parents=True)
        with open(tree / LIMITS_CONF, "wb") as fh:
            fh.truncate(64 << 20)
    before, outside_before = full_snapshot(tree), full_snapshot(outside)
    proc = run_cli_bounded(["apply", "-p", "c100k", "--yes", "--persist", "--root", str(tree),
                            "--state-dir", str(tmp_path / "S")])
    assert_refused(proc.returncode, proc.stderr, word, "nothing was changed")
    assert full_snapshot(tree) == before  # sysctls untouched, the link still a link
    assert full_snapshot(outside) == outside_before  # the secret: same bytes, still 0600
    assert not (tmp_path / "S" / "backup.json").exists()


def test_symlink_planted_after_apply_is_not_followed_by_rollback(tree, tmp_path, capsys) -> None:
    state = tmp_path / "S"
    store = StateStore(state)
    apply_profile(resolve("c10k"), procfs=ProcFS(tree), store=store, persist=True)
    secret = tmp_path / "secret"
    secret.write_text("the secret\n")
    os.chmod(secret, 0o600)
    (tree / SYSCTL_CONF).unlink()
    (tree / SYSCTL_CONF).symlink_to(secret)
    code, _, err = cli(["rollback", "--state-dir", str(state)], capsys)
    assert_refused(code, err, "is a symlink", "backup kept")
    assert secret.read_text() == "the secret\n" and (tree / SYSCTL_CONF).is_symlink()
    assert store.load() is not None


# -- the lock --------------------------------------------------------------------------------------

class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, dt: float) -> None:
        self.sleeps += 1
        self.now += dt


def hold_lock(state: Path) -> int:
    import fcntl

    state.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(state / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


@pytest.mark.parametrize("op", ["apply", "rollback"])
def test_a_held_lock_makes_the_second_one_wait_then_refuse(tree, tmp_path, op) -> None:
    state = tmp_path / "S"
    if op == "rollback":
        apply_profile(resolve("c10k"), procfs=ProcFS(tree), store=StateStore(state))
    before = full_snapshot(tree)
    fd = hold_lock(state)
    clock = FakeClock()
    store = StateStore(state, lock_timeout=3.0, clock=clock, sleep=clock.sleep)
    try:
        with pytest.raises(EnvironmentProblem, match="holds the lock") as exc:
            if op == "apply":
                apply_profile(resolve("c1m"), procfs=ProcFS(tree), store=store)
            else:
                rollback(store)
    finally:
        os.close(fd)
    assert exc.value.exit_status == 3
    assert clock.now >= 3.0 and clock.sleeps >= 10  # it waited the whole bound, in steps
    assert full_snapshot(tree) == before


def test_the_second_apply_proceeds_when_the_first_releases(tree, tmp_path) -> None:
    state = tmp_path / "S"
    fd = hold_lock(state)
    clock = FakeClock()

    def release_on_first_wait(dt: float) -> None:  # the other apply finishes while we wait
        nonlocal fd
        if fd >= 0:
            os.close(fd)
            fd = -1
        clock.sleep(dt)

    store = StateStore(state, lock_timeout=3.0, clock=clock, sleep=release_on_first_wait)
    report = apply_profile(resolve("c10k"), procfs=ProcFS(tree), store=store)
    assert report.written and clock.sleeps == 1
    assert read(tree, "net.core.somaxconn") == "8192"


def test_two_concurrent_applies_of_different_profiles_keep_every_original(tmp_path) -> None:
    """Two processes apply c10k and c1m (with persist) on one state dir at the same moment: the
    lock serializes them, and one rollback returns every byte, mode and owner."""
    tree = make_tree(tmp_path / "root")
    (tree / SYSCTL_CONF).parent.mkdir(parents=True)
    (tree / SYSCTL_CONF).write_text("# the admin's\nnet.core.somaxconn = 1024\n")
    os.chown(tree / SYSCTL_CONF, OTHER_UID, OTHER_GID)
    os.chmod(tree / SYSCTL_CONF, 0o640)
    before = full_snapshot(tree)
    state = tmp_path / "S"
    lock_fd = hold_lock(state)  # both children start while the lock is taken ...
    waiting_r, waiting_w = os.pipe()
    pids = []
    for name in ("c10k", "c1m"):  # a bounded fork: exactly two children
        pid = os.fork()
        if pid == 0:  # child: apply, report only through the exit code
            code = 1
            os.close(lock_fd)  # the parent's lock (a fork shares it): only the parent holds it
            try:
                said = []

                def on_step(step: str) -> None:
                    if step == "lock-wait" and not said:
                        said.append(os.write(waiting_w, b"w"))

                apply_profile(resolve(name), procfs=ProcFS(tree), persist=True,
                              store=StateStore(state, lock_timeout=60.0), on_step=on_step)
                code = 0
            except BaseException as exc:  # the parent sees the exit code; say why
                os.write(2, f"child {name}: {exc!r}\n".encode())
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(waiting_w)
    got = b""
    while len(got) < 2:  # ... and each is waiting on it before it is released
        ready, _, _ = select.select([waiting_r], [], [], 60)
        assert ready, "a child never reached the lock"
        got += os.read(waiting_r, 2)
    os.close(waiting_r)
    os.close(lock_fd)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    assert codes == [0, 0]
    backup = StateStore(state).load()
    assert sorted(backup.applied) == ["c10k", "c1m"] and backup.complete
    assert backup.sysctl["net.core.somaxconn"] == DEFAULTS["net.core.somaxconn"] + "\n"
    assert read(tree, "net.core.somaxconn") == "32768"  # c1m ran (first or second)
    rollback(StateStore(state))
    assert full_snapshot(tree) == before


# -- a failed write never truncates a key ----------------------------------------------------------

def test_a_write_that_truncates_then_fails_is_restored_too(tree, tmp_path) -> None:
    """EACCES on the third key's write, after the fake file was already truncated (open "w"
    then a refused write): the failing key is in the restore list and comes back."""
    before = full_snapshot(tree)
    base = procfs_writer(ProcFS(tree))
    calls: list[str] = []

    def truncating(key: str, text: str) -> None:
        calls.append(key)
        if len(calls) == 3:
            (tree / sysctl_relpath(key)).write_text("")  # half-way: the key is empty now
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        base(key, text)

    with pytest.raises(ApplyFailed, match="EACCES") as exc:
        apply_profile(resolve("c1m"), procfs=ProcFS(tree), store=StateStore(tmp_path / "S"),
                      writer=truncating)
    assert "restored 3 key(s)" in str(exc.value)  # two written + the truncated one
    assert full_snapshot(tree) == before


# -- rollback is exact on metadata -----------------------------------------------------------------

def test_mode_owner_and_created_directories_come_back_exactly(tree, tmp_path) -> None:
    (tree / SYSCTL_CONF).parent.mkdir(parents=True)
    (tree / SYSCTL_CONF).write_text("# admin\n")
    os.chmod(tree / SYSCTL_CONF, 0o640)
    os.chown(tree / SYSCTL_CONF, OTHER_UID, OTHER_GID)
    before = full_snapshot(tree)
    store = StateStore(tmp_path / "S")
    apply_profile(resolve("c100k"), procfs=ProcFS(tree), store=store, persist=True)
    st = os.stat(tree / SYSCTL_CONF)
    assert (st.st_mode & 0o777, st.st_uid) == (0o644, os.geteuid())  # apply's file
    assert (tree / LIMITS_CONF).is_file() and (tree / SYSTEMD_DROPIN).is_file()
    assert set(store.load().dirs) == {"etc/security", "etc/security/limits.d", "etc/systemd",
                                      "etc/systemd/system.conf.d"}
    rollback(store)
    assert full_snapshot(tree) == before  # 0640, uid 4321, and no etc/security, etc/systemd


def test_a_created_directory_someone_used_since_stays(tree, tmp_path) -> None:
    store = StateStore(tmp_path / "S")
    apply_profile(resolve("c100k"), procfs=ProcFS(tree), store=store, persist=True)
    (tree / "etc" / "security" / "limits.d" / "50-admin.conf").write_text("* soft core 0\n")
    rollback(store)
    assert (tree / "etc" / "security" / "limits.d" / "50-admin.conf").is_file()
    assert not (tree / LIMITS_CONF).exists() and not (tree / "etc" / "systemd").exists()
    assert not (tree / "etc" / "sysctl.d").exists()
    assert set(MANAGED_DIRS) >= {"etc/security/limits.d", "etc/sysctl.d"}


def test_recovery_sweeps_the_temp_files_a_killed_apply_left(tree, tmp_path, capsys) -> None:
    state = tmp_path / "S"
    store = StateStore(state)
    before = full_snapshot(tree)

    class Killed(BaseException):
        pass

    def die_at_rename(step: str) -> None:
        if step == "rename" and (tree / "etc" / "sysctl.d").exists():
            raise Killed  # after the temp file of the sysctl.d file exists, before its rename

    with pytest.raises(Killed):
        apply_profile(resolve("c10k"), procfs=ProcFS(tree), store=store, persist=True,
                      on_step=die_at_rename)
    assert temp_files(tree) == []  # an exception still removes the temp file ...
    assert not store.load().complete
    # ... a kill -9 between create and rename does not (tests/hostile/test_apply_kill.py):
    (tree / "etc" / "sysctl.d" / ".90-c10kplan.conf.dead.tmp").write_text("half")
    (state / ".backup.json.dead.tmp").write_text("{")  # a killed save of the backup, too
    code, out, _ = cli(["rollback", "--state-dir", str(state)], capsys)
    assert code == 0 and "interrupted" in out
    assert temp_files(tree, state) == []
    assert full_snapshot(tree) == before
