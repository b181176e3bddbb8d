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
    render.line(f"server: {res.server_active:,} active, errors: "
                + (", ".join(f"{k} x{v}" for k, v in sorted(res.server_errors.items())) or "none"))
    if res.calibration_file:
        render.line(f"calibration written to {res.calibration_file}")
    render.line("verdict: " + res.verdict + ("" if not res.problems else ": " + "; ".join(res.problems)))


def verify_storm_results(directory: str, target: str, pid: int | None, wait: float, p99_max: float,
                         json_out: bool) -> None:
    """`verify --storm-results DIR --target HOST:PORT [--pid PID]`: print, exit 1 on FAIL."""
    from c10kplan.errors import NotReady
    from c10kplan.verify.storm_results import run_storm_results

    res = run_storm_results(directory, target, pid=pid, wait=wait, p99_max_ms=p99_max)
    if json_out:
        render.emit_json(res)
    else:
        print_storm_results(res)
    if res.verdict != "PASS":
        raise NotReady("verify: " + "; ".join(res.problems))


def print_storm_results(res) -> None:
    render.line(f"verify: the storm results in {res.directory} ({len(res.files)} files,"
                f" {res.fleet.hosts} load hosts) against {res.target}; planned as role server on {res.planned_on}")
    render.line()
    print_storm_tables(res.fleet.storm)
    render.line()
    comparison_table(res.comparisons, "measured vs planned")
    render.line()
    if res.plan is not None and res.plan.failing:
        render.line(f"the role-server plan on {res.planned_on} fails: " + "; ".join(res.plan.failing))
    w = res.fleet.window
    render.line("held together: " + (f"{w.seconds:.2f} s from Unix {w.start:.3f}" if w else "unknown (no hold times)"))
    if res.server is not None:
        s = res.server
        render.line(f"server pid {s.pid}: {s.processes} processes, " + (
            "measured after the storms (no CPU figure)" if s.after else
            f"CPU {s.cpu_ticks:g} ticks over the {s.window_seconds:.2f} s window"))
    render.line("verdict: " + res.verdict + ("" if not res.problems else ": " + "; ".join(res.problems)))
