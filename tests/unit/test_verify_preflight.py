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

    monkeypatch.setattr(netns, "_set_up_namespace", lambda n: None)  # never touch the host's net
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


def test_verify_duration_0_is_refused_it_proves_nothing_about_holding():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="--duration 0 holds nothing"):
        VerifyOptions(connections=1000, duration=0)
    assert VerifyOptions(connections=1000, duration=0.5).duration == 0.5


def _summary(**extra):
    from c10kplan.verify.result import PlanSummary

    base = dict(ready=True, server_processes=2, client_processes=2, source_addresses=1, fast_source_addresses=1,
                kernel_bytes_per_socket=4692, user_bytes_per_connection=596, sockets=40_002,
                fds_per_process=10_065, messages_per_s=0.0, server_us_per_message=0.0, client_us_per_message=0.0,
                required_cores=0.0, cores=2, failing=[], fd_ceiling=20_000, reserve_fds=64)
    return PlanSummary(**(base | extra))


@pytest.mark.parametrize(
    ("workers", "storm", "message"),
    [
        (1, 2, r"^--workers 1: one server worker holds at most 19,936 connections \(nofile limit 20,000 - 64 "
               r"fds kept\); 20,001 connections need --workers 2 or more$"),
        (2, 1, r"^--storm-processes 1: one storm process holds at most 19,936 .* need --storm-processes 2 or more$"),
    ],
)
def test_too_few_processes_for_the_fd_limit_are_refused_with_the_count_needed(workers, storm, message):
    from c10kplan.verify.refusal import check_shards

    opts = VerifyOptions(connections=20_001, workers=workers, storm_processes=storm)
    with pytest.raises(BadInput, match=message):
        check_shards(opts, _summary(), workers, storm)
    check_shards(opts, _summary(), 2, 2)  # the plan's counts pass
    check_shards(VerifyOptions(connections=19_936), _summary(), 1, 1)  # exactly one process full
    # --find-limit pins processes to find where they fail: not refused
    check_shards(opts.model_copy(update={"find_limit": "connections"}), _summary(), workers, storm)


def test_run_here_refuses_too_few_workers_before_anything_starts(monkeypatch):
    from c10kplan.verify import run

    def must_not_start(*args, **kwargs):
        raise AssertionError("the server was started")

    monkeypatch.setattr(run, "make_plan", lambda *args: None)
    monkeypatch.setattr(run, "summarize", lambda plan: _summary())
    monkeypatch.setattr(run, "start_server", must_not_start)
    with pytest.raises(BadInput, match="need --workers 2 or more"):
        run.run_here(VerifyOptions(connections=20_001, workers=1, message_rate=0))
