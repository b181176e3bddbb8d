"""`c10kplan storm` and `c10kplan verify`: thin typer commands over c10kplan.storm and
c10kplan.verify. Heavy imports happen inside the command functions."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Optional

import typer

from c10kplan.cli import render  # light: tabulate is imported only when a table is printed


class _Progress:
    """A one-line live display on a TTY (stderr): established/target, rate, messages/s, errors."""

    def __init__(self, target: int, enabled: bool) -> None:
        self.target = target
        self.enabled = enabled
        self.latest: dict[int, dict] = {}
        self.t0 = time.monotonic()
        self._last_draw = 0.0
        self._prev = (self.t0, 0, 0)

    def __call__(self, event: dict) -> None:
        if event.get("event") not in ("progress", "ramped"):
            return
        self.latest[event.get("index", 0)] = event
        now = time.monotonic()
        if not self.enabled or now - self._last_draw < 0.25:
            return
        self._last_draw = now
        est = sum(e.get("established", 0) for e in self.latest.values())
        failed = sum(e.get("failed", 0) for e in self.latest.values())
        recv = sum(e.get("received", 0) for e in self.latest.values())
        t_prev, est_prev, recv_prev = self._prev
        dt = max(1e-6, now - t_prev)
        self._prev = (now, est, recv)
        render.progress(
            f"connections {est}/{self.target}  connect/s {(est - est_prev) / dt:,.0f}  "
            f"messages/s {(recv - recv_prev) / dt:,.0f}  errors {failed}   "
        )

    def finish(self) -> None:
        if self.enabled and self._last_draw:
            render.progress_end()
            self._last_draw = 0.0


def _run_shown(run, target: int, json_out: bool, progress: bool | None, printer, interrupted: str):
    """Run with the live display (TTY only, never with --json), then print the result once.
    On Ctrl-C or SIGTERM: one line saying what was stopped, then exit 130 (via the app)."""

    import signal

    def _terminate(signum, frame):  # SIGTERM stops everything the same way Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    show = progress if progress is not None else sys.stderr.isatty()
    display = _Progress(target, show and not json_out)
    try:
        result = run(display)
    except KeyboardInterrupt:
        display.finish()
        render.note("c10kplan: " + interrupted)
        raise
    finally:
        display.finish()
    if json_out:
        render.emit_json(result)
    else:
        printer(result)
    return result


def _print_storm(result) -> None:

    _print_storm_tables(result)
    render.line()
    render.line("verdict: " + ("PASS" if result.ok else "FAIL: " + "; ".join(result.problems)))


def _print_storm_tables(result) -> None:
    from c10kplan.storm.result import failures_text

    r = result
    render.table(
        [
            ["connections", f"{r.established} established, {r.held} held of {r.connections}"],
            ["processes / source addresses", f"{r.processes} / {r.source_addresses}"],
            ["connect time", f"{r.connect_seconds:.3f} s ({r.connect_rate:,.0f} conn/s)"],
            ["failures", failures_text(r.failures, r.drops) or "none"],
            ["messages", f"{r.messages_sent} sent, {r.messages_received} answered, "
                         f"{r.mismatches} mismatched, {r.unanswered} unanswered, {r.lost_on_drop} lost on drop, "
                         f"{r.missed} never sent (behind schedule)"],
            *([["HTTP statuses", ", ".join(f"{k} x{v}" for k, v in r.http_status_classes.items())]]
              if r.http_statuses else []),
            *([["WebSocket close codes", ", ".join(f"{k} x{v}" for k, v in r.close_codes.items())]]
              if r.close_codes else []),
            ["throughput", f"{r.messages_per_second:,.0f} msg/s, {r.throughput_bytes_per_second:,.0f} B/s"],
        ],
        headers=["storm " + r.target, "result"],
    )
    render.line()
    lat = [("connect", r.connect_latency_us), ("message (corrected)", r.message_latency_us.corrected),
           ("message (raw)", r.message_latency_us.raw)]
    render.table(
        [[name, p.count, p.p50, p.p90, p.p99, p.p999, p.max] for name, p in lat],
        headers=["latency (us)", "count", "p50", "p90", "p99", "p99.9", "max"],
    )


def register(app: typer.Typer) -> None:
    """Add `storm` and `verify` to the app."""

    @app.command()
    def storm(
        target: Annotated[str, typer.Argument(metavar="TARGET", help="The server: HOST:PORT, [IPV6]:PORT, http://HOST:PORT/PATH or ws://HOST:PORT/PATH.")],
        connections: Annotated[int, typer.Option("--connections", "-n", help="Connections to open and hold.")],
        connect_rate: Annotated[float, typer.Option(help="Connects per second over all processes; 0 = as fast as possible.")] = 0.0,
        source_ips: Annotated[str, typer.Option(help="Source addresses: 'auto', a list, a range a-b or a CIDR.")] = "auto",
        processes: Annotated[str, typer.Option(help="Storm processes: a number or 'auto' (enough for the fd hard limit).")] = "auto",
        message_size: Annotated[int, typer.Option(help="Bytes per message.")] = 64,
        message_rate: Annotated[float, typer.Option(help="Messages per connection per second; 0 = hold idle.")] = 0.0,
        duration: Annotated[float, typer.Option(help="Seconds to hold the connections.")] = 10.0,
        connect_timeout: Annotated[float, typer.Option(help="Seconds before a pending connect counts as ETIMEDOUT.")] = 5.0,
        protocol: Annotated[Optional[str], typer.Option(help="What the server speaks: echo, rot13, discard, http or websocket (default: from the target's scheme, else echo).")] = None,
        method: Annotated[str, typer.Option(help="http: the request method.")] = "GET",
        path: Annotated[Optional[str], typer.Option(help="http/websocket: the request path (default: the URL's, else /).")] = None,
        header: Annotated[Optional[list[str]], typer.Option("--header", help="http/websocket: an extra header NAME:VALUE (repeatable).")] = None,
        body_file: Annotated[Optional[str], typer.Option(help="http: send this file as each request's body (at most 1 MiB).")] = None,
        expect_status: Annotated[str, typer.Option(help="http: statuses that count as answered, e.g. 2xx or 2xx,304.")] = "2xx",
        ping_interval: Annotated[float, typer.Option(help="websocket: ping connections idle this many seconds; 0 = never.")] = 0.0,
        subprotocol: Annotated[Optional[list[str]], typer.Option("--subprotocol", help="websocket: offer this subprotocol (repeatable).")] = None,
        ws_binary: Annotated[bool, typer.Option("--ws-binary", help="websocket: binary frames instead of text.")] = False,
        batch_ms: Annotated[float, typer.Option(help="Hold loop tick in ms at high message rates (fewer wakeups; raw latency errs high by at most one tick, corrected by two); 0 = wake on every reply.")] = 1.0,
        share: Annotated[str, typer.Option(help="I/K: this is load host I of K; take its slice of -n, --connect-rate and a --source-ips list.")] = "1/1",
        start_at: Annotated[Optional[float], typer.Option(help="Unix time (s) to start the ramp, the same on every load host.")] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print one JSON result document.")] = False,
        progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Live progress (default: on a TTY).")] = None,
    ) -> None:
        """Open and hold N connections to HOST:PORT, with messages; count every failure by errno."""
        from c10kplan.errors import BadInput, NotReady
        from c10kplan.storm.config import protocol_settings, resolve_target
        from c10kplan.storm.runner import run_storm
        from c10kplan.storm.setup import build_config
        from c10kplan.storm.share import check_start_at, parse_share, run_placed, take_share

        tgt = resolve_target(target)
        host, port = tgt.host, tgt.port
        proto = protocol_settings(tgt, protocol, method=method, path=path, headers=header or (),
                                  body_file=body_file, expect_status=expect_status, ping_interval=ping_interval,
                                  subprotocols=subprotocol or (), ws_binary=ws_binary)
        if not 0 <= batch_ms <= 100:
            raise BadInput(f"--batch-ms must be 0..100, not {batch_ms:g}")
        mine = take_share(parse_share(share), connections, connect_rate, source_ips)
        if start_at is not None:
            check_start_at(start_at, time.time())
        cfg = build_config(host, port, connections=mine.connections, processes=processes, source_ips=mine.source_ips,
                           connect_rate=mine.connect_rate, message_size=message_size, message_rate=message_rate,
                           duration=duration, connect_timeout=connect_timeout,
                           batch_tick=batch_ms / 1000, **proto)
        result = _run_shown(lambda on_event: run_placed(cfg, mine, start_at, run_storm, on_event), mine.connections,
                            json_out, progress, _print_storm, "storm interrupted; its processes were stopped")
        if not result.ok:
            raise NotReady("storm: " + "; ".join(result.problems))

    _register_verify(app)


def _print_verify(res) -> None:

    p = res.plan
    render.line(
        f"verify: {res.connections:,} connections for {res.duration:g} s at {res.message_rate:g} msg/s each; "
        f"{res.server_workers} server workers, {res.storm_processes} storm processes, "
        f"{res.storm.source_addresses} source addresses"
        + (" (inside a throwaway network namespace" + (f", profile {res.profile})" if res.profile else ")")
           if res.netns else "")
    )
    if res.forced:
        render.line("plan FAILED and --force was given: " + "; ".join(p.failing))
    render.line()
    _print_storm_tables(res.storm)
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
    render.line(f"server: {res.server_active} active, errors: "
                + (", ".join(f"{k} x{v}" for k, v in sorted(res.server_errors.items())) or "none"))
    render.line("verdict: " + res.verdict + ("" if not res.problems else ": " + "; ".join(res.problems)))


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


def _register_verify(app: typer.Typer) -> None:
    @app.command()
    def verify(
        connections: Annotated[int, typer.Option("--connections", "-n", help="Connections to hold.")],
        duration: Annotated[float, typer.Option(help="Seconds to hold all N connections.")] = 10.0,
        message_rate: Annotated[float, typer.Option(help="Messages per connection per second (0 = idle).")] = 1.0,
        message_size: Annotated[int, typer.Option(help="Bytes per message.")] = 64,
        connect_rate: Annotated[float, typer.Option(help="Storm connects per second; 0 = as fast as possible.")] = 0.0,
        backend: Annotated[str, typer.Option(help="Server backend: epoll, poll or select.")] = "epoll",
        trigger: Annotated[str, typer.Option(help="epoll trigger: level or edge.")] = "level",
        workers: Annotated[str, typer.Option(help="Server workers: a number or 'auto' (from the plan).")] = "auto",
        storm_processes: Annotated[str, typer.Option(help="Storm processes: a number or 'auto' (from the plan).")] = "auto",
        profile: Annotated[Optional[str], typer.Option(help="Apply this profile's net.* keys (needs --netns).")] = None,
        netns: Annotated[bool, typer.Option("--netns", help="Run inside a throwaway network namespace.")] = False,
        p99_max: Annotated[float, typer.Option("--p99-max", help="Highest p99 (corrected) message latency, ms.")] = 50.0,
        calibrate: Annotated[Optional[str], typer.Option(help="Write the measured per-socket costs to FILE.")] = None,
        force: Annotated[bool, typer.Option("--force", help="Run even when the plan has FAIL items.")] = False,
        json_out: Annotated[bool, typer.Option("--json", help="Print one JSON result document.")] = False,
        progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Live progress (default: on a TTY).")] = None,
    ) -> None:
        """Plan, start the server and the storm, hold N connections, compare measured with planned."""
        from c10kplan.errors import BadInput, NotReady
        from c10kplan.verify import VerifyOptions, run_verify

        if profile and not netns:
            raise BadInput("--profile needs --netns (on the host, apply it first with `c10kplan apply`)")
        opts = VerifyOptions(
            connections=connections, duration=duration, message_rate=message_rate, message_size=message_size,
            connect_rate=connect_rate, backend=backend, trigger=trigger, workers=workers,
            storm_processes=storm_processes, profile=profile, netns=netns,
            p99_max_ms=p99_max, calibrate=calibrate, force=force,
        )
        result = _run_shown(lambda on_event: run_verify(opts, on_event=on_event, on_output=render.note),
                            connections, json_out, progress, _print_verify,
                            "verify interrupted; the server and storm processes were stopped")
        if result.verdict != "PASS":
            raise NotReady("verify: " + "; ".join(result.problems))

