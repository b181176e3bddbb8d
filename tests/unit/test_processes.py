"""c10kplan.processes: exit statuses in words and the bounded stop sequence, on real children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from c10kplan.processes import describe_status, signal_name, stop_process
from tests.proc_helpers import alive, wait_gone

SIGRT = 40  # a real-time signal (SIGRTMIN is 34 with glibc): not a member of signal.Signals


def _forked(action) -> int:
    """Fork a child that runs `action()` (it never returns normally); its waitpid status."""
    pid = os.fork()
    if pid == 0:  # child
        try:
            action()
        finally:
            os._exit(99)
    return os.waitpid(pid, 0)[1]


def _killed_by(sig: int):
    def action() -> None:
        os.kill(os.getpid(), sig)
        time.sleep(5)  # not reached: the default action of `sig` ends the process

    return action


def test_signal_40_is_not_a_named_signal():
    with pytest.raises(ValueError):
        signal.Signals(SIGRT)  # the reason the old describers crashed
    assert signal_name(SIGRT) == "signal 40"
    assert signal_name(signal.SIGKILL) == "SIGKILL"


def test_wait_statuses_in_words():
    assert describe_status(_forked(lambda: os._exit(3))) == "exited with status 3"
    assert describe_status(_forked(lambda: os._exit(0))) == "exited with status 0"
    assert describe_status(_forked(_killed_by(signal.SIGKILL))) == "killed by SIGKILL"
    assert describe_status(_forked(_killed_by(SIGRT))) == "killed by signal 40"
    assert describe_status() == "still running"


def test_popen_returncodes_in_words():
    code = subprocess.run([sys.executable, "-c", "import os; os.kill(os.getpid(), 40)"], timeout=30).returncode
    assert code == -SIGRT
    assert describe_status(returncode=code) == "killed by signal 40"
    assert describe_status(returncode=2) == "exited with status 2"
    assert describe_status(returncode=None) == "still running"


_IGNORES_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"


def _started(code: str, **kwargs) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, **kwargs)
    assert proc.stdout is not None and proc.stdout.readline()  # it is running its code
    return proc


def test_stop_process_waits_then_kills_a_child_that_ignores_the_signal():
    proc = _started(_IGNORES_TERM)
    t0 = time.monotonic()
    assert stop_process(proc, signal.SIGTERM, 0.5) == -signal.SIGKILL
    assert 0.4 < time.monotonic() - t0 < 5
    assert stop_process(proc, signal.SIGTERM, 0.5) == -signal.SIGKILL  # idempotent
    proc.stdout.close()


def test_stop_process_returns_the_exit_code_of_a_graceful_exit():
    proc = _started("import signal, sys, time\n"
                    "signal.signal(signal.SIGINT, lambda *a: sys.exit(7))\n"
                    "print('ready', flush=True)\ntime.sleep(60)")
    t0 = time.monotonic()
    assert stop_process(proc, signal.SIGINT, 10) == 7
    assert time.monotonic() - t0 < 5
    proc.stdout.close()


def _leader_with_grandchild() -> tuple[subprocess.Popen, int]:
    """A session leader that exits on SIGTERM, and its child (same group) that ignores it."""
    leader = ("import subprocess, sys, time\n"
              f"kid = subprocess.Popen([sys.executable, '-c', {_IGNORES_TERM!r}], stdout=subprocess.PIPE)\n"
              "kid.stdout.readline()\n"
              "print(kid.pid, flush=True)\ntime.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", leader], stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def test_stop_process_group_also_kills_what_outlived_the_leader():
    proc, grandchild = _leader_with_grandchild()
    assert os.getpgid(grandchild) == proc.pid
    assert stop_process(proc, signal.SIGTERM, 5, group=True) == -signal.SIGTERM
    assert wait_gone([grandchild]) == []
    proc.stdout.close()


def test_stop_process_without_group_leaves_other_processes_alone():
    proc, grandchild = _leader_with_grandchild()
    try:
        assert stop_process(proc, signal.SIGTERM, 5) == -signal.SIGTERM
        time.sleep(0.2)
        assert alive(grandchild)  # only the leader was signalled
    finally:
        os.kill(grandchild, signal.SIGKILL)
        wait_gone([grandchild])
        proc.stdout.close()
