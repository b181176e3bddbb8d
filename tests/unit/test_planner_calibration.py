"""Calibration files: written atomically, read back equal; a bad file is one HostFactsError."""

from __future__ import annotations

import pytest

from c10kplan.errors import ExitStatus, HostFactsError
from c10kplan.planner.calibration import Calibration, load_calibration


def test_write_then_load_round_trips(tmp_path):
    cal = Calibration(kernel_bytes_per_socket=4200, user_bytes_per_connection=None, connections=5000,
                      kernel_release="6.18.44", measured_at="2026-11-27T08:00:00+00:00",
                      method="verify --calibrate, 5000 loopback pairs")
    path = tmp_path / "cal.json"
    cal.write(path)
    assert load_calibration(path) == cal
    assert not (tmp_path / "cal.json.tmp").exists()


@pytest.mark.parametrize("text", ["", "[]", '{"kernel_bytes_per_socket": 0}', "{oops"])
def test_bad_files_are_bad_input(tmp_path, text):
    path = tmp_path / "cal.json"
    path.write_text(text)
    with pytest.raises(HostFactsError, match="--calibration") as exc:
        load_calibration(path)
    assert exc.value.exit_status == ExitStatus.BAD_INPUT


def test_missing_file(tmp_path):
    with pytest.raises(HostFactsError, match="No such file"):
        load_calibration(tmp_path / "none.json")
