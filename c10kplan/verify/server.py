"""The server side of verify: `c10kplan serve` as a child process in its own process group.

Process facts (Linux):
- The child gets PR_SET_PDEATHSIG = SIGKILL before exec (it survives exec for non-setuid
  programs), so it dies with verify even if verify is SIGKILLed; serve's own workers carry
  PDEATHSIG towards serve.
- It runs in a new session (its own process group): a Ctrl-C on the terminal reaches verify
  only, and verify stops the whole group with SIGTERM (graceful) then SIGKILL (bounded).
- SIGUSR1 makes serve rewrite its stats file within ~300 ms.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from c10kplan.errors import EnvironmentProblem
from c10kplan.processes import set_pdeathsig

START_TIMEOUT = 20.0  # s for serve to print `listening HOST:PORT`
STOP_TIMEOUT = 12.0  # s for a graceful exit after SIGTERM, before SIGKILL
STATS_WAIT = 0.4  # s after SIGUSR1 (serve promises 300 ms)


class ServerProcess:
    def __init__(self, *, workers: int, backend: str, trigger: str, stats_file: Path,
                 protocol: str = "echo", host: str = "127.0.0.1") -> None:
        self.argv = [
            sys.executable, "-m", "c10kplan", "serve", "--host", host, "--port", "0",
            "--workers", str(workers), "--protocol", protocol, "--backend", backend,
            "--trigger", trigger, "--stats-file", str(stats_file), "--stats-interval", "1",
        ]
        self.stats_file = stats_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = host
        self.port = 0
        self._stderr = None

    def start(self) -> None:
        # stderr goes to a file: a pipe nobody drains could block a chatty server.
        self._stderr = open(self.stats_file.with_suffix(".stderr"), "w+b")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
            start_new_session=True, preexec_fn=set_pdeathsig,
        )
        line = self._first_line(START_TIMEOUT)
        parts = line.split()
        if len(parts) != 2 or parts[0] != "listening":
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(2)
            err = self._stderr_tail()
            self.stop()
            raise EnvironmentProblem(f"the server did not start: {err or line or 'no output'}")
        host, _, port = parts[1].rpartition(":")
        self.host, self.port = host, int(port)

    def _first_line(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            if not poller.poll(max(1, int(left * 1000))):
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
        return buf.split(b"\n", 1)[0].decode("utf-8", "replace").strip()

    def _stderr_tail(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._stderr.flush()
            self._stderr.seek(0)
            lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
            return lines[-1] if lines else ""
        return ""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_description(self) -> str:
        if self.proc is None or self.proc.returncode is None:
            return "running"
        code = self.proc.returncode
        return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"

    def stats(self) -> dict | None:
        """Fresh stats: SIGUSR1, wait for the rewrite, read the file (None if unavailable)."""
        from c10kplan.reactor.stats import read_stats

        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGUSR1)  # type: ignore[union-attr]
            before = _mtime(self.stats_file)
            deadline = time.monotonic() + STATS_WAIT * 3
            time.sleep(STATS_WAIT / 4)
            while time.monotonic() < deadline and _mtime(self.stats_file) == before:
                time.sleep(0.02)
        try:
            return read_stats(self.stats_file)
        except Exception:  # noqa: BLE001 - a missing file is reported as "no stats"
            return None

    def stop(self) -> None:
        """SIGTERM the group, wait (bounded), SIGKILL what is left. Idempotent."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)  # workers that outlived serve, if any
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        for stream in (self.proc.stdout, self._stderr):
            if stream is not None:
                stream.close()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
