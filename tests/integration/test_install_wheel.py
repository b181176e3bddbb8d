"""A built wheel, installed with `pip install --target` and `--prefix`, finds the 5 shipped
profiles (package data read with importlib.resources), and `check` recommends one from them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHIPPED = {"base", "c10k", "c100k", "c1m", "low-latency"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel from a copy of the sources (so no build/ lands in the checkout), with the
    installed setuptools (>= 77, the pyproject's floor), offline."""
    pytest.importorskip("setuptools", reason="building the wheel needs setuptools")
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "c10kplan", src / "c10kplan",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = work / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(out), str(src)],
                   check=True, capture_output=True, timeout=120)
    (whl,) = out.glob("c10kplan-*.whl")
    return whl


def _install(wheel: Path, *args: str) -> None:
    # --ignore-installed: the test environment already has c10kplan (editable); without it pip
    # says "already satisfied" and installs nothing under --prefix.
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-index", "--ignore-installed", *args, str(wheel)], check=True, capture_output=True, timeout=120)


def _run(pythonpath: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "C10KPLAN_PROFILES_DIR"}
    env["PYTHONPATH"] = str(pythonpath)
    # Run from an empty folder so the checkout on sys.path cannot supply the profiles.
    return subprocess.run([sys.executable, "-m", "c10kplan", *argv], env=env, cwd=pythonpath,
                          capture_output=True, text=True, timeout=60)


def _listed(result: subprocess.CompletedProcess[str], site: Path) -> set[str]:
    assert result.returncode == 0, result.stderr
    docs = json.loads(result.stdout)["profiles"]
    for doc in docs:  # each profile comes from the installed copy, not the checkout
        assert Path(doc["path"]).resolve().is_relative_to(site.resolve()), doc["path"]
    return {doc["name"] for doc in docs}


def test_target_install_lists_five_profiles(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "t"
    _install(wheel, "--target", str(target))
    assert not (target / "share").exists()  # no data-files any more
    assert _listed(_run(target, "profiles", "list", "--json"), target) == SHIPPED
    shown = _run(target, "profiles", "show", "c1m", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["chain"] == ["base", "c10k",
                                                                         "c100k", "c1m"]
    checked = _run(target, "check", "--connections", "100000", "--json")
    assert checked.returncode in (0, 1), checked.stderr  # 1: this host is not ready
    assert json.loads(checked.stdout)["profile"] == "c100k"


def test_prefix_install_lists_five_profiles(wheel: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "p"
    _install(wheel, "--prefix", str(prefix))
    site = Path(sysconfig.get_path("purelib", vars={"base": str(prefix)}))
    assert (site / "c10kplan" / "profiles" / "data" / "c1m.toml").is_file()
    assert _listed(_run(site, "profiles", "list", "--json"), site) == SHIPPED
