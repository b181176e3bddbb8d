"""verify's check before anything starts (--calibrate FILE) and the namespace side's error
reporting: an OSError inside becomes one reported error, not a traceback. The same through the
real CLI and a real namespace: tests/integration/test_verify_preflight.py."""

from __future__ import annotations

import json

import pytest

from c10kplan import errors
from c10kplan.errors import BadInput, EnvironmentProblem
from c10kplan.verify import VerifyOptions
from c10kplan.verify import netns
from c10kplan.verify.run import check_calibration_path


def test_calibration_path_in_a_writable_folder_is_accepted_and_nothing_is_left(tmp_path):
    assert check_calibration_path(str(tmp_path / "cal.json")) == tmp_path / "cal.json"
    assert list(tmp_path.iterdir()) == []  # the probe file is gone again


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda tmp: str(tmp / "nope" / "cal.json"), "does not exist", id="missing-folder"),
        pytest.param(lambda tmp: str(tmp), "is a folder", id="a-folder"),
        pytest.param(lambda tmp: "/sys/cal.json", "cannot create a file in /sys", id="read-only-folder"),
        pytest.param(lambda tmp: "", "needs a file name", id="empty"),
    ],
)
def test_bad_calibration_paths_are_bad_input(tmp_path, make, message):
    with pytest.raises(BadInput, match=message):
        check_calibration_path(make(tmp_path))


def test_inner_main_reports_an_os_error_as_one_error_document(monkeypatch, capsys):
    def fails_to_write(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/srv/cal.json")

    monkeypatch.setattr(netns, "_bring_loopback_up", lambda: None)  # never touch the host's lo
    monkeypatch.setattr(netns, "run_chosen", fails_to_write)
    code = netns.inner_main([VerifyOptions(connections=10).model_dump_json()])
    out = capsys.readouterr()
    assert code == 3 and out.err == ""
    doc = json.loads(out.out)
    assert doc == {"error": {"kind": "EnvironmentProblem",
                             "message": "verify inside the namespace failed: /srv/cal.json: Permission denied"}}
    with pytest.raises(EnvironmentProblem, match="/srv/cal.json: Permission denied"):  # the outer side
        netns._decode(out.out, code)


def test_decode_keeps_the_error_kind_and_names_a_crash():
    doc = json.dumps({"error": {"kind": "ProfileError", "message": "no profile 'x'"}})
    with pytest.raises(errors.ProfileError, match="no profile 'x'"):
        netns._decode(doc, 2)
    with pytest.raises(EnvironmentProblem) as caught:
        netns._decode("", 1, "ZeroDivisionError: division by zero")
    assert str(caught.value) == ("verify inside the namespace exited with status 1 without a result: "
                                 "ZeroDivisionError: division by zero")
    with pytest.raises(EnvironmentProblem, match="killed by signal 40 without a result$"):
        netns._decode("", -40)
