"""README's synopses name every option each command takes (what `c10kplan CMD -h` lists), and
nothing a command does not take."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from c10kplan.cli.app import app

README = Path(__file__).resolve().parents[2] / "README.md"
HELP = {"-h", "--help"}


def commands() -> dict[str, set[str]]:
    """"check" / "profiles show" / "bench backends" -> the long and short flags it takes."""
    out: dict[str, set[str]] = {}

    def walk(cmd, path):
        subs = getattr(cmd, "commands", {})
        if path and not subs:
            flags = set()
            for p in cmd.params:
                flags |= {o for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))
                          if o.startswith("-")}
            out[" ".join(path)] = flags - HELP
        for name, sub in subs.items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return out


def ansible_storm_flags() -> set[str]:
    """`export --format ansible-storm` hands what export does not know to its own command
    (README: `[storm options]`, listed in docs/fleet.md)."""
    from c10kplan.cli.export_storm import _app

    return {o for p in typer.main.get_command(_app).params for o in getattr(p, "opts", ())}


def synopses() -> dict[str, set[str]]:
    """Each command's flags as README's code blocks write them: a line `c10kplan CMD ...` and
    its indented continuation lines."""
    known = commands()
    out: dict[str, set[str]] = {}
    current = None
    in_block = False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            in_block, current = not in_block, None
            continue
        if not in_block:
            continue
        m = re.match(r"c10kplan ((?:[a-z-]+)(?: [a-z-]+)?)", line)
        if m:
            words = m.group(1)
            current = words if words in known else words.split()[0]
            if current not in known:
                current = None
            # `profiles list | show NAME`: both subcommands
            for name in re.findall(r"\| ([a-z]+)", line) if current == "profiles list" else ():
                out.setdefault(f"profiles {name}", set()).update(re.findall(r"--?[a-z][a-z0-9-]*", line))
        elif not line.startswith(" "):
            current = None
        if current is not None:
            out.setdefault(current, set()).update(re.findall(r"(?<![\w-])--?[a-z][a-z0-9-]*", line.split("#")[0]))
    return out


def test_every_command_has_a_synopsis_with_every_option():
    known, written = commands(), synopses()
    missing = {cmd: sorted(flags - written.get(cmd, set()) - _short_aliases(cmd))
               for cmd, flags in known.items()}
    assert {c: f for c, f in missing.items() if f} == {}


def test_synopses_name_no_option_the_command_lacks():
    known, written = commands(), synopses()
    known["export"] |= ansible_storm_flags()
    extra = {cmd: sorted(flags - known[cmd]) for cmd, flags in written.items() if cmd in known}
    assert {c: f for c, f in extra.items() if f} == {}


def _short_aliases(cmd: str) -> set[str]:
    """Short flags (-n, -p) whose long form the synopsis writes: one spelling is enough."""
    shorts = set()
    for p in _params(cmd):
        opts = getattr(p, "opts", ())
        if any(o.startswith("--") for o in opts):
            shorts |= {o for o in opts if not o.startswith("--")}
    return shorts


def _params(cmd: str):
    node = typer.main.get_command(app)
    for word in cmd.split():
        node = node.commands[word]
    return node.params


def test_top_help_names_every_protocol_serve_speaks(capsys):
    """`c10kplan -h` describes serve by what it serves: every --protocol choice."""
    import typing

    import pytest

    from c10kplan.cli.app import main
    from c10kplan.reactor.config import ServeConfig

    with pytest.raises(SystemExit):
        main(["-h"])
    out = " ".join(capsys.readouterr().out.split())
    line = out[out.index("serve "):].split(" storm ")[0]
    for name in typing.get_args(ServeConfig.model_fields["protocol"].annotation):
        assert name in line, name
