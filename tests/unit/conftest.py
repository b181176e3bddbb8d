"""tests/unit/ is pure (README: "unit/ (pure, fast)"): no sockets, processes, threads or sleeps.

test_unit_purity.py reads the sources for imports and calls of them; this guard catches the
indirect ones too (a unit test calling code that would fork, connect or sleep): each of those
entry points raises for the length of every unit test. A test that needs one belongs in
tests/integration/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time

import pytest

# (owner, attribute, what it is): the doors through which a test would reach a socket, a child
# process, a thread or a wall-clock wait. subprocess.run/call/check_output and multiprocessing all
# go through Popen or os.fork; socketpair, create_connection and asyncio's loop through socket.socket.
_DOORS = [
    (socket.socket, "__init__", "a socket"),
    (os, "fork", "os.fork"),
    (os, "forkpty", "os.forkpty"),
    (os, "posix_spawn", "os.posix_spawn"),
    (os, "posix_spawnp", "os.posix_spawnp"),
    (os, "system", "os.system"),
    (subprocess.Popen, "__init__", "a subprocess"),
    (threading.Thread, "start", "a thread"),
    (time, "sleep", "time.sleep"),
]


def _refuse(what: str):
    def refused(*_args, **_kwargs):
        raise AssertionError(f"tests/unit is pure: this test used {what}; inject a clock or a fake, "
                             "or move it to tests/integration/")

    return refused


@pytest.fixture(autouse=True)
def _unit_tests_are_pure(monkeypatch):
    for owner, name, what in _DOORS:
        monkeypatch.setattr(owner, name, _refuse(what))
