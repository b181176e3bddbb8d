"""verify refuses a bad --calibrate path before starting anything (on the host and with
--netns), and the namespace side's plain stderr lines go to a callback, not to our stderr."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from c10kplan import errors
from c10kplan.verify import VerifyOptions
from c10kplan.verify import netns


@pytest.mark.parametrize("netns_flag", [(), ("--netns",)], ids=["host", "netns"])
def test_verify_with_a_bad_calibrate_path_exits_2_before_starting_anything(tmp_path, netns_flag):
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "c10kplan", "verify", "--connections", "100", "--duration", "30",
         "--calibrate", str(tmp_path / "nope" / "cal.json"), *netns_flag],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"c10kplan: error: --calibrate: folder {tmp_path / 'nope'} does not exist"
    ]
    assert done.stdout == ""
    assert time.monotonic() - t0 < 15  # the 30 s hold never started
    assert list(tmp_path.iterdir()) == []


@pytest.mark.netns
def test_namespace_stderr_goes_to_the_callback_not_to_our_stderr(monkeypatch, capfd):
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare(1) and ip(8); .ci/run installs util-linux and iproute2")
    # Python's import-time report: plain stderr lines from the namespace side; its events come
    # over the report pipe, never on stderr.
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    lines: list[str] = []
    opts = VerifyOptions(connections=10, duration=1, netns=True, profile="no-such-profile")
    with pytest.raises(errors.ProfileError, match="no-such-profile"):
        netns.run_in_netns(opts, on_output=lines.append)
    assert any(line.startswith("import time:") for line in lines)
    assert not any(line.startswith('{"event"') or line.endswith("\n") for line in lines)
    assert capfd.readouterr().err == ""  # the library printed nothing itself


@pytest.mark.netns
def test_the_profile_is_applied_inside_the_namespace_only():
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1); .ci/run installs util-linux")
    import subprocess
    import sys
    from pathlib import Path

    from c10kplan.profiles import resolve

    wanted = resolve("c100k").sysctl["net.core.somaxconn"].ints[0]
    host_before = Path("/proc/sys/net/core/somaxconn").read_text()
    code = ("from c10kplan.verify.netns import _apply_profile; _apply_profile('c100k'); "
            "print(open('/proc/sys/net/core/somaxconn').read().strip())")
    done = subprocess.run(["unshare", "-n", sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    # a fresh namespace starts at the kernel default (4096), below c100k's raise-only floor
    assert int(done.stdout.strip()) == wanted
    assert Path("/proc/sys/net/core/somaxconn").read_text() == host_before
