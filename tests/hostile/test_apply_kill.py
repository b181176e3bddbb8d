"""kill -9 at 100 random points of apply, on a fake root and inside a network namespace this
test makes (`unshare -n`); after each kill, recovery (rollback, or the next apply, or a killed
rollback run again) restores every byte, mode and owner and leaves no temp file (issue 12).
The engine is tests/hostile/kill_points.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile.kill_points import Scenario, run_kill_points
from tests.unit.test_profiles_apply import make_tree

REPO = Path(__file__).resolve().parents[2]
KILLS = 100


def test_kill_9_at_100_points_of_apply_on_a_fake_root(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root")
    admin = root / "etc" / "sysctl.d" / "90-c10kplan.conf"
    admin.parent.mkdir(parents=True)
    admin.write_text("# an admin's file\nnet.core.somaxconn = 1024\n")
    os.chmod(admin, 0o640)
    os.chown(admin, 4321, 8765)
    state = tmp_path / "state"
    scenarios = [Scenario(root=root, state=state, profile="c1m"),
                 Scenario(root=root, state=state, profile="c1m", prior="c10k"),
                 Scenario(root=root, state=state, profile="c100k", prior="base")]
    out = run_kill_points(scenarios, KILLS, seed=12)
    print(f"fake root: {out.restored}/{out.killed} restored of {KILLS} kill points "
          f"({out.nested} recoveries killed too)")
    assert out.failures == []
    assert (out.killed, out.restored) == (KILLS, KILLS)
    assert out.nested > 0


@pytest.mark.netns
def test_kill_9_at_100_points_of_apply_in_a_network_namespace(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) to create a network namespace")
    somaxconn = Path("/proc/sys/net/core/somaxconn")
    host_before = somaxconn.read_bytes()
    root = tmp_path / "root"
    root.mkdir()
    proc = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "tests.hostile.kill_points", str(root),
         str(tmp_path / "state"), str(KILLS), "34"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    print(f"netns: {out['restored']}/{out['killed']} restored of {KILLS} kill points "
          f"({out['nested']} recoveries killed too)")
    assert out["failures"] == []
    assert (out["killed"], out["restored"]) == (KILLS, KILLS)
    assert somaxconn.read_bytes() == host_before  # the host namespace was never written
