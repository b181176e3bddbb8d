"""`c10kplan storm`: a thin typer command over c10kplan.storm. Heavy imports happen inside the
command function."""

from __future__ import annotations

import time
from typing import Annotated, Optional

import typer

from c10kplan.cli import render  # light: tabulate is imported only when a table is printed
from c10kplan.cli.options import Connections, ConnectRate, Duration, Json, MessageSize, Progress
from c10kplan.cli.options import Metrics, count_option, option, rate_option
from c10kplan.cli.progress import run_shown
from c10kplan.numeric import Integer, Number


def _print_storm(result) -> None:
    print_storm_tables(result)
    render.line()
    render.line("verdict: " + ("PASS" if result.ok else "FAIL: " + "; ".join(result.problems)))


def print_storm_tables(result) -> None:
    from c10kplan.storm.result import failures_text, http_statuses_label

    r = result
    held = r.hold_seconds > 0  # 0: under 1 ms (rounded), the hold of --duration 0
    render.table(
        [
            ["connections", f"{r.established:,} established, {r.held:,} held of {r.connections:,}"],
            ["processes / source addresses", f"{r.processes:,} / {r.source_addresses:,}"],
            ["connect time", f"{r.connect_seconds:.3f} s ({r.connect_rate:,.0f} conn/s)"],
            ["failures", failures_text(r.failures, r.drops) or "none"],
            ["messages", f"{r.messages_sent:,} sent, {r.messages_received:,} answered, "
                         f"{r.mismatches:,} mismatched, {r.unanswered:,} unanswered, {r.lost_on_drop:,} lost on drop, "
                         f"{r.missed:,} never sent (behind schedule)"],
            *([[http_statuses_label(r.established), ", ".join(f"{k} x{v:,}" for k, v in r.http_status_classes.items())]]
              if r.http_statuses else []),
            *([["WebSocket close codes", ", ".join(f"{k} x{v:,}" for k, v in r.close_codes.items())]]
              if r.close_codes else []),
            ["throughput", f"{r.messages_per_second:,.0f} msg/s, {r.throughput_bytes_per_second:,.0f} B/s"
             if held else "no hold (--duration 0: connect, then close): no throughput"],
        ],
        headers=["storm " + r.target, "result"],
    )
    render.line()
    lat = [("connect", r.connect_latency_us)]
    if held:  # a message or two sent on the way to the close is no latency figure
        lat += [("message (corrected)", r.message_latency_us.corrected), ("message (raw)", r.message_latency_us.raw)]
    render.table(
        [[name, *(f"{v:,}" for v in (p.count, p.p50, p.p90, p.p99, p.p999, p.max))] for name, p in lat],
        headers=["latency (us)", "count", "p50", "p90", "p99", "p99.9", "max"],
    )


def register(app: typer.Typer) -> None:
    """Add `storm` to the app."""
    app.command("storm")(storm)


def storm(
    target: Annotated[str, typer.Argument(
        metavar="TARGET", help="The server: HOST:PORT, [IPV6]:PORT, http://HOST:PORT/PATH or ws://HOST:PORT/PATH.")],
    connections: Connections,
    connect_rate: ConnectRate = 0.0,
    source_ips: Annotated[str, option("--source-ips", metavar="SPEC",
                                      help="Source addresses: 'auto', a list, a range a-b or a CIDR.")] = "auto",
    processes: Annotated[str, count_option("--processes", "Storm processes: a number or 'auto' (enough for the fd hard limit).")] = "auto",
    message_size: MessageSize = 64,
    message_rate: Annotated[Number, rate_option("Messages per connection per second; 0 = hold idle.")] = 0.0,
    duration: Duration = 10.0,
    connect_timeout: Annotated[Number, option("--connect-timeout", metavar="S",
                                             help="Seconds before a pending connect counts as ETIMEDOUT.")] = 5.0,
    protocol: Annotated[Optional[str], option(
        "--protocol", metavar="NAME", default_shown=False,
        help="What the server speaks: echo, rot13, discard, http or websocket (default: from the target's scheme, else echo).")] = None,
    method: Annotated[str, option("--method", metavar="METHOD", help="http: the request method.")] = "GET",
    path: Annotated[Optional[str], option("--path", metavar="PATH", default_shown=False,
                                          help="http/websocket: the request path (default: the URL's, else /).")] = None,
    header: Annotated[Optional[list[str]], option("--header", metavar="NAME:VALUE", default_shown=False,
                                                  help="http/websocket: an extra header NAME:VALUE (repeatable).")] = None,
    body_file: Annotated[Optional[str], option("--body-file", metavar="FILE", default_shown=False,
                                               help="http: send this file as each request's body (at most 1 MiB).")] = None,
    expect_status: Annotated[str, option("--expect-status", metavar="LIST",
                                         help="http: statuses that count as answered, e.g. 2xx or 2xx,304.")] = "2xx",
    ping_interval: Annotated[Number, option("--ping-interval", metavar="S",
                                           help="websocket: ping connections idle this many seconds; 0 = never.")] = 0.0,
    subprotocol: Annotated[Optional[list[str]], option("--subprotocol", metavar="NAME", default_shown=False,
                                                       help="websocket: offer this subprotocol (repeatable).")] = None,
    ws_binary: Annotated[bool, option("--ws-binary", help="websocket: binary frames instead of text.")] = False,
    batch_ms: Annotated[Number, option("--batch-ms", metavar="MS", help="Hold loop tick in ms at high message rates (fewer wakeups; raw latency errs high by at most one tick, corrected by two); 0 = wake on every reply.")] = 1.0,
    share: Annotated[str, option("--share", metavar="I/K", help="I/K: this is load host I of K; take its slice of -n, --connect-rate and a --source-ips list.")] = "1/1",
    start_at: Annotated[Optional[Number], option("--start-at", metavar="UNIX_S", default_shown=False,
                                                help="Unix time (s) to start the ramp, the same on every load host.")] = None,
    json_out: Json = False,
    progress: Progress = None,
    histogram: Annotated[Optional[str], option(
        "--histogram", metavar="FILE", default_shown=False,
        help="Write the connect, corrected and raw histograms to FILE (HdrHistogram interval log).")] = None,
    metrics: Metrics = None,
    stop_on_failure: Annotated[bool, option("--stop-on-failure", help="End the ramp of every process at the first failure (connect errno, a drop) and hold what is open.")] = False,
    close: Annotated[str, option("--close", metavar="HOW", help=(
        "fin | reset: end the connections with an orderly close, or with RST (SO_LINGER 0: no TIME_WAIT on "
        "this host, one packet each, and the server sees ECONNRESET)."))] = "fin",
) -> None:
    """Open and hold N connections to HOST:PORT, with messages; count every failure by errno."""
    from c10kplan.errors import BadInput, NotReady
    from c10kplan.report import check_output
    from c10kplan.report.outputs import write_outputs
    from c10kplan.storm.config import protocol_settings, resolve_target
    from c10kplan.storm.runner import run_storm
    from c10kplan.storm.setup import build_config
    from c10kplan.storm.share import check_start_at, parse_share, run_placed, take_share

    for flag, out in (("--histogram", histogram), ("--metrics", metrics)):
        if out is not None:
            check_output(out, flag)
    tgt = resolve_target(target)
    host, port = tgt.host, tgt.port
    proto = protocol_settings(tgt, protocol, method=method, path=path, headers=header or (),
                              body_file=body_file, expect_status=expect_status, ping_interval=ping_interval,
                              subprotocols=subprotocol or (), ws_binary=ws_binary)
    if not (batch_ms == 0 or 0.001 <= batch_ms <= 100):
        raise BadInput(f"--batch-ms must be 0 or 0.001..100, not {batch_ms:g}")
    mine = take_share(parse_share(share), connections, connect_rate, source_ips)
    if start_at is not None:
        check_start_at(start_at, time.time())
    cfg = build_config(host, port, connections=mine.connections, processes=processes, source_ips=mine.source_ips,
                       connect_rate=mine.connect_rate, message_size=message_size, message_rate=message_rate,
                       duration=duration, connect_timeout=connect_timeout,
                       batch_tick=batch_ms / 1000, stop_on_failure=stop_on_failure, close=close, **proto)
    started = time.time()
    result = run_shown(lambda on_event: run_placed(cfg, mine, start_at, run_storm, on_event), mine.connections,
                       json_out, progress, _print_storm, "storm", "its processes were stopped")
    write_outputs(result, histogram=histogram, metrics=metrics, started_at=started, say=render.note)
    if not result.ok:
        raise NotReady("storm: " + "; ".join(result.problems))
