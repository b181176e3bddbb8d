"""`c10kplan bench backends` and `c10kplan bench trigger`: thin commands over c10kplan.bench."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from c10kplan.numeric import Integer, Number

bench_app = typer.Typer(
    name="bench",
    help="Reproduce the select / poll / epoll scaling figure and the LT / ET experiment.",
    no_args_is_help=True,
)


@bench_app.command("backends")
def backends(
    fds: Annotated[
        str, typer.Option("--fds", help="Descriptor counts N, comma-separated.")
    ] = "10,100,1000,10000",
    active: Annotated[
        Integer, typer.Option("--active", help="K: descriptors active at once (chains in flight).")
    ] = 1,
    writes: Annotated[Integer, typer.Option("--writes", help="W: chained writes per run.")] = 100,
    repeat: Annotated[Integer, typer.Option("--repeat", help="R: runs per backend and N.")] = 25,
    backend: Annotated[
        str | None,
        typer.Option("--backends", help="Backends to measure, comma-separated (default: all)."),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a log-log PNG here (needs the plot extra).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw figures as JSON.")] = False,
) -> None:
    """Cost of one loop iteration (wait + dispatch) per backend as the descriptor count grows."""
    from c10kplan.bench import backends as bb
    from c10kplan.cli import render

    extra = {"backends": bb.parse_names(backend)} if backend is not None else {}
    opts = bb.BackendsOptions(
        fds=bb.parse_counts(fds), active=active, writes=writes, repeat=repeat, **extra
    )
    if plot is not None:
        from c10kplan.bench.plot import check_plot_path, require_matplotlib

        require_matplotlib()
        check_plot_path(plot)
    result = bb.run_backends_bench(opts, progress=None if as_json else render.note)
    if plot is not None:
        from c10kplan.bench.plot import write_plot

        write_plot(result, plot)
    if as_json:
        render.emit_json(result)
        return
    render.table(bb.table_rows(result), bb.TABLE_HEADERS)
    render.line()
    for text in bb.closing_note(result):
        render.line(text)
    if plot is not None:
        render.line(f"plot written to {plot}")


@bench_app.command("trigger")
def trigger(
    window_ms: Annotated[
        Number, typer.Option("--window-ms", help="How long each mode is watched (ms).")
    ] = 100.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """A peer writes once, the server never reads: wakeups of level- vs edge-triggered epoll."""
    from c10kplan.bench import trigger as tr
    from c10kplan.cli import render

    report = tr.run_trigger(window_ms)
    if as_json:
        render.emit_json(report)
        return
    render.table(
        tr.trigger_rows(report),
        tr.TRIGGER_HEADERS,
        title=f"one byte written, never read; each mode watched for {report.window_ms:g} ms",
    )
    render.line()
    render.line(report.explanation)


def register(app: typer.Typer) -> None:
    """Add the `bench` sub-app to the main app."""
    app.add_typer(bench_app, name="bench")
