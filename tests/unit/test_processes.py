"""c10kplan.processes: exit statuses in words, the bounded stop sequence (on real children), the
JSON-line pipe protocol, the signal wakeup socket and the nofile limit."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from c10kplan import processes
from c10kplan.errors import EnvironmentProblem
from c10kplan.processes import (
    decode_line,
    describe_status,
    encode_line,
    hard_nofile,
    read_wake_bytes,
    signal_name,
    split_lines,
    stop_process,
    unshare_net_argv,
    wake_on_signals,
)
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


# ------------------------------------------------------------------ JSON lines
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


def test_the_storm_parent_survives_a_child_writing_a_bad_line():
    """The bug: StormRun._pump ran json.loads on every line, so one bad line from a child
    raised in the parent. Now it is skipped and the next event still arrives."""
    from c10kplan.storm.config import StormConfig
    from c10kplan.storm.runner import StormRun, _Child

    run = StormRun(StormConfig(host="127.0.0.1", port=9, connections=1))
    r, w = os.pipe()
    child = _Child(index=0, pid=os.getpid(), target=1, control=None, reports=r)
    run.children.append(child)
    try:
        os.write(w, b"Traceback (most recent call last):\n\xff\n")
        os.write(w, encode_line({"event": "ramped", "index": 0, "established": 1}))
        run._pump(2.0)
        assert child.ramped and child.last["established"] == 1
    finally:
        os.close(w)
        os.close(r)


# ------------------------------------------------------------------ signal wakeup
def test_a_signal_arrives_as_its_number_on_the_wake_socket():
    r, w = socket.socketpair()
    r.setblocking(False)
    w.setblocking(False)
    old = signal.getsignal(signal.SIGUSR1)
    try:
        assert read_wake_bytes(r) == b""  # nothing pending: returns at once
        wake_on_signals(w.fileno(), [signal.SIGUSR1])
        os.kill(os.getpid(), signal.SIGUSR1)  # would end the process without the handler
        os.kill(os.getpid(), signal.SIGUSR1)
        assert read_wake_bytes(r) == bytes([signal.SIGUSR1]) * 2
        assert read_wake_bytes(r) == b""
    finally:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGUSR1, old)
        r.close()
        w.close()


# ------------------------------------------------------------------ limits and namespaces
def test_hard_nofile_is_the_one_the_storm_setup_uses():
    from c10kplan.storm import setup

    assert setup.hard_nofile is hard_nofile
    assert hard_nofile() == resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def test_missing_tools_name_what_needed_them(monkeypatch):
    monkeypatch.setattr(processes.shutil, "which", lambda name: None)
    with pytest.raises(EnvironmentProblem, match=r"^--netns needs unshare\(1\) from util-linux$"):
        unshare_net_argv("--netns")
    with pytest.raises(EnvironmentProblem, match=r"^a fresh netns needs ip\(8\) from iproute2"):
        processes.bring_loopback_up("a fresh netns")


NETNS_PROBE = """
import socket
from c10kplan.processes import bring_loopback_up
bring_loopback_up("test")
srv = socket.create_server(("127.0.0.1", 0))
socket.create_connection(srv.getsockname(), timeout=2).close()
print("ok")
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None,
                    reason="needs root, unshare(1) and ip(8) to make a network namespace")
def test_loopback_comes_up_in_a_fresh_namespace():
    argv = unshare_net_argv("test")
    assert argv[1:] == ["-n", "--"]
    done = subprocess.run([*argv, sys.executable, "-c", NETNS_PROBE], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
