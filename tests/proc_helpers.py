"""Process inspection for tests: is a pid alive, which processes descend from one."""

from __future__ import annotations

from c10kplan.host.parse import parse_pid_stat
from c10kplan.host.procfs import ProcFS
from tests.helpers import wait_for

_PROC = ProcFS("/")


def alive(pid: int) -> bool:
    """True while the pid exists and is not a zombie."""
    stat = parse_pid_stat(_PROC.read(f"proc/{pid}/stat"))
    return stat is not None and stat.state != "Z"


def wait_gone(pids, timeout: float = 5.0) -> list[int]:
    """Wait (bounded) until none of `pids` is alive; return those still alive."""
    wait_for(lambda: not [p for p in pids if alive(p)], timeout)
    return [p for p in pids if alive(p)]


def descendants(root: int) -> set[int]:
    """Every live process below `root` in the parent tree."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.listdir("proc"):
        if entry.isdigit() and (stat := parse_pid_stat(_PROC.read(f"proc/{entry}/stat"))):
            children.setdefault(stat.ppid, []).append(int(entry))
    out: set[int] = set()
    todo = [root]
    while todo:
        for kid in children.get(todo.pop(), []):
            if kid not in out:
                out.add(kid)
                todo.append(kid)
    return out
