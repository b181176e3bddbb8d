"""`c10kplan export --format ansible-storm --connections N --target HOST:PORT [storm options]`.

`export` (cli/profiles.py) hands the arguments it does not know to `export_storm(args)`; they
are parsed here as one small command of their own, validated as a storm would validate them,
and the playbook (c10kplan.fleet.ansible_storm) is printed."""

from __future__ import annotations

from typing import Annotated, Optional, get_args

import typer

from c10kplan.cli import render
from c10kplan.numeric import Integer, Number
from c10kplan.storm.config import StormConfig

_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                   context_settings={"help_option_names": ["-h", "--help"]})
PROG = "c10kplan export --format ansible-storm"
_PROTOCOLS = get_args(StormConfig.model_fields["protocol"].annotation)  # the storm's own list


@_app.command(help="Print an Ansible playbook: every host of an inventory group storms HOST:PORT with its "
                   "share of N connections, all starting at one time; the controller merges the results. "
                   "The inventory variables it reads are listed at the top of the playbook.")
def _ansible_storm(
    connections: Annotated[Integer, typer.Option("--connections", "-n", help="Connections of the whole fleet.")],
    target: Annotated[str, typer.Option(help="HOST:PORT of the server every host storms.")],
    group: Annotated[str, typer.Option(help="Inventory group of the load hosts.")] = "storm",
    version: Annotated[Optional[str], typer.Option(help="c10kplan version the hosts pip-install (default: this one).")] = None,
    start_delay: Annotated[Number, typer.Option(help="Seconds from the end of the checks to the common start.")] = 30.0,
    connect_rate: Annotated[Number, typer.Option(help="Connects per second of the whole fleet; 0 = unlimited.")] = 0.0,
    source_ips: Annotated[str, typer.Option(help="'auto', or the fleet's address plan (each host takes its slice).")] = "auto",
    processes: Annotated[str, typer.Option(help="Storm processes per host: a number or 'auto'.")] = "auto",
    message_size: Annotated[Integer, typer.Option(help="Bytes per message.")] = 64,
    message_rate: Annotated[Number, typer.Option(help="Messages per connection per second; 0 = idle.")] = 0.0,
    duration: Annotated[Number, typer.Option(help="Seconds to hold the connections.")] = 10.0,
    connect_timeout: Annotated[Number, typer.Option(help="Seconds before a pending connect is ETIMEDOUT.")] = 5.0,
    protocol: Annotated[str, typer.Option(help=", ".join(_PROTOCOLS[:-1]) + f" or {_PROTOCOLS[-1]}.")] = "echo",
    batch_ms: Annotated[Number, typer.Option(help="Storm hold loop tick in ms.")] = 1.0,
) -> None:
    from c10kplan import __version__
    from c10kplan.errors import BadInput
    from c10kplan.fleet.ansible_storm import StormPlan, storm_playbook
    from c10kplan.storm.config import parse_source_ips, parse_target
    from c10kplan.storm.setup import resolve_processes

    host, port = parse_target(target)
    # The values a storm would refuse are refused now, not on every host at run time.
    StormConfig(host=host, port=port, connections=connections, connect_rate=connect_rate,
                message_size=message_size, message_rate=message_rate, duration=duration,
                connect_timeout=connect_timeout, protocol=protocol, batch_tick=batch_ms / 1000)
    if not (batch_ms == 0 or 0.001 <= batch_ms <= 100):
        raise BadInput(f"--batch-ms must be 0 or 0.001..100, not {batch_ms:g}")
    if processes != "auto":
        resolve_processes(processes, connections)
    if source_ips != "auto":
        parse_source_ips(source_ips)
    if not (start_delay == 0 or 0.001 <= start_delay <= 3000):
        raise BadInput(f"--start-delay must be 0 or 0.001..3000 s, not {start_delay:g}")
    if not group.replace("_", "").replace("-", "").isalnum():
        raise BadInput(f"--group must be an inventory group name, not {group!r}")
    storm_options = ("--connect-rate", f"{connect_rate:g}", "--processes", processes,
                     "--message-size", str(message_size), "--message-rate", f"{message_rate:g}",
                     "--duration", f"{duration:g}", "--connect-timeout", f"{connect_timeout:g}",
                     "--protocol", protocol, "--batch-ms", f"{batch_ms:g}")
    check_options = ("--message-size", str(message_size), "--message-rate", f"{message_rate:g}")
    plan = StormPlan(target=f"{host}:{port}", connections=connections, storm_options=storm_options,
                     check_options=check_options, source_ips=source_ips, group=group,
                     version=version or __version__, start_delay=start_delay, connect_rate=connect_rate,
                     connect_timeout=connect_timeout, duration=duration)
    render.line(storm_playbook(plan).rstrip("\n"))


def export_storm(args: list[str], *, profile: str | None = None, keys: str | None = None) -> None:
    """Parse `args` as the ansible-storm options and print the playbook. A usage error is one
    BadInput line (exit 2), as every other bad value of export is; so is a --profile or --keys
    (export's own options), which a storm playbook has no use for."""
    from c10kplan.errors import BadInput

    if profile is not None or keys is not None:
        raise BadInput("--format ansible-storm takes no --profile or --keys (apply a profile with --format ansible)")

    command = typer.main.get_command(_app)
    try:
        command.main(args=args, prog_name=PROG, standalone_mode=False)
    except Exception as exc:
        # A usage error: click's ClickException (vendored by newer typer as typer._click), known
        # by its interface rather than by a class that moves between typer versions.
        message = getattr(exc, "format_message", None)
        if message is None or not hasattr(exc, "exit_code"):
            raise
        raise BadInput(f"--format ansible-storm: {message()}") from None


def _asks_storm_help(args: list[str]) -> bool:
    """`export ... --format ansible-storm ... --help` (or -f / --format=, -h)."""
    storm = any(a in ("--format=ansible-storm", "-fansible-storm") for a in args) or any(
        a in ("--format", "-f") and b == "ansible-storm" for a, b in zip(args, args[1:]))
    return storm and any(a in ("-h", "--help") for a in args)


def show_help_if_asked(ctx: typer.Context, args: list[str]) -> None:
    """export's --help with --format ansible-storm shows the playbook's own options (parsed by
    `_ansible_storm`, so export's help cannot list them), then exits 0."""
    if _asks_storm_help(args):
        typer.main.get_command(_app).main(args=["--help"], prog_name=PROG, standalone_mode=False)
        ctx.exit(0)
