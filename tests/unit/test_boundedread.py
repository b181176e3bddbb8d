"""c10kplan.boundedread: the one bounded read (regular files only, a cap, no blocking open)."""

from __future__ import annotations

import errno
import os

import pytest

from c10kplan.boundedread import FileTooLarge, NotRegularFile, NotText, printable, read_bytes, read_text
from c10kplan.host.procfs import ProcFS


def test_reads_a_file_up_to_exactly_its_limit(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1000)
    assert read_bytes(path, 1000) == b"x" * 1000
    with pytest.raises(FileTooLarge) as info:
        read_bytes(path, 999)
    assert info.value.errno == errno.EFBIG and "999 bytes" in info.value.strerror


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_refuses_devices_even_through_a_symlink(tmp_path, special):
    link = tmp_path / "link"
    link.symlink_to(special)
    for path in (special, link):
        with pytest.raises(NotRegularFile, match="a character device"):
            read_bytes(path, 1 << 20)


def test_refuses_a_fifo_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFile, match="a FIFO"):
        read_bytes(fifo, 1 << 20)


def test_refuses_a_directory(tmp_path):
    with pytest.raises(NotRegularFile, match="a directory"):
        read_bytes(tmp_path, 10)


def test_text_must_be_utf8_unless_told(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"ok \xff")
    with pytest.raises(NotText) as info:
        read_text(path, 100)
    assert isinstance(info.value, OSError) and info.value.strerror == "not UTF-8 text"
    assert read_text(path, 100, errors="replace") == "ok \ufffd"


def test_proc_files_are_read_with_the_same_bound():
    # /proc files report st_size 0: the bound is what was read, not what fstat said.
    assert "MemTotal" in read_text("/proc/meminfo", 1 << 20)
    with pytest.raises(FileTooLarge):
        read_text("/proc/meminfo", 10)


def test_procfs_reads_unknown_for_a_fifo_or_device_and_refuses_to_write_one(tmp_path):
    (tmp_path / "proc/sys/net/core").mkdir(parents=True)
    os.mkfifo(tmp_path / "proc/sys/net/core/somaxconn")
    (tmp_path / "proc/meminfo").symlink_to("/dev/zero")
    fs = ProcFS(tmp_path)
    assert fs.read_sysctl("net.core.somaxconn") is None and fs.read("proc/meminfo") is None
    with pytest.raises(OSError):  # no reader: ENXIO at once instead of blocking
        fs.write("proc/sys/net/core/somaxconn", "4096")
    (tmp_path / "proc/sys/net/core/rmem_max").symlink_to("/dev/null")
    with pytest.raises(NotRegularFile):
        fs.write("proc/sys/net/core/rmem_max", "1")


def test_procfs_write_replaces_a_regular_file(tmp_path):
    (tmp_path / "proc/sys/net/core").mkdir(parents=True)
    (tmp_path / "proc/sys/net/core/somaxconn").write_text("4096000\n")
    ProcFS(tmp_path).write("proc/sys/net/core/somaxconn", "128")
    assert (tmp_path / "proc/sys/net/core/somaxconn").read_text() == "128"


@pytest.mark.parametrize(("text", "shown"), [
    ("plain text", "plain text"), ("\x1b[31mred", "\\x1b[31mred"), ("a\u202eb", "a\\u202eb"),
    ("bell\x07", "bell\\x07"), ("caf\u00e9 \u0661", "caf\u00e9 \u0661"), ("two\nlines", "two\\nlines"),
])
def test_printable_escapes_what_drives_a_terminal(text, shown):
    assert printable(text) == shown


def test_a_sysctl_reads_with_the_proc_cap():
    # /proc/sys allocates a kernel buffer of the size each read(2) asks for and refuses more
    # than 4 MiB with ENOMEM: the cap must not become the size of one read.
    from c10kplan.boundedread import PROC_LIMIT

    assert PROC_LIMIT >= 4 << 20
    assert read_text("/proc/sys/kernel/osrelease", PROC_LIMIT).strip()
    assert ProcFS("/").read_sysctl("kernel.osrelease")
