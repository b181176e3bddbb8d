"""The one place that maps errors to exit codes (c10kplan.cli.app)."""

from __future__ import annotations

import os

import pytest
from pydantic import BaseModel, ValidationError

from c10kplan.cli import app
from c10kplan.errors import ApplyFailed, BadInput, ExitStatus, NotReady


class _M(BaseModel):
    n: int


def _validation_error() -> ValidationError:
    with pytest.raises(ValidationError) as info:
        _M.model_validate({"n": "x"})
    return info.value


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (BadInput("bad"), ExitStatus.BAD_INPUT),
        (NotReady("not ready"), ExitStatus.NOT_READY),
        (ApplyFailed("EPERM"), ExitStatus.ENVIRONMENT),
        (PermissionError(13, "Permission denied"), ExitStatus.ENVIRONMENT),
        (_validation_error(), ExitStatus.BAD_INPUT),
        (RuntimeError("a bug"), None),  # bugs keep their traceback
    ],
)
def test_exit_status_of_each_error_kind(exc, status):
    assert app._exit_status(exc) == status


def test_errors_are_one_line_on_stderr_with_their_exit_code(monkeypatch, capsys):
    def boom(**_kw):
        raise PermissionError(13, "Permission denied", "/proc/sys/fs/file-max")

    monkeypatch.setattr(app, "app", boom)
    with pytest.raises(SystemExit) as info:
        app.main([])
    assert info.value.code == ExitStatus.ENVIRONMENT
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("c10kplan: error: permission denied: [Errno 13] Permission denied")


def test_validation_error_is_loc_colon_msg(monkeypatch, capsys):
    def boom(**_kw):
        _M.model_validate({"n": "x"})

    monkeypatch.setattr(app, "app", boom)
    with pytest.raises(SystemExit) as info:
        app.main([])
    assert info.value.code == ExitStatus.BAD_INPUT
    assert capsys.readouterr().err.startswith("c10kplan: error: n: Input should be a valid integer")


def test_a_bug_is_not_hidden(monkeypatch):
    def boom(**_kw):
        raise RuntimeError("a bug")

    monkeypatch.setattr(app, "app", boom)
    with pytest.raises(RuntimeError, match="a bug"):
        app.main([])


def _run(argv, capsys):
    with pytest.raises(SystemExit) as info:
        app.main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


# Ten kinds of usage mistake; each is one line on stderr, exit 2, no box.
USAGE_MISTAKES = [
    (["check", "-n", "abc"], "connections"),  # a value of the wrong type
    (["check", "--bogus"], "No such option: --bogus"),  # unknown option
    (["export", "-p", "c1m"], "Missing option '--format'"),  # missing option
    (["frobnicate"], "No such command 'frobnicate'"),  # unknown command
    (["export", "-p", "c1m", "-f", "xml"], "'xml' is not one of"),  # bad choice
    (["profiles", "show"], "Missing argument"),  # missing argument
    (["check", "--connections"], "requires an argument"),  # option without its value
    (["rollback", "extra"], "unexpected extra argument"),  # extra argument
    (["profiles", "frob"], "No such command 'frob'"),  # unknown subcommand of a group
    (["profiles", "list", "--json=yes"], "does not take a value"),  # a flag given a value
]


@pytest.mark.parametrize(("argv", "says"), USAGE_MISTAKES)
def test_usage_mistakes_are_one_line_exit_2(argv, says, capsys):
    code, out, err = _run(argv, capsys)
    assert code == ExitStatus.BAD_INPUT
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("c10kplan: error: "), err
    assert says in err
    assert not any(ch in err for ch in "╭│╰"), err


def test_version(capsys):
    code, out, _ = _run(["--version"], capsys)
    assert code == 0 and out.strip() == f"c10kplan {app._version()}"
    assert out.split()[1][0].isdigit()


@pytest.mark.parametrize("argv", [[], ["profiles"], ["check"], ["profiles", "show"], ["export"],
                                  ["bench", "backends"]])
def test_dash_h_is_help_everywhere(argv, capsys):
    code, out, err = _run([*argv, "-h"], capsys)
    assert code == 0 and "Usage: c10kplan" in out and err == ""


def test_no_arguments_shows_help(capsys):
    code, out, err = _run([], capsys)
    assert code == ExitStatus.BAD_INPUT and "Usage: c10kplan" in out and err == ""


@pytest.mark.parametrize(("words", "want", "unwanted"), [
    ("c10kplan export --profile c1", {"c10k", "c100k", "c1m"}, {"base", "low-latency"}),
    ("c10kplan apply -p l", {"low-latency"}, {"c1m"}),
    ("c10kplan export --format s", {"sysctl.d", "systemd"}, {"tuned", "ansible"}),
])
def test_shell_completion_of_profile_and_format(words, want, unwanted, monkeypatch, capsys):
    monkeypatch.setenv("_C10KPLAN_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", words)
    monkeypatch.setenv("COMP_CWORD", str(len(words.split()) - 1))
    code, out, _ = _run([], capsys)
    assert code == 0
    got = set(out.split())
    assert want <= got and not (unwanted & got), got


def test_completion_install_is_offered(capsys):
    _, out, _ = _run(["-h"], capsys)
    assert "--install-completion" in out and "--show-completion" in out
    assert os.environ.get("_C10KPLAN_COMPLETE") is None


@pytest.mark.parametrize(("argv", "says"), [
    (["check", "-n", "abc"], "c10kplan: error: --connections: 'abc' is not a whole number"),
    (["check", "-n", "10", "--message-rate", "-1"], "c10kplan: error: --message-rate: "),
    (["verify", "-n", "10", "--p99-max", "-1"], "c10kplan: error: --p99-max: "),
    (["verify", "-n", "10", "--trigger", "bogus"], "c10kplan: error: --trigger: Input should be"),
    (["verify", "-n", "10", "--trigger", "edge", "--backend", "poll"],
     "c10kplan: error: --trigger edge needs --backend epoll"),
])
def test_validation_errors_name_the_option_not_the_field(argv, says, capsys):
    """Field names (connections, message_rate, p99_max_ms) become the flags the user typed, and
    pydantic's "Value error, " prefix is dropped: one mapping for every command."""
    with pytest.raises(SystemExit) as info:
        app.main(argv)
    assert info.value.code == ExitStatus.BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith(says) and err.count("\n") == 1
    assert "Value error" not in err and "p99_max_ms" not in err


def test_option_names_come_from_the_commands():
    names = app.option_names()
    assert names["message_rate"] == "--message-rate" and names["p99_max"] == "--p99-max"
    assert names["backend"] == "--backend"  # bench backends' --backends does not win


@pytest.mark.parametrize(("argv", "says"), [
    (["check", "--connections"], "check: Option '--connections' requires an argument. (see 'c10kplan check -h')"),
    (["bench", "trigger", "--window-ms"], "(see 'c10kplan bench trigger -h')"),
    (["--traceback", "plan", "-n"], "(see 'c10kplan plan -h')"),
])
def test_a_missing_value_points_at_the_commands_help(argv, says, capsys):
    with pytest.raises(SystemExit) as info:
        app.main(argv)
    assert info.value.code == ExitStatus.BAD_INPUT
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["-h"], ["check", "-h"], ["storm", "-h"], ["verify", "-h"],
                                  ["bench", "backends", "-h"], ["apply", "-h"]])
def test_flags_show_no_bool_metavar(argv, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit):
        app.main(argv)
    out = capsys.readouterr().out
    assert "--json" in out or "--traceback" in out
    assert "<bool>" not in out and "BOOLEAN" not in out
