"""Run `c10kplan serve` as a child process: wait for `listening`, ask for stats, stop it.

Used by `verify`, the benchmark scripts and the tests: the server is always the real command
line in its own process, so what is measured is what a user runs. Helpers only the benchmark
scripts need (fresh netns, paced connects, load average) live in scripts/benchlib.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from c10kplan.errors import EnvironmentProblem
from c10kplan.host.process import process_cpu_seconds  # noqa: F401 - tests and benchmarks time a worker
from c10kplan.processes import ChildSet, OwnedTempDir, describe_status
from c10kplan.reactor.stats import read_stats

TEMP_PURPOSE = "serve"  # its temp dir: /tmp/c10kplan-serve-PID-XXXXXXXX (processes/tempdirs.py)


class ServerProcess:
    """`with ServerProcess(["--backend", "poll"]) as srv: srv.port, srv.stats(), srv.stop()`.

    Starting waits (bounded) for the `listening HOST:PORT` line; a server that does not get
    there is stopped and reported as EnvironmentProblem with the last line of its stderr.
    verify's options: `new_session` starts serve in its own session and process group (a
    terminal's Ctrl-C reaches only the parent, which then stops the whole group: serve and any
    worker that outlived it); `pdeathsig` has the kernel SIGKILL serve when this process dies
    (processes/__init__.py), so even a SIGKILLed parent leaves no process behind; its temp dir
    (stats file, stderr) is swept by the next ServerProcess once this process is gone.
    `stop_clean` is False once a stop needed SIGKILL.
    """

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        prefix: Sequence[str] = (),
        start_timeout: float = 30.0,
        stop_timeout: float = 15.0,
        env: dict[str, str] | None = None,
        new_session: bool = False,
        pdeathsig: bool = False,
    ) -> None:
        self._dir = OwnedTempDir(TEMP_PURPOSE)
        self.stats_file = self._dir.path / "stats.json"
        self.stderr_file = self._dir.path / "stderr.txt"
        cmd = [*prefix, sys.executable, "-m", "c10kplan", "serve", *args]
        if "--stats-file" not in args:
            cmd += ["--stats-file", str(self.stats_file)]
        if "--stats-interval" not in args:
            cmd += ["--stats-interval", "0"]
        self.cmd = cmd
        self.stop_timeout = stop_timeout
        self.returncode: int | None = None
        self.stop_clean: bool | None = None  # set by stop(): False when it needed SIGKILL
        self._kids = ChildSet(1)
        # stderr goes to a file: a pipe nobody drains could block a chatty server.
        self._err = open(self.stderr_file, "wb")  # noqa: SIM115 - closed in stop()
        try:
            self._child = self._kids.run(cmd, stdout=subprocess.PIPE, stderr=self._err, env=env,
                                         new_session=new_session, pdeathsig=signal.SIGKILL if pdeathsig else 0)
        except BaseException:
            self._err.close()
            self._dir.cleanup()
            raise
        assert self._child.popen is not None
        self.proc = self._child.popen
        try:
            self.host, self.port = self._wait_listening(start_timeout)
        except BaseException:
            self.close()
            raise

    def _wait_listening(self, timeout: float) -> tuple[str, int]:
        line = self._kids.wait_line(self._child, timeout)
        if line is None:
            raise EnvironmentProblem(f"serve did not print `listening` within {timeout:.0f} s")
        if not line.endswith(b"\n"):
            self._kids.wait_until(lambda: self._child.exited, 2.0)  # its last words are in stderr
            raise EnvironmentProblem(f"serve did not start: {self.stderr_tail() or 'no output'}")
        word, _, addr = line.decode("utf-8", "replace").strip().partition(" ")
        host, _, port = addr.rpartition(":")
        if word != "listening" or not port.isdigit():
            raise EnvironmentProblem(f"unexpected first line from serve: {word} {addr}")
        return host.strip("[]"), int(port)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def exit_description(self) -> str:
        """`still running`, `exited with status 1`, `killed by SIGKILL`, ..."""
        return describe_status(returncode=self.proc.poll())

    def stats(self, timeout: float = 2.0) -> dict[str, Any]:
        """Ask the running server for fresh stats (SIGUSR1) and return the document."""
        if self.proc.poll() is not None:
            raise EnvironmentProblem(f"serve {self.exit_description()}: no fresh stats")
        sent = time.time()
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stats_file.exists():
                doc = read_stats(self.stats_file)
                if doc["time"] >= sent:
                    return doc
            time.sleep(0.005)
        raise EnvironmentProblem(f"serve did not refresh its stats file within {timeout} s")

    def worker_pids(self) -> list[int]:
        return [w["pid"] for w in self.stats()["workers"]]

    def stderr(self) -> str:
        if not self._err.closed:
            self._err.flush()
        return self.stderr_file.read_text(errors="replace")

    def stderr_tail(self) -> str:
        """The last non-empty line serve wrote to stderr (its error message, if it failed)."""
        lines = self.stderr().strip().splitlines()
        return lines[-1] if lines else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float | None = None) -> int | None:
        """Signal the supervisor (its whole group with new_session), wait up to `timeout` s
        (default stop_timeout), then SIGKILL (and stop_clean is False). Idempotent; returns its
        exit code."""
        if self.stop_clean is None:
            wait = self.stop_timeout if timeout is None else timeout
            self.stop_clean = self._kids.stop(sig, wait)
            self._kids.close()
            self._err.close()
        self.returncode = self._child.returncode
        return self.returncode

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
