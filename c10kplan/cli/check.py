"""`c10kplan check`, `plan` and `snapshot`: thin typer commands over host.inspect and planner.

Numeric options are taken as text and validated by the `Target` model, so a bad value is one
line naming the option (exit 2) instead of a usage screen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from c10kplan.host.inspect import HostFacts
    from c10kplan.planner import Capacity, Plan

def _text(*flags: str, metavar: str, help: str, default_shown: bool = True) -> typer.models.OptionInfo:
    """A text option (validated later by the Target model or facts_for)."""
    return typer.Option(*flags, metavar=metavar, help=help, show_default=default_shown)


Connections = Annotated[str | None, _text(
    "--connections", "-n", metavar="N", default_shown=False,
    help="Concurrent TCP connections to hold (1..100,000,000). Without it: the capacity alone.")]
Role = Annotated[str, _text(
    "--role", metavar="ROLE",
    help="server | client | both (server and load client on this host: 2 sockets per connection).")]
MessageSize = Annotated[str, _text("--message-size", metavar="BYTES", help="Bytes per message.")]
MessageRate = Annotated[str, _text(
    "--message-rate", metavar="PER_S", help="Messages per connection per second.")]
Bandwidth = Annotated[str | None, _text(
    "--bandwidth-per-conn", metavar="BYTES_S", default_shown=False,
    help="Bytes/s per connection on the link. Default: --message-size x --message-rate (idle = 0);"
         " the course notes' 1 KB/s = 1000.")]
ConnectRate = Annotated[str, _text(
    "--connect-rate", metavar="PER_S", help="New connections per second (listen backlog sizing).")]
AppBuffer = Annotated[str | None, _text(
    "--app-buffer", metavar="BYTES", default_shown=False,
    help="User-space bytes per socket of your own server/client (implies --workload custom;"
         " default 8192, see docs/check.md).")]
Workload = Annotated[str | None, _text(
    "--workload", metavar="KIND", default_shown=False,
    help="bundled (c10kplan serve + storm, measured costs) | custom (your programs, --app-buffer)."
         " Default: bundled for role both, custom otherwise.")]
Protocol = Annotated[str, _text(
    "--protocol", metavar="PROTO",
    help="echo | http | websocket: what one message is (its CPU cost, docs/check.md).")]
ReserveFds = Annotated[str, _text(
    "--reserve-fds", metavar="N", help="Fds per process kept for other uses.")]
Root = Annotated[str | None, _text(
    "--root", metavar="DIR", default_shown=False,
    help="Read DIR/proc and DIR/sys instead of / (env C10KPLAN_ROOT).")]
Pid = Annotated[str | None, _text(
    "--pid", metavar="PID", default_shown=False,
    help="Read the nofile limits of this running process.")]
HostFactsFile = Annotated[str | None, _text(
    "--host-facts", metavar="FILE", default_shown=False,
    help="Plan for the host of this `snapshot` JSON file.")]
CalibrationFile = Annotated[str | None, _text(
    "--calibration", metavar="FILE", default_shown=False,
    help="Per-socket and per-message costs measured by `verify --calibrate`.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]


CHECK_HELP = ("Read the host, plan the target, print PASS/WARN/FAIL with fixes and the host's capacity."
              " Exit 1 if any FAIL. Without --connections: the capacity alone.")
PLAN_HELP = ("Print the plan alone: every figure with its formula and inputs, and the capacity (exit 0)."
             " Without --connections: the capacity alone.")


def register(app: typer.Typer) -> None:
    # `check` and `plan` take the same options; one function serves both (see ctx.info_name).
    app.command("check", help=CHECK_HELP)(check)
    app.command("plan", help=PLAN_HELP)(check)
    app.command("snapshot")(snapshot)


def check(
    ctx: typer.Context,
    connections: Connections = None,
    role: Role = "server",
    message_size: MessageSize = "64",
    message_rate: MessageRate = "0",
    bandwidth_per_conn: Bandwidth = None,
    connect_rate: ConnectRate = "1000",
    app_buffer: AppBuffer = None,
    reserve_fds: ReserveFds = "64",
    workload: Workload = None,
    protocol: Protocol = "echo",
    root: Root = None,
    pid: Pid = None,
    host_facts: HostFactsFile = None,
    calibration: CalibrationFile = None,
    json: Json = False,
) -> None:
    from c10kplan.cli import render
    from c10kplan.errors import NotReady

    from c10kplan.planner.report import CapacityReport, CheckReport, PlanReport

    facts, result, cap = _plan(locals())
    if result is None:  # no --connections: the capacity alone
        if json:
            render.emit_json(CheckReport(facts=facts, capacity=cap) if ctx.info_name == "check"
                             else CapacityReport(capacity=cap))
        else:
            _print_capacity(cap)
        return
    if ctx.info_name == "plan":
        if json:
            render.emit_json(PlanReport.model_construct(**dict(result), capacity=cap))
        else:
            _print_plan(result)
            render.line()
            _print_capacity(cap)
        return
    from c10kplan.profiles import suggest_profile

    profile = suggest_profile(result.target.connections, result.target.role)
    if json:
        render.emit_json(CheckReport(facts=facts, plan=result, profile=profile, capacity=cap))
    else:
        _print_check(facts, result, profile, host_facts)
        render.line()
        _print_capacity(cap)
    if not result.ready:
        failed = ", ".join(f.id for f in result.findings if f.status == "FAIL")
        raise NotReady(f"host not ready for {result.target.connections:,} connections: FAIL {failed}")


SnapshotJson = Annotated[bool, typer.Option(
    "--json", help="Accepted like every command's --json: snapshot always prints JSON.")]


def snapshot(root: Root = None, pid: Pid = None, json: SnapshotJson = False) -> None:
    """Print this host's facts as JSON (load it elsewhere with --host-facts FILE)."""
    from c10kplan.cli import render
    from c10kplan.host.inspect import facts_for

    render.emit_json(facts_for(root, pid))


_TARGET_FIELDS = ("connections", "role", "message_size", "message_rate", "bandwidth_per_conn",
                  "connect_rate", "app_buffer", "reserve_fds", "workload", "protocol")


def _plan(options: dict[str, object]) -> tuple[HostFacts, Plan | None, Capacity]:
    """Options -> (facts, plan or None without --connections, capacity). Target validation
    errors reach app.main as exit 2."""
    from c10kplan.host.inspect import facts_for
    from c10kplan.planner import Target, capacity, load_calibration, plan

    given = {k: options[k] for k in _TARGET_FIELDS if options[k] is not None}
    # Without --connections the target is a traffic shape only: capacity ignores its count.
    target = Target.model_validate({"connections": 1, **given})
    facts = facts_for(options["root"], options["pid"], options["host_facts"])  # type: ignore[arg-type]
    cal = load_calibration(options["calibration"]) if options["calibration"] else None  # type: ignore[arg-type]
    result = plan(facts, target, cal) if "connections" in given else None
    return facts, result, capacity(facts, target, cal)


def _print_capacity(cap: Capacity) -> None:
    """The summary line, then one row per resource: what the host has, the connections it
    allows before a FAIL (100 %: the capacity) and within its headroom (PASS: below its WARN
    mark), and why / the fix."""
    from c10kplan.cli import render
    from c10kplan.planner.limits import limit_text

    rows = []
    for r in cap.resources:
        allows = f"{r.connections:,}" if r.connections is not None else "no cap"
        passes = f"{r.passes:,}" if r.passes is not None else "-"
        why = "; ".join(t for t in (r.note, r.fix) if t) or "-"
        rows.append([r.id, f"{r.label}: {limit_text(r)}", allows, passes, why])
    render.line(cap.summary())
    render.table(rows, ["resource", "host has", "allows (no FAIL)", "PASS up to", "why / fix"])


def _print_check(facts: HostFacts, result: Plan, profile: str | None, facts_file: str | None) -> None:
    from c10kplan.cli import render
    from c10kplan.planner.findings import fmt_bytes

    t, m = result.target, result.memory
    # A snapshot's own source is the tree it was read from on its host ("/"): name the file.
    where, of = (facts_file, f"snapshot of {facts.source}; ") if facts_file else (facts.source, "")
    host = f"{where} ({of}kernel {facts.kernel_release or '?'}, {facts.cpu_count or '?'} CPUs)"
    render.table(
        ([f.id, f.status, f.observed, f.required, f.fix or "-"] for f in result.findings),
        ["finding", "status", "host has", "target needs", "fix"],
        title=f"c10kplan check: {t.connections:,} connections, role {t.role}, host {host}",
    )
    render.line()
    _print_processes(result)
    render.line(f"memory ({m.workload} workload): {fmt_bytes(m.expected_total_bytes)} = idle kernel"
                f" {fmt_bytes(m.kernel_idle_bytes)} ({m.kernel_bytes_per_socket:,} B/socket)"
                f" + in flight {fmt_bytes(m.in_flight_bytes)} ({m.in_flight_messages:,.0f} messages)"
                f" + app {fmt_bytes(m.user_bytes)} ({m.user_bytes_per_connection:,} B/socket)"
                f" + processes {fmt_bytes(m.process_bytes)}"
                f" | course notes' worst case: buffers at tcp_rmem/tcp_wmem default {fmt_bytes(m.worst_case_bytes)}")
    render.line(f"bandwidth: {result.bandwidth.required_mbit_s:,.1f} Mbit/s")
    render.line(_cpu_line(result))
    if profile:
        render.line(f"profile: {profile} is sized for this target"
                    f" (c10kplan apply --profile {profile} --dry-run)")
    else:
        render.line(f"profile: no shipped profile is sized for {t.connections:,} connections"
                    f" ({t.role}); start from c1m and write your own")
    verdict = "READY" if result.ready else "NOT READY"
    render.line(f"{verdict}: {result.count('FAIL')} FAIL, {result.count('WARN')} WARN, {result.count('PASS')} PASS")
    _print_notes(result)


def _print_plan(result: Plan) -> None:
    from c10kplan.cli import render
    from c10kplan.planner.findings import fmt_number

    budgets = [("fds", result.fds), ("ports", result.ports), ("backlog", result.backlog),
               ("memory", result.memory), ("bandwidth", result.bandwidth), ("cpu", result.cpu)]
    rows = []
    for label, budget in budgets:
        for s in budget.working if budget is not None else ():
            rows.append([label, s.name, fmt_number(s.value), s.unit, s.working()])
    t = result.target
    render.table(rows, ["budget", "figure", "value", "unit", "formula [inputs]"],
                 title=f"c10kplan plan: {t.connections:,} connections, role {t.role}")
    render.line()
    render.line(f"kernel bytes per socket: {result.memory.kernel_bytes_source}")
    render.line(f"CPU per message: {result.cpu.cost_source}")
    _print_processes(result)
    _print_notes(result)


def _cpu_line(result: Plan) -> str:
    c = result.cpu
    return f"cpu: {c.required_cores:.2f} of {c.cores or '?'} cores for {c.messages_per_s:,.0f} messages/s"


def _print_processes(result: Plan) -> None:
    from c10kplan.cli import render

    line = f"processes: {result.server_processes} server, {result.client_processes} client"
    if result.ports is not None:  # a client side: the addresses ports.ephemeral asks for
        line += (f"; source addresses per destination: {result.ports.fast_source_addresses}"
                 f" (at least {result.source_addresses})")
    render.line(line)


def _print_notes(result: Plan) -> None:
    """Unknown facts and assumed defaults, on stderr so stdout stays the report."""
    from c10kplan.cli import render

    for text in result.notes:
        render.note(f"note: {text}")
