"""Listen-backlog budget: can the accept and SYN queues absorb the connect rate?

Kernel facts:
- listen(fd, n) gets min(n, net.core.somaxconn) as its accept queue (connections); when it is
  full the kernel drops the handshake's final ACK and the client retransmits after ~1 s.
- The SYN queue is bounded by net.ipv4.tcp_max_syn_backlog (half-open connections); with
  tcp_syncookies = 1 an overflow answers with cookies instead of dropping.
- Default somaxconn is 4096 since Linux 5.4 (128 before).
"""

from __future__ import annotations

import math

from pydantic import BaseModel

from c10kplan.host.inspect import HostFacts
from c10kplan.planner.findings import (
    RECORD_CONFIG,
    Finding,
    Step,
    finding,
    fmt_count,
    step,
    unknown_finding,
)
from c10kplan.planner.target import Target

# Longest time (seconds) one server process may spend away from accept(): a busy pass of a
# pure-Python loop over thousands of ready sockets. Connections arriving meanwhile queue up.
ACCEPT_STALL_S = 0.1


class BacklogBudget(BaseModel):
    model_config = RECORD_CONFIG

    connect_rate: float
    accept_stall_s: float
    required_backlog: int  # connections that queue during one stall
    working: list[Step]


def backlog_budget(facts: HostFacts, target: Target) -> tuple[BacklogBudget | None, list[Finding]]:
    """None and no finding for role "client": it never listens."""
    if not target.serves:
        return None, []
    need = max(1, math.ceil(target.connect_rate * ACCEPT_STALL_S))
    working = [step("required_backlog", need, "connections", "ceil(connect_rate x accept_stall_s)",
                    connect_rate=target.connect_rate, accept_stall_s=ACCEPT_STALL_S)]
    budget = BacklogBudget.model_construct(connect_rate=target.connect_rate, accept_stall_s=ACCEPT_STALL_S,
                           required_backlog=need, working=working)
    return budget, [_somaxconn(facts, need), _syn(facts, need)]


def _somaxconn(facts: HostFacts, need: int) -> Finding:
    formula = "ceil(connect_rate x accept_stall_s) <= net.core.somaxconn"
    fix = f"sysctl -w net.core.somaxconn={max(need, 4096)}"
    if facts.somaxconn is None:
        return unknown_finding("backlog.somaxconn", "net.core.somaxconn", fmt_count(need), fix, formula)
    ok = need <= facts.somaxconn
    return finding(id="backlog.somaxconn", status="PASS" if ok else "WARN", formula=formula,
                   observed=fmt_count(facts.somaxconn), required=fmt_count(need),
                   fix="" if ok else fix)


def _syn(facts: HostFacts, need: int) -> Finding:
    formula = "ceil(connect_rate x accept_stall_s) <= tcp_max_syn_backlog, or tcp_syncookies = 1"
    fix = f"sysctl -w net.ipv4.tcp_max_syn_backlog={max(need, 4096)}"
    have = facts.tcp_max_syn_backlog
    if have is None:
        return unknown_finding("backlog.syn", "net.ipv4.tcp_max_syn_backlog", fmt_count(need), fix, formula)
    cookies = facts.tcp_syncookies == 1
    observed = f"{have:,} (syncookies {'on' if cookies else 'off'})"
    ok = need <= have or cookies
    return finding(id="backlog.syn", status="PASS" if ok else "WARN", formula=formula,
                   observed=observed, required=fmt_count(need), fix="" if ok else fix)
