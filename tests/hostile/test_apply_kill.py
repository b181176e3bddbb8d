"""kill -9 at 100 random points of apply, on a fake root and inside a network namespace this
test makes (`unshare -n`); after each kill, recovery (rollback, or the next apply, or a killed
rollback run again) restores every byte, mode and owner and leaves no temp file (issue 12).
The engine is tests/hostile/kill_points.py.

Both run in a child with its own mount namespace (`unshare -m`) whose work dir under tmp_path
is a private tmpfs: apply fsyncs every file and directory it changes, and on a disk shared with
other jobs those fsyncs, not the code, would set the wall time (4 s quiet, 40 s at load 9).
Without root or unshare(1) the fake-root case runs in-process on tmp_path itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile.kill_points import fake_scenarios, run_kill_points

REPO = Path(__file__).resolve().parents[2]
KILLS = 100
CAN_UNSHARE = os.geteuid() == 0 and shutil.which("unshare") is not None


def kill_in_child(kind: str, work: Path, seed: int, *namespaces: str) -> dict:
    work.mkdir()
    proc = subprocess.run(
        ["unshare", "-m", *namespaces, sys.executable, "-m", "tests.hostile.kill_points", kind,
         str(work), str(KILLS), str(seed), "--tmpfs"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(work) == []  # the tmpfs went away with the child's mount namespace
    return json.loads(proc.stdout)


def check(where: str, out: dict) -> None:
    print(f"{where}: {out['restored']}/{out['killed']} restored of {KILLS} kill points "
          f"({out['nested']} recoveries killed too)")
    assert out["failures"] == []
    assert (out["killed"], out["restored"]) == (KILLS, KILLS)
    assert out["nested"] > 0


def test_kill_9_at_100_points_of_apply_on_a_fake_root(tmp_path: Path) -> None:
    if CAN_UNSHARE:
        out = kill_in_child("fake", tmp_path / "work", 12)
    else:  # same engine, on the disk
        (tmp_path / "work").mkdir()
        out = run_kill_points(fake_scenarios(tmp_path / "work"), KILLS, 12).__dict__
    check("fake root", out)


@pytest.mark.netns
def test_kill_9_at_100_points_of_apply_in_a_network_namespace(tmp_path: Path) -> None:
    if not CAN_UNSHARE:
        pytest.skip("needs root and unshare(1) to create a network namespace")
    somaxconn = Path("/proc/sys/net/core/somaxconn")
    host_before = somaxconn.read_bytes()
    check("netns", kill_in_child("netns", tmp_path / "work", 34, "-n"))
    assert somaxconn.read_bytes() == host_before  # the host namespace was never written
