"""`c10kplan serve` as a person uses it: nc / socat, and one-line errors with documented codes."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys

import pytest

from c10kplan.reactor.launch import ServerProcess


def run_serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "c10kplan", "serve", *args],
                          capture_output=True, text=True, timeout=30)


@pytest.mark.skipif(shutil.which("nc") is None, reason="nc not installed (.ci/run installs netcat-openbsd)")
def test_nc_echo():
    with ServerProcess([]) as srv:
        out = subprocess.run(["nc", "-N", "127.0.0.1", str(srv.port)], input=b"hello over nc\n",
                             capture_output=True, timeout=10)
        assert out.stdout == b"hello over nc\n"
        assert srv.stop() == 0


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat not installed (.ci/run installs it)")
@pytest.mark.parametrize("backend", ["epoll", "select"])
def test_socat_rot13(backend):
    with ServerProcess(["--protocol", "rot13", "--backend", backend]) as srv:
        out = subprocess.run(["socat", "-", f"TCP:127.0.0.1:{srv.port}"], input=b"Hello, World\nabc",
                             capture_output=True, timeout=10)
        assert out.stdout == b"Uryyb, Jbeyq\nnop"
        assert srv.stop() == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--backend", "poll", "--trigger", "edge"], "edge needs --backend epoll"),
        (["--workers", "0"], "workers"),
        (["--protocol", "gopher"], "protocol"),
        (["--port", "70000"], "port"),
        (["--stats-file", "/nonexistent-dir/stats.json"], "does not exist"),
        (["--stats-file", "/tmp"], "/tmp is a folder"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, needle):
    res = run_serve(*args)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("c10kplan: error: ") and needle in lines[0]
    assert res.stdout == ""


def test_port_in_use_is_an_environment_error_exit_3():
    with socket.socket() as holder:  # no SO_REUSEPORT: the port is not shareable
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        res = run_serve("--port", str(holder.getsockname()[1]))
    assert res.returncode == 3
    assert res.stderr.startswith("c10kplan: error: cannot listen on 127.0.0.1:")
    assert "Traceback" not in res.stderr


def test_a_second_server_on_the_same_port_is_refused():
    """SO_REUSEPORT must not let two servers silently split one port between them."""
    with ServerProcess(["--workers", "2"]) as first:
        res = run_serve("--port", str(first.port))
        assert res.returncode == 3
        assert "Address already in use" in res.stderr
        assert first.stop() == 0


def test_a_stats_file_that_is_a_link_to_a_folder_is_bad_input_exit_2(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path)
    res = run_serve("--stats-file", str(tmp_path / "link"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "is a folder" in res.stderr, res.stderr


def test_a_folder_that_refuses_the_stats_file_is_an_environment_error_exit_3():
    # sysfs takes no new file, even from root (EACCES / EROFS): a refusal, not a bad path
    res = run_serve("--stats-file", "/sys/c10kplan-stats.json")
    assert res.returncode == 3, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("c10kplan: error: --stats-file: cannot create a file in /sys")
    assert res.stdout == ""


def test_a_stats_file_that_stays_unwritable_stops_serve_with_one_error_exit_3(tmp_path):
    """Its folder goes away while serving: a few error events, then serve stops (not a loop)."""
    folder = tmp_path / "stats"
    folder.mkdir()
    stats = folder / "stats.json"
    srv = ServerProcess(["--stats-file", str(stats), "--stats-interval", "0.05"])
    try:
        stats.unlink(missing_ok=True)
        folder.rmdir()
        srv._kids.wait_until(lambda: not srv.alive(), 30.0)
        assert not srv.alive(), "serve kept running with an unwritable stats file"
        code = srv.stop()
        err = srv.stderr()
    finally:
        srv.close()
    assert code == 3, err
    assert err.count('"event": "error"') + err.count('"event":"error"') >= 3
    last = err.strip().splitlines()[-1]
    assert last.startswith("c10kplan: error: --stats-file: cannot write ") and "in a row" in last
