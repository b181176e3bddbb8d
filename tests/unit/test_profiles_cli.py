"""The CLI end to end on fake trees: apply / rollback / export / profiles list and show."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import pytest

from c10kplan.profiles.export import FORMATS, export_profile
from c10kplan.profiles.merge import resolve
from c10kplan.profiles.persist import LIMITS_CONF, SYSCTL_CONF, SYSTEMD_DROPIN
from tests.unit.test_profiles_apply import make_tree, read, snapshot
from tests.unit.test_profiles_load import run


def test_apply_persist_json_then_rollback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_tree(tmp_path / "root")
    state = tmp_path / "state"
    before = snapshot(root)
    code, out, _ = run(["apply", "--profile", "c100k", "--yes", "--persist", "--root", str(root),
                        "--state-dir", str(state), "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["profile"] == "c100k" and not doc["dry_run"]
    assert "net.core.somaxconn" in doc["written"]
    assert doc["files"] == [SYSCTL_CONF, LIMITS_CONF, SYSTEMD_DROPIN]
    assert read(root, "net.ipv4.tcp_rmem") == "4096 16384 4194304"
    assert (root / SYSTEMD_DROPIN).is_file()
    code, out, _ = run(["rollback", "--state-dir", str(state), "--json"], capsys)
    assert code == 0 and json.loads(out)["restored"]
    assert snapshot(root) == before
    code, out, _ = run(["rollback", "--state-dir", str(state)], capsys)
    assert code == 0 and "nothing to roll back" in out


def test_dry_run_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_tree(tmp_path / "root")
    before = snapshot(root)
    code, out, _ = run(["apply", "--profile", "c1m", "--dry-run", "--keys", "net.*,fs.nr_open",
                        "--root", str(root), "--state-dir", str(tmp_path / "s")], capsys)
    assert code == 0
    assert "dry run, nothing changed" in out
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith(("net.", "fs."))}
    assert lines["net.core.somaxconn"].split()[1:4] == ["4096", "32768", "change"]
    assert "kept-higher" not in lines["fs.nr_open"] and "change" in lines["fs.nr_open"]
    assert "not selected by --keys" in lines["fs.file-max"]
    assert "would change" in out and "NOT applied" in out
    assert snapshot(root) == before and not (tmp_path / "s").exists()


def test_profiles_list_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["profiles", "list", "--json"], capsys)
    names = {p["name"]: p for p in json.loads(out)}
    assert names["c10k"]["target"]["connections"] == 10000
    code, out, _ = run(["profiles", "show", "c10k", "--json"], capsys)
    doc = json.loads(out)
    assert doc["chain"] == ["base", "c10k"]
    assert doc["sysctl"]["net.ipv4.tcp_tw_reuse"]["source"].endswith("base.toml")
    code, out, _ = run(["profiles", "show", "c10k"], capsys)
    assert code == 0 and "base.toml" in out and "c10k.toml" in out and ">8192" in out


def test_export_sysctl_d_matches_profile() -> None:
    p = resolve("c1m")
    text = export_profile(p, "sysctl.d")
    pairs = dict(ln.split(" = ") for ln in text.splitlines() if ln and not ln.startswith("#"))
    assert pairs == {k: s.text for k, s in p.sysctl.items()}


def test_export_keys_glob() -> None:
    text = export_profile(resolve("c1m"), "sysctl.d", ("fs.*",))
    keys = [ln.split(" = ")[0] for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert sorted(keys) == ["fs.epoll.max_user_watches", "fs.file-max", "fs.nr_open"]


def test_export_limits_and_systemd() -> None:
    p = resolve("c100k")
    assert "* soft nofile 262144\n* hard nofile 262144\n" in export_profile(p, "limits.d")
    unit = configparser.ConfigParser()
    unit.read_string(export_profile(p, "systemd"))
    assert unit["Manager"]["DefaultLimitNOFILE"] == "262144:262144"


def test_export_tuned_has_main_and_sysctl() -> None:
    p = resolve("c10k")
    conf = configparser.ConfigParser(interpolation=None)
    conf.optionxform = str  # type: ignore[assignment,method-assign]
    conf.read_string(export_profile(p, "tuned"))
    assert conf["main"]["summary"] == p.summary
    assert conf["sysctl"]["net.core.somaxconn"] == ">8192"
    assert conf["sysctl"]["net.ipv4.ip_local_port_range"] == "10240 65535"


def test_export_ansible_playbook() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML parses the playbook; not a dependency")
    p = resolve("c1m")
    play = yaml.safe_load(export_profile(p, "ansible"))[0]
    assert play["become"] is True
    mods = [next(k for k in t if "." in k and k != "name") for t in play["tasks"]]
    assert mods.count("ansible.posix.sysctl") == 2 and "community.general.pam_limits" in mods
    for t in play["tasks"]:
        if "ansible.posix.sysctl" in t:
            assert t["ansible.posix.sysctl"]["sysctl_file"] == "/etc/sysctl.d/90-c10kplan.conf"
            assert t["ansible.posix.sysctl"]["reload"] is True
    plain = {i["name"]: i["value"] for i in play["vars"]["c10kplan_sysctl"]}
    floors = {i["name"]: i["floor"] for i in play["vars"]["c10kplan_sysctl_raise_only"]}
    assert plain["net.ipv4.tcp_rmem"] == "1024 4096 16777216"
    assert floors["net.ipv4.tcp_mem"] == [1572864, 2097152, 3145728]
    assert set(plain) | set(floors) == set(p.sysctl)


def test_ansible_raise_only_expression_is_elementwise_max() -> None:
    """Render the playbook's Jinja value expression (Ansible adds the `zip` filter)."""
    yaml = pytest.importorskip("yaml", reason="PyYAML parses the playbook; not a dependency")
    jinja2 = pytest.importorskip("jinja2", reason="renders the expression; not a dependency")
    play = yaml.safe_load(export_profile(resolve("c1m"), "ansible"))[0]
    task = next(t for t in play["tasks"] if "raise-only" in t["name"].lower()
                and "ansible.posix.sysctl" in t)
    env = jinja2.Environment()
    env.filters["zip"] = lambda a, b: list(zip(a, b))
    expr = env.from_string(task["ansible.posix.sysctl"]["value"])
    item = {"item": {"floor": [1572864, 2097152, 3145728]}, "stdout": "9999999\t100\t3145729"}
    assert expr.render(item=item) == "9999999 2097152 3145729"


def test_every_format_renders_every_shipped_profile_with_limits() -> None:
    for name in ("base", "c10k", "c100k", "c1m"):
        for fmt in FORMATS:
            assert export_profile(resolve(name), fmt).strip()


def test_export_cli(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["export", "--profile", "c10k", "--format", "tuned"], capsys)
    assert code == 0 and out.startswith("#") and "[sysctl]" in out
