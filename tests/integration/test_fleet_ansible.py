"""The exported ansible-storm playbook, run for real by ansible-playbook against K=3 "hosts" on
this machine: each host is a client namespace of a netns Topology (ansible_connection=local,
its commands prefixed with `ip netns exec NS`), storming `c10kplan serve` in the server
namespace over 198.18/15. c10kplan is pip-installed on each host from a wheel of this checkout
(no index). The merged counts must equal the sum of the hosts' own results."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from c10kplan.fleet.local import build_wheel, namespace_inventory, run_playbook
from c10kplan.netns import ip as iplib
from c10kplan.netns.topology import Topology, client_source_spec
from c10kplan.reactor.launch import ServerProcess

ROOT = Path(__file__).parents[2]
ANSIBLE = shutil.which("ansible-playbook")
LINT = shutil.which("ansible-lint")
needs_netns = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                 reason="needs root and ip(8) for the client and server namespaces")
needs_ansible = pytest.mark.skipif(ANSIBLE is None, reason="ansible-playbook missing (the test extra installs ansible-core)")


def export(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "c10kplan", "export", "--format", "ansible-storm", *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(LINT is None, reason="ansible-lint missing (the test extra installs it)")
def test_the_playbook_passes_ansible_lint(tmp_path: Path) -> None:
    play = tmp_path / "storm.yml"
    play.write_text(export("--connections", "30000", "--target", "198.18.0.1:7000", "--message-rate", "1",
                           "--source-ips", "198.18.1.1-198.18.1.4,198.18.2.1-198.18.2.4", "--group", "load-hosts"))
    done = subprocess.run([LINT, "--offline", "--nocolor", str(play)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(ROOT, tmp_path_factory.mktemp("wheel"))


MERGE_CMD = ["env", f"PYTHONPATH={ROOT}", sys.executable, "-m", "c10kplan"]


@pytest.mark.slow
@needs_netns
@needs_ansible
def test_three_namespace_hosts_storm_serve_through_ansible_and_merge(tmp_path: Path, wheel: Path) -> None:
    sources = 2
    with Topology(clients=3, sources_per_client=sources) as topo, \
            ServerProcess(["--host", topo.server.address, "--port", "0"], prefix=iplib.exec_argv(topo.server.netns, []),
                          env=dict(os.environ, PYTHONPATH=str(ROOT))) as server:
        plan = ",".join(client_source_spec(i, sources) for i in range(1, 4))  # the fleet's address plan
        play = export("--connections", "3000", "--target", f"{topo.server.address}:{server.port}",
                      "--group", "load_hosts", "--message-rate", "2", "--duration", "2",
                      "--start-delay", "6", "--source-ips", plan)
        inv = namespace_inventory(topo, tmp_path, group="load_hosts", package=str(wheel), merge_cmd=MERGE_CMD)
        # A controller 5 h west of UTC: the start time must still be the Unix time.
        done = run_playbook(play, inv, tmp_path, timeout=240, env={"TZ": "EST5"})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    results = tmp_path / "results"
    parts = [json.loads((results / f"storm-load{i}.json").read_text()) for i in (1, 2, 3)]
    merged = json.loads((results / "merged.json").read_text())
    assert merged["verdict"] == "PASS", merged["problems"]
    assert [p["placement"]["share"] for p in parts] == ["1/3", "2/3", "3/3"]
    assert [p["connections"] for p in parts] == [1000, 1000, 1000]
    assert {p["placement"]["start_at"] for p in parts} == {parts[0]["placement"]["start_at"]}  # one start
    m = merged["storm"]
    for field in ("connections", "established", "held", "messages_sent", "messages_received", "bytes_sent",
                  "bytes_received", "mismatches", "unanswered", "source_addresses"):
        assert m[field] == sum(p[field] for p in parts), field
    assert m["established"] == 3000 and m["failures"] == {}
    assert m["message_latency_us"]["corrected"]["count"] == sum(p["message_latency_us"]["corrected"]["count"] for p in parts)
    assert m["messages_received"] >= 3000 * 2 * 2 * 0.9  # 2 msg/s for 2 s on every connection, at least 90%
    assert merged["window"]["seconds"] > 0.8 * merged["window"]["shortest_hold"]


@pytest.mark.slow
@needs_netns
@needs_ansible
def test_a_failing_check_stops_the_play_before_any_storm(tmp_path: Path, wheel: Path) -> None:
    with Topology(clients=3) as topo:
        # 30 million connections: each host's share (10M) cannot fit its memory: check FAILs.
        play = export("--connections", "30000000", "--target", f"{topo.server.address}:9", "--group", "load_hosts")
        inv = namespace_inventory(topo, tmp_path, group="load_hosts", package=str(wheel), merge_cmd=MERGE_CMD)
        done = run_playbook(play, inv, tmp_path, timeout=240)
    assert done.returncode != 0
    assert "Check this host for its share" in done.stdout and "NOT READY" in done.stdout
    assert "Start this host's share of the storm" not in done.stdout
    assert not (tmp_path / "results").exists()
