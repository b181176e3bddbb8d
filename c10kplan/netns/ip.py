"""ip(8) and nstat(8) against named network namespaces: the only code that runs them.

Every command names its namespace (`ip -n NS ...`, `ip netns exec NS ...`); nothing here
touches the host's own interfaces, addresses or routes. Kept free of heavy imports: the reaper
(`c10kplan.netns.reaper`) imports it and must start in milliseconds.

Kernel and iproute2 facts this module relies on (Linux, iproute2 >= 4.x):
- `ip netns add NAME` creates a network namespace and keeps it alive with a bind mount at
  /run/netns/NAME; `ip netns del NAME` removes the mount. The namespace itself is freed only
  when nothing else holds it: no process inside it and no open fd to it. So teardown first
  SIGKILLs the processes `ip netns pids NAME` lists, then deletes the name.
- Freeing a namespace destroys its devices: a veth pair goes when either end's namespace
  goes, and a bridge goes with its namespace. Nothing is left in the host's namespace.
- `ip netns exec NAME CMD` runs CMD with the namespace's network stack and, in a private
  mount namespace, /sys remounted for it: /proc/net/* and /proc/sys/net/* are that namespace's.
- `nstat -a -s -z --json` prints the absolute values of the namespace's SNMP / netstat
  counters (-a: absolute, ignore the history file; -s: do not update it; -z: zeros too).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time

from c10kplan.errors import EnvironmentProblem
from c10kplan.pids import pid_alive

IP_TIMEOUT = 30.0  # s for one ip(8) command (a batch of a few hundred lines takes < 1 s)
KILL_WAIT = 5.0  # s for the processes of a namespace to die after SIGKILL


def ip_binary() -> str:
    ip = shutil.which("ip") or ("/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else None)
    if ip is None:
        raise EnvironmentProblem("network namespaces need ip(8) from iproute2")
    return ip


def ip(*args: str, netns: str | None = None, batch: list[str] | None = None,
       check: bool = True) -> subprocess.CompletedProcess:
    """Run `ip [-n NETNS] ARGS` (or `ip [-n NETNS] -batch -` fed `batch`, one command a line).
    EnvironmentProblem with ip's own message when it fails and `check` is set."""
    argv = [ip_binary()]
    if netns is not None:
        argv += ["-n", netns]
    argv += ["-batch", "-"] if batch is not None else list(args)
    done = subprocess.run(argv, input="\n".join(batch) + "\n" if batch is not None else None,
                          capture_output=True, text=True, timeout=IP_TIMEOUT,
                          stdin=subprocess.DEVNULL if batch is None else None)
    if check and done.returncode != 0:
        what = " ".join(argv[1:]) if batch is None else f"{' '.join(argv[1:])} ({batch[0]} ...)"
        raise EnvironmentProblem(f"ip {what} failed: {done.stderr.strip() or done.returncode}")
    return done


def exec_argv(netns: str, argv: list[str]) -> list[str]:
    """`ip netns exec NETNS ARGV...`: the argv that runs ARGV inside the namespace."""
    return [ip_binary(), "netns", "exec", netns, *argv]


def run_in(netns: str, argv: list[str], *, timeout: float = 60.0, check: bool = True,
           **kwargs) -> subprocess.CompletedProcess:
    """Run ARGV inside the namespace and wait (at most `timeout` s); text output captured.
    EnvironmentProblem when it exits non-zero and `check` is set."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    done = subprocess.run(exec_argv(netns, argv), text=True, timeout=timeout, **kwargs)
    if check and done.returncode != 0:
        err = (done.stderr or "").strip().splitlines()
        raise EnvironmentProblem(f"{' '.join(argv)} in netns {netns} exited {done.returncode}"
                                 + (f": {err[-1]}" if err else ""))
    return done


# ------------------------------------------------------------------ nstat counters
def parse_nstat_json(text: str) -> dict[str, int]:
    """`nstat --json` output -> {counter: value}; {} for anything that is not such a document."""
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    kernel = doc.get("kernel") if isinstance(doc, dict) else None
    if not isinstance(kernel, dict):
        return {}
    return {k: int(v) for k, v in kernel.items() if isinstance(v, int) and not isinstance(v, bool)}


def nstat(netns: str) -> dict[str, int]:
    """The namespace's TCP/IP counters now (absolute values, e.g. TcpOutSegs, TcpExtDelayedACKs)."""
    if shutil.which("nstat") is None:
        raise EnvironmentProblem("reading counters per namespace needs nstat(8) from iproute2")
    return parse_nstat_json(run_in(netns, ["nstat", "-a", "-s", "-z", "--json"], timeout=30).stdout)


def counter_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """after - before for every counter in `after` (a counter missing before counts from 0)."""
    return {k: v - before.get(k, 0) for k, v in after.items()}


def segments_per_round_trip(deltas: list[dict[str, int]], round_trips: int) -> float | None:
    """TCP segments sent, summed over the namespaces' counter deltas (TcpOutSegs: each segment is
    sent once, by one namespace), per round trip; None without round trips. On loopback, with
    both ends in one namespace, the same formula reads 3.0 for a sparse echo (planner/cpu.py)."""
    if round_trips <= 0:
        return None
    return sum(d.get("TcpOutSegs", 0) for d in deltas) / round_trips


# ------------------------------------------------------------------ namespaces by name
def list_namespaces() -> list[str]:
    """Names under /run/netns (what `ip netns list` shows)."""
    done = ip("netns", "list", check=False)
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


def namespace_pids(netns: str) -> list[int]:
    done = ip("netns", "pids", netns, check=False)
    return [int(tok) for tok in done.stdout.split() if tok.isdigit()]


def delete_namespace(netns: str) -> None:
    """SIGKILL every process inside, wait (bounded) until none is left, delete the name."""
    deadline = time.monotonic() + KILL_WAIT
    while (pids := [p for p in namespace_pids(netns) if p != os.getpid()]) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    ip("netns", "del", netns, check=False)


def delete_prefixed(prefix: str, passes: int = 3, settle: float = 0.2) -> list[str]:
    """Delete every namespace whose name starts with `prefix` + "-", the hub last. Another pass
    after `settle` s while the last one found any: an `ip netns add` that a dead owner started
    may still finish after the first listing. Returns the names deleted."""
    gone: list[str] = []
    for attempt in range(passes):
        if attempt:
            time.sleep(settle)
        names = [name for name in list_namespaces() if name.startswith(prefix + "-")]
        if not names:
            break
        for name in sorted(names, key=lambda name: name.endswith("-hub")):
            delete_namespace(name)
        gone += names
    return gone


OWNED = re.compile(r"^(c10k-(\d+)-[0-9a-f]{6})-")


def sweep_dead_owners() -> list[str]:
    """Delete the namespaces of earlier runs whose owner pid (in the name) is gone."""
    prefixes = {m.group(1) for n in list_namespaces() if (m := OWNED.match(n)) and not pid_alive(int(m.group(2)))}
    out: list[str] = []
    for prefix in sorted(prefixes):
        out += delete_prefixed(prefix)
    return out
