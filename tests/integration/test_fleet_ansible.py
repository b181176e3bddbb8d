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

from c10kplan.netns import ip as iplib
from c10kplan.netns.topology import Topology, client_source_spec
from c10kplan.processes import stop_process

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


def build_wheel(tmp_path: Path) -> Path:
    """A wheel of this checkout, built from a copy (an in-tree build would leave build/ here)."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "__pycache__", "tests", "scripts", "docs",
                                                             "*.egg-info", "build", ".pytest_cache"))
    out = tmp_path / "wheels"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (wheel,) = out.glob("c10kplan-*.whl")
    return wheel


def start_server(netns: str, host: str) -> tuple[subprocess.Popen, int]:
    proc = iplib.popen_in(netns, [sys.executable, "-m", "c10kplan", "serve", "--host", host, "--port", "0",
                                  "--stats-interval", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    line = proc.stdout.readline()  # "listening HOST:PORT" (EOF if serve failed)
    assert line.startswith("listening "), line
    return proc, int(line.rsplit(":", 1)[1])


def inventory(topo: Topology, tmp_path: Path, wheel: Path) -> dict:
    hosts = {}
    for i, c in enumerate(topo.clients, 1):
        hosts[f"load{i}"] = {
            "c10kplan_exec_prefix": f"ip netns exec {c.netns}",
            "c10kplan_venv": str(tmp_path / f"venv-load{i}"),
        }
    return {"all": {
        "vars": {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "c10kplan_package": str(wheel),
            "c10kplan_venv_site_packages": True,  # the dependencies come from this interpreter
            "c10kplan_pip_extra_args": "--no-index --no-deps",
            "c10kplan_remote_dir": str(tmp_path / "remote"),
            "c10kplan_results_dir": str(tmp_path / "results"),
            "c10kplan_merge_cmd": ["env", f"PYTHONPATH={ROOT}", sys.executable, "-m", "c10kplan"],
        },
        "children": {"load_hosts": {"hosts": hosts}},
    }}


def run_play(tmp_path: Path, play: str, inv: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    (tmp_path / "storm.yml").write_text(play)
    (tmp_path / "inventory.json").write_text(json.dumps(inv))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the hosts run the installed wheel
    env.update(ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
               ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_ASYNC_DIR=str(tmp_path / "async"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_RETRY_FILES_ENABLED="0")
    return subprocess.run([ANSIBLE, "-i", str(tmp_path / "inventory.json"), str(tmp_path / "storm.yml")],
                          capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=env)


@pytest.mark.slow
@needs_netns
@needs_ansible
def test_three_namespace_hosts_storm_serve_through_ansible_and_merge(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    sources = 2
    with Topology(clients=3, sources_per_client=sources) as topo:
        server, port = start_server(topo.server.netns, topo.server.address)
        try:
            plan = ",".join(client_source_spec(i, sources) for i in range(1, 4))  # the fleet's address plan
            play = export("--connections", "3000", "--target", f"{topo.server.address}:{port}",
                          "--group", "load_hosts", "--message-rate", "2", "--duration", "2",
                          "--start-delay", "6", "--source-ips", plan)
            done = run_play(tmp_path, play, inventory(topo, tmp_path, wheel))
        finally:
            stop_process(server)
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
