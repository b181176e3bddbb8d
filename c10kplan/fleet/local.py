"""A fleet on one machine: the client namespaces of a netns Topology as the load hosts of the
ansible-storm playbook, each an Ansible host with `ansible_connection=local` whose commands are
prefixed with `ip netns exec NS` (the playbook's `c10kplan_exec_prefix`).

Used by the integration test and scripts/bench_fleet.py. c10kplan is installed on every "host"
from a wheel of a local checkout, with no package index: the wheel alone (`--no-deps`) into a
virtualenv that sees the running interpreter's packages (typer, pydantic, hdrhistogram).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from c10kplan.errors import EnvironmentProblem
from c10kplan.netns.topology import Topology

# What a wheel build of the checkout needs; the rest (tests, the git history) stays behind.
_NOT_IN_WHEEL = (".git", "__pycache__", "tests", "scripts", "docs", "*.egg-info", "build", ".pytest_cache")


def build_wheel(checkout: Path, workdir: Path, timeout: float = 300) -> Path:
    """A wheel of `checkout`, built from a copy under `workdir` (pip builds in the source tree,
    which would leave build/ and *.egg-info in the checkout), offline."""
    src = workdir / "src"
    shutil.copytree(checkout, src, ignore=shutil.ignore_patterns(*_NOT_IN_WHEEL))
    out = workdir / "wheels"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(out), str(src)], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise EnvironmentProblem(f"pip wheel failed: {done.stderr.strip()[-500:]}")
    return next(out.glob("c10kplan-*.whl"))


def namespace_inventory(topo: Topology, workdir: Path, *, group: str, package: str,
                        merge_cmd: list[str]) -> dict:
    """An inventory (JSON form) with one host per client namespace, `load1` .. `loadK`, in order."""
    hosts = {f"load{i}": {"c10kplan_exec_prefix": f"ip netns exec {c.netns}",
                          "c10kplan_venv": str(workdir / f"venv-load{i}")}
             for i, c in enumerate(topo.clients, 1)}
    return {"all": {
        "vars": {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "c10kplan_package": package,
            "c10kplan_venv_site_packages": True,
            "c10kplan_pip_extra_args": "--no-index --no-deps",
            "c10kplan_remote_dir": str(workdir / "remote"),
            "c10kplan_results_dir": str(workdir / "results"),
            "c10kplan_merge_cmd": merge_cmd,
        },
        "children": {group: {"hosts": hosts}},
    }}


def run_playbook(playbook: str, inventory: dict, workdir: Path, *, timeout: float, forks: int = 5,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """ansible-playbook on `playbook` with `inventory`, all of Ansible's state under `workdir`;
    `env` adds variables. PYTHONPATH is dropped: the hosts run the c10kplan they installed."""
    ansible = shutil.which("ansible-playbook")
    if ansible is None:
        raise EnvironmentProblem("ansible-playbook not found (pip install ansible-core)")
    (workdir / "storm.yml").write_text(playbook)
    (workdir / "inventory.json").write_text(json.dumps(inventory))
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(extra)
    env.update(ANSIBLE_HOME=str(workdir / "ansible-home"), ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-tmp"),
               ANSIBLE_REMOTE_TEMP=str(workdir / "ansible-tmp"), ANSIBLE_ASYNC_DIR=str(workdir / "async"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_RETRY_FILES_ENABLED="0")
    return subprocess.run([ansible, "-f", str(forks), "-i", str(workdir / "inventory.json"), str(workdir / "storm.yml")],
                          capture_output=True, text=True, timeout=timeout, cwd=workdir, env=env)
