"""tests/unit/ is pure: no test file here imports or calls sockets, processes, threads or sleeps.

The source check below reads every tests/unit/*.py; conftest.py in this folder also refuses the
same things at run time (for code a unit test calls). Anything real goes to tests/integration/.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent

# Modules whose import alone marks a test as impure.
IMPURE_MODULES = {"subprocess", "threading", "_thread", "multiprocessing", "concurrent", "pty"}
# Calls that fork, exec or wait on the wall clock, as (module, attribute).
IMPURE_CALLS = {("os", n) for n in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "popen",
                                    "execv", "execve", "execvp", "execvpe", "execl", "execlp")} \
    | {("time", "sleep")}
# The allow-list. `socket` may be imported for its constants and exception types only (a fake
# resolver in test_protocols_units.py raises socket.gaierror and answers AF_INET/AF_INET6
# tuples): none of these names makes a socket.
PURE_SOCKET_NAME = re.compile(r"^(AF|SOCK|IPPROTO|SOL|SO|TCP|EAI|AI|NI|MSG|SHUT)_[A-Z0-9_]+$"
                              r"|^(gaierror|herror|timeout|error)$")


def impurities(source: str, name: str = "<test>") -> list[str]:
    """Every import or call in `source` that a pure test may not make, as 'line: what'."""
    found: list[str] = []
    modules: dict[str, str] = {}  # local name -> module it is bound to (import os as o: o -> os)
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                modules[alias.asname or top] = top
                if top in IMPURE_MODULES:
                    found.append(f"{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            top = node.module.split(".")[0]
            for alias in node.names:
                if top in IMPURE_MODULES:
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
                elif (top, alias.name) in IMPURE_CALLS:
                    found.append(f"{node.lineno}: from {top} import {alias.name}")
                elif top == "socket" and not PURE_SOCKET_NAME.match(alias.name):
                    found.append(f"{node.lineno}: from socket import {alias.name}")
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = modules.get(node.value.id)
            if (module, node.attr) in IMPURE_CALLS:
                found.append(f"{node.lineno}: {module}.{node.attr}")
            elif module == "socket" and not PURE_SOCKET_NAME.match(node.attr):
                found.append(f"{node.lineno}: socket.{node.attr}")
    return sorted(set(found), key=lambda s: int(s.split(":")[0]))


@pytest.mark.parametrize("path", sorted(UNIT.glob("*.py")), ids=lambda p: p.name)
def test_no_unit_test_imports_or_calls_sockets_processes_threads_or_sleeps(path):
    if path.name == "conftest.py":
        return  # it names these doors in order to shut them
    assert impurities(path.read_text(), str(path)) == []


@pytest.mark.parametrize(("source", "flagged"), [
    ("import subprocess\nsubprocess.run(['true'])", ["1: import subprocess"]),
    ("import os\nos.fork()", ["2: os.fork"]),
    ("import os as o\no.posix_spawn('x', [], {})", ["2: os.posix_spawn"]),
    ("from os import fork", ["1: from os import fork"]),
    ("import time\ntime.sleep(0.1)", ["2: time.sleep"]),
    ("from time import sleep", ["1: from time import sleep"]),
    ("from threading import Thread", ["1: from threading import Thread"]),
    ("import multiprocessing.pool", ["1: import multiprocessing.pool"]),
    ("from concurrent.futures import ThreadPoolExecutor", ["1: from concurrent.futures import ThreadPoolExecutor"]),
    ("import socket\nsocket.socketpair()", ["2: socket.socketpair"]),
    ("from socket import create_connection", ["1: from socket import create_connection"]),
    # pure: constants and exception types, an injected clock, the time of day
    ("import socket\nraise socket.gaierror(socket.EAI_NONAME, 'x')\nf = socket.AF_INET6", []),
    ("import time\nt = time.monotonic()\ndef sleep(s): pass\nsleep(1)", []),
    ("import os\nos.environ.get('X')", []),
])
def test_the_check_finds_what_it_should_and_nothing_else(source, flagged):
    assert impurities(source) == flagged
