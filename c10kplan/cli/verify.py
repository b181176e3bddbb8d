"""`c10kplan verify`: a thin typer command over c10kplan.verify (run_verify), and its report.
Heavy imports happen inside the command function."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from c10kplan.cli import render  # light: tabulate is imported only when a table is printed
from c10kplan.cli.options import Backend, Connections, ConnectRate, Duration, Json, MessageSize, Progress, Trigger
from c10kplan.cli.options import Metrics, count_option, option, rate_option
from c10kplan.cli.progress import run_shown
from c10kplan.cli.storm import print_storm_tables
from c10kplan.numeric import Integer, Number


def register(app: typer.Typer) -> None:
    """Add `verify` to the app."""
    app.command("verify")(verify)


def verify(
    connections: Annotated[Optional[Integer], option("--connections", "-n", metavar="N", default_shown=False,
                                                 help="Connections to hold (not with --storm-results).")] = None,
    duration: Duration = 10.0,
    message_rate: Annotated[Number, rate_option("Messages per connection per second (0 = idle).")] = 1.0,
    message_size: MessageSize = 64,
    connect_rate: ConnectRate = 0.0,
    backend: Backend = "epoll",
    trigger: Trigger = "level",
    workers: Annotated[str, count_option("--workers", "Server workers: a number or 'auto' (from the plan).")] = "auto",
    storm_processes: Annotated[str, count_option("--storm-processes", "Storm processes: a number or 'auto' (from the plan).")] = "auto",
    profile: Annotated[Optional[str], option("--profile", metavar="NAME", default_shown=False,
                                             help="Apply this profile's per-namespace keys (`--keys netns`) inside the namespace (needs --netns).")] = None,
    netns: Annotated[bool, option("--netns", help="Run inside a throwaway network namespace.")] = False,
    p99_max: Annotated[Number, option("--p99-max", metavar="MS", help="Highest p99 (corrected) message latency, ms.")] = 50.0,
    calibrate: Annotated[Optional[str], option("--calibrate", metavar="FILE", default_shown=False,
                                               help="Write the measured per-socket costs to FILE.")] = None,
    force: Annotated[bool, option("--force", help="Run even when the plan has FAIL items.")] = False,
    json_out: Json = False,
    progress: Progress = None,
    metrics: Metrics = None,
    report: Annotated[Optional[str], option("--report", metavar="DIR", default_shown=False,
                                            help="Write DIR/report.html with its PNG figures (needs the `plot` extra).")] = None,
    client_hosts: Annotated[Optional[Integer], option("--client-hosts", metavar="K", default_shown=False,
                                                  help="With --netns: a server namespace and K client namespaces on a bridge.")] = None,
    mtu: Annotated[Integer, option("--mtu", metavar="BYTES", help="MTU of the links between them (with --client-hosts).")] = 1500,
    storm_results: Annotated[Optional[str], option("--storm-results", metavar="DIR", default_shown=False,
                                                   help="Compare the ansible-storm playbook's results in DIR with the plan and --pid.")] = None,
    target: Annotated[Optional[str], option(
        "--target", metavar="HOST:PORT", default_shown=False,
        help="Storm the user's own server there instead of the bundled one (also http:// or ws:// URLs);"
             " with --storm-results: the server the storms ran against.")] = None,
    pid: Annotated[Optional[list[Integer]], option(
        "--pid", metavar="PID", default_shown=False,
        help="With --target: the server's processes on this host, measured through /proc with their children"
             " (repeatable; one with --storm-results).")] = None,
    storm_wait: Annotated[Number, option("--storm-wait", metavar="S",
                                        help="Wait up to S s for the results, sampling --pid meanwhile.")] = 0.0,
    protocol: Annotated[Optional[str], option(
        "--protocol", metavar="NAME", default_shown=False,
        help="echo, http or websocket: what serve and storm speak (default: a --target URL's scheme, else echo).")] = None,
    host_facts: Annotated[Optional[str], option(
        "--host-facts", metavar="FILE", default_shown=False,
        help="--target on another host: plan the server with this `c10kplan snapshot` of it.")] = None,
    find_limit: Annotated[Optional[str], option("--find-limit", metavar="MODE", default_shown=False,
                                                help="Search for the breaking point instead: `connections` (ramp up to -n, the ceiling, until the first failure) or `message-rate` (hold -n and raise the rate until p99 or the schedule fails); report it against the plan's prediction.")] = None,
    source_ips: Annotated[Optional[Integer], option("--source-ips", metavar="N", default_shown=False,
                                                help="Loopback source addresses the storm binds (127.0.0.1 ...); default: the plan's.")] = None,
) -> None:
    """Plan, start the server and the storm, hold N connections, compare measured with planned."""
    from c10kplan.errors import BadInput, NotReady
    from c10kplan.report import check_output, check_plotting
    from c10kplan.report.outputs import write_outputs
    from c10kplan.verify import VerifyOptions, run_verify
    from c10kplan.verify.findlimit import check_find_limit
    from c10kplan.verify.refusal import PlanRefused

    if storm_results is not None:
        from c10kplan.cli.verify_hosts import verify_storm_results

        if (target is None or netns or client_hosts is not None or connections is not None or metrics or report
                or protocol is not None or host_facts is not None):
            raise BadInput("--storm-results takes --target HOST:PORT (and --pid, --storm-wait, --p99-max, --json);"
                           " not --connections, --netns, --client-hosts, --metrics, --report, --protocol or --host-facts")
        if pid is not None and len(pid) > 1:
            raise BadInput("--storm-results measures one --pid (its children are measured too)")
        return verify_storm_results(storm_results, target, pid[0] if pid else None, storm_wait, p99_max, json_out)
    if connections is None:
        raise BadInput("Missing option '--connections' / '-n'")
    if client_hosts is not None and (metrics or report):
        raise BadInput("--metrics and --report do not take a --client-hosts run yet")

    if profile and not netns:
        raise BadInput("--profile needs --netns (on the host, apply it first with `c10kplan apply`)")
    if metrics is not None:
        check_output(metrics, "--metrics")
    if report is not None:
        check_output(report, "--report", folder=True)
        check_plotting("--report")
    if find_limit is not None and (client_hosts is not None or target is not None):
        raise BadInput("--find-limit runs the bundled server on one host: not with --client-hosts or --target")
    check_find_limit(find_limit, connections, source_ips, (("--message-rate", message_rate),
                     ("--connect-rate", connect_rate), ("--duration", duration), ("--p99-max", p99_max)))
    opts = VerifyOptions(
        connections=connections, duration=duration, message_rate=message_rate, message_size=message_size,
        connect_rate=connect_rate, backend=backend, trigger=trigger, workers=workers,
        storm_processes=storm_processes, profile=profile, netns=netns,
        p99_max_ms=p99_max, calibrate=calibrate, force=force, client_hosts=client_hosts, mtu=mtu,
        protocol=protocol, target=target, pids=tuple(pid or ()), host_facts=host_facts,
        find_limit=find_limit, source_ips=source_ips,
    )
    try:
        result = run_shown(lambda on_event: run_verify(opts, on_event=on_event, on_output=render.note),
                           connections, json_out, progress, _print_verify, "verify",
                           "the storm processes were stopped (the --target server is left running)"
                           if target else "the server and storm processes were stopped")
    except PlanRefused as refused:
        if json_out:  # one document for every --json run, the refusal included
            render.emit_json(refused.refusal)
        write_outputs(refused.refusal, metrics=metrics, say=render.note)  # a monitor sees it too
        raise
    write_outputs(result, metrics=metrics, report=report, say=render.note)
    if result.verdict != "PASS":
        raise NotReady("verify: " + "; ".join(result.problems))


def _print_verify(res) -> None:
    if not hasattr(res, "plan"):  # a MultiHostResult: one plan per host
        from c10kplan.cli.verify_hosts import print_multihost

        return print_multihost(res)
    p = res.plan
    if res.target is not None:
        _print_target_line(res)
    else:
        render.line(
            f"verify: {res.connections:,} connections for {res.duration:g} s at {res.message_rate:g} msg/s each"
            f" ({res.protocol}); {render.plural(res.server_workers, 'server worker')}, "
            f"{render.plural(res.storm_processes, 'storm process', 'storm processes')}, "
            f"{render.plural(res.storm.source_addresses, 'source address', 'source addresses')}"
            + (" (inside a throwaway network namespace" + (f", profile {res.profile})" if res.profile else ")")
               if res.netns else "")
        )
    if res.forced:
        render.line("plan FAILED and --force was given: " + "; ".join(p.failing))
    render.line()
    print_storm_tables(res.storm)
    render.line()
    render.table(
        [[c.figure, _num(c.measured), _num(c.planned), "-" if c.ratio is None else f"{c.ratio:.2f}",
          {True: "yes", False: "NO", None: "-"}[c.within], c.how] for c in res.comparisons],
        headers=["measured vs planned", "measured", "planned", "ratio", "within 25%", "how"],
    )
    render.line()
    render.line("host: " + _host_line(res))
    if res.calibration_file:
        render.line(f"calibration written to {res.calibration_file}")
    if res.target is None:
        render.line(f"server: {res.server_active:,} active, errors: "
                    + (", ".join(f"{k} x{v}" for k, v in sorted(res.server_errors.items())) or "none"))
    if getattr(res, "limit", None) is not None:
        _print_limit(res.limit)
    for warning in getattr(res, "warnings", ()):
        render.line("warning: " + warning)
    render.line("verdict: " + res.verdict + ("" if not res.problems else ": " + "; ".join(res.problems)))


def _print_target_line(res) -> None:
    t = res.target
    server = (f"server PIDs {', '.join(map(str, t.pids))} ({res.server_workers} processes with their children)"
              if t.pids else "server processes not measured (no --pid)")
    render.line(
        f"verify --target {t.address}: {res.connections:,} connections for {res.duration:g} s at"
        f" {res.message_rate:g} msg/s each ({res.protocol}); {server}; {res.storm_processes} storm processes,"
        f" {res.storm.source_addresses} source addresses; server planned with the facts of {t.host_facts}"
    )


def _print_limit(lim) -> None:
    """The --find-limit lines: what was found against what the plan predicted."""
    unit = "connections" if lim.mode == "connections" else "msg/s per connection"
    if lim.steps:
        render.table([[f"{s.message_rate:g}", s.held, "-" if s.p99_ms is None else f"{s.p99_ms:g}", s.missed,
                       s.failure or "held"] for s in lim.steps],
                     headers=["msg/s each", "held", "p99 ms", "behind", "step"])
    def num(v: float) -> str:
        return f"{v:,.0f}" if lim.mode == "connections" else f"{v:.4g}"

    observed = "not reached" if lim.observed is None else f"{num(lim.observed)} {unit}"
    predicted = "-" if lim.predicted is None else f"{num(lim.predicted)} ({lim.resource or 'nothing'} binds)"
    render.line(f"limit ({lim.mode}): observed {observed}" + (f", failure {lim.failure}" if lim.failure else ""))
    render.line(f"predicted: {predicted}" + ("" if lim.error_pct is None else f", error {lim.error_pct:+.1f} %")
                + f"; {lim.note}")


def _host_line(res) -> str:
    """Slab and MemAvailable deltas, TCP sockets in use, RSS: the raw figures behind the table."""
    from c10kplan.planner.findings import fmt_bytes
    from c10kplan.verify.measure import delta

    b, d = res.before, res.during
    if d is None:
        return "no sample during the hold"
    return (f"Slab {fmt_bytes(delta(d.slab_bytes, b.slab_bytes), unit='MiB', signed=True)}, "
            f"MemAvailable {fmt_bytes(delta(d.mem_available_bytes, b.mem_available_bytes), unit='MiB', signed=True)}, "
            f"TCP sockets in use {b.tcp_inuse} -> {d.tcp_inuse}, TCP mem {b.tcp_mem_pages} -> {d.tcp_mem_pages} pages; "
            f"RSS server {fmt_bytes(res.server_rss_bytes, unit='MiB')}, storm {fmt_bytes(res.storm_rss_bytes, unit='MiB')}")


def _num(value: float | None) -> str:
    from c10kplan.planner.findings import fmt_number

    return "-" if value is None else fmt_number(value)
