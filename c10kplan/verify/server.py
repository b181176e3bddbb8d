"""The server side of verify: `c10kplan serve` started through reactor.launch.ServerProcess
(a child of the process layer, with PDEATHSIG: see c10kplan/processes), in its own session
and process group.

- In a new session (its own process group) a Ctrl-C on the terminal reaches verify only, and
  verify stops the whole group with SIGTERM (graceful, STOP_TIMEOUT) then SIGKILL; a stop that
  needed SIGKILL is reported by verify as a problem.
- SIGUSR1 makes serve rewrite its stats file within ~300 ms.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from c10kplan.errors import C10kError
from c10kplan.reactor.launch import ServerProcess
from c10kplan.reactor.stats import read_stats

START_TIMEOUT = 20.0  # s for serve to print `listening HOST:PORT`
STOP_TIMEOUT = 12.0  # s for a graceful exit after SIGTERM, before SIGKILL
STATS_TIMEOUT = 2.0  # s for a fresh stats file after SIGUSR1 (serve promises 300 ms)


def server_sched(message_rate: float) -> str:
    """serve --sched for a hold at `message_rate` msg/s per connection: batch when the hold is
    idle (no message is timed, and the ramp runs about twice as fast: reactor/sched.py), else
    inherit (batch would add about 0.5 ms to every reply)."""
    return "batch" if message_rate == 0 else "inherit"


def start_server(*, workers: int, backend: str = "epoll", trigger: str = "level", protocol: str = "echo",
                 sched: str = "inherit", host: str = "127.0.0.1", prefix: Sequence[str] = ()) -> ServerProcess:
    """Start serve on HOST:0 and return once it listens (EnvironmentProblem if it does not).
    `prefix` goes before the command (`ip netns exec NS`: serve in that namespace)."""
    args = ["--host", host, "--port", "0", "--workers", str(workers), "--protocol", protocol,
            "--backend", backend, "--trigger", trigger, "--sched", sched, "--stats-interval", "1"]
    return ServerProcess(args, prefix=prefix, start_timeout=START_TIMEOUT, stop_timeout=STOP_TIMEOUT,
                         new_session=True, pdeathsig=True)


def server_stats(server: ServerProcess) -> dict[str, Any] | None:
    """Fresh stats if serve answers in time; else the last stats file it wrote (serve rewrites it
    every second); None when there is none."""
    with contextlib.suppress(C10kError, OSError):
        return server.stats(STATS_TIMEOUT)
    try:
        return read_stats(server.stats_file)
    except C10kError:  # missing or unreadable: reported as "no stats"
        return None
