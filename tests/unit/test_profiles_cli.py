"""The CLI end to end on fake trees: apply / rollback / export / profiles list and show."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import pytest

from c10kplan.host.procfs import ProcFS
from c10kplan.profiles.apply import apply_profile, parse_patterns
from c10kplan.profiles.backup import StateStore
from c10kplan.profiles.export import FORMATS, export_profile
from c10kplan.profiles.merge import resolve
from c10kplan.profiles.persist import LIMITS_CONF, SYSCTL_CONF, SYSTEMD_DROPIN
from c10kplan.profiles.schema import SUPPORTED
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


def test_with_root_and_no_state_dir_the_backup_lives_inside_the_root(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """apply --root TREE keeps its backup in TREE/var/lib/c10kplan (never the host's /var/lib),
    and rollback --root TREE finds it there."""
    from c10kplan.profiles.backup import DEFAULT_STATE_DIR, STATE_DIR_ENV, default_state_dir

    monkeypatch.delenv(STATE_DIR_ENV, raising=False)
    root = make_tree(tmp_path / "root")
    assert default_state_dir(root) == root / "var/lib/c10kplan"
    assert default_state_dir() == DEFAULT_STATE_DIR == Path("/var/lib/c10kplan")
    assert default_state_dir("/") == DEFAULT_STATE_DIR
    before = snapshot(root)
    code, out, _ = run(["apply", "--profile", "c100k", "--yes", "--root", str(root), "--json"], capsys)
    assert code == 0
    state = root / "var/lib/c10kplan"
    assert json.loads(out)["state_dir"] == str(state) and (state / "backup.json").is_file()
    code, out, _ = run(["rollback", "--root", str(root), "--json"], capsys)
    assert code == 0 and json.loads(out)["restored"]
    after = {k: v for k, v in snapshot(root).items() if not k.startswith("var/lib/c10kplan/")}  # its lock
    assert after == before and not (state / "backup.json").exists()
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "env-state"))  # the variable still wins
    assert default_state_dir(root) == tmp_path / "env-state"


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
    names = {p["name"]: p for p in json.loads(out)["profiles"]}
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
    """The playbook's shape (ansible-playbook itself runs it: integration/test_export_consumers)."""
    yaml = pytest.importorskip("yaml", reason="PyYAML parses the playbook; a test extra")
    p = resolve("c1m")
    play = yaml.safe_load(export_profile(p, "ansible"))[0]
    assert play["become"] is True and play["name"][0].isupper()
    mods = [next(k for k in t if "." in k and k != "name") for t in play["tasks"]]
    assert all(m.startswith("ansible.builtin.") for m in mods)  # ansible-core suffices
    read = play["tasks"][0]
    assert read["check_mode"] is False and read["changed_when"] is False  # runs in --check
    assert all(t["name"][0].isupper() for t in play["tasks"])  # ansible-lint name[casing]
    dests = [t["ansible.builtin.copy"]["dest"] for t in play["tasks"] if "ansible.builtin.copy" in t]
    assert dests == ["/etc/sysctl.d/90-c10kplan.conf", "/etc/security/limits.d/90-c10kplan.conf"]
    items = {i["name"]: i for i in play["vars"]["c10kplan_sysctl"]}
    assert items["net.ipv4.tcp_rmem"]["value"] == "1024 4096 16777216"
    assert items["net.ipv4.tcp_mem"]["floor"] == [1572864, 2097152, 3145728]
    assert set(items) == set(p.sysctl)


def test_tuned_gt_only_on_single_numbers() -> None:
    """tuned's '>' compares int(value): on 'a b c' it writes the literal '>a b c' (EINVAL)."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.optionxform = str  # type: ignore[assignment,method-assign]
    for name in ("base", "c10k", "c100k", "c1m", "low-latency"):
        p = resolve(name)
        conf.read_string(export_profile(p, "tuned"))
        for key, value in conf["sysctl"].items():
            if value.startswith(">"):
                assert len(value.split()) == 1 and p.sysctl[key].raise_only, (name, key)
            else:
                assert value == p.sysctl[key].text
        conf.clear()
    assert conf is not None


def test_sysctl_d_export_on_the_host_matches_apply_persist(tmp_path: Path) -> None:
    """Same host, same profile: export's key = value lines are the file apply --persist writes,
    a raise-only key already higher on the host keeps the host's value."""
    root = make_tree(tmp_path / "root")
    (root / "proc/sys/net/core/somaxconn").write_text("65535\n")
    (root / "proc/sys/net/ipv4/tcp_mem").write_text("9999999\t100\t3145729\n")
    exported = export_profile(resolve("c1m"), "sysctl.d", procfs=ProcFS(root))
    apply_profile(resolve("c1m"), procfs=ProcFS(root), store=StateStore(tmp_path / "state"),
                  persist=True)
    persisted = (root / SYSCTL_CONF).read_text()

    def pairs(text: str) -> dict[str, str]:
        return dict(ln.split(" = ") for ln in text.splitlines() if ln and not ln.startswith("#"))

    assert pairs(exported) == pairs(persisted)
    assert pairs(exported)["net.core.somaxconn"] == "65535"
    assert pairs(exported)["net.ipv4.tcp_mem"] == "9999999 2097152 3145729"
    assert "this host's value 65535 is above the profile's floor 32768, kept" in exported


def test_portable_sysctl_d_writes_floors_and_warns() -> None:
    text = export_profile(resolve("c1m"), "sysctl.d")
    assert "net.core.somaxconn = 32768" in text and "LOWERS a higher host value" in text


def test_keys_netns_is_exactly_the_per_namespace_keys() -> None:
    p = resolve("c1m")
    netns = {s.key for s in p.selected(parse_patterns("netns"))}
    assert netns == {k for k in p.sysctl if SUPPORTED[k].scope == "netns"}
    host = {s.key for s in p.selected(parse_patterns("host"))}
    assert host | netns == set(p.sysctl) and not host & netns
    # 'net.*' is not the per-namespace set: it also takes host-wide keys.
    glob = {s.key for s in p.selected(parse_patterns("net.*"))}
    assert {"net.ipv4.tcp_mem", "net.core.rmem_max", "net.core.netdev_max_backlog"} <= glob - netns
    mixed = {s.key for s in p.selected(parse_patterns("netns,fs.nr_open"))}
    assert mixed == netns | {"fs.nr_open"}


def test_systemd_service_drop_in_and_bad_unit(capsys: pytest.CaptureFixture[str]) -> None:
    text = export_profile(resolve("c100k"), "systemd", unit="nginx.service")
    unit = configparser.ConfigParser()
    unit.read_string(text)
    assert unit["Service"]["LimitNOFILE"] == "262144:262144" and "Manager" not in unit
    assert "/etc/systemd/system/nginx.service.d/90-c10kplan.conf" in text
    for bad in ("nginx", "../x.service", "a b.service", ".service"):
        code, _, err = run(["export", "-p", "c10k", "-f", "systemd", "--unit", bad], capsys)
        assert code == 2 and err.startswith("c10kplan: error: --unit") and err.count("\n") == 1
    code, _, err = run(["export", "-p", "c10k", "-f", "tuned", "--unit", "x.service"], capsys)
    assert code == 2 and "--unit is for --format systemd" in err


def test_every_format_renders_every_shipped_profile_with_limits(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root")
    for name in ("base", "c10k", "c100k", "c1m"):
        for fmt in FORMATS:
            assert export_profile(resolve(name), fmt).strip()
            assert export_profile(resolve(name), fmt, procfs=ProcFS(root)).strip()


def test_export_cli(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["export", "--profile", "c10k", "--format", "tuned"], capsys)
    assert code == 0 and out.startswith("#") and "[sysctl]" in out
