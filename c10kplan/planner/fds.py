"""File-descriptor budget: per process, per user (epoll watches) and for the whole host.

Kernel facts:
- Every TCP socket is one fd, in the process that holds it, for as long as it is open.
- RLIMIT_NOFILE (fds per process) is raised up to the hard limit freely; the hard limit itself
  only with CAP_SYS_RESOURCE, and never above fs.nr_open (fds; default 1,048,576).
- fs.file-max counts open files of the whole host (fs.file-nr field 1 = in use now).
- fs.epoll.max_user_watches counts epoll registrations of one real user across all its epoll
  instances; each costs ~160 bytes of kernel memory (the eventpoll_epi slab object + its
  eppoll_entry), already part of the per-socket constant in memory.py.
"""

from __future__ import annotations

from pydantic import BaseModel

from c10kplan.host.inspect import HostFacts
from c10kplan.planner.findings import (
    RECORD_CONFIG,
    Finding,
    Step,
    ceiling_finding,
    finding,
    fmt_count,
    next_pow2,
    step,
    unknown_finding,
)
from c10kplan.planner.sharding import ceil_div, processes_needed, reuseport_processes_needed, usable_fds
from c10kplan.planner.target import Target

# Assumed when proc/PID/limits is unreadable: the usual default hard limit of distributions
# (fds). The finding is WARN so the guess is visible.
FALLBACK_NOFILE_HARD = 1024
# The kernel's default fs.nr_open (fds), used when proc/sys/fs/nr_open is hidden.
DEFAULT_NR_OPEN = 1_048_576


class FdBudget(BaseModel):
    model_config = RECORD_CONFIG

    sockets: int
    reserve_fds: int
    per_process_ceiling: int  # fds one process may get: hard limit, or nr_open with the capability
    server_processes: int
    client_processes: int
    fds_per_process: int  # the busiest process: its share of sockets + reserve (+1 listener)
    total_fds: int  # all processes of the target together
    host_fds_needed: int  # total_fds + fds already open on the host
    working: list[Step]


def fd_budget(facts: HostFacts, target: Target, *, min_server_processes: int = 0,
              min_client_processes: int = 0) -> tuple[FdBudget, list[Finding]]:
    """`min_*_processes`: what another budget needs (the CPU budget: no process above 70 % of
    one CPU); each side runs max(that, what the fd limit needs)."""
    reserve = target.reserve_fds
    hard = facts.nofile_hard if facts.nofile_hard is not None else FALLBACK_NOFILE_HARD
    nr_open = facts.nr_open if facts.nr_open is not None else DEFAULT_NR_OPEN
    ceiling = nr_open if facts.can_raise_hard_limit else hard

    # Sharding arithmetic lives in sharding.py. A ceiling at or below the reserve leaves no fd
    # for connections: plan as if one were left (fds.nofile FAILs and says why).
    if usable_fds(ceiling, reserve) <= 0:
        ceiling = reserve + 1
    per_side = target.connections
    fd_procs = processes_needed(per_side, ceiling, reserve)
    # Server workers share one port by SO_REUSEPORT hash: sized for the busiest (sharding.py).
    server_fd_procs = reuseport_processes_needed(per_side, ceiling, reserve)
    server_procs = max(server_fd_procs, min_server_processes) if target.serves else 0
    client_procs = max(fd_procs, min_client_processes) if target.connects else 0
    # The busiest process: each side holds all `connections` over its own processes (the CPU
    # budget may give the two sides different counts), and a server process also has its
    # listening socket (SO_REUSEPORT shards); clients have none.
    server_fds = ceil_div(per_side, server_procs) + reserve + 1 if server_procs else 0
    client_fds = ceil_div(per_side, client_procs) + reserve if client_procs else 0
    fds_per_process = max(server_fds, client_fds)
    total = target.sockets + reserve * (server_procs + client_procs) + server_procs
    in_use = facts.file_nr_allocated or 0
    host_needed = total + in_use

    working = [
        step("sockets", target.sockets, "fds",
             "connections x (2 if role both else 1)", connections=target.connections, role=target.role),
        step("per_process_ceiling", ceiling, "fds",
             "fs.nr_open if CAP_SYS_RESOURCE else nofile hard limit",
             nofile_hard=facts.nofile_hard, nr_open=facts.nr_open,
             cap_sys_resource=str(facts.can_raise_hard_limit)),
        step("server_processes", server_procs, "processes",
             "max(W: connections / W + 4 sigma of the SO_REUSEPORT hash share <= ceiling - reserve_fds,"
             " cpu.server_processes) if role serves else 0",
             connections=per_side, ceiling=ceiling, reserve_fds=reserve, cpu=min_server_processes),
        step("client_processes", client_procs, "processes",
             "max(ceil(connections / (ceiling - reserve_fds)), cpu.client_processes) if role connects else 0",
             connections=per_side, ceiling=ceiling, reserve_fds=reserve, cpu=min_client_processes),
        step("fds_per_process", fds_per_process, "fds",
             "max(ceil(connections / server_processes) + reserve_fds + 1 listener,"
             " ceil(connections / client_processes) + reserve_fds), over the sides the role has",
             connections=per_side, server_processes=server_procs, client_processes=client_procs,
             reserve_fds=reserve),
        step("total_fds", total, "fds",
             "sockets + reserve_fds x processes + server_processes (listeners)",
             sockets=target.sockets, reserve_fds=reserve, processes=server_procs + client_procs),
        step("host_fds_needed", host_needed, "fds", "total_fds + fs.file-nr[allocated]",
             total_fds=total, in_use=facts.file_nr_allocated),
    ]
    budget = FdBudget.model_construct(
        sockets=target.sockets, reserve_fds=reserve, per_process_ceiling=ceiling,
        server_processes=server_procs, client_processes=client_procs,
        fds_per_process=fds_per_process, total_fds=total, host_fds_needed=host_needed,
        working=working,
    )
    return budget, _findings(facts, target, budget)


def _findings(facts: HostFacts, target: Target, b: FdBudget) -> list[Finding]:
    single = target.connections + target.reserve_fds + (1 if target.serves else 0)
    out = [_nofile(facts, b, single), _nr_open(facts, b, single)]
    out.append(ceiling_finding(
        "fds.file_max", "fs.file-max", facts.file_max, b.host_fds_needed,
        "total_fds + fds in use <= fs.file-max"))
    out.append(ceiling_finding(
        "fds.epoll_watches", "fs.epoll.max_user_watches", facts.epoll_max_user_watches, b.sockets,
        "sockets <= fs.epoll.max_user_watches (one watch per registered socket, per user)"))
    return out


def _nofile(facts: HostFacts, b: FdBudget, single: int) -> Finding:
    formula = "connections + reserve_fds + listener <= nofile soft limit (one process)"
    workers = max(b.server_processes, b.client_processes)
    required = f"{single:,} fds in one process"
    if facts.nofile_hard is None:
        return unknown_finding(
            "fds.nofile", "nofile limit", required,
            f"assumed hard {FALLBACK_NOFILE_HARD}: run {workers} workers, or check `ulimit -Hn`",
            formula)
    cap = {True: "yes", False: "no", None: "unknown"}[facts.can_raise_hard_limit]
    observed = (f"soft {fmt_count(facts.nofile_soft)} / hard {fmt_count(facts.nofile_hard)}"
                f" (CAP_SYS_RESOURCE: {cap})")
    soft = facts.nofile_soft if facts.nofile_soft is not None else facts.nofile_hard
    unit_line = f"LimitNOFILE={single} (systemd unit) or '* - nofile {single}' in /etc/security/limits.d/"
    if usable_fds(b.per_process_ceiling, b.reserve_fds) <= 1 and single > soft:
        return finding(id="fds.nofile", status="FAIL", observed=observed, required=required,
                       formula=formula,
                       fix=f"lower --reserve-fds below {facts.nofile_hard - 1}, or {unit_line}")
    if single <= soft:
        return finding(id="fds.nofile", status="PASS", observed=observed, required=required,
                       formula=formula)
    if single <= facts.nofile_hard:
        fix = f"ulimit -n {single} before starting the server (no privilege needed)"
    elif facts.can_raise_hard_limit:
        fix = unit_line + (f"; or run {workers} workers" if workers > 1 else "")
    else:
        per = usable_fds(b.per_process_ceiling, b.reserve_fds)
        fix = (f"run {workers} workers of <= {per:,} connections each (no CAP_SYS_RESOURCE);"
               f" or, with CAP_SYS_RESOURCE: LimitNOFILE={single}")
    return finding(id="fds.nofile", status="WARN", observed=observed, required=required,
                   fix=fix, formula=formula)


def _nr_open(facts: HostFacts, b: FdBudget, single: int) -> Finding:
    formula = "fds of one process <= fs.nr_open (ceiling for any nofile hard limit)"
    required = f"{single:,} fds in one process"
    if facts.nr_open is None:
        return unknown_finding("fds.nr_open", "fs.nr_open", required,
                               "cat /proc/sys/fs/nr_open on the host", formula)
    observed = fmt_count(facts.nr_open, "fds")
    if single <= facts.nr_open:
        return finding(id="fds.nr_open", status="PASS", observed=observed, required=required,
                       formula=formula)
    workers = max(b.server_processes, b.client_processes)
    return Finding(
        id="fds.nr_open", status="WARN", observed=observed, required=required, formula=formula,
        fix=f"sysctl -w fs.nr_open={next_pow2(single)} (host-wide), or run {workers} workers")
