"""Capacity: the largest number of connections each resource of the host allows, for the
target's traffic shape (role, message size and rate, connect rate, workload), and which binds
first. `capacity(facts, target, calibration) -> Capacity` is pure, like `plan`.

How: for each resource, the largest N for which `plan(facts, target with N connections)` does
not FAIL that resource's finding, found by bisection over 0..MAX_CONNECTIONS. The figure is
then exactly what `check --connections N` agrees with: N passes that finding, N + 1 fails it.
This relies on every such finding being monotonic in N (more connections never need less of a
resource), which holds for every budget: fds, memory, tcp_mem, conntrack, CPU and bandwidth all
grow with N. Limits that sharding lifts (the per-process nofile limit and fs.nr_open: run more
processes; the ports of one source address: bind more addresses) are no cap: they show the
processes (addresses) needed at the capacity figure instead.

Each capped resource also shows where its headroom ends: the largest N its finding still PASSes
(the WARN mark: 70 % of the CPUs or the link, 80 % of MemAvailable, ...). The capacity is the
FAIL point; a host run at it has no headroom left. The fix shown is the finding's at the
capacity figure itself (WARN there), so its numbers are the table's; a finding that jumps from
PASS straight to FAIL shows its fix at capacity + 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from c10kplan.counts import plural
from c10kplan.host.inspect import HostFacts
from c10kplan.planner.calibration import Calibration
from c10kplan.planner.findings import RECORD_CONFIG, Finding, fmt_bytes, fmt_count, largest_passing
from c10kplan.planner.planning import Plan, plan
from c10kplan.planner.target import Target

# The largest target the planner takes (Target.connections).
MAX_CONNECTIONS = 100_000_000


class Resource(BaseModel):
    """One resource: the host's limit, the connections it allows (None: no cap; sharding lifts
    it, or it never binds for this traffic), and the fix that raises it."""

    model_config = RECORD_CONFIG

    id: str  # the finding id
    label: str  # what the limit is called (fs.file-max, MemAvailable, ...)
    limit: int | float | None  # the host's value, in `unit`; None = unknown
    unit: str
    connections: int | None  # the largest N its finding does not FAIL at
    passes: int | None = None  # the largest N its finding PASSes at (within its headroom)
    fix: str = ""  # the finding's fix at `connections` (at connections + 1 when it PASSes there)
    processes: int | None = None  # sharded limits: processes a side needs at the capacity
    source_addresses: int | None = None  # ports: addresses needed at the capacity
    note: str = ""


class Capacity(BaseModel):
    model_config = RECORD_CONFIG

    connections: int  # the binding figure (MAX_CONNECTIONS when nothing binds below it)
    passes: int | None = None  # the largest N every capped resource PASSes at (None: none capped)
    binding: str | None  # finding id of the resource that binds first; None when none does
    shape: str  # the traffic shape planned: "role both, idle"
    resources: list[Resource]  # capped ones by connections ascending, then the uncapped

    def summary(self) -> str:
        """`capacity: 36,297 connections before a FAIL (role both, ...), all PASS up to 25,408;
        CPU binds first, then ...`"""
        capped = [r for r in self.resources if r.connections is not None]
        if not capped:
            return (f"capacity: no resource binds below {MAX_CONNECTIONS:,} connections ({self.shape})")
        head, *rest = capped
        text = f"capacity: {self.connections:,} connections before a FAIL ({self.shape})"
        if self.passes is not None and self.passes < self.connections:
            text += f", {self.passes:,} within headroom (no WARN)"
        text += f"; {head.label} binds first"
        if rest:
            text += ", then " + ", ".join(f"{r.label} at ~{_short(r.connections)}" for r in rest)  # type: ignore[arg-type]
        return text


@dataclass(frozen=True)
class _Kind:
    label: str
    unit: str
    limit: Callable[[HostFacts], int | float | None]


# Resources whose finding FAILs when exceeded, in the order ties are broken.
_CAPS: dict[str, _Kind] = {
    "fds.file_max": _Kind("fs.file-max", "fds", lambda f: f.file_max),
    "fds.epoll_watches": _Kind("fs.epoll.max_user_watches", "watches", lambda f: f.epoll_max_user_watches),
    "memory.expected": _Kind("memory", "bytes available", lambda f: f.mem_available_bytes),
    "memory.tcp_mem": _Kind("tcp_mem", "pages (high)", lambda f: f.tcp_mem_pages[2] if f.tcp_mem_pages else None),
    "conntrack.max": _Kind("nf_conntrack_max", "entries", lambda f: f.nf_conntrack_max),
    "cpu.messages": _Kind("CPU", "CPUs", lambda f: f.cpu_count),
    "bandwidth.link": _Kind("link", "Mbit/s", lambda f: f.link_speed_mbit),
    "ports.ephemeral": _Kind("ports", "ports per source address", lambda f: _ports(f)),
}
# Limits that sharding lifts: processes (nofile, nr_open) or source addresses (ports).
_SHARDED: dict[str, _Kind] = {
    "fds.nofile": _Kind("nofile (per process)", "fds per process", lambda f: f.nofile_hard),
    "fds.nr_open": _Kind("fs.nr_open (per process)", "fds per process", lambda f: f.nr_open),
}


def capacity(facts: HostFacts, target: Target, calibration: Calibration | None = None) -> Capacity:
    """The capacity of this host for `target`'s traffic shape (target.connections is ignored)."""
    plans: dict[int, Plan] = {}

    def at(n: int) -> Plan:
        if n not in plans:
            plans[n] = plan(facts, target.model_copy(update={"connections": n}), calibration)
        return plans[n]

    def status(n: int, rid: str) -> str | None:
        found = _finding(at(n), rid)
        return None if found is None else found.status

    capped: list[Resource] = []
    uncapped: list[str] = []
    for rid, kind in _CAPS.items():
        if status(1, rid) is None:  # the finding does not apply (role, conntrack not loaded)
            continue
        if status(MAX_CONNECTIONS, rid) != "FAIL":
            uncapped.append(rid)
            continue
        n = largest_passing(lambda k: status(k, rid) != "FAIL", MAX_CONNECTIONS)
        passes = largest_passing(lambda k: status(k, rid) == "PASS", n + 1)
        fix = _finding(at(n), rid).fix if n and status(n, rid) != "PASS" else ""  # type: ignore[union-attr]
        fix = fix or _finding(at(n + 1), rid).fix  # type: ignore[union-attr]
        capped.append(Resource(id=rid, label=kind.label, limit=kind.limit(facts), unit=kind.unit,
                               connections=n, passes=passes, fix=fix))
    # A sharded limit binds only when no process can hold even one connection (--reserve-fds
    # eats the whole nofile limit): more processes do not help then.
    sharded = {rid: kind for rid, kind in _SHARDED.items() if status(1, rid) != "FAIL"}
    for rid in _SHARDED.keys() - sharded.keys():
        kind = _SHARDED[rid]
        capped.append(Resource(id=rid, label=kind.label, limit=kind.limit(facts), unit=kind.unit,
                               connections=0, passes=0, fix=_finding(at(1), rid).fix))  # type: ignore[union-attr]
    capped.sort(key=lambda r: r.connections)  # stable: ties keep _CAPS order
    cap = capped[0].connections if capped else MAX_CONNECTIONS
    # What the sharded and uncapped resources need, shown at the capacity figure.
    reference = at(max(1, cap))  # type: ignore[arg-type]
    return Capacity(
        connections=cap, binding=capped[0].id if capped else None, shape=shape_text(target),  # type: ignore[arg-type]
        passes=min((r.passes for r in capped), default=None),  # type: ignore[type-var]
        resources=[*capped, *(_sharded(rid, kind, facts, reference) for rid, kind in sharded.items()),
                   *(_uncapped(rid, facts, at(1), reference) for rid in uncapped)],
    )


def shape_text(target: Target) -> str:
    """The traffic shape in a few words: "role both, idle" / "role server, 64 B x 1 msg/s"."""
    load = ("idle" if target.message_rate == 0
            else f"{target.message_size:,} B x {target.message_rate:g} msg/s")
    return f"role {target.role}, {load}, {target.runs} workload"


def _finding(p: Plan, rid: str) -> Finding | None:
    return next((f for f in p.findings if f.id == rid), None)


def _sharded(rid: str, kind: _Kind, facts: HostFacts, p: Plan) -> Resource:
    procs = max(p.server_processes, p.client_processes)
    sides = " a side" if p.server_processes and p.client_processes else ""
    return Resource(id=rid, label=kind.label, limit=kind.limit(facts), unit=kind.unit, connections=None,
                    processes=procs, fix=_finding(p, rid).fix if _finding(p, rid) else "",  # type: ignore[union-attr]
                    note=f"sharded: {plural(procs, 'process', 'processes')}{sides} at"
                         f" {plural(p.target.connections, 'connection')}")


def _uncapped(rid: str, facts: HostFacts, first: Plan, reference: Plan) -> Resource:
    """A resource that never FAILs for this traffic (or whose limit is unknown), and why."""
    kind = _CAPS[rid]
    found = _finding(first, rid)
    observed = found.observed if found is not None else ""
    addresses = None
    if found is not None and found.status == "WARN" and observed.endswith("unknown"):
        note = "unknown on this host"
    elif rid == "conntrack.max" and "nothing tracked" in observed:
        note = "nothing tracked"
    elif rid == "ports.ephemeral" and reference.ports is not None:
        addresses = reference.ports.fast_source_addresses
        note = (f"sharded: {plural(addresses, 'source address', 'source addresses')} at"
                f" {plural(reference.target.connections, 'connection')} (storm --source-ips auto)")
    else:
        note = f"no cap below {MAX_CONNECTIONS:,} for this traffic"
    return Resource(id=rid, label=kind.label, limit=kind.limit(facts), unit=kind.unit,
                    connections=None, source_addresses=addresses, note=note)


def _ports(facts: HostFacts) -> int | None:
    if facts.ip_local_port_range is None:
        return None
    low, high = facts.ip_local_port_range
    return high - low + 1 - (facts.reserved_ports_in_range or 0)


def _short(n: int) -> str:
    """1,873,402 -> "1.87M"; 262,144 -> "262k"; 950 -> "950"."""
    if n >= 1_000_000:
        return f"{n / 1e6:.3g}M"
    if n >= 1000:
        return f"{n / 1e3:.3g}k"
    return str(n)


def limit_text(r: Resource) -> str:
    """The limit column of the capacity table."""
    if r.limit is None:
        return "unknown"
    if r.unit.startswith("bytes"):
        return fmt_bytes(r.limit) + r.unit[len("bytes"):]
    if isinstance(r.limit, float):
        return f"{r.limit:,.6g} {r.unit}"
    return f"{fmt_count(r.limit)} {r.unit}"
