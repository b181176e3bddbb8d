"""`c10kplan merge RESULT.json... [--json]`: thin command over c10kplan.storm.merge."""

from __future__ import annotations

from typing import Annotated

import typer

from c10kplan.cli import render


def _print_merge(res) -> None:  # noqa: ANN001 (FleetResult, imported lazily)
    from c10kplan.cli.storm import print_storm_tables

    print_storm_tables(res.storm)
    render.line()
    render.table(
        [[p.name, p.share, p.target, f"{p.established:,}/{p.connections:,}", f"{p.held:,}", f"{p.messages_received:,}",
          f"{p.messages_per_second:,.0f}", f"{p.hold_seconds:.2f}", "PASS" if p.ok else "FAIL"] for p in res.parts],
        headers=["result", "share", "target", "established", "held", "answered", "msg/s", "hold s", "storm"],
    )
    render.line()
    w = res.window
    render.line(f"{res.hosts} hosts; held together for " + (f"{w.seconds:.2f} s (shortest hold {w.shortest_hold:.2f} s)"
                                                              if w else "an unknown time (a result has no hold start)"))
    render.line("verdict: " + res.verdict + ("" if not res.problems else ": " + "; ".join(res.problems)))


def register(app: typer.Typer) -> None:
    @app.command()
    def merge(
        files: Annotated[list[str], typer.Argument(metavar="RESULT.json...", help="`storm --json` documents, one per load host.")],
        json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    ) -> None:
        """Merge the storm results of several load hosts: counts summed, histograms added, one verdict."""
        from c10kplan.errors import NotReady
        from c10kplan.storm.merge import merge_files

        res = merge_files(files)
        if json_out:
            render.emit_json(res)
        else:
            _print_merge(res)
        if not res.ok:
            raise NotReady("merge: " + "; ".join(res.problems))
