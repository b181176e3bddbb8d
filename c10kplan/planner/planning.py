"""`plan(facts, target) -> Plan` (exported as `c10kplan.planner.plan`): every budget and finding
for one target on one host. Pure: it reads nothing and writes nothing; the same inputs always
give the same plan."""

from __future__ import annotations

from pydantic import BaseModel

from c10kplan.host.inspect import HostFacts
from c10kplan.planner.backlog import BacklogBudget, backlog_budget
from c10kplan.planner.bandwidth import BandwidthBudget, bandwidth_budget
from c10kplan.planner.calibration import Calibration
from c10kplan.planner.conntrack import conntrack_findings, untracked_reason
from c10kplan.planner.cpu import CpuBudget, cpu_budget
from c10kplan.planner.fds import DEFAULT_NR_OPEN, FALLBACK_NOFILE_HARD, FdBudget, fd_budget
from c10kplan.planner.findings import RECORD_CONFIG, Finding
from c10kplan.planner.memory import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_TCP_RMEM,
    DEFAULT_TCP_WMEM,
    MemoryBudget,
    memory_budget,
)
from c10kplan.planner.ports import DEFAULT_PORT_RANGE, PortBudget, port_budget
from c10kplan.planner.target import Target


class Plan(BaseModel):
    model_config = RECORD_CONFIG

    target: Target
    ready: bool  # no FAIL finding
    server_processes: int  # 0 for role client
    client_processes: int  # 0 for role server
    source_addresses: int  # per destination ip:port; 0 for role server
    fds: FdBudget
    ports: PortBudget | None  # None for role server
    backlog: BacklogBudget | None  # None for role client
    memory: MemoryBudget
    bandwidth: BandwidthBudget
    cpu: CpuBudget
    findings: list[Finding]
    notes: list[str]  # facts that were unknown (from the facts) and the defaults assumed instead

    def count(self, status: str) -> int:
        return sum(1 for f in self.findings if f.status == status)


def plan(facts: HostFacts, target: Target, calibration: Calibration | None = None) -> Plan:
    # CPU first: its process counts (no process above 70 % of one CPU) are a floor for the
    # fd budget's sharding.
    cpu, cpu_findings = cpu_budget(facts, target, calibration)
    fds, fd_findings = fd_budget(facts, target, min_server_processes=cpu.server_processes,
                                 min_client_processes=cpu.client_processes)
    ports, port_findings = port_budget(facts, target)
    backlog, backlog_findings = backlog_budget(facts, target)
    memory, memory_findings = memory_budget(facts, target, calibration,
                                            server_processes=fds.server_processes,
                                            client_processes=fds.client_processes)
    bandwidth, bandwidth_findings = bandwidth_budget(facts, target)
    findings = [
        *fd_findings, *port_findings, *backlog_findings, *memory_findings,
        *bandwidth_findings, *cpu_findings, *conntrack_findings(facts, target),
    ]
    return Plan.model_construct(
        target=target,
        ready=not any(f.status == "FAIL" for f in findings),
        server_processes=fds.server_processes,
        client_processes=fds.client_processes,
        source_addresses=ports.source_addresses if ports else 0,
        fds=fds, ports=ports, backlog=backlog, memory=memory, bandwidth=bandwidth, cpu=cpu,
        findings=findings,
        notes=[*facts.notes, *_assumptions(facts), *_conntrack_note(facts, target)],
    )


def _conntrack_note(facts: HostFacts, target: Target) -> list[str]:
    reason = untracked_reason(facts, target)
    return [reason] if reason else []


def _assumptions(facts: HostFacts) -> list[str]:
    """The defaults the budgets fell back to, so that a plan never hides a guess."""
    guesses = [
        (facts.nofile_hard, f"nofile hard limit {FALLBACK_NOFILE_HARD}"),
        (facts.nr_open, f"fs.nr_open {DEFAULT_NR_OPEN}"),
        (facts.tcp_rmem_bytes, f"tcp_rmem default {DEFAULT_TCP_RMEM} bytes"),
        (facts.tcp_wmem_bytes, f"tcp_wmem default {DEFAULT_TCP_WMEM} bytes"),
        (facts.page_size_bytes, f"page size {DEFAULT_PAGE_SIZE} bytes"),
        (facts.ip_local_port_range, "ip_local_port_range {} {}".format(*DEFAULT_PORT_RANGE)),
    ]
    return [f"assumed {text} (unknown on this host)" for value, text in guesses if value is None]
