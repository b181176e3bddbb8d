"""Loading, merging and validating profiles; every bad-input case through the CLI (exit 2,
one line naming file, key and reason, target tree byte-for-byte unchanged)."""

from __future__ import annotations

from pathlib import Path

import pytest

from c10kplan.cli.app import main
from c10kplan.errors import ProfileError
from c10kplan.profiles import suggest_profile
from c10kplan.profiles.merge import resolve, shipped_profiles
from c10kplan.profiles.model import DEFAULT_NR_OPEN
from c10kplan.profiles.schema import SUPPORTED, key_problem, parse_value
from tests.unit.test_profiles_apply import make_tree, snapshot


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_shipped_profiles_load_and_are_sized() -> None:
    profs = {p.name: p for p in shipped_profiles()}
    assert set(profs) >= {"base", "c10k", "c100k", "c1m", "low-latency"}
    assert [profs[n].target.connections for n in ("base", "c10k", "c100k", "c1m")] == \
        [1000, 10000, 100000, 1000000]
    assert profs["low-latency"].target is None
    for p in profs.values():  # every shipped value is in the supported-key table
        assert all(s.known for s in p.sysctl.values())
        hard = p.limits.nofile_hard
        nr = p.sysctl.get("fs.nr_open")
        assert hard <= (nr.ints[0] if nr else DEFAULT_NR_OPEN)


def test_merge_records_the_source_of_each_value() -> None:
    p = resolve("c1m")
    assert p.chain == ("base", "c10k", "c100k", "c1m")
    assert Path(p.sysctl["net.ipv4.tcp_tw_reuse"].source).name == "base.toml"
    assert Path(p.sysctl["net.core.somaxconn"].source).name == "c100k.toml"
    assert Path(p.sysctl["fs.nr_open"].source).name == "c1m.toml"
    assert p.sysctl["net.core.somaxconn"].display == ">32768"


def test_suggest_profile_picks_the_smallest_that_fits() -> None:
    assert suggest_profile(500, "server") == "base"
    assert suggest_profile(10000, "server") == "c10k"
    assert suggest_profile(10001, "client") == "c100k"
    assert suggest_profile(1000000, "server") == "c1m"
    assert suggest_profile(1000001, "server") is None
    assert suggest_profile(10, "toaster") is None


def test_nested_and_quoted_keys_are_the_same(tmp_path: Path) -> None:
    a = tmp_path / "a.toml"
    a.write_text('[sysctl]\nnet.core.somaxconn = 1024\n"net.ipv4.tcp_rmem" = [4096, 8192, 16384]\n')
    p = resolve(str(a))
    assert p.sysctl["net.core.somaxconn"].ints == (1024,)
    assert p.sysctl["net.ipv4.tcp_rmem"].text == "4096 8192 16384"
    assert p.name == "a"


def test_user_profile_extends_a_shipped_one(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text('extends = "c10k"\n[sysctl]\n"net.ipv4.tcp_fin_timeout" = 30\n'
                 '[limits]\nnofile_soft = 32768\n')
    p = resolve(str(f))
    assert p.chain == ("base", "c10k", "mine")
    assert p.limits.nofile_soft == 32768 and p.limits.nofile_hard == 65536
    assert p.sysctl["net.ipv4.ip_local_port_range"].text == "10240 65535"


@pytest.mark.parametrize("key", ["net/core/somaxconn", "net..core", "net.core.", ".net", "a b"])
def test_key_problems(key: str) -> None:
    assert key_problem(key)


def test_parse_value_forms() -> None:
    v = parse_value("net.ipv4.tcp_mem", ">1 2 3", "f", allow_unknown=False)
    assert v.raise_only and v.ints == (1, 2, 3)
    assert parse_value("net.core.somaxconn", 5, "f", allow_unknown=False).text == "5"
    with pytest.raises(ProfileError, match="not meaningful"):
        parse_value("net.ipv4.ip_local_port_range", ">1 2", "f", allow_unknown=False)
    with pytest.raises(ProfileError, match="wrong type bool"):
        parse_value("net.core.somaxconn", True, "f", allow_unknown=False)
    u = parse_value("net.ipv4.tcp_congestion_control", "bbr", "f", allow_unknown=True)
    assert u.ints is None and not u.known


def test_every_supported_key_has_sane_bounds() -> None:
    for spec in SUPPORTED.values():
        assert spec.lo <= spec.hi and spec.count in (1, 2, 3)


# --- bad input through the CLI: exit 2, one line, naming file + key + reason, nothing changed


BAD = {
    "unknown key": ('[sysctl]\n"net.core.somaxconnn" = 1\n', ["somaxconnn", "unknown key"]),
    "slash": ('[sysctl]\n"net/core/somaxconn" = 1\n', ["net/core/somaxconn", "'/'"]),
    "dotdot": ('[sysctl]\n"net..core" = 1\n', ["net..core", "'..'"]),
    "out of range": ('[sysctl]\n"net.ipv4.ip_local_port_range" = "1024 70000"\n',
                     ["ip_local_port_range", "out of range 1..65535"]),
    "port order": ('[sysctl]\n"net.ipv4.ip_local_port_range" = "6000 5000"\n',
                   ["ip_local_port_range", "low < high"]),
    "rmem order": ('[sysctl]\n"net.ipv4.tcp_rmem" = "4096 1 8192"\n',
                   ["tcp_rmem", "min <= default <= max"]),
    "somaxconn range": ('[sysctl]\n"net.core.somaxconn" = 2147483648\n',
                        ["somaxconn", "out of range"]),
    "wrong type": ('[sysctl]\n"net.core.somaxconn" = "lots"\n', ["somaxconn", "wrong type"]),
    "float": ('[sysctl]\n"net.core.somaxconn" = 1.5\n', ["somaxconn", "wrong type float"]),
    "wrong count": ('[sysctl]\n"net.ipv4.tcp_wmem" = 4096\n', ["tcp_wmem", "expected 3"]),
    "nofile over nr_open": ('[limits]\nnofile_hard = 2000000\n', ["nofile_hard", "fs.nr_open"]),
    "soft over hard": ('[limits]\nnofile_soft = 10\nnofile_hard = 5\n', ["nofile_soft", "exceeds"]),
    "not toml": ('[sysctl\nsomaxconn = = 1\n', ["not a valid TOML file"]),
    "missing parent": ('extends = "no-such-parent"\n', ["extends", "missing parent",
                                                        "no-such-parent"]),
    "unknown top level": ('sysctls = {}\n', ["sysctls", "unknown top-level"]),
    "bad target": ('[target]\nconnections = 0\n', ["target.connections"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("command", ["apply", "show"])
def test_bad_profile_exit_2_tree_unchanged(case: str, command: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    text, needles = BAD[case]
    prof = tmp_path / "bad.toml"
    prof.write_text(text)
    root = make_tree(tmp_path / "root")
    before = snapshot(root)
    if command == "apply":
        argv = ["apply", "--profile", str(prof), "--yes", "--persist", "--root", str(root),
                "--state-dir", str(tmp_path / "state")]
    else:
        argv = ["profiles", "show", str(prof)]
    code, out, err = run(argv, capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("c10kplan: error: ")
    assert "bad.toml" in err
    for needle in needles:
        assert needle in err, (needle, err)
    assert snapshot(root) == before
    assert not (tmp_path / "state").exists()


def test_cycle_in_extends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.toml").write_text('extends = "b"\n')
    (tmp_path / "b.toml").write_text('extends = "c"\n')
    (tmp_path / "c.toml").write_text('extends = "a"\n')
    code, _, err = run(["profiles", "show", str(tmp_path / "a.toml")], capsys)
    assert code == 2
    assert "cycle in extends: a -> b -> c -> a" in err and "c.toml" in err


def test_unknown_name_suggests_closest(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["apply", "--profile", "c10", "--dry-run", "--root", "/nonexistent"],
                       capsys)
    assert code == 2
    assert "unknown profile 'c10'; did you mean c10k" in err


def test_unknown_key_allowed_but_missing_under_proc(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    prof = tmp_path / "u.toml"
    prof.write_text('allow_unknown = true\n[sysctl]\n"net.ipv4.tcp_imaginary" = 3\n')
    root = make_tree(tmp_path / "root")
    before = snapshot(root)
    code, _, err = run(["apply", "--profile", str(prof), "--yes", "--root", str(root),
                        "--state-dir", str(tmp_path / "s")], capsys)
    assert code == 2 and "tcp_imaginary" in err and "does not exist" in err
    assert snapshot(root) == before


def test_refuses_without_yes_when_not_a_tty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    root = make_tree(tmp_path / "root")
    before = snapshot(root)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    code, _, err = run(["apply", "--profile", "c10k", "--root", str(root),
                        "--state-dir", str(tmp_path / "s")], capsys)
    assert code == 2 and "--yes" in err
    assert snapshot(root) == before


def test_bad_keys_glob_and_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["export", "--profile", "c10k", "--format", "puppet"], capsys)
    assert code == 2 and "'puppet' is not one of" in err
    code, _, err = run(["apply", "--profile", "c10k", "--keys", ",", "--dry-run"], capsys)
    assert code == 2 and "--keys" in err


@pytest.mark.parametrize("answer", [False, True])
def test_tty_prompt_decides(answer: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    root = make_tree(tmp_path / "root")
    before = snapshot(root)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("typer.confirm", lambda *a, **k: answer)
    code, out, err = run(["apply", "--profile", "c10k", "--root", str(root),
                          "--state-dir", str(tmp_path / "s")], capsys)
    assert "dry run" in out  # the diff is shown before the question
    if answer:
        assert code == 0 and snapshot(root) != before
    else:
        assert code == 1 and "nothing was changed" in err and snapshot(root) == before


def test_profiles_dir_env_takes_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "c10k.toml").write_text('summary = "site override"\n[sysctl]\n'
                                        '"net.core.somaxconn" = 999\n')
    monkeypatch.setenv("C10KPLAN_PROFILES_DIR", str(tmp_path))
    p = resolve("c10k")
    assert p.summary == "site override" and p.sysctl["net.core.somaxconn"].ints == (999,)
    assert resolve("c1m").chain == ("base", "c10k", "c100k", "c1m")  # others still found


def test_root_without_proc_sys_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["apply", "--profile", "c10k", "--dry-run", "--root", str(tmp_path)], capsys)
    assert code == 2 and "no proc/sys" in err


def test_state_dir_env_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    root = make_tree(tmp_path / "root")
    monkeypatch.setenv("C10KPLAN_STATE_DIR", str(tmp_path / "envstate"))
    code, _, _ = run(["apply", "--profile", "base", "--yes", "--root", str(root)], capsys)
    assert code == 0 and (tmp_path / "envstate" / "backup.json").is_file()
    code, out, _ = run(["rollback"], capsys)
    assert code == 0 and "restored" in out


def test_flatten_keeps_file_order_and_bounds_the_depth():
    from c10kplan.profiles.load import MAX_KEY_DEPTH, flatten

    table = {"net": {"core": {"somaxconn": 1, "rmem_max": 2}, "ipv4": {"tcp_mem": 3}}, "fs": {"nr_open": 4}}
    assert list(flatten(table).items()) == [("net.core.somaxconn", 1), ("net.core.rmem_max", 2),
                                            ("net.ipv4.tcp_mem", 3), ("fs.nr_open", 4)]
    deep: dict = {"k": 1}
    for _ in range(MAX_KEY_DEPTH - 1):
        deep = {"a": deep}
    assert flatten(deep) == {".".join(["a"] * (MAX_KEY_DEPTH - 1) + ["k"]): 1}
    with pytest.raises(ValueError, match=f"nests at most {MAX_KEY_DEPTH} levels"):
        flatten({"a": deep})
