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
