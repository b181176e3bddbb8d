"""c10kplan.processes on real children: exit statuses, the stop deadline (a signal, then
SIGKILL, flagged), the one report schema from serve and the storm, cleanup after a SIGKILLed
parent, the process cap refusing before anything forks, signals into a loop, a fresh netns.

Every child is bounded (it exits by itself, or the test stops it by pid); waits are on
conditions with deadlines, never fixed sleeps."""

from __future__ import annotations

import glob
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from c10kplan.processes import (
    STATUS_LOST,
    ChildSet,
    describe_status,
    encode_line,
    read_wake_bytes,
    unshare_net_argv,
    wake_on_signals,
)
from c10kplan.reactor.launch import ServerProcess
from tests.helpers import wait_for
from tests.proc_helpers import alive, descendants, wait_gone

SIGRT = 40  # a real-time signal: not a member of signal.Signals


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
        signal.pause()  # not reached: the default action of `sig` ends the process

    return action


def test_wait_statuses_in_words():
    assert describe_status(_forked(lambda: os._exit(3))) == "exited with status 3"
    assert describe_status(_forked(lambda: os._exit(0))) == "exited with status 0"
    assert describe_status(_forked(_killed_by(signal.SIGKILL))) == "killed by SIGKILL"
    assert describe_status(_forked(_killed_by(SIGRT))) == "killed by signal 40"


def test_popen_returncodes_in_words():
    code = subprocess.run([sys.executable, "-c", "import os; os.kill(os.getpid(), 40)"], timeout=30).returncode
    assert code == -SIGRT
    assert describe_status(returncode=code) == "killed by signal 40"


# ------------------------------------------------------------------ stop with a deadline
_IGNORES_TERM = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
                 "time.sleep(60)")


def _started(kids: ChildSet, code: str, **kwargs):
    child = kids.run([sys.executable, "-c", code], stdout=subprocess.PIPE, **kwargs)
    assert child.popen.stdout.readline()  # it is running its code
    return child


def test_a_child_that_ignores_term_is_killed_at_the_deadline_and_flagged():
    with ChildSet(1) as kids:
        child = _started(kids, _IGNORES_TERM)
        t0 = time.monotonic()
        assert kids.stop(signal.SIGTERM, 0.5) is False  # not clean
        assert 0.4 < time.monotonic() - t0 < 5
        assert child.killed and child.returncode == -signal.SIGKILL and not child.clean
        assert child.describe() == "killed by SIGKILL (it did not stop in time)"
        assert kids.stop(signal.SIGTERM, 0.5) is False  # idempotent
        assert not alive(child.pid)


def test_a_graceful_exit_is_clean_and_keeps_its_exit_code():
    with ChildSet(1) as kids:
        child = _started(kids, "import signal, sys, time\n"
                               "signal.signal(signal.SIGINT, lambda *a: sys.exit(7))\n"
                               "print('ready', flush=True)\ntime.sleep(60)")
        t0 = time.monotonic()
        assert kids.stop(signal.SIGINT, 10) is True
        assert time.monotonic() - t0 < 5
        assert child.returncode == 7 and not child.killed


def test_wait_line_gives_the_first_line_the_unfinished_rest_at_eof_or_none_in_time():
    with ChildSet(4) as kids:
        two = kids.run([sys.executable, "-c", "print('one'); print('two')"], stdout=subprocess.PIPE)
        assert kids.wait_line(two, 30) == b"one\n"
        cut = kids.run([sys.executable, "-c", "import sys; sys.stdout.write('half')"], stdout=subprocess.PIPE)
        assert kids.wait_line(cut, 30) == b"half"  # EOF without a newline
        mute = _started(kids, "import os, time; print('x', flush=True); os.close(1); time.sleep(60)")
        assert kids.wait_line(mute, 30) == b""  # its stdout ended with nothing more
        quiet = kids.run([sys.executable, "-c", "import time; time.sleep(60)"], stdout=subprocess.PIPE)
        t0 = time.monotonic()
        assert kids.wait_line(quiet, 0.3) is None
        assert 0.25 < time.monotonic() - t0 < 10


def test_a_child_whose_status_was_lost_is_not_clean():
    # Someone else's waitpid took the status: the set cannot know how the child ended.
    with ChildSet(1) as kids:
        child = kids.fork(lambda reporter, control: 0)
        os.waitpid(child.pid, 0)  # reaped here, behind the set's back
        assert kids.wait_until(lambda: child.exited, 10)
        assert child.returncode == STATUS_LOST and not child.clean
        assert child.describe() == "exited with an unknown status (it was reaped elsewhere)"


def _leader_with_grandchild(kids: ChildSet, grandchild_code: str):
    """A session leader that exits on SIGTERM, and its child (same group) running `code`."""
    leader = ("import subprocess, sys, time\n"
              f"kid = subprocess.Popen([sys.executable, '-c', {grandchild_code!r}], stdout=subprocess.PIPE)\n"
              "kid.stdout.readline()\n"
              "print(kid.pid, flush=True)\ntime.sleep(60)")
    child = kids.run([sys.executable, "-c", leader], stdout=subprocess.PIPE, new_session=True)
    return child, int(child.popen.stdout.readline())


def test_a_group_stop_also_kills_what_outlived_the_leader_and_says_so():
    with ChildSet(1) as kids:
        child, grandchild = _leader_with_grandchild(kids, _IGNORES_TERM)
        assert os.getpgid(grandchild) == child.pid
        assert kids.stop(signal.SIGTERM, 1.0) is False  # the grandchild needed SIGKILL
        assert child.returncode == -signal.SIGTERM and child.killed
        assert wait_gone([grandchild]) == []


# The grandchild prints the name of each signal it handles: the test asks it for SIGUSR1, then
# SIGUSR2, reading up to each line; a SIGTERM sent before them would be printed before USR2.
_TELLS_SIGNALS = ("import signal, sys, time\n"
                  "def say(sig, frame): print(signal.Signals(sig).name, flush=True)\n"
                  "for s in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2): signal.signal(s, say)\n"
                  "print('ready', flush=True)\n"
                  "deadline = time.monotonic() + 60\n"
                  "while time.monotonic() < deadline: time.sleep(0.5)")


def test_a_stop_without_a_group_never_signals_the_grandchild():
    """The grandchild's own stdout is a pipe this test reads: it names every signal it got."""
    code = ("import subprocess, sys, time\n"
            f"kid = subprocess.Popen([sys.executable, '-c', {_TELLS_SIGNALS!r}])\n"
            "print(kid.pid, flush=True)\ntime.sleep(60)")
    r, w = os.pipe()
    with ChildSet(1) as kids:
        child = kids.run([sys.executable, "-c", code], stdout=w)
        os.close(w)
        with os.fdopen(r, "rb") as out:
            grandchild = int(out.readline())
            try:
                assert out.readline() == b"ready\n"
                assert kids.stop(signal.SIGTERM, 5) is True
                assert child.returncode == -signal.SIGTERM
                said = []
                for sig in (signal.SIGUSR1, signal.SIGUSR2):  # one at a time: a handler can nest
                    os.kill(grandchild, sig)
                    deadline = time.monotonic() + 10
                    while f"{signal.Signals(sig).name}\n".encode() not in said and time.monotonic() < deadline:
                        if select.select([out], [], [], max(0.0, deadline - time.monotonic()))[0]:
                            said.append(out.readline())
                assert said == [b"SIGUSR1\n", b"SIGUSR2\n"]  # no SIGTERM reached it
            finally:
                os.kill(grandchild, signal.SIGKILL)
                assert wait_gone([grandchild]) == []


# ------------------------------------------------------------------ forked bodies and reports
def _writes(lines: list[bytes]):
    def body(reporter, control) -> int:
        for line in lines:
            os.write(reporter.fd, line)
        return 4

    return body


def test_only_records_of_the_schema_reach_the_parent_and_a_crash_is_reported():
    got = []
    with ChildSet(2, on_report=lambda child, rec: got.append((child.index, rec))) as kids:
        kids.fork(_writes([b"Traceback (most recent call last):\n\xff\n", b'{"type":"ready"}\n',
                           encode_line({"event": "ramped", "index": 0, "established": 1})]))

        def crashes(reporter, control) -> int:
            raise ZeroDivisionError("division by zero")

        kids.fork(crashes)
        assert kids.wait_until(lambda: not kids.live, 10)
    assert got[0] == (0, {"event": "ramped", "index": 0, "established": 1})
    index, error = got[1]
    assert index == 1 and error["event"] == "error"
    assert error["message"] == "ZeroDivisionError: division by zero" and "Traceback" in error["trace"]
    assert len(got) == 2
    assert [c.returncode for c in kids.children] == [4, 70]


def test_a_set_never_forks_past_its_limit():
    from c10kplan.errors import BadInput

    with ChildSet(1) as kids:
        kids.fork(_writes([]))
        with pytest.raises(BadInput, match="more than 1 child"):
            kids.fork(_writes([]))
        assert kids.wait_until(lambda: not kids.live, 10)
        assert len(kids.children) == 1


def test_the_storm_parent_survives_a_child_writing_a_bad_line():
    """The bug: StormRun._pump ran json.loads on every line, so one bad line from a child
    raised in the parent. Now it is skipped and the next event still arrives."""
    from c10kplan.storm.config import StormConfig
    from c10kplan.storm.runner import StormRun, _Share

    run = StormRun(StormConfig(host="127.0.0.1", port=9, connections=1))
    child = run.kids.fork(_writes([b"Traceback (most recent call last):\n\xff\n",
                                   encode_line({"event": "ramped", "index": 0, "established": 1})]))
    run.children.append(_Share(child, 1))
    try:
        assert run.wait_ramped(10)
        assert run.children[0].ramped and run.children[0].last["established"] == 1
    finally:
        run.close(kill=True)


def test_received_at_waits_for_a_report_after_the_moment_and_interpolates():
    """StormRun.received_at: a live child is read until it reported after `t`; a child that sent
    its result or is gone counts from what it reported; a silent child is waited for at most
    `wait` seconds."""
    from c10kplan.storm.config import StormConfig
    from c10kplan.storm.runner import StormRun, _Share

    def holds(lines):  # reports, then waits for its control pipe to close
        def body(reporter, control) -> int:
            for line in lines:
                os.write(reporter.fd, line)
            select.select([control], [], [], 30)
            return 0

        return body

    run = StormRun(StormConfig(host="127.0.0.1", port=1, connections=3, processes=3))
    t = 100.0
    live = _Share(run.kids.fork(holds([encode_line({"event": "progress", "index": 0, "at": 100.25,
                                                    "received": 2_500})]), control=True), 1)
    live.history.extend([(99.5, 1_000), (99.75, 1_500)])
    done = _Share(run.kids.fork(holds([]), control=True), 1)  # result in, pipe closed
    done.history.extend([(99.9, 700), (100.1, 900)])
    silent = _Share(run.kids.fork(holds([]), control=True), 1)
    silent.history.append((99.0, 300))
    run.children = [live, done, silent]
    done.child.command("x")
    os.close(done.child.control)
    done.child.control = None
    assert run.kids.wait_until(lambda: done.child.exited, 10)
    try:
        t0 = time.monotonic()
        got = run.received_at(t, wait=0.3)
        waited = time.monotonic() - t0
    finally:
        run.close(kill=True)
    # live: 1,500 at 99.75 .. 2,500 at 100.25 -> 2,000 at 100; done: 700 .. 900 -> 800;
    # silent: its last report, 300, after waiting no longer than `wait` (plus one poll)
    assert got == 2_000 + 800 + 300
    assert 0.3 <= waited < 0.3 + 0.5


# ------------------------------------------------------------------ the one schema, end to end
def test_serve_workers_and_storm_processes_speak_one_schema():
    from c10kplan.storm.config import StormConfig
    from c10kplan.storm.runner import run_storm

    events = []
    with ServerProcess(["--workers", "2", "--stats-interval", "0.2"]) as srv:
        cfg = StormConfig(host=srv.host, port=srv.port, connections=20, processes=2, message_rate=5,
                          duration=0.5)
        result = run_storm(cfg, on_event=events.append)
        assert srv.stop() == 0 and srv.stop_clean
        lines = [json.loads(line) for line in srv.stderr().splitlines() if line.startswith("{")]
    assert result.ok, result.problems
    assert {e["event"] for e in events} >= {"started", "ramped", "progress", "result"}
    assert {rec["event"] for rec in lines} >= {"stats", "final", "summary"}
    for rec in events + lines:
        assert isinstance(rec.get("event"), str) and "type" not in rec, rec


# ------------------------------------------------------------------ stops that needed SIGKILL
def test_a_server_that_needs_sigkill_to_stop_is_not_a_clean_stop():
    srv = ServerProcess(["--workers", "1"], new_session=True)
    try:
        os.kill(srv.pid, signal.SIGSTOP)  # a stopped process cannot act on SIGTERM
        assert srv.stop(timeout=0.5) == -signal.SIGKILL
        assert srv.stop_clean is False
    finally:
        srv.close()
    assert not srv.alive()


def test_serve_exits_non_zero_when_a_worker_needed_sigkill():
    """serve gives a worker 10 s (STOP_TIMEOUT) after SIGTERM; a stopped worker never acts on
    it, so serve SIGKILLs it and the stop is not clean: exit 1, and stderr says which."""
    srv = ServerProcess(["--workers", "2"], stop_timeout=30)
    try:
        workers = srv.worker_pids()
        os.kill(workers[1], signal.SIGSTOP)
        code = srv.stop()
        err = srv.stderr()
    finally:
        srv.close()
    assert code == 1, err
    killed = [json.loads(line) for line in err.splitlines() if '"worker-killed"' in line]
    assert [(k["worker"], k["pid"]) for k in killed] == [(1, workers[1])]
    assert "did not stop within 10 s of SIGTERM" in killed[0]["status"]
    assert "c10kplan: error: worker 1" in err and wait_gone(workers) == []


# ------------------------------------------------------------------ after a SIGKILLed parent
def _serve_dirs(pid: int) -> list[str]:
    return glob.glob(f"/tmp/c10kplan-serve-{pid}-*")


def test_a_sigkilled_verify_leaves_no_process_and_its_dir_goes_at_the_next_start():
    args = [sys.executable, "-m", "c10kplan", "verify", "--connections", "200", "--duration", "60",
            "--message-rate", "0", "--workers", "2", "--storm-processes", "2"]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen: set[int] = set()
    try:
        def started() -> bool:
            seen.update(descendants(proc.pid))  # serve, its 2 workers, 2 storm processes
            return len(seen) >= 5 and bool(_serve_dirs(proc.pid))

        wait_for(started, 60, interval=0.1)
        assert len(seen) >= 5, f"verify did not start its processes: {seen}"
        dirs = _serve_dirs(proc.pid)
        assert len(dirs) == 1
        proc.kill()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert wait_gone(seen, timeout=15) == []  # PDEATHSIG took every one of them down
    assert os.path.isdir(dirs[0])  # the kernel cannot remove a dir: the next start does
    with ServerProcess(["--workers", "1"]) as srv:
        assert srv.port > 0
        assert not os.path.exists(dirs[0])


def test_a_sigkilled_serve_takes_its_workers_down():
    srv = ServerProcess(["--workers", "3"])
    try:
        workers = srv.worker_pids()
        assert len(workers) == 3 and all(alive(p) for p in workers)
        os.kill(srv.pid, signal.SIGKILL)
        assert wait_gone(workers, timeout=15) == []
        assert srv.stop() == -signal.SIGKILL
    finally:
        srv.close()


# ------------------------------------------------------------------ the cap: refused, nothing forked
_COUNTS_FORKS = '"$@" 2>"$OUT"; rc=$?; read last </proc/sys/kernel/ns_last_pid; echo "$rc $last"'


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="needs root and unshare(1) for a pid namespace (.ci/run installs util-linux)")
@pytest.mark.parametrize("args", [
    ["serve", "--workers", "auto", "--max-connections", "100000000"],  # numeric.MAX_CONNECTIONS
    ["storm", "127.0.0.1:9", "--processes", "100000", "-n", "100000"],
    ["storm", "127.0.0.1:9", "-n", "100000000"],  # the most -n takes: ~5,000 processes
    ["verify", "--workers", "2000", "-n", "1000"],
    ["verify", "--storm-processes", "100000", "-n", "1000000"],
    ["verify", "--storm-processes", "100000", "-n", "1000000", "--netns"],
], ids=["serve-auto-1e8", "storm-processes-1e5", "storm-n-1e8", "verify-workers-2000",
        "verify-storm-1e5", "verify-netns-storm-1e5"])
def test_a_request_over_the_process_cap_is_refused_before_anything_forks(tmp_path, args):
    """In a fresh pid namespace the shell is pid 1 and the command pid 2; ns_last_pid, read by a
    shell builtin after it exited, is still 2 only if the command forked nothing at all."""
    err = tmp_path / "stderr"
    t0 = time.monotonic()
    done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", _COUNTS_FORKS, "sh",
                           sys.executable, "-m", "c10kplan", *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, "OUT": str(err)})
    elapsed = time.monotonic() - t0
    rc, last_pid = done.stdout.split()
    lines = err.read_text().splitlines()
    assert rc == "2", lines
    assert last_pid == "2"  # the command itself; not one process more
    assert len(lines) == 1 and lines[0].startswith(f"c10kplan: error: {args[0]} needs ")
    assert "this host allows at most " in lines[0]
    assert elapsed < 30  # "within 1 s" is measured by scripts/bench_refusals.py, not here


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
