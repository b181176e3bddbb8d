"""apply / rollback for real, inside a network namespace this test creates (`unshare -n`).

The whole scenario runs in ONE `unshare -n` child (each unshare makes a fresh namespace), so
apply, the reads, and rollback see the same live /proc/sys/net. The host namespace is never
written: its values are read before and after and must be identical.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns

NET_KEYS = ["net.core.somaxconn", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
            "net.ipv4.ip_local_port_range", "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_max_tw_buckets",
            "net.ipv4.tcp_tw_reuse"]

# Runs inside the namespace: apply, read, rollback, read; prints one JSON document.
SCENARIO = r"""
import json, subprocess, sys
keys, state, profile = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
def values():
    return {k: " ".join(open("/proc/sys/" + k.replace(".", "/")).read().split()) for k in keys}
def cli(*args):
    p = subprocess.run([sys.executable, "-m", "c10kplan", *args], capture_output=True, text=True)
    return {"rc": p.returncode, "out": p.stdout, "err": p.stderr}
doc = {"before": values()}
doc["apply"] = cli("apply", "--profile", profile, "--keys", "net.*", "--yes", "--state-dir", state)
doc["applied"] = values()
doc["rollback"] = cli("rollback", "--state-dir", state)
doc["after"] = values()
print(json.dumps(doc))
"""


def host_values() -> dict[str, str]:
    return {k: " ".join(Path("/proc/sys/" + k.replace(".", "/")).read_text().split())
            for k in NET_KEYS}


def in_netns(profile: str, state: Path) -> dict:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) to create a network namespace")
    proc = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", SCENARIO, ",".join(NET_KEYS), str(state),
         profile],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_c1m_net_keys_apply_and_roll_back_in_a_namespace(tmp_path: Path) -> None:
    host_before = host_values()
    doc = in_netns("c1m", tmp_path / "state")
    assert doc["apply"]["rc"] == 0, doc["apply"]["err"]
    applied = doc["applied"]
    assert applied["net.core.somaxconn"] == str(max(32768, int(doc["before"]["net.core.somaxconn"])))
    assert applied["net.ipv4.tcp_rmem"] == "1024 4096 16777216"
    assert applied["net.ipv4.tcp_wmem"] == "1024 4096 16777216"
    assert applied["net.ipv4.ip_local_port_range"] == "1024 65535"
    assert applied["net.ipv4.tcp_fin_timeout"] == "15"
    assert applied != doc["before"]
    # host-wide keys were not selected or are read-only/absent in the namespace
    assert "fs.file-max" in doc["apply"]["out"] and "skipped" in doc["apply"]["out"]
    assert doc["rollback"]["rc"] == 0, doc["rollback"]["err"]
    assert doc["after"] == doc["before"]
    assert host_values() == host_before


def test_read_only_key_fails_with_errno_and_restores(tmp_path: Path) -> None:
    """A real kernel refusal: the third key is read-only (mode 0444, EACCES even for root)."""
    prof = tmp_path / "ro.toml"
    prof.write_text(
        'allow_unknown = true\n[sysctl]\n'
        '"net.core.somaxconn" = 12345\n'
        '"net.ipv4.tcp_fin_timeout" = 17\n'
        '"net.ipv4.tcp_available_congestion_control" = "reno"\n'
        '"net.ipv4.tcp_max_syn_backlog" = 777\n')
    host_before = host_values()
    doc = in_netns(str(prof), tmp_path / "state")
    assert doc["apply"]["rc"] == 3
    err = doc["apply"]["err"]
    assert err.count("\n") == 1
    assert "net.ipv4.tcp_available_congestion_control" in err and "EACCES" in err
    assert "restored 2 key(s)" in err
    assert doc["applied"] == doc["before"]  # nothing half-applied
    assert "nothing to roll back" in doc["rollback"]["out"]
    assert host_values() == host_before
