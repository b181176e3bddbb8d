"""Every numeric option of every command, fed what Python's int() and float() take but a count,
a rate or a time must not be: inf, nan, -0, huge, tiny, non-ASCII digits, underscores.

Each case must give exit 2, one `c10kplan: error:` line naming the option, no traceback, in
under a second, with nothing started (tests/hostile/incli.py). The options are found by walking
the typer app, so a new option joins the suite by itself; an option declared as a plain int or
float (which would bypass the strict parser) fails test_no_numeric_option_bypasses_the_parser.
"""

from __future__ import annotations

import typing

import pytest
import typer.main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c10kplan.cli import export_storm
from c10kplan.cli.app import app
from c10kplan.numeric import Integer, Number

from .incli import run

# Options that are text on purpose and parsed with c10kplan.numeric.parse_int later: check and
# plan take every target figure as text (the Target model parses it), "auto"-or-a-number
# counts, the --fds list and --pid.
TEXT_NUMBERS = {
    **{(cmd, opt): "float" if opt in ("--message-rate", "--bandwidth-per-conn", "--connect-rate") else "int"
       for cmd in ("check", "plan")
       for opt in ("--connections", "--message-size", "--message-rate", "--bandwidth-per-conn",
                   "--connect-rate", "--app-buffer", "--reserve-fds", "--pid")},
    ("snapshot", "--pid"): "int",
    ("serve", "--workers"): "int",
    ("storm", "--processes"): "int",
    ("storm", "--share"): "int",  # I/K: each a whole number
    ("verify", "--workers"): "int",
    ("verify", "--storm-processes"): "int",
    ("bench backends", "--fds"): "int",
    ("export ansible-storm", "--processes"): "int",
}

# The rest of a command line that is valid on its own (the option under test comes last, so it
# wins over a repeated -n).
BASE = {
    "check": ["check", "-n", "1000"],
    "plan": ["plan", "-n", "1000"],
    "snapshot": ["snapshot"],
    "serve": ["serve"],
    "storm": ["storm", "127.0.0.1:9", "-n", "3"],
    # verify clamps --storm-processes to -n before its process cap: with -n 100000 a huge count
    # is still over the cap (-n 10 would run 10 storm processes).
    "verify": ["verify", "-n", "100000"],
    "bench backends": ["bench", "backends"],
    "bench trigger": ["bench", "trigger"],
    "export ansible-storm": ["export", "--format", "ansible-storm", "--target", "127.0.0.1:9", "-n", "10"],
}

# Options read only in another mode of their command.
OPTION_BASE = {("verify", "--storm-wait"): ["verify", "--storm-results", "/nonexistent", "--target", "127.0.0.1:9"]}

# Words of the error line that name the option besides the flag itself (a model field).
# A process count over the host's process cap (processes/cap.py) is refused by the cap, whose
# line counts the processes instead of naming the flag.
_CAP = "this host allows at most"
ALSO_NAMED = {"--batch-ms": ("batch_tick",), "--p99-max": ("p99_max_ms",),
              "--workers": (_CAP,), "--storm-processes": (_CAP,), "--processes": (_CAP,)}


def _commands(group, path=()):
    for name, cmd in getattr(group, "commands", {}).items():
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*path, name))
        else:
            yield " ".join((*path, name)), cmd


def _all_commands():
    yield from _commands(typer.main.get_command(app))
    # `export --format ansible-storm` parses the rest of its arguments with its own app.
    yield "export ansible-storm", typer.main.get_command(export_storm._app)  # one command, no group


def _options():
    """(command, long flag, "int" | "float") for every numeric option, and the bypassing ones."""
    found, bypass = [], []
    for name, cmd in _all_commands():
        for param in cmd.params:
            flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
            annotation = param.type_descriptor.annotation
            if typing.get_origin(annotation) is list:  # a repeatable option: --pid P --pid Q
                annotation = typing.get_args(annotation)[0]
            if annotation in (Integer, Number):
                found.append((name, flag, "int" if annotation is Integer else "float"))
            elif (name, flag) in TEXT_NUMBERS:
                found.append((name, flag, TEXT_NUMBERS[(name, flag)]))
            elif annotation in (int, float):
                bypass.append((name, flag))
    return found, bypass


OPTIONS, BYPASS = _options()


def test_no_numeric_option_bypasses_the_parser():
    assert BYPASS == [], "declare these as c10kplan.numeric.Integer / Number"


def test_the_suite_covers_every_command_with_numbers():
    commands = {name for name, _flag, _kind in OPTIONS}
    assert commands == set(BASE), commands
    assert len(OPTIONS) >= 50, OPTIONS  # 8 check, 8 plan, 1 snapshot, 4 serve, 11 storm, 8 verify, 5 bench, 9 export
    assert not set(TEXT_NUMBERS) - {(n, f) for n, f, _k in OPTIONS}, "TEXT_NUMBERS names a gone option"


_non_ascii_digit = st.characters(categories=("Nd",), exclude_characters="0123456789")


def hostile(flag: str, kind: str):
    """Values no numeric option may accept (they all started something, crashed or hung)."""
    words = st.sampled_from(["inf", "-inf", "+inf", "Infinity", "nan", "NaN", "-nan", "-0", "-0.0",
                             "+0", "-1", "+1", "1e400", "-1e400", "1e-400", "0x10", "", " "]
                            + ([] if flag == "--fds" else ["1,5"]))  # --fds is a list: 1,5 is two counts
    huge = st.one_of(
        st.integers(33, 6000).map(lambda n: "9" * n),  # past MAX_TEXT; 5,000 digits: int-str limit
        st.floats(1e300, 1.7e308).map(repr),
        st.integers(10**20, 10**31).map(str) if flag != "--fds" else st.nothing(),  # --fds clamps N
    )
    tiny = st.one_of(st.floats(5e-324, 1e-9).map(repr), st.just("1e-300"))
    unicode_digits = st.one_of(
        st.text(_non_ascii_digit, min_size=1, max_size=6),
        st.tuples(st.integers(1, 99), st.text(_non_ascii_digit, min_size=1, max_size=3)).map(
            lambda t: f"{t[0]}{t[1]}"),
    )
    underscores = st.tuples(st.integers(1, 999), st.integers(0, 999)).map(lambda t: f"{t[0]}_{t[1]:03d}")
    fraction = st.floats(0.001, 1000).filter(lambda v: not v.is_integer()).map(repr)
    choices = [words, huge, tiny, unicode_digits, underscores]
    if kind == "int":
        choices.append(fraction)  # 2.5 connections
    return st.one_of(*choices)


@pytest.mark.parametrize(("command", "flag", "kind"), OPTIONS, ids=[f"{c}{f}" for c, f, _ in OPTIONS])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_numeric_option_refuses_hostile_values(command, flag, kind, data):
    value = data.draw(hostile(flag, kind), label=flag)
    outcome = run([*OPTION_BASE.get((command, flag), BASE[command]), flag, value])
    field = flag.lstrip("-").replace("-", "_")
    # `export` parses first and passes on what it does not know: a value that looks like short
    # options (-inf = -i -n -f) is refused there, naming the option it misread.
    misread = ("Option '-", "No such option") if command.startswith("export") and value.startswith("-") else ()
    outcome.assert_refused(flag, field, *ALSO_NAMED.get(flag, ()), *misread)
