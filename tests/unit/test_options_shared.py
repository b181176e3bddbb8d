"""The option rules `serve` and `verify` share: AutoOrPositive and check_trigger (one of each)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from c10kplan.cli.app import main
from c10kplan.reactor.backends import check_trigger, make_backend
from c10kplan.reactor.config import ServeConfig
from c10kplan.verify import VerifyOptions


def _serve(**kw):
    return ServeConfig(**kw)


def _verify(**kw):
    return VerifyOptions(connections=10, **kw)


MODELS = [(_serve, "workers"), (_verify, "workers"), (_verify, "storm_processes")]


@pytest.mark.parametrize(("make", "field"), MODELS)
@pytest.mark.parametrize(("given", "kept"), [("auto", "auto"), (1, 1), ("4", 4), (3, 3)])
def test_auto_or_positive_accepts(make, field, given, kept):
    assert getattr(make(**{field: given}), field) == kept


@pytest.mark.parametrize(("make", "field"), MODELS)
@pytest.mark.parametrize("given", [0, "0", -2, "-1", "many", "", 2.5, "Auto", "1_000", "\u0661\u0662", "+3"])
def test_auto_or_positive_refuses_with_one_message_naming_the_option(make, field, given):
    with pytest.raises(ValidationError) as caught:
        make(**{field: given})
    errors = caught.value.errors()
    assert len(errors) == 1  # not one per union member
    flag = "--" + field.replace("_", "-")
    assert errors[0]["loc"] == (field,)
    assert f"{flag} must be 'auto' or a positive number, not {given!r}" in errors[0]["msg"]


def test_serve_keeps_its_worker_ceiling():
    assert ServeConfig(workers=1024).workers == 1024
    with pytest.raises(ValidationError, match="must be at most 1024, not"):
        ServeConfig(workers=1025)


def test_check_trigger_allows_level_everywhere_and_edge_on_epoll_only():
    for backend in ("epoll", "poll", "select"):
        check_trigger(backend, "level")
    check_trigger("epoll", "edge")
    for backend in ("poll", "select"):
        with pytest.raises(ValueError, match=f"^--trigger edge needs --backend epoll, not {backend}$"):
            check_trigger(backend, "edge")


@pytest.mark.parametrize("make", [_serve, _verify, lambda **kw: make_backend(kw["backend"], edge=True)])
def test_every_caller_refuses_edge_without_epoll_with_the_same_message(make):
    with pytest.raises(ValueError, match="--trigger edge needs --backend epoll, not select"):
        make(backend="select", trigger="edge")


@pytest.mark.parametrize(("args", "flag"), [(["--workers", "0"], "--workers"),
                                            (["--storm-processes", "none"], "--storm-processes")])
def test_verify_cli_refuses_a_bad_count_with_exit_2_and_one_line(args, flag, capsys):
    # The bug this guards: VerifyOptions itself accepted workers=0; now the model refuses it
    # and the CLI passes the text through unchanged, before anything is started (in-process:
    # tests/unit/conftest.py fails the test if anything forks or opens a socket).
    with pytest.raises(SystemExit) as info:
        main(["verify", "-n", "10", *args])
    out, err = capsys.readouterr()
    assert info.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("c10kplan: error: ") and flag in lines[0]
    assert out == ""
