"""Run the c10kplan CLI in this process (one case in milliseconds, not a Python start-up) and
check the contract for bad input: exit 2, one line `c10kplan: error: ...` on stderr, no
traceback, nothing on stdout, under MAX_SECONDS, and nothing started.

"Nothing started" is enforced, not hoped for: while a case runs, the functions the commands
hand off to (serve, storm, verify, the benchmarks) and process creation itself raise
StartedSomething, so a value the CLI wrongly accepts fails its case instead of forking.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from c10kplan.cli.app import main

MAX_SECONDS = 1.0  # one case in this process: its CPU time (thread_time), which other jobs on
# the CPUs do not inflate; its wall time is bounded by MAX_WALL_SECONDS, so a hang still fails.
MAX_WALL_SECONDS = 10.0
# A real process adds Python's start-up (0.3-0.6 s here, several times that while other jobs
# load both CPUs); its own work is what MAX_SECONDS bounds in-process. A hang still fails.
MAX_PROCESS_SECONDS = 10.0


class StartedSomething(AssertionError):
    """A hostile value got past validation: the command began its real work."""


def _refuse(what: str):
    def started(*args, **kwargs):
        raise StartedSomething(f"{what} was started")

    return started


# Where each command hands off once its input is valid (imported at call time by the CLI), and
# process creation itself: verify checks the process cap inside run_verify, before it forks.
HANDOFFS = (
    "c10kplan.reactor.workers.serve",
    "c10kplan.storm.runner.run_storm",
    "c10kplan.bench.backends.run_backends_bench",
    "c10kplan.bench.trigger.count_wakeups",
    "os.fork",
    "os.posix_spawn",
    "subprocess.Popen",
)


@dataclass
class Outcome:
    code: int | None
    stdout: str
    stderr: str
    seconds: float
    cpu_seconds: float = 0.0
    limit: float = MAX_SECONDS

    def assert_refused(self, *names: str) -> str:
        """The bad-input contract; `names`: one of them must appear in the line (the option)."""
        assert "Traceback" not in self.stderr, self.stderr
        assert self.code == 2, (self.code, self.stderr)
        lines = self.stderr.splitlines()
        assert len(lines) == 1 and self.stderr.endswith("\n"), self.stderr
        assert lines[0].startswith("c10kplan: error: "), lines[0]
        assert "\x1b" not in lines[0], lines[0]
        assert self.stdout == "", self.stdout
        assert self.cpu_seconds < self.limit, f"{self.cpu_seconds:.2f} s of CPU"
        assert self.seconds < max(self.limit, MAX_WALL_SECONDS), f"{self.seconds:.2f} s"
        if names:  # a field name, or the flag the error names it by (message_rate -> --message-rate)
            flags = {f"--{n.replace('_', '-')}".removesuffix("-ms") for n in names}
            assert any(n in lines[0] for n in (*names, *flags)), (names, lines[0])
        return lines[0]


def run(argv: list[str]) -> Outcome:
    """`c10kplan ARGV` in this process, with every hand-off refused (see the module doc)."""
    out, err = io.StringIO(), io.StringIO()
    code: int | None = 0
    saved_argv = sys.argv
    with contextlib.ExitStack() as stack:
        for target in HANDOFFS:
            stack.enter_context(mock.patch(target, _refuse(target)))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        t0, c0 = time.monotonic(), time.thread_time()
        try:
            main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) or exc.code is None else 1
        finally:
            seconds, cpu = time.monotonic() - t0, time.thread_time() - c0
            sys.argv = saved_argv
    return Outcome(code, out.getvalue(), err.getvalue(), seconds, cpu)


def run_process(argv: list[str], timeout: float = 30) -> Outcome:
    """`python3 -m c10kplan ARGV` as a real process (the repo's code first on the path)."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "c10kplan", *argv], capture_output=True, text=True,
                         timeout=timeout, stdin=subprocess.DEVNULL, env=env)
    wall = time.monotonic() - t0  # a real process: its wall time is what is bounded
    return Outcome(res.returncode, res.stdout, res.stderr, wall, cpu_seconds=wall, limit=MAX_PROCESS_SECONDS)
