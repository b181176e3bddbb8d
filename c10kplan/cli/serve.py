"""`c10kplan serve`: the bundled reactor server (select / poll / epoll, LT / ET, multi-process)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add `serve` to the app."""
    app.command("serve")(serve)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 = any free port (see the `listening` line).")] = 0,
    backend: Annotated[str, typer.Option(help="epoll | poll | select.")] = "epoll",
    trigger: Annotated[str, typer.Option(help="level | edge (edge needs epoll).")] = "level",
    workers: Annotated[
        str, typer.Option(help="Worker processes, or `auto` (enough for --max-connections under the fd limit, else one per CPU).")
    ] = "1",
    protocol: Annotated[str, typer.Option(help="echo | rot13 (line-oriented) | discard | http (keep-alive, 200 ok) | websocket (echo).")] = "echo",
    max_connections: Annotated[
        int | None, typer.Option(help="Connections for the whole server (a total shared by the workers); more are accepted and closed.")
    ] = None,
    stats_interval: Annotated[float, typer.Option(help="Seconds between stats lines on stderr (0 = off).")] = 5.0,
    stats_file: Annotated[
        Path | None, typer.Option(help="Keep this file updated with one JSON stats document (SIGUSR1 refreshes it).")
    ] = None,
) -> None:
    """Serve echo / rot13 / discard until SIGINT or SIGTERM; prints `listening HOST:PORT` first."""
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
    )
    raise typer.Exit(run_server(cfg))
