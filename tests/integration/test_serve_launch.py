"""reactor.launch.ServerProcess, the one way tests, scripts and verify run `c10kplan serve`:
start, fresh stats, exit described, stop of the whole group, and PDEATHSIG; and the benchmark
scripts' scripts/benchlib.ensure_fresh_netns."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from c10kplan.errors import EnvironmentProblem
from c10kplan.reactor.launch import ServerProcess
from c10kplan.verify.server import server_stats, start_server
from tests.helpers import wait_for
from tests.proc_helpers import wait_gone

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_a_server_that_cannot_start_is_one_line_and_leaves_nothing():
    with pytest.raises(EnvironmentProblem) as caught:
        ServerProcess(["--trigger", "edge", "--backend", "poll"], start_timeout=20)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("serve did not start: c10kplan: error:"), message
    assert "edge" in message


def test_a_missing_program_is_an_environment_problem():
    with pytest.raises(EnvironmentProblem, match="cannot run /nonexistent/prlimit"):
        ServerProcess([], prefix=["/nonexistent/prlimit"])


def test_verify_server_has_its_own_group_and_stop_takes_the_workers_too():
    srv = start_server(workers=2)
    try:
        assert os.getpgid(srv.pid) == srv.pid  # a session (and group) of its own
        stats = server_stats(srv)
        assert stats is not None and len(stats["workers"]) == 2
        workers = [w["pid"] for w in stats["workers"]]
        assert all(os.getpgid(p) == srv.pid for p in workers)
        assert srv.alive() and srv.exit_description() == "still running"
    finally:
        code = srv.stop()
    assert code == 0  # SIGTERM: a graceful stop
    assert not srv.alive()
    assert wait_gone(workers) == []
    srv.close()


def test_a_server_killed_by_a_real_time_signal_is_described_and_stats_fall_back():
    srv = start_server(workers=1)
    try:
        assert srv.stats()["total"]["active"] == 0
        os.kill(srv.pid, 40)  # default action of SIGRTMIN+6: terminate; no signal.Signals member
        assert wait_for(lambda: not srv.alive())
        assert srv.exit_description() == "killed by signal 40"
        with pytest.raises(EnvironmentProblem, match="killed by signal 40"):
            srv.stats()
        last = server_stats(srv)  # the last file serve wrote, as verify reports it
        assert last is not None and last["total"]["active"] == 0
    finally:
        srv.close()


def test_pdeathsig_takes_the_server_down_with_a_sigkilled_parent():
    parent = ("import os, sys\n"
              "from c10kplan.reactor.launch import ServerProcess\n"
              "srv = ServerProcess(['--workers', '1'], pdeathsig=True)\n"
              "print(srv.pid, *srv.worker_pids(), flush=True)\n"
              "os.kill(os.getpid(), 9)\n")
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    pids = [int(p) for p in out.split()]
    assert len(pids) == 2  # serve and its worker
    assert wait_gone(pids, timeout=10) == []


# A script in scripts/ has that folder as sys.path[0]; this one, written elsewhere, adds it.
FRESH_NETNS_SCRIPT = """
import socket, sys
sys.path.insert(0, SCRIPTS_DIR)
from benchlib import ensure_fresh_netns
where = ensure_fresh_netns(__file__, sys.argv[1:])
srv = socket.create_server(("127.0.0.1", 0))
socket.create_connection(srv.getsockname(), timeout=2).close()  # loopback is up
with open("/proc/self/net/dev") as f:  # a fresh namespace has lo and nothing else
    names = sorted(line.split(":")[0].strip() for line in f if ":" in line)
print(where, names, sys.argv[1:])
raise SystemExit(7)
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None,
                    reason="needs root, unshare(1) and ip(8) to make a network namespace")
def test_ensure_fresh_netns_reruns_the_script_inside_with_loopback_up(tmp_path):
    script = tmp_path / "fresh.py"
    script.write_text(FRESH_NETNS_SCRIPT.replace("SCRIPTS_DIR", repr(str(SCRIPTS))))
    done = subprocess.run([sys.executable, str(script), "--x", "1"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 7, done.stderr  # the inner run's exit status comes back
    assert done.stdout.strip() == "in a fresh netns ['lo'] ['--in-netns', '--x', '1']"
