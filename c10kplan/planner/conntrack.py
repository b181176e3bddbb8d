"""Connection-tracking budget, only when nf_conntrack is loaded.

Kernel facts: nf_conntrack keeps one entry per flow (both directions of a connection share it);
when the table holds nf_conntrack_max entries new connections are dropped ("nf_conntrack: table
full, dropping packet"). Lookups walk hash chains of average length count / nf_conntrack_buckets;
the bucket count is the module parameter hashsize (/sys/module/nf_conntrack/parameters/hashsize).
"""

from __future__ import annotations

from c10kplan.host.inspect import HostFacts
from c10kplan.planner.findings import Finding, ceiling_finding, finding, fmt_count, next_pow2
from c10kplan.planner.target import Target

# Average hash-chain length (entries per bucket) above which lookups get slow.
MAX_CHAIN = 8


def conntrack_findings(facts: HostFacts, target: Target) -> list[Finding]:
    if not facts.conntrack_loaded:
        return []
    flows = target.connections
    out = [ceiling_finding("conntrack.max", "net.netfilter.nf_conntrack_max", facts.nf_conntrack_max,
                           flows, "connections (one entry per flow) <= nf_conntrack_max")]
    buckets = facts.nf_conntrack_buckets
    formula = f"connections / nf_conntrack_buckets <= {MAX_CHAIN} (average hash chain)"
    need = -(-flows // MAX_CHAIN)
    fix = f"echo {next_pow2(need)} > /sys/module/nf_conntrack/parameters/hashsize"
    if buckets is None:
        out.append(finding(id="conntrack.buckets", status="WARN", observed="buckets: unknown",
                           required=fmt_count(need), fix=fix, formula=formula))
    else:
        ok = buckets >= need
        out.append(finding(id="conntrack.buckets", status="PASS" if ok else "WARN",
                           observed=fmt_count(buckets), required=fmt_count(need),
                           fix="" if ok else fix, formula=formula))
    return out
