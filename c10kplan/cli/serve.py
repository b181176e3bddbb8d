"""`c10kplan serve`: the bundled reactor server (select / poll / epoll, LT / ET, multi-process)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from c10kplan.cli.options import Backend, Trigger, count_option, option
from c10kplan.numeric import Integer, Number


def register(app: typer.Typer) -> None:
    """Add `serve` to the app."""
    app.command("serve")(serve)


def serve(
    host: Annotated[str, option("--host", metavar="ADDR", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[Integer, option("--port", metavar="PORT", help="Port; 0 = any free port (see the `listening` line).")] = 0,
    backend: Backend = "epoll",
    trigger: Trigger = "level",
    workers: Annotated[str, count_option(
        "--workers", "Worker processes, or `auto` (enough for --max-connections under the fd limit, else one per CPU).")] = "1",
    protocol: Annotated[str, option("--protocol", metavar="NAME", help=(
        "echo | rot13 (line-oriented) | discard | http (keep-alive, 200 ok) | websocket (echo)."))] = "echo",
    max_connections: Annotated[Integer | None, option(
        "--max-connections", metavar="N", default_shown=False,
        help="Connections for the whole server (a total shared by the workers); more are accepted and closed.")] = None,
    stats_interval: Annotated[Number, option("--stats-interval", metavar="S",
                                            help="Seconds between stats lines on stderr (0 = off).")] = 5.0,
    stats_file: Annotated[Path | None, option(
        "--stats-file", metavar="PATH", default_shown=False,
        help="Keep this file updated with one JSON stats document (SIGUSR1 refreshes it).")] = None,
    sched: Annotated[str, option("--sched", metavar="POLICY", help=(
        "inherit | batch: SCHED_BATCH workers accept a connect storm in batches (about 2x the "
        "connections/s on 2 CPUs) but answer messages later (p50 +0.5 ms)."))] = "inherit",
) -> None:
    """Serve echo / rot13 / discard / http / websocket until SIGINT or SIGTERM; prints `listening HOST:PORT` first."""
    from c10kplan.reactor.config import ServeConfig
    from c10kplan.reactor.workers import serve as run_server

    cfg = ServeConfig(
        host=host,
        port=port,
        backend=backend,
        trigger=trigger,
        workers=workers,
        protocol=protocol,
        max_connections=max_connections,
        stats_interval=stats_interval,
        stats_file=stats_file,
        sched=sched,
    )
    raise typer.Exit(run_server(cfg))
