"""The one place that maps errors to exit codes (c10kplan.cli.app)."""

from __future__ import annotations

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
    def boom():
        raise PermissionError(13, "Permission denied", "/proc/sys/fs/file-max")

    monkeypatch.setattr(app, "app", boom)
    with pytest.raises(SystemExit) as info:
        app.main([])
    assert info.value.code == ExitStatus.ENVIRONMENT
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("c10kplan: error: permission denied: [Errno 13] Permission denied")


def test_validation_error_is_loc_colon_msg(monkeypatch, capsys):
    def boom():
        _M.model_validate({"n": "x"})

    monkeypatch.setattr(app, "app", boom)
    with pytest.raises(SystemExit) as info:
        app.main([])
    assert info.value.code == ExitStatus.BAD_INPUT
    assert capsys.readouterr().err.startswith("c10kplan: error: n: Input should be a valid integer")


def test_a_bug_is_not_hidden(monkeypatch):
    def boom():
        raise RuntimeError("a bug")

    monkeypatch.setattr(app, "app", boom)
    with pytest.raises(RuntimeError, match="a bug"):
        app.main([])
