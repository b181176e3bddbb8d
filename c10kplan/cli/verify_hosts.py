"""The report of `verify --netns --client-hosts K`: the fleet's storm, one measured-vs-planned
table per host (server, client1..K) and one for the whole machine."""

from __future__ import annotations

from c10kplan.cli import render
from c10kplan.cli.storm import print_storm_tables


def comparison_table(rows, title: str) -> None:
    from c10kplan.planner.findings import fmt_number

    def num(v):
        return "-" if v is None else fmt_number(v)

    render.table(
        [[c.figure, num(c.measured), num(c.planned), "-" if c.ratio is None else f"{c.ratio:.2f}",
          {True: "yes", False: "NO", None: "-"}[c.within], c.how] for c in rows],
        headers=[title, "measured", "planned", "ratio", "within 25%", "how"],
    )


def print_multihost(res) -> None:
    render.line(
        f"verify: {res.connections:,} connections for {res.duration:g} s at {res.message_rate:g} msg/s each;"
        f" 1 server host and {res.client_hosts} client hosts (network namespaces, MTU {res.mtu}"
        + (f", profile {res.profile}" if res.profile else "") + f"); server {res.server_endpoint}")
    if res.forced:
        render.line("plan FAILED and --force was given: "
                    + "; ".join(f"{h.host}: {f}" for h in res.hosts for f in h.plan.failing))
    render.line()
    if res.fleet is not None:
        print_storm_tables(res.fleet.storm)
        render.line()
    for h in res.hosts:
        comparison_table(h.comparisons, f"{h.host} ({h.role}, {h.connections:,} conns, {h.processes} procs)")
        render.line()
    comparison_table(res.comparisons, "the machine")
    render.line()
    window = ("no CPU window" if res.window_seconds is None else
              f"CPU window {res.window_seconds:.2f} s at {res.messages_per_second or 0:,.0f} replies/s (serve's count)")
    render.line(window + "; TCP segments sent: "
                + (", ".join(f"{k} {v:,}" for k, v in res.segments.items()) or "not measured"))
    render.line(f"server: {res.server_active} active, errors: "
                + (", ".join(f"{k} x{v}" for k, v in sorted(res.server_errors.items())) or "none"))
    if res.calibration_file:
        render.line(f"calibration written to {res.calibration_file}")
    render.line("verdict: " + res.verdict + ("" if not res.problems else ": " + "; ".join(res.problems)))
