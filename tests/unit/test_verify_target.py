"""verify/target.py on a fake /proc tree: the server's process tree (ppid walk), its sample and
growth, and the listening check (net/tcp, net/tcp6 and fd links)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from c10kplan.errors import BadInput
from c10kplan.host.procfs import ProcFS
from c10kplan.verify.target import (
    ServerSampler,
    check_listening,
    listening_inodes,
    measure_server,
    process_tree,
)

TCP_HEAD = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def _proc(root: Path, pid: int, ppid: int, comm: str, *, rss_kb: int = 1000, threads: int = 1,
          ticks: tuple[int, int] = (0, 0), sockets: tuple[int, ...] = (), files: int = 0, state: str = "S") -> None:
    d = root / "proc" / str(pid)
    (d / "fd").mkdir(parents=True, exist_ok=True)
    for f in (d / "fd").iterdir():
        f.unlink()
    # fields after ')': state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    (d / "stat").write_text(f"{pid} ({comm}) {state} {ppid} {pid} 0 0 0 0 0 0 0 0 {ticks[0]} {ticks[1]} 0 0\n")
    (d / "status").write_text(f"Name:\t{comm}\nState:\t{state}\nVmRSS:\t{rss_kb} kB\nThreads:\t{threads}\n")
    (d / "comm").write_text(comm + "\n")
    fd = 3
    for inode in sockets:
        os.symlink(f"socket:[{inode}]", d / "fd" / str(fd))
        fd += 1
    for _ in range(files):
        os.symlink("/dev/null", d / "fd" / str(fd))
        fd += 1


def _net(root: Path, pid: int, tcp: list[str], tcp6: list[str] = ()) -> None:
    d = root / "proc" / str(pid) / "net"
    d.mkdir(parents=True, exist_ok=True)
    (d / "tcp").write_text(TCP_HEAD + "".join(tcp))
    (d / "tcp6").write_text(TCP_HEAD + "".join(tcp6))


def _row(local: str, state: str, inode: int) -> str:
    return f"   0: {local} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0\n"


@pytest.fixture
def tree(tmp_path: Path) -> ProcFS:
    """nginx master 100 (listening on 127.0.0.1:8080, inode 555) with workers 101, 102; 101 has
    a child 103; an unrelated python 200 listens on [::]:9090 (inode 777)."""
    _proc(tmp_path, 1, 0, "init")
    _proc(tmp_path, 100, 1, "nginx", rss_kb=2000, ticks=(5, 5), sockets=(555,), files=2)
    _proc(tmp_path, 101, 100, "nginx", rss_kb=3000, threads=2, ticks=(10, 20), sockets=(555, 9001))
    _proc(tmp_path, 102, 100, "nginx", rss_kb=3000, ticks=(1, 1), sockets=(555,))
    _proc(tmp_path, 103, 101, "helper", rss_kb=100)
    _proc(tmp_path, 200, 1, "python3", sockets=(777,))
    # 127.0.0.1:8080 LISTEN (0100007F:1F90), an established row on the same port, and 0.0.0.0:22
    rows = [_row("0100007F:1F90", "0A", 555), _row("0100007F:1F90", "01", 9001), _row("00000000:0016", "0A", 42)]
    rows6 = [_row("00000000000000000000000000000000:2382", "0A", 777)]
    for pid in (100, 101, 102, 103, 200):
        _net(tmp_path, pid, rows, rows6)
    return ProcFS(tmp_path)


def test_the_tree_is_the_pids_then_their_descendants(tree):
    assert process_tree([100], tree) == [100, 101, 102, 103]
    assert process_tree([101, 999], tree) == [101, 103]  # a missing PID is left out


def test_a_sample_sums_the_tree(tree):
    m = measure_server([100], tree, clock=lambda: 7.0)
    assert m.pids == [100, 101, 102, 103]
    assert m.rss_bytes == (2000 + 3000 + 3000 + 100) * 1024
    assert m.fds == 3 + 2 + 1 + 0 and m.fds_max == 3
    assert m.threads == 1 + 2 + 1 + 1
    assert m.cpu_ticks == 10 + 30 + 2 + 0
    assert m.at == 7.0


def test_growth_between_two_samples(tree, tmp_path):
    clock = iter([1.0, 3.5]).__next__
    sampler = ServerSampler([100], tree, clock=clock)
    sampler.start()
    _proc(tmp_path, 101, 100, "nginx", rss_kb=5000, threads=2, ticks=(60, 70), sockets=(555, 9001, 9002, 9003))
    use = sampler.end() and sampler.use(ticks_per_s=100)
    assert use.seconds == 2.5
    assert use.rss_growth_bytes == 2000 * 1024
    assert use.fds_growth == 2
    assert use.cpu_seconds == pytest.approx(1.0)  # (130 - 30) ticks at 100/s
    assert use.cpu_us_per_message(1000) == 1000.0
    assert use.cpu_us_per_message(0) is None


def test_a_zombie_holds_nothing(tree, tmp_path):
    _proc(tmp_path, 102, 100, "nginx", rss_kb=3000, sockets=(555,), state="Z")
    assert 102 not in measure_server([100], tree).pids


def test_listening_table_decodes_ipv4_and_ipv6(tree):
    assert listening_inodes(tree, 100, 8080) == {555: "127.0.0.1:8080"}
    assert listening_inodes(tree, 100, 8080, "127.0.0.2") == {}
    assert listening_inodes(tree, 100, 9090, "::1") == {777: "[::]:9090"}
    assert listening_inodes(tree, 100, 22, "127.0.0.1") == {42: "0.0.0.0:22"}  # wildcard covers it


def test_the_listening_master_passes_with_its_tree(tree):
    assert check_listening([100], "127.0.0.1", 8080, tree) == [100, 101, 102, 103]


def test_a_pid_not_listening_names_the_listener(tree):
    with pytest.raises(BadInput, match=r"^--pid 200 \(python3\) is not listening on 127\.0\.0\.1:8080; "
                                       r"what listens there: PID 100 \(nginx\), PID 101 \(nginx\), PID 102 \(nginx\)$"):
        check_listening([200], "127.0.0.1", 8080, tree)


def test_an_ancestor_alone_does_not_pass(tree):
    # PID 1 is every server's ancestor: the socket must be held by a PID given
    with pytest.raises(BadInput, match=r"^--pid 1 \(init\) is not listening"):
        check_listening([1], "127.0.0.1", 8080, tree)


def test_nothing_listening_and_a_missing_pid(tree):
    with pytest.raises(BadInput, match=r"^--pid 100 \(nginx\) is not listening on \[::1\]:8081; nothing listens on \[::1\]:8081$"):
        check_listening([100], "::1", 8081, tree)
    with pytest.raises(BadInput, match=r"^--pid 4242: no such process$"):
        check_listening([4242], "127.0.0.1", 8080, tree)
