"""c10kplan.processes, the pure parts: statuses in words, the one report schema, the process
cap from a fake proc tree, owned temp dirs and their sweep. The parts that fork, signal and
wait are in tests/integration/test_processes.py."""

from __future__ import annotations

import os
import resource
import signal
from pathlib import Path

import pytest

from c10kplan import processes
from c10kplan.errors import BadInput, EnvironmentProblem
from c10kplan.host.procfs import ProcFS
from c10kplan.processes import (
    EVENT,
    OwnedTempDir,
    Reporter,
    check_processes,
    decode_line,
    describe_status,
    encode_line,
    hard_nofile,
    process_cap,
    signal_name,
    split_lines,
    sweep_stale,
    unshare_net_argv,
)
from c10kplan.processes.cap import PER_CPU, PROCESS_RSS_BYTES, cgroup_pids_paths, tasks_in_use
from c10kplan.processes.reports import REPORT_FD_ENV, is_report

SIGRT = 40  # a real-time signal (SIGRTMIN is 34 with glibc): not a member of signal.Signals


def test_signal_40_is_not_a_named_signal():
    with pytest.raises(ValueError):
        signal.Signals(SIGRT)  # the reason the old describers crashed
    assert signal_name(SIGRT) == "signal 40"
    assert signal_name(signal.SIGKILL) == "SIGKILL"


def test_returncodes_in_words():
    assert describe_status(returncode=-SIGRT) == "killed by signal 40"
    assert describe_status(returncode=-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_status(returncode=2) == "exited with status 2"
    assert describe_status(returncode=None) == "still running"
    assert describe_status() == "still running"


# ------------------------------------------------------------------ the one report schema
def test_a_record_survives_the_pipe_in_pieces():
    data = encode_line({"event": "ramped", "index": 2, "name": "\u00e9"})
    assert data.endswith(b"\n") and data.count(b"\n") == 1 and data.isascii()
    records, rest = split_lines(b"", data[:7])
    assert records == [] and rest == data[:7]
    records, rest = split_lines(rest, data[7:] + b'{"event":')
    assert records == [{"event": "ramped", "index": 2, "name": "\u00e9"}]
    assert rest == b'{"event":'


def test_bad_lines_are_skipped_and_the_good_ones_around_them_kept():
    data = b'{"a":1}\nnot json\n\n\xff\xfe{"b"\n[1,2]\n"text"\n{"a":2}\n'
    records, rest = split_lines(b"", data)
    assert records == [{"a": 1}, {"a": 2}]
    assert rest == b""
    assert decode_line("  ") is None and decode_line('{"x": 1}') == {"x": 1}


def test_a_report_names_its_event_under_one_key():
    assert EVENT == "event"
    assert is_report({"event": "ready", "worker": 0})
    assert not is_report({"type": "ready", "worker": 0})  # the serve workers' old schema
    assert not is_report({"event": 3})


def test_the_reporter_stamps_every_record_and_writes_one_line_each():
    r, w = os.pipe()
    try:
        rep = Reporter(w, worker=3)
        rep.send("ready", pid=42)
        rep({"event": "progress", "index": 1})  # a ready record, as the storm builds them
        os.close(w)
        w = -1
        with os.fdopen(r, "rb") as f:
            records, rest = split_lines(b"", f.read())
        r = -1
    finally:
        for fd in (r, w):
            if fd >= 0:
                os.close(fd)
    assert records == [{"event": "ready", "worker": 3, "pid": 42}, {"event": "progress", "index": 1}]
    assert rest == b""


def test_a_nonblocking_record_is_dropped_when_the_pipe_is_full():
    r, w = os.pipe()
    try:
        rep = Reporter(w, worker=0)
        os.set_blocking(w, False)
        with pytest.raises(BlockingIOError):  # fill the pipe to the brim
            while True:
                os.write(w, b"x" * 4096)
        rep.send("stats", wait=False, active=1)
        assert rep.dropped == 1
    finally:
        os.close(r)
        os.close(w)


def test_an_execd_child_finds_its_report_fd_in_the_environment(monkeypatch):
    monkeypatch.setenv(REPORT_FD_ENV, "7")
    assert Reporter.from_env().fd == 7
    monkeypatch.setenv(REPORT_FD_ENV, "")
    assert Reporter.from_env() is None


# ------------------------------------------------------------------ the process cap
def _tree(tmp_path: Path, *, mem_kib: int = 24 * 1024 * 1024, pid_max: int = 32768, tasks: int = 300,
          cgroup: str = "0::/job\n", pids_max: str | None = None, pids_current: int = 10) -> ProcFS:
    proc = tmp_path / "proc"
    (proc / "sys" / "kernel").mkdir(parents=True)
    (proc / "sys" / "fs").mkdir(parents=True)
    (proc / "self").mkdir()
    (proc / "meminfo").write_text(f"MemTotal: {mem_kib} kB\nMemAvailable: {mem_kib} kB\n")
    (proc / "sys" / "kernel" / "pid_max").write_text(f"{pid_max}\n")
    (proc / "loadavg").write_text(f"0.50 0.40 0.30 2/{tasks} 12345\n")
    (proc / "self" / "cgroup").write_text(cgroup)
    (proc / "sys" / "fs" / "file-max").write_text("9223372036854775807\n")
    (proc / "sys" / "fs" / "file-nr").write_text("3000\t0\t9223372036854775807\n")
    if pids_max is not None:
        group = tmp_path / "sys" / "fs" / "cgroup" / "job"
        group.mkdir(parents=True)
        (group / "pids.max").write_text(pids_max + "\n")
        (group / "pids.current").write_text(f"{pids_current}\n")
    return ProcFS(tmp_path)


def test_the_cap_is_the_smallest_of_cpus_memory_pids_and_fds(tmp_path):
    cap = process_cap(_tree(tmp_path), cpus=2)
    assert cap.cap == 2 * PER_CPU == 128  # 24 GiB and 32k pids allow more
    assert dict(cap.limits)["2 CPUs x 64"] == 128
    # memory: half of 1 GiB at 30 MiB each
    small = process_cap(_tree(tmp_path / "small", mem_kib=1024 * 1024), cpus=64)
    assert small.cap == (512 * 1024 * 1024) // PROCESS_RSS_BYTES == 17
    # a cgroup pids.max of 110 with 10 in use leaves 100 pids, half of them for us
    cg = process_cap(_tree(tmp_path / "cg", pids_max="110"), cpus=64)
    assert cg.cap == 50 and "half of 100 free pids" in cg.explain()
    # "max" means no cgroup limit: kernel.pid_max (32768 - 300 in use) then counts
    nolimit = process_cap(_tree(tmp_path / "max", pids_max="max"), cpus=1024)
    assert dict(nolimit.limits)["half of 32,468 free pids"] == 16_234


def test_one_million_connections_verify_fits_this_hosts_cap(tmp_path):
    # verify -n 1000000 here: 51 server workers + 51 storm processes + serve (24 GiB, 2 CPUs)
    check_processes(51 + 51 + 1, "verify", procfs=_tree(tmp_path))


def test_a_request_over_the_cap_is_refused_naming_the_cap(tmp_path):
    with pytest.raises(BadInput) as caught:
        check_processes(50_001, "serve", "50,000 workers and the supervisor", procfs=_tree(tmp_path))
    text = str(caught.value)
    assert text.startswith("serve needs 50,001 processes (50,000 workers and the supervisor);"
                           " this host allows at most 128 (")
    assert "\n" not in text


def test_cap_facts_parse_as_the_kernel_prints_them():
    assert tasks_in_use("0.00 0.01 0.05 2/345 6789") == 345
    assert tasks_in_use("garbage") is None and tasks_in_use(None) is None
    assert cgroup_pids_paths("0::/user.slice/x\n") == ["sys/fs/cgroup/user.slice/x/pids.max",
                                                      "sys/fs/cgroup/user.slice/x/pids.current"]
    assert cgroup_pids_paths("8:pids:/\n4:memory:/a\n0::/\n") == ["sys/fs/cgroup/pids/pids.max",
                                                                 "sys/fs/cgroup/pids/pids.current"]
    assert cgroup_pids_paths("") == []


# ------------------------------------------------------------------ owned temp dirs
DEAD_PID = 1 << 23  # above every pid_max (4,194,304 at most): no such process


def test_the_sweep_removes_dirs_of_dead_owners_only(tmp_path):
    stale = tmp_path / f"c10kplan-serve-{DEAD_PID}-abc123"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "stats.json").write_text("{}")
    mine = tmp_path / f"c10kplan-serve-{os.getpid()}-def456"
    mine.mkdir()
    init = tmp_path / "c10kplan-serve-1-ghi789"  # pid 1 is always alive
    init.mkdir()
    other_purpose = tmp_path / f"c10kplan-netns-state-{DEAD_PID}-jkl012"
    other_purpose.mkdir()
    not_ours = tmp_path / "c10kplan-serve-something"
    not_ours.mkdir()
    link = tmp_path / f"c10kplan-serve-{DEAD_PID}-link00"
    link.symlink_to(not_ours)
    assert sweep_stale("serve", tmp_path) == [stale]
    assert not stale.exists()
    assert mine.is_dir() and init.is_dir() and other_purpose.is_dir() and not_ours.is_dir() and link.is_symlink()


def test_an_owned_dir_is_named_for_this_process_and_sweeps_first(tmp_path):
    stale = tmp_path / f"c10kplan-netns-state-{DEAD_PID}-abc123"
    stale.mkdir()
    with OwnedTempDir("netns-state", tmp_path) as path:
        assert path.name.startswith(f"c10kplan-netns-state-{os.getpid()}-") and path.is_dir()
        assert not stale.exists()
        assert sweep_stale("netns-state", tmp_path) == []  # its owner (this process) lives
    assert not path.exists()


# ------------------------------------------------------------------ limits and tools
def test_hard_nofile_is_the_one_the_storm_setup_uses():
    from c10kplan.storm import setup

    assert setup.hard_nofile is hard_nofile
    assert hard_nofile() == resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def test_missing_tools_name_what_needed_them(monkeypatch):
    from c10kplan.processes import netns

    monkeypatch.setattr(netns.shutil, "which", lambda name: None)
    monkeypatch.setattr(os.path, "exists", lambda path: False)  # netns.ip's /usr/sbin/ip fallback
    with pytest.raises(EnvironmentProblem, match=r"^--netns needs unshare\(1\) from util-linux$"):
        unshare_net_argv("--netns")
    with pytest.raises(EnvironmentProblem, match=r"^a fresh netns needs ip\(8\) from iproute2"):
        processes.bring_loopback_up("a fresh netns")


# ------------------------------------------------------------------ nothing else forks
# Long-lived children (fork, Popen, exec, multiprocessing) are the layer's alone. Elsewhere a
# program may only be run and waited for with a timeout (subprocess.run(..., timeout=...): the
# subprocess module kills it at the bound), like `nft list ruleset` or `ip -batch`.
_LONG_LIVED = {("os", "fork"), ("os", "forkpty"), ("os", "posix_spawn"), ("os", "posix_spawnp"), ("os", "system"),
               ("os", "execv"), ("os", "execve"), ("os", "execvp"), ("os", "execvpe"), ("subprocess", "Popen")}
_RUN_AND_WAIT = {("subprocess", name) for name in ("run", "call", "check_call", "check_output")}
# Packages not on the layer yet (none: c10kplan/netns/ starts its reaper with ChildSet.run,
# pdeathsig=0, and runs ip / nstat with a timeout).
NOT_YET: tuple[str, ...] = ()


def test_only_the_process_layer_keeps_children_and_every_other_run_is_bounded():
    import ast

    package = Path(__file__).resolve().parents[2] / "c10kplan"
    found = []
    for path in package.rglob("*.py"):
        if path.is_relative_to(package / "processes") or path.relative_to(package).parts[0] in NOT_YET:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom) and any(
                    alias.name.split(".")[0] == "multiprocessing" for alias in node.names):
                found.append(f"{path.name}:{node.lineno} multiprocessing")
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)):
                continue
            call = (node.func.value.id, node.func.attr)
            unbounded = call in _RUN_AND_WAIT and not any(k.arg == "timeout" for k in node.keywords)
            if call in _LONG_LIVED or unbounded:
                found.append(f"{path.name}:{node.lineno} {'.'.join(call)}")
    assert found == []
