"""Helpers that only the benchmark scripts in this folder use; not part of the installed package.

A fresh network namespace for big loads, the flags that go with it, paced connection opening and
the load average to print next to timing figures. The server itself is started through
`c10kplan.reactor.launch.ServerProcess`, which verify and the tests use too.

The scripts run as `python scripts/NAME.py`, so this folder is sys.path[0] and `from benchlib
import ...` works; ensure_fresh_netns re-runs the same file by its absolute path, so the run
inside `unshare -n` finds this module the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from c10kplan.processes import bring_loopback_up, unshare_net_argv

IN_NETNS_FLAG = "--in-netns"


def ensure_fresh_netns(script: str, argv: Sequence[str], *, disabled: bool = False) -> str:
    """Big loads run in their own network namespace so they do not use up the host's ports.

    Outside one: re-run `script argv` under `unshare -n` (root; no host setting changes) and
    exit with its status. Inside (IN_NETNS_FLAG in argv): bring loopback up. Returns where we run.
    """
    if disabled:
        return "in the current netns"
    if IN_NETNS_FLAG not in argv:
        cmd = [*unshare_net_argv("a fresh netns"), sys.executable, os.path.abspath(script), IN_NETNS_FLAG, *argv]
        raise SystemExit(subprocess.call(cmd))
    bring_loopback_up("a fresh netns")
    return "in a fresh netns"


def add_netns_arguments(parser: argparse.ArgumentParser) -> None:
    """--no-netns (run here) and the hidden flag ensure_fresh_netns passes to itself."""
    parser.add_argument(IN_NETNS_FLAG, action="store_true", help="(internal) already in a fresh netns")
    parser.add_argument("--no-netns", action="store_true", help="run in the current namespace")


def open_connections(host: str, port: int, n: int, *, batch: int = 250, pause: float = 0.025) -> list[socket.socket]:
    """n nonblocking connections, `pause` s after every `batch` so the server's accept queue
    (capped at net.core.somaxconn) does not overflow and turn connects into SYN retries."""
    socks = []
    for i in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass  # loopback handshakes complete in the background
        socks.append(s)
        if i % batch == batch - 1:
            time.sleep(pause)
    return socks


def load_average_text() -> str:
    """`uptime`'s three load averages, to print next to timing figures."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def run_verify(label: str, args: Sequence[str], *, stderr_tail: int = 400, title: str | None = None,
               prefix: Sequence[str] = ()) -> tuple[int, dict | None, float]:
    """Run `c10kplan verify ARGS --json` (at most 900 s; after `prefix`, e.g. prlimit) and print
    its heading (`title`, default the command); returns the exit code, the JSON document (None
    when there is none: its wall time, exit code and the last `stderr_tail` characters of
    stderr are printed, and the code is at least 1) and the wall time in seconds."""
    print(f"[{label}] {title or 'verify ' + ' '.join(args)}")
    print(f"    load before: {load_average_text()}")
    t0 = time.monotonic()
    done = subprocess.run([*prefix, sys.executable, "-m", "c10kplan", "verify", *args, "--json"],
                          capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - t0
    try:
        return done.returncode, json.loads(done.stdout), wall
    except ValueError:
        print(f"    wall {wall:.1f} s  exit {done.returncode}  no result: {done.stderr.strip()[-stderr_tail:]}")
        return done.returncode or 1, None, wall
