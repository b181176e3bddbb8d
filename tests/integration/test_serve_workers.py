"""Supervisor and workers: shared port, stats on request, clean shutdown, no orphans."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time

import pytest

from c10kplan.reactor.launch import ServerProcess
from c10kplan.reactor.stats import read_stats
from tests.helpers import wait_for
from tests.proc_helpers import wait_gone


def echo(port: int, msg: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(msg)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := s.recv(4096):
            got += chunk
        return got


def test_workers_share_the_port_and_stop_gracefully():
    with ServerProcess(["--workers", "3"]) as srv:
        pids = srv.worker_pids()
        assert len(set(pids)) == 3 and srv.pid not in pids
        for i in range(60):
            assert echo(srv.port, b"n%d" % i) == b"n%d" % i
        doc = srv.stats()
        assert doc["total"]["accepted"] == 60 == sum(w["accepted"] for w in doc["workers"])
        assert sum(1 for w in doc["workers"] if w["accepted"]) >= 2  # SO_REUSEPORT spreads them
        assert doc["total"]["rss_bytes"] == sum(w["rss_bytes"] for w in doc["workers"]) > 0
        assert srv.stop(signal.SIGTERM) == 0
        assert wait_gone(pids) == []
        lines = [json.loads(x) for x in srv.stderr().splitlines()]
        summary = [x for x in lines if x.get("event") == "summary"]
        assert len(summary) == 1 and summary[0]["accepted"] == 60 and summary[0]["workers"] == 3
        assert read_stats(srv.stats_file)["total"]["closed"] == 60


def test_sigint_stops_all_workers_too():
    with ServerProcess(["--workers", "2"]) as srv:
        pids = srv.worker_pids()
        assert srv.stop(signal.SIGINT) == 0
        assert wait_gone(pids) == []


def test_supervisor_killed_leaves_no_orphans():
    with ServerProcess(["--workers", "2"]) as srv:
        pids = srv.worker_pids()
        srv.stop(signal.SIGKILL)
        assert wait_gone(pids) == [], "workers outlived a SIGKILLed supervisor"


def test_dead_worker_is_reported_and_the_rest_keep_serving():
    with ServerProcess(["--workers", "2"]) as srv:
        victim, survivor = srv.worker_pids()
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: "worker-died" in srv.stderr())
        assert f'"pid":{victim},"status":"killed by SIGKILL"' in srv.stderr()
        for i in range(10):  # the survivor's listener takes every new connection
            assert echo(srv.port, b"x%d" % i) == b"x%d" % i
        assert srv.stop() == 1  # a worker died: the run is reported as failed
        assert wait_gone([survivor]) == []


def test_each_sigusr1_refreshes_the_stats_file():
    """No periodic stats (--stats-interval 0): only the signal can make a newer document. How
    fast it comes is a benchmark's business, not a test's on a shared machine."""
    with ServerProcess(["--workers", "2"]) as srv:
        srv.stats()  # warm
        for _ in range(3):
            t0 = time.time()
            os.kill(srv.pid, signal.SIGUSR1)
            doc = wait_for(lambda: (d := read_stats(srv.stats_file))["time"] >= t0 and d)
            assert doc, "stats file not refreshed after SIGUSR1"
            assert {w["worker"] for w in doc["workers"]} == {0, 1}


def test_periodic_stats_lines_on_stderr():
    def stats_lines():
        lines = [json.loads(x) for x in srv.stderr().splitlines()]
        return [x for x in lines if x.get("event") == "stats"]

    with ServerProcess(["--stats-interval", "0.2", "--workers", "2"]) as srv:
        # Two rounds of both workers: the lines keep coming, from each worker.
        assert wait_for(lambda: len(lines := stats_lines()) >= 4 and {x["worker"] for x in lines} == {0, 1})
        assert srv.stop() == 0
        stats = stats_lines()
        assert {"accepted", "active", "closed", "rejected", "bytes_in", "bytes_out", "errors", "rss_bytes"} <= set(stats[0])


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux)")
def test_workers_auto_shards_by_the_fd_hard_limit():
    # 50,000 connections under a 20,000-fd hard limit (less 32 reserved) -> 3 workers.
    hard = 20000
    with ServerProcess(["--workers", "auto", "--max-connections", "50000"],
                       prefix=["prlimit", f"--nofile={hard}:{hard}"]) as srv:
        assert len(srv.worker_pids()) == 3
        assert srv.stop() == 0


def test_undrained_stderr_does_not_stall_the_workers():
    """Stats lines every 10 ms into a stderr pipe nobody reads: the supervisor blocks once the
    pipe is full (64 KiB); the workers, which report only when asked and write their own log
    lines nonblocking, keep serving."""
    import fcntl
    import subprocess
    import sys
    import termios

    proc = subprocess.Popen(
        [sys.executable, "-m", "c10kplan", "serve", "--workers", "2", "--stats-interval", "0.01"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        port = int(proc.stdout.readline().split(b":")[-1])
        err = proc.stderr.fileno()
        capacity = fcntl.fcntl(err, fcntl.F_GETPIPE_SZ)  # bytes (64 KiB by default)

        def unread() -> int:  # FIONREAD: bytes waiting in the pipe
            return int.from_bytes(fcntl.ioctl(err, termios.FIONREAD, b"\0" * 4), "little")

        # Full: less room left than one stats line (~280 B; a pipe write of up to PIPE_BUF
        # bytes is all-or-nothing, so the supervisor's next one blocks).
        assert wait_for(lambda: unread() > capacity - 1024, timeout=30), unread()
        for i in range(20):
            assert echo(port, b"m%d" % i) == b"m%d" % i
    finally:
        proc.stderr.close()  # the supervisor's next write fails with EPIPE and it carries on
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        proc.stdout.close()


def test_dead_worker_frees_its_share_of_max_connections():
    with ServerProcess(["--workers", "2", "--max-connections", "4"]) as srv:
        held = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(4)]
        doc = wait_for(lambda: (d := srv.stats())["total"]["active"] == 4 and d)
        assert doc, "the 4 connections were not all admitted"
        busy = [w for w in doc["workers"] if w["active"]]
        victim = busy[0]
        os.kill(victim["pid"], signal.SIGKILL)
        assert wait_for(lambda: "worker-died" in srv.stderr())
        # The survivor may now admit up to 4 in total again, not 4 - (the victim's count).
        extra = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(victim["active"])]
        total = wait_for(lambda: (t := srv.stats()["total"])["active"] + t["rejected"] >= 4 and t)
        assert total and total["active"] == 4 and total["rejected"] == 0, total
        for s in held + extra:
            s.close()
        srv.stop()


def test_stats_file_directory_removed_is_reported_not_fatal(tmp_path):
    stats_dir = tmp_path / "stats"
    stats_dir.mkdir()
    stats_file = stats_dir / "s.json"
    with ServerProcess(["--stats-file", str(stats_file), "--stats-interval", "0.1"]) as srv:
        def removed() -> bool:  # a temp file may appear for an instant while the server writes
            shutil.rmtree(stats_dir, ignore_errors=True)
            return not stats_dir.exists()

        assert wait_for(removed)
        assert wait_for(lambda: '"event":"error","message":"cannot write' in srv.stderr())
        assert echo(srv.port, b"alive") == b"alive"
        assert srv.stop() == 0
