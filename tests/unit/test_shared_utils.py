"""Shared helpers: the one atomic writer, the one errno namer, the one port-range reader and
the one RSS reader, each checked through the callers that used to carry their own copy."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from c10kplan.cli.app import main
from c10kplan.counts import errno_name
from c10kplan.errors import EnvironmentProblem, ExitStatus
from c10kplan.files import atomic_write
from c10kplan.host.inspect import DEFAULT_PORT_RANGE, collect_facts, port_range
from c10kplan.host.process import process_rss_bytes, rss_bytes
from c10kplan.host.procfs import ProcFS
from c10kplan.planner.calibration import Calibration, load_calibration
from c10kplan.profiles.apply import _errno_text
from c10kplan.reactor.stats import WorkerStats, build_document, self_rss_bytes, write_stats
from c10kplan.storm.setup import build_config


def _fsync_counter(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    return calls


# -- atomic_write ---------------------------------------------------------------------------

@pytest.mark.parametrize("fsync", [True, False])
def test_atomic_write_replaces_and_fsyncs_only_when_asked(tmp_path, monkeypatch, fsync):
    calls = _fsync_counter(monkeypatch)
    path = tmp_path / "deep" / "er" / "f.conf"
    atomic_write(path, "one\r\n")
    atomic_write(path, "two\n", mode=0o600, fsync=fsync)
    assert path.read_bytes() == b"two\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(calls) == (4 if fsync else 2)  # an fsynced write: the file, then its directory
    assert os.listdir(path.parent) == ["f.conf"]


def test_atomic_write_failure_leaves_no_temp_file(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()  # rename(2) of a file over a directory fails with EISDIR
    with pytest.raises(IsADirectoryError):
        atomic_write(target, "x")
    assert os.listdir(tmp_path) == ["taken"] and os.listdir(target) == []
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "missing" / "f", "x", parents=False)
    assert not (tmp_path / "missing").exists()


def test_stats_file_skips_fsync_and_does_not_recreate_its_directory(tmp_path, monkeypatch):
    calls = _fsync_counter(monkeypatch)
    doc = build_document({0: WorkerStats(worker=0, pid=1, accepted=3)}, now=2.0)
    write_stats(tmp_path / "s.json", doc)
    assert calls == [] and '"accepted":3' in (tmp_path / "s.json").read_text()
    with pytest.raises(FileNotFoundError):
        write_stats(tmp_path / "gone" / "s.json", doc)
    assert not (tmp_path / "gone").exists()


# -- Calibration.write ----------------------------------------------------------------------

def _calibration() -> Calibration:
    return Calibration(kernel_bytes_per_socket=4000, connections=100, measured_at="2026-01-01T00:00:00+00:00",
                       method="test")


def test_calibration_write_creates_parents_and_reads_back(tmp_path):
    path = tmp_path / "sub" / "cal.json"
    _calibration().write(path)
    assert load_calibration(path) == _calibration()
    assert os.listdir(path.parent) == ["cal.json"]


def test_calibration_write_failure_is_one_environment_error_and_no_litter(tmp_path):
    target = tmp_path / "cal.json"
    target.mkdir()
    with pytest.raises(EnvironmentProblem) as exc:
        _calibration().write(target)
    msg = str(exc.value)
    assert str(target) in msg and "EISDIR" in msg and "\n" not in msg
    assert os.listdir(tmp_path) == ["cal.json"]  # the old writer left cal.json.tmp behind
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EnvironmentProblem, match="EEXIST"):  # mkdir of the parent: a file is there
        _calibration().write(blocker / "cal.json")


# -- errno_name -----------------------------------------------------------------------------

def test_errno_name_one_naming_for_every_caller():
    assert errno_name(errno.ECONNRESET) == "ECONNRESET"
    assert errno_name(errno.EMFILE) == "EMFILE"
    assert errno_name("TIMEOUT") == "TIMEOUT"  # storm's own failure names pass through
    assert errno_name(None) == "E?"  # the server used to count these as "errnoNone"
    assert errno_name(4095) == "errno4095"
    assert _errno_text(OSError(errno.EACCES, "Permission denied")) == "EACCES (13): Permission denied"
    assert _errno_text(OSError("no errno")) == "E? (None): no errno"


# -- the ephemeral port range ---------------------------------------------------------------

def _tree(tmp_path: Path, port_range_text: str | None) -> ProcFS:
    sysdir = tmp_path / "proc" / "sys" / "net" / "ipv4"
    sysdir.mkdir(parents=True)
    if port_range_text is not None:
        (sysdir / "ip_local_port_range").write_text(port_range_text)
    return ProcFS(tmp_path)


def test_port_range_read_default_and_refusals(tmp_path):
    assert port_range(_tree(tmp_path / "a", "1024\t65535\n")) == (1024, 65535)
    assert port_range(_tree(tmp_path / "b", "5000 5000\n")) == (5000, 5000)
    assert port_range(_tree(tmp_path / "c", None)) == DEFAULT_PORT_RANGE
    for name, text in (("d", "60999 32768\n"), ("e", "banana\n"), ("f", "")):
        procfs = _tree(tmp_path / name, text)
        with pytest.raises(EnvironmentProblem, match="ip_local_port_range"):
            port_range(procfs)
        assert collect_facts(procfs).ip_local_port_range is None  # facts never raise: unknown


def test_storm_with_an_inverted_range_is_an_error_not_a_traceback(tmp_path, monkeypatch, capsys):
    procfs = _tree(tmp_path, "60999\t32768\n")
    with pytest.raises(EnvironmentProblem):  # was a ValueError from source_addresses_needed
        build_config("127.0.0.1", 9, connections=10, procfs=procfs)
    monkeypatch.setenv("C10KPLAN_ROOT", str(tmp_path))
    with pytest.raises(SystemExit) as exc:
        main(["storm", "127.0.0.1:9", "--connections", "10", "--duration", "0.1"])
    assert exc.value.code == ExitStatus.ENVIRONMENT
    err = capsys.readouterr().err
    assert err.startswith("c10kplan: error: ") and "ip_local_port_range" in err
    assert "Traceback" not in err and err.count("\n") == 1


# -- resident set size ----------------------------------------------------------------------

def test_process_rss_one_reader_for_self_pids_and_sums(tmp_path):
    for pid, kb in ((10, 100), (11, 250)):
        (tmp_path / "proc" / str(pid)).mkdir(parents=True)
        (tmp_path / "proc" / str(pid) / "status").write_text(f"Name:\tx\nVmRSS:\t  {kb} kB\n")
    fake = ProcFS(tmp_path)
    assert process_rss_bytes(fake, 10) == 100 * 1024
    assert process_rss_bytes(fake, 99) is None and process_rss_bytes(fake) is None
    assert rss_bytes(fake, [10, 11, 99]) == 350 * 1024  # a process gone counts 0
    assert self_rss_bytes(fake) == 0
    live = ProcFS("/")
    assert process_rss_bytes(live) > 1024 * 1024
    assert process_rss_bytes(live, os.getpid()) > 1024 * 1024
