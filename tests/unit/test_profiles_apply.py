"""apply / rollback against fake /proc trees (every supported key, fs.* included)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from c10kplan.errors import ApplyFailed, BadInput, ProfileError
from c10kplan.host.procfs import ProcFS, sysctl_relpath
from c10kplan.profiles.apply import apply_profile, plan_changes, procfs_writer, rollback
from c10kplan.profiles.backup import StateStore
from c10kplan.profiles.merge import resolve
from c10kplan.profiles.persist import LIMITS_CONF, SYSCTL_CONF, SYSTEMD_DROPIN
from c10kplan.profiles.schema import SUPPORTED

# Kernel-looking defaults (multi-value keys are tab-separated, as the kernel prints them).
DEFAULTS = {
    "fs.file-max": "2466174",
    "fs.nr_open": "1048576",
    "fs.epoll.max_user_watches": "5446126",
    "net.core.somaxconn": "4096",
    "net.core.netdev_max_backlog": "1000",
    "net.core.rmem_max": "212992",
    "net.core.wmem_max": "212992",
    "net.core.rmem_default": "212992",
    "net.core.wmem_default": "212992",
    "net.core.optmem_max": "131072",
    "net.core.busy_read": "0",
    "net.core.busy_poll": "0",
    "net.ipv4.tcp_max_syn_backlog": "2048",
    "net.ipv4.ip_local_port_range": "32768\t60999",
    "net.ipv4.tcp_rmem": "4096\t131072\t6291456",
    "net.ipv4.tcp_wmem": "4096\t16384\t4194304",
    "net.ipv4.tcp_mem": "287898\t383866\t575796",
    "net.ipv4.tcp_max_orphans": "131072",
    "net.ipv4.tcp_max_tw_buckets": "131072",
    "net.ipv4.tcp_tw_reuse": "2",
    "net.ipv4.tcp_fin_timeout": "60",
    "net.ipv4.tcp_syncookies": "1",
    "net.ipv4.tcp_slow_start_after_idle": "1",
    "net.ipv4.tcp_fastopen": "1",
    "net.ipv4.tcp_notsent_lowat": "4294967295",
    "net.ipv4.tcp_keepalive_time": "7200",
    "net.ipv4.tcp_keepalive_intvl": "75",
    "net.ipv4.tcp_keepalive_probes": "9",
}


def make_tree(root: Path, values: dict[str, str] | None = None) -> Path:
    """A fake proc/sys tree with every supported key (kernel format: value + newline)."""
    for key, value in (values or DEFAULTS).items():
        path = root / sysctl_relpath(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root, byte for byte (the state dir must live elsewhere)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def read(root: Path, key: str) -> str:
    return (root / sysctl_relpath(key)).read_text().strip()


def failing_on(n: int, tree: Path, error, calls: list[str] | None = None):  # noqa: ANN001
    """The writer seam, raising error() on the n-th write; records the keys in `calls`."""
    base = procfs_writer(ProcFS(tree))
    seen = calls if calls is not None else []

    def write(key: str, text: str) -> None:
        seen.append(key)
        if len(seen) == n:
            raise error()
        base(key, text)

    return write


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "root")


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state")


def test_fake_tree_covers_every_supported_key() -> None:
    assert set(DEFAULTS) == set(SUPPORTED)


def test_apply_every_shipped_profile_then_rollback_restores_bytes(tree: Path, store: StateStore) -> None:
    before = snapshot(tree)
    for name in ("base", "c10k", "c100k", "c1m", "low-latency"):
        profile = resolve(name)
        report = apply_profile(profile, procfs=ProcFS(tree), store=store, persist=True)
        for c in report.changes:
            assert c.action != "skipped", c
        # every key now holds what the profile asked for (or a higher host value)
        for key, s in profile.sysctl.items():
            now = tuple(int(t) for t in read(tree, key).split())
            if s.raise_only:
                assert all(a >= b for a, b in zip(now, s.ints))
            else:
                assert now == s.ints, key
        back = rollback(store)
        assert snapshot(tree) == before, name
        assert back.restored


def test_c1m_values_written_fs_included(tree: Path, store: StateStore) -> None:
    report = apply_profile(resolve("c1m"), procfs=ProcFS(tree), store=store)
    assert read(tree, "fs.nr_open") == "2097152"
    assert read(tree, "fs.file-max") == "2466174"  # raise only: host already higher
    assert read(tree, "net.ipv4.tcp_rmem") == "1024 4096 16777216"
    assert read(tree, "net.ipv4.tcp_mem") == "1572864 2097152 3145728"
    actions = {c.key: c.action for c in report.changes}
    assert actions["fs.file-max"] == "kept-higher"
    assert actions["fs.nr_open"] == "change"
    assert "fs.file-max" not in report.written


def test_raise_only_is_elementwise(tree: Path, store: StateStore, tmp_path: Path) -> None:
    (tree / sysctl_relpath("net.ipv4.tcp_mem")).write_text("2000000\t100\t200\n")
    prof = tmp_path / "p.toml"
    prof.write_text('[sysctl]\n"net.ipv4.tcp_mem" = ">10 1000 3000000"\n')
    report = apply_profile(resolve(str(prof)), procfs=ProcFS(tree), store=store)
    assert report.changes[0].action == "change"
    assert read(tree, "net.ipv4.tcp_mem") == "2000000 1000 3000000"


def test_dry_run_changes_nothing(tree: Path, store: StateStore) -> None:
    before = snapshot(tree)
    report = apply_profile(resolve("c1m"), procfs=ProcFS(tree), store=store, dry_run=True,
                           persist=True)
    assert report.dry_run and not report.written
    assert {c.action for c in report.changes} >= {"change", "kept-higher"}
    assert report.files == (SYSCTL_CONF, LIMITS_CONF, SYSTEMD_DROPIN)
    assert snapshot(tree) == before
    assert not store.file.exists()


def test_keys_glob_applies_only_matching(tree: Path, store: StateStore) -> None:
    report = apply_profile(resolve("c1m"), procfs=ProcFS(tree), store=store, patterns=("net.*",))
    assert read(tree, "fs.nr_open") == "1048576"
    assert read(tree, "net.core.somaxconn") == "32768"
    skipped = {c.key for c in report.changes if c.action == "skipped"}
    assert skipped == {k for k in resolve("c1m").sysctl if not k.startswith("net.")}


@pytest.mark.parametrize("keys", ["", " ", ",,"])
def test_empty_keys_filter_is_bad_input_not_every_key(keys: str) -> None:
    # An empty --keys (e.g. from an empty $KEYS) must not mean "no filter": that would
    # write host-wide fs.* keys the user meant to leave alone.
    from c10kplan.profiles.apply import parse_patterns

    with pytest.raises(BadInput, match="no pattern given"):
        parse_patterns(keys)
    assert parse_patterns(None) == ()


def test_same_value_is_not_written(tree: Path, store: StateStore) -> None:
    calls: list[str] = []
    base = procfs_writer(ProcFS(tree))

    def spy(key: str, text: str) -> None:
        calls.append(key)
        base(key, text)

    apply_profile(resolve("c10k"), procfs=ProcFS(tree), store=store, writer=spy)
    first = list(calls)
    calls.clear()
    report = apply_profile(resolve("c10k"), procfs=ProcFS(tree), store=store, writer=spy)
    assert first and calls == []
    assert {c.action for c in report.changes} <= {"same", "kept-higher"}


def test_backup_saved_0600_before_first_write(tree: Path, store: StateStore) -> None:
    base = procfs_writer(ProcFS(tree))
    seen: list[dict] = []

    def check(key: str, text: str) -> None:
        if not seen:
            backup = store.load()
            assert backup is not None and not backup.complete
            seen.append(dict(backup.sysctl))
            assert stat.S_IMODE(os.stat(store.file).st_mode) == 0o600
        base(key, text)

    apply_profile(resolve("c10k"), procfs=ProcFS(tree), store=store, writer=check)
    assert seen[0]["net.core.somaxconn"] == "4096\n"
    assert store.load().complete


def test_failure_on_third_write_restores_everything(tree: Path, store: StateStore) -> None:
    before = snapshot(tree)
    calls: list[str] = []
    flaky = failing_on(3, tree, lambda: OSError(errno.EROFS, os.strerror(errno.EROFS)), calls)
    with pytest.raises(ApplyFailed) as exc:
        apply_profile(resolve("c1m"), procfs=ProcFS(tree), store=store, writer=flaky,
                      persist=True)
    msg = str(exc.value)
    assert calls[2] in msg and "EROFS" in msg and "30" in msg
    assert "restored 2 key(s)" in msg
    assert snapshot(tree) == before
    assert not store.file.exists()  # nothing left to roll back
    assert exc.value.exit_status == 3


def test_failure_keeps_state_of_an_earlier_complete_apply(tree: Path, store: StateStore) -> None:
    apply_profile(resolve("base"), procfs=ProcFS(tree), store=store)
    after_base = snapshot(tree)
    flaky = failing_on(3, tree, lambda: OSError(errno.EINVAL, os.strerror(errno.EINVAL)))
    with pytest.raises(ApplyFailed, match="EINVAL"):
        apply_profile(resolve("c1m"), procfs=ProcFS(tree), store=store, writer=flaky)
    assert snapshot(tree) == after_base
    backup = store.load()
    assert backup.complete and backup.applied == ("base",)
    rollback(store)
    assert read(tree, "net.core.somaxconn") == "4096"


def test_readback_mismatch_is_a_failure(tree: Path, store: StateStore) -> None:
    before = snapshot(tree)
    base = procfs_writer(ProcFS(tree))

    def clamping(key: str, text: str) -> None:  # a kernel that silently clamps one key
        base(key, "1\n" if key == "net.ipv4.tcp_tw_reuse" and text == "1\n" else text)
        if key == "net.ipv4.tcp_tw_reuse" and text == "1\n":
            base(key, "0\n")

    with pytest.raises(ApplyFailed, match="reads back"):
        apply_profile(resolve("c10k"), procfs=ProcFS(tree), store=store, writer=clamping)
    assert snapshot(tree) == before


class Crash(BaseException):
    """Stands in for a kill -9 in the middle of an apply."""


def crash_on(n: int, tree: Path):
    return failing_on(n, tree, Crash)


def test_interrupted_apply_is_rolled_back_by_next_apply(tree: Path, store: StateStore) -> None:
    before = snapshot(tree)
    with pytest.raises(Crash):
        apply_profile(resolve("c1m"), procfs=ProcFS(tree), store=store, writer=crash_on(4, tree))
    assert snapshot(tree) != before  # half-applied
    assert not store.load().complete
    dry = apply_profile(resolve("base"), procfs=ProcFS(tree), store=store, dry_run=True)
    assert "interrupted" in dry.recovered
    report = apply_profile(resolve("base"), procfs=ProcFS(tree), store=store, patterns=("fs.*",))
    assert "interrupted" in report.recovered
    assert read(tree, "net.core.somaxconn") == "4096"  # c1m's partial write undone
    rollback(store)
    assert snapshot(tree) == before


def test_interrupted_apply_is_rolled_back_by_rollback(tree: Path, store: StateStore) -> None:
    before = snapshot(tree)
    with pytest.raises(Crash):
        apply_profile(resolve("c100k"), procfs=ProcFS(tree), store=store, persist=True,
                      writer=crash_on(3, tree))
    report = rollback(store)
    assert report.interrupted and "interrupted" in report.message
    assert snapshot(tree) == before


def test_rollback_is_idempotent(tree: Path, store: StateStore) -> None:
    before = snapshot(tree)
    apply_profile(resolve("c10k"), procfs=ProcFS(tree), store=store)
    rollback(store)
    second = rollback(store)
    assert "nothing to roll back" in second.message
    assert snapshot(tree) == before


def test_second_apply_keeps_the_first_originals(tree: Path, store: StateStore) -> None:
    before = snapshot(tree)
    apply_profile(resolve("c10k"), procfs=ProcFS(tree), store=store)
    apply_profile(resolve("c1m"), procfs=ProcFS(tree), store=store)
    assert store.load().applied == ("c10k", "c1m")
    assert store.load().sysctl["net.core.somaxconn"] == "4096\n"
    rollback(store)
    assert snapshot(tree) == before


def test_persist_writes_files_and_rollback_restores_replaced_ones(tree: Path, store: StateStore) -> None:
    existing = tree / SYSCTL_CONF
    existing.parent.mkdir(parents=True)
    existing.write_text("# an admin's file\nnet.core.somaxconn = 1024\n")
    before = snapshot(tree)
    report = apply_profile(resolve("c100k"), procfs=ProcFS(tree), store=store, persist=True)
    text = existing.read_text()
    assert "net.core.somaxconn = 32768" in text
    assert "net.ipv4.ip_local_port_range = 1024 65535" in text
    assert "fs.file-max = 2466174" in text  # kept-higher: the host's value is persisted
    assert "* hard nofile 262144" in (tree / LIMITS_CONF).read_text()
    assert "DefaultLimitNOFILE=262144:262144" in (tree / SYSTEMD_DROPIN).read_text()
    assert any("next login" in e for e in report.effects)
    assert store.load().files[SYSCTL_CONF] == "# an admin's file\nnet.core.somaxconn = 1024\n"
    rollback(store)
    assert snapshot(tree) == before
    assert not (tree / LIMITS_CONF).exists()


def test_persist_unreadable_original_fails_before_any_change(tree: Path, store: StateStore) -> None:
    (tree / LIMITS_CONF).mkdir(parents=True)  # a directory where the file goes: EISDIR
    before = snapshot(tree)
    with pytest.raises(ApplyFailed, match="EISDIR"):
        apply_profile(resolve("c10k"), procfs=ProcFS(tree), store=store, persist=True)
    assert snapshot(tree) == before
    assert not store.file.exists()


def test_persist_write_failure_restores_sysctls_and_files(tree: Path, store: StateStore) -> None:
    dropin_dir = (tree / SYSTEMD_DROPIN).parent
    dropin_dir.parent.mkdir(parents=True)
    dropin_dir.write_text("not a directory\n")  # the third file cannot be created: EEXIST
    before = snapshot(tree)
    with pytest.raises(ApplyFailed, match="EEXIST"):
        apply_profile(resolve("c10k"), procfs=ProcFS(tree), store=store, persist=True)
    assert snapshot(tree) == before  # sysctls and the two files already written are undone
    assert not (tree / SYSCTL_CONF).exists() and not (tree / LIMITS_CONF).exists()


def test_host_key_absent_is_skipped(tmp_path: Path, store: StateStore) -> None:
    netns_like = {k: v for k, v in DEFAULTS.items() if not k.startswith("fs.")}
    root = make_tree(tmp_path / "ns", netns_like)
    report = apply_profile(resolve("c1m"), procfs=ProcFS(root), store=store)
    skipped = {c.key for c in report.changes if c.action == "skipped"}
    assert skipped == {"fs.file-max", "fs.nr_open", "fs.epoll.max_user_watches"}


def test_unknown_key_allowed_must_exist(tree: Path, store: StateStore, tmp_path: Path) -> None:
    prof = tmp_path / "u.toml"
    prof.write_text('allow_unknown = true\n[sysctl]\n"net.ipv4.tcp_nonexistent_thing" = 1\n')
    before = snapshot(tree)
    with pytest.raises(ProfileError, match="does not exist"):
        apply_profile(resolve(str(prof)), procfs=ProcFS(tree), store=store)
    assert snapshot(tree) == before
    (tree / sysctl_relpath("net.ipv4.tcp_nonexistent_thing")).write_text("0\n")
    apply_profile(resolve(str(prof)), procfs=ProcFS(tree), store=store)
    assert read(tree, "net.ipv4.tcp_nonexistent_thing") == "1"


def test_backup_for_another_root_is_refused(tree: Path, store: StateStore, tmp_path: Path) -> None:
    apply_profile(resolve("base"), procfs=ProcFS(tree), store=store)
    other = make_tree(tmp_path / "other")
    with pytest.raises(BadInput, match="roll that back first"):
        apply_profile(resolve("base"), procfs=ProcFS(other), store=store)
    with pytest.raises(BadInput):
        rollback(store, root=other)


def test_plan_normalizes_whitespace(tree: Path) -> None:
    rows = plan_changes(resolve("c10k"), ProcFS(tree), ())
    port = next(c for c in rows if c.key == "net.ipv4.ip_local_port_range")
    assert port.current == "32768 60999" and port.new == "10240 65535"
