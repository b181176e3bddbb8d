"""verify --target/--pid/--host-facts/--protocol given what they cannot use: one line on stderr,
exit 2, nothing started (each case is refused before a storm process or a connect)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = [
    (["--pid", "5"], "--pid and --host-facts need --target HOST:PORT"),
    (["--target", "127.0.0.1:9", "--netns"], "drop --netns"),
    (["--target", "127.0.0.1:9", "--pid", "999999999"], "--pid 999999999: no such process"),
    (["--target", "127.0.0.1:9", "--pid", "-3"], "--pid: '-3' is not a whole number"),
    (["--target", "nope:x"], "target must be HOST:PORT"),
    (["--target", "127.0.0.1:9", "--calibrate", "/tmp/never-written.json"], "--calibrate with --target needs --pid"),
    (["--target", "198.18.0.1:80"], "is not on this host: give --host-facts FILE"),
    (["--target", "127.0.0.1:9", "--host-facts", "/nonexistent/facts.json"], "--host-facts /nonexistent/facts.json"),
    (["--target", "ws://127.0.0.1:9/", "--protocol", "http"], "a ws:// target speaks --protocol websocket, not http"),
    (["--protocol", "gopher"], "Input should be 'echo', 'http' or 'websocket'"),
    # --storm-results shares --target and --pid: one PID there, and no protocol of its own
    (["--storm-results", ".", "--target", "127.0.0.1:9", "--pid", "1", "--pid", "2"], "measures one --pid"),
    (["--storm-results", ".", "--target", "127.0.0.1:9", "--protocol", "http"], "--storm-results takes --target"),
]


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_refused_in_one_line(args, message, tmp_path):
    n = [] if "--storm-results" in args else ["-n", "10"]
    done = subprocess.run([sys.executable, "-m", "c10kplan", "verify", *n, *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("c10kplan: error: ") and message in lines[0], done.stderr
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []
