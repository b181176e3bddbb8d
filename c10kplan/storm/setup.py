"""Resolve `--processes auto` and `--source-ips auto` from this host's limits into a StormConfig.

Reads only through ProcFS (the port range, `host.inspect.port_range`: the kernel default when
hidden, EnvironmentProblem when malformed or inverted; the reserved ports inside it) and
getrlimit (the fd hard limit)."""

from __future__ import annotations

from c10kplan.errors import BadInput
from c10kplan.host.inspect import port_range, reserved_ports_in
from c10kplan.host.procfs import ProcFS
from c10kplan.numeric import MAX_CONNECTIONS, parse_int
from c10kplan.processes import check_processes, hard_nofile
from c10kplan.storm.config import StormConfig, auto_processes, auto_source_ips, parse_source_ips


def resolve_processes(spec: str | int, connections: int) -> int:
    if spec == "auto":
        return auto_processes(connections, hard_nofile())
    try:
        n = spec if isinstance(spec, int) else parse_int(spec)
    except ValueError as exc:
        raise BadInput(f"--processes must be 'auto' or a positive number: {exc}") from None
    if n < 1:
        raise BadInput("--processes must be 'auto' or a positive number")
    check_processes(n, "storm")  # as asked, before it is clamped to one per connection
    return min(n, connections)


def resolve_source_ips(spec: str | None, host: str, connections: int, procfs: ProcFS) -> tuple[str, ...]:
    if spec is None or spec == "":
        return ()
    if ":" in host:  # IPv6: spreading is over 127/8 (IPv4) only; ::1 uses one source address
        if spec == "auto":
            return ()
        raise BadInput("--source-ips lists IPv4 addresses; an IPv6 target takes --source-ips auto (one address)")
    if spec == "auto":
        low, high = port_range(procfs)
        return auto_source_ips(host, connections, low, high, reserved_ports_in(procfs, low, high))
    return parse_source_ips(spec)


def build_config(host: str, port: int, *, connections: int, processes: str | int = "auto",
                 source_ips: str | None = "auto", procfs: ProcFS | None = None, **settings) -> StormConfig:
    """A validated StormConfig with the `auto` values worked out for this host."""
    procfs = procfs or ProcFS()
    if not 1 <= connections <= MAX_CONNECTIONS:
        raise BadInput(f"--connections must be 1..{MAX_CONNECTIONS:,}, not {connections}")
    n = resolve_processes(processes, connections)
    check_processes(n, "storm")  # before the source addresses: 2e9 connections need 100,000 processes
    return StormConfig(
        host=host, port=port, connections=connections,
        processes=n,
        source_ips=resolve_source_ips(source_ips, host, connections, procfs),
        **settings,
    )
