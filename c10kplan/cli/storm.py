"""`c10kplan storm` and `c10kplan verify`: thin typer commands over c10kplan.storm and
c10kplan.verify. Heavy imports happen inside the command functions."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Optional

import typer


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
        sys.stderr.write(
            f"\rconnections {est}/{self.target}  connect/s {(est - est_prev) / dt:,.0f}  "
            f"messages/s {(recv - recv_prev) / dt:,.0f}  errors {failed}   "
        )
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled and self._last_draw:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _print_storm(result) -> None:
    from c10kplan.cli import render

    r = result
    render.table(
        [
            ["connections", f"{r.established} established, {r.held} held of {r.connections}"],
            ["processes / source addresses", f"{r.processes} / {r.source_addresses}"],
            ["connect time", f"{r.connect_seconds:.3f} s ({r.connect_rate:,.0f} conn/s)"],
            ["failures", ", ".join(f"{k} x{v}" for k, v in sorted(r.failures.items())) or "none"],
            ["messages", f"{r.messages_sent} sent, {r.messages_received} answered, "
                         f"{r.mismatches} mismatched, {r.unanswered} unanswered"],
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
    render.line()
    render.line("verdict: " + ("PASS" if r.ok else "FAIL: " + "; ".join(r.problems)))


def register(app: typer.Typer) -> None:
    """Add `storm` and `verify` to the app."""

    @app.command()
    def storm(
        target: Annotated[str, typer.Argument(metavar="HOST:PORT", help="The server to storm.")],
        connections: Annotated[int, typer.Option("--connections", "-n", help="Connections to open and hold.")],
        connect_rate: Annotated[float, typer.Option(help="Connects per second over all processes; 0 = as fast as possible.")] = 0.0,
        source_ips: Annotated[str, typer.Option(help="Source addresses: 'auto', a list, a range a-b or a CIDR.")] = "auto",
        processes: Annotated[str, typer.Option(help="Storm processes: a number or 'auto' (enough for the fd hard limit).")] = "auto",
        message_size: Annotated[int, typer.Option(help="Bytes per message.")] = 64,
        message_rate: Annotated[float, typer.Option(help="Messages per connection per second; 0 = hold idle.")] = 0.0,
        duration: Annotated[float, typer.Option(help="Seconds to hold the connections.")] = 10.0,
        connect_timeout: Annotated[float, typer.Option(help="Seconds before a pending connect counts as ETIMEDOUT.")] = 5.0,
        protocol: Annotated[str, typer.Option(help="What the server answers: echo, rot13 or discard.")] = "echo",
        json_out: Annotated[bool, typer.Option("--json", help="Print one JSON result document.")] = False,
        progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Live progress (default: on a TTY).")] = None,
    ) -> None:
        """Open and hold N connections to HOST:PORT, with messages; count every failure by errno."""
        from c10kplan.cli import render
        from c10kplan.errors import NotReady
        from c10kplan.storm.config import parse_target
        from c10kplan.storm.runner import run_storm
        from c10kplan.storm.setup import build_config

        host, port = parse_target(target)
        cfg = build_config(host, port, connections=connections, processes=processes, source_ips=source_ips,
                           connect_rate=connect_rate, message_size=message_size, message_rate=message_rate,
                           duration=duration, connect_timeout=connect_timeout, protocol=protocol)
        show = progress if progress is not None else sys.stderr.isatty()
        display = _Progress(connections, show and not json_out)
        try:
            result = run_storm(cfg, on_event=display)
        finally:
            display.finish()
        if json_out:
            render.emit_json(result)
        else:
            _print_storm(result)
        if not result.ok:
            raise NotReady("storm: " + "; ".join(result.problems))
