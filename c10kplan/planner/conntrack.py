"""Connection-tracking budget, only when nf_conntrack is loaded AND it tracks this traffic.

Kernel facts:
- nf_conntrack keeps one entry per flow (both directions of a connection share it); when the
  table holds nf_conntrack_max entries new connections are dropped ("nf_conntrack: table full,
  dropping packet"). Lookups walk hash chains of average length count / nf_conntrack_buckets;
  the bucket count is the module parameter hashsize (/sys/module/nf_conntrack/parameters/hashsize).
- Since Linux 4.10 conntrack registers its hooks in a network namespace only when a rule there
  needs it (a ct / state / conntrack match, NAT, a CT target, a flowtable). A loaded module with
  no such rule tracks nothing: nf_conntrack_count (per namespace) stays 0. Measured on this
  project's build host (6.18): 0 under 1,000 live loopback connections, in the host namespace
  and in a fresh one.
So the table binds only when entries are counted now, or rules that use it are present. A fresh
namespace (verify --netns, Target.fresh_netns) has no rules at all.
"""

from __future__ import annotations

from c10kplan.host.inspect import HostFacts
from c10kplan.planner.findings import Finding, ceiling_finding, finding, fmt_count, next_pow2
from c10kplan.planner.target import Target

# Average hash-chain length (entries per bucket) above which lookups get slow.
MAX_CHAIN = 8


def untracked_reason(facts: HostFacts, target: Target) -> str | None:
    """Why nf_conntrack, though loaded, tracks nothing of this traffic; None when it tracks
    (entries counted now, a rule that uses it, or too little known to say otherwise)."""
    if not facts.conntrack_loaded:
        return None
    if target.fresh_netns:
        return "nf_conntrack is loaded but nothing is tracked: a fresh network namespace has no netfilter rules"
    count, rules = facts.nf_conntrack_count, facts.conntrack_rules
    if count is None or count > 0 or rules is True:
        return None
    read = "; ".join(facts.conntrack_rules_read) or "no ruleset read"
    return f"nf_conntrack is loaded but nothing is tracked: nf_conntrack_count 0 ({read})"


def tracking_text(facts: HostFacts) -> str:
    """Why the table counts: what the host shows."""
    if facts.nf_conntrack_count:
        return f"{facts.nf_conntrack_count:,} entries tracked now"
    if facts.conntrack_rules:
        return "netfilter rules use conntrack"
    return "tracking unknown"


def conntrack_findings(facts: HostFacts, target: Target) -> list[Finding]:
    if not facts.conntrack_loaded:
        return []
    flows = target.connections
    need = -(-flows // MAX_CHAIN)
    untracked = untracked_reason(facts, target)
    if untracked is not None:
        have = fmt_count(facts.nf_conntrack_max) + " (nothing tracked)"
        return [
            finding("conntrack.max", "PASS", have, "0 entries (no rule tracks this traffic)",
                    formula="connections <= nf_conntrack_max, only where conntrack tracks"),
            finding("conntrack.buckets", "PASS", fmt_count(facts.nf_conntrack_buckets) + " (nothing tracked)",
                    "0 entries", formula=f"connections / nf_conntrack_buckets <= {MAX_CHAIN}, only where conntrack tracks"),
        ]
    formula = f"connections (one entry per flow) <= nf_conntrack_max ({tracking_text(facts)})"
    out = [ceiling_finding("conntrack.max", "net.netfilter.nf_conntrack_max", facts.nf_conntrack_max,
                           flows, formula)]
    buckets = facts.nf_conntrack_buckets
    formula = f"connections / nf_conntrack_buckets <= {MAX_CHAIN} (average hash chain)"
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
