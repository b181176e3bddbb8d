"""One way to declare command-line options, for every command module.

`option(*flags, metavar=..., help=...)` is typer.Option with what every command shows the same
way (the metavar, the help, whether the default is printed). Options that mean the same in
several commands are declared here once, as Annotated aliases, and used by name:

    def storm(connections: Connections, duration: Duration = 10.0, json_out: Json = False): ...

Numbers are typed `numeric.Integer` / `numeric.Number` (ASCII digits only: no `1_000`, `١٢`,
`inf` or `nan`; a bad one is one line naming the option) and their bounds are checked by the
command's model (StormConfig, VerifyOptions, ServeConfig); the CLI only hands them on.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from c10kplan.numeric import Integer, Number


def option(*flags: str, help: str, metavar: str | None = None, default_shown: bool = True) -> typer.models.OptionInfo:
    """A typer option declared the one way (cli/check.py's `_text` has this shape too)."""
    return typer.Option(*flags, metavar=metavar, help=help, show_default=default_shown)


Connections = Annotated[Integer, option("--connections", "-n", metavar="N", default_shown=False,
                                    help="Connections to open and hold.")]
Duration = Annotated[Number, option("--duration", metavar="S", help="Seconds to hold all the connections.")]
MessageSize = Annotated[Integer, option("--message-size", metavar="BYTES", help="Bytes per message.")]
ConnectRate = Annotated[Number, option("--connect-rate", metavar="PER_S",
                                      help="Connects per second over all processes; 0 = as fast as possible.")]
Backend = Annotated[str, option("--backend", metavar="NAME", help="Server backend: epoll, poll or select.")]
Trigger = Annotated[str, option("--trigger", metavar="MODE", help="level | edge (edge needs epoll).")]
Json = Annotated[bool, option("--json", help="Print one JSON result document.")]
Metrics = Annotated[Optional[str], option("--metrics", metavar="FILE", default_shown=False,
                                          help="Write the run's figures to FILE (Prometheus text format, "
                                               "for node_exporter's textfile collector).")]
Progress = Annotated[Optional[bool], option("--progress/--no-progress", default_shown=False,
                                            help="Live progress on stderr (default: on a TTY).")]


def rate_option(help: str) -> typer.models.OptionInfo:
    """--message-rate: the same option, each command says what its default means."""
    return option("--message-rate", metavar="PER_S", help=help)


def count_option(flag: str, help: str) -> typer.models.OptionInfo:
    """--workers / --processes / --storm-processes: a number or `auto`."""
    return option(flag, metavar="N|auto", help=help)
