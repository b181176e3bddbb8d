"""The ansible-storm playbook's shape: builtin modules only, async storms, the check that stops
the play, and the share arithmetic evaluated as Jinja must match `storm --share`."""

from __future__ import annotations

import jinja2
import pytest
import yaml

from c10kplan.cli.export_storm import export_storm
from c10kplan.errors import BadInput
from c10kplan.fleet.ansible_storm import StormPlan, storm_playbook
from c10kplan.storm.share import Share


def plays(**kw):
    return yaml.safe_load(storm_playbook(StormPlan(target="198.18.0.1:7000", connections=30000, **kw)))


def test_every_task_uses_ansible_builtin_modules() -> None:
    doc = plays(storm_options=("--message-rate", "1"))
    assert [p["hosts"] for p in doc] == ["{{ c10kplan_storm_group | default('storm') }}", "localhost",
                                         "{{ c10kplan_storm_group | default('storm') }}", "localhost"]
    for play in doc:
        for task in play["tasks"]:
            mods = [k for k in task if k.startswith("ansible.")]
            assert len(mods) == 1 and mods[0].startswith("ansible.builtin."), task


def test_prepare_installs_and_checks_and_the_storm_runs_async() -> None:
    prepare, _start, storm, merge = plays(version="0.9.1")
    assert prepare["any_errors_fatal"] is True and storm["any_errors_fatal"] is True
    pip, check = prepare["tasks"][0]["ansible.builtin.pip"], prepare["tasks"][1]["ansible.builtin.command"]
    assert "c10kplan==0.9.1" in prepare["vars"]["storm_package"] and pip["name"] == "{{ storm_package }}"
    assert "'check'" in check["argv"] and "'--role', 'client'" in check["argv"]
    assert "failed_when" not in prepare["tasks"][1]  # a FAIL (exit 1) fails the host, and the play
    run = storm["tasks"][0]
    assert run["poll"] == 0 and run["async"] > 30 + 10
    for word in ("'--share', storm_index ~ '/' ~ storm_count", "'--start-at'", "'--json'"):
        assert word in run["ansible.builtin.command"]["argv"]
    assert storm["tasks"][1]["ansible.builtin.async_status"]["jid"] == "{{ storm_job.ansible_job_id }}"
    assert "ansible.builtin.fetch" in storm["tasks"][3]
    assert "'merge', '--json'" in merge["tasks"][0]["ansible.builtin.command"]["argv"]


@pytest.mark.parametrize(("n", "k"), [(3000, 3), (10, 3), (7, 7), (100_001, 4)])
def test_share_connections_match_storm_share(n: int, k: int) -> None:
    expr = plays()[0]["vars"]["storm_share_connections"]
    env = jinja2.Environment()
    got = [int(env.from_string(expr).render(storm_connections=n, storm_count=str(k), storm_index=str(i)))
           for i in range(1, k + 1)]
    want = [e - s for s, e in (Share(i, k).range_of(n) for i in range(1, k + 1))]
    assert got == want and sum(got) == n


def test_group_and_addresses_are_quoted_for_jinja() -> None:
    doc = plays(group="load-hosts", source_ips="198.18.1.1-198.18.1.2")
    assert doc[0]["hosts"] == "{{ c10kplan_storm_group | default('load-hosts') }}"
    assert "default('198.18.1.1-198.18.1.2')" in doc[0]["vars"]["storm_source_ips"]


@pytest.mark.parametrize("args", [
    [], ["--connections", "10"], ["--connections", "0", "--target", "1.2.3.4:5"],
    ["--connections", "10", "--target", "nohost"], ["--connections", "10", "--target", "1.2.3.4:5", "--bogus"],
    ["--connections", "10", "--target", "1.2.3.4:5", "--group", "a b"],
    ["--connections", "10", "--target", "1.2.3.4:5", "--start-delay", "-1"],
    ["--connections", "10", "--target", "1.2.3.4:5", "--source-ips", "10.0.0.300"],
    ["--connections", "10", "--target", "1.2.3.4:5", "--protocol", "gopher"],
])
def test_bad_options_are_one_bad_input(args) -> None:
    with pytest.raises(Exception) as info:
        export_storm(args)
    assert isinstance(info.value, BadInput) or type(info.value).__name__ == "ValidationError"


def test_profile_or_keys_are_refused() -> None:
    with pytest.raises(BadInput, match="no --profile"):
        export_storm(["--connections", "10", "--target", "1.2.3.4:5"], profile="c10k")


@pytest.mark.parametrize("fmt", [["--format", "ansible-storm"], ["-f", "ansible-storm"], ["--format=ansible-storm"]])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_export_help_with_ansible_storm_lists_the_playbooks_own_options(fmt, flag, capsys) -> None:
    from tests.unit.test_profiles_load import run

    code, out, _ = run(["export", *fmt, flag], capsys)
    assert code == 0 and "Usage: c10kplan export --format ansible-storm" in out
    for option in ("--group", "--start-delay", "--version", "--duration", "--message-rate", "--source-ips"):
        assert option in out
    # every protocol the storm accepts is named (http and websocket too)
    assert "echo, rot13, discard, http or websocket." in " ".join(out.replace("│", " ").split())


def test_export_help_without_ansible_storm_is_exports_own_and_points_at_it(capsys) -> None:
    from tests.unit.test_profiles_load import run

    code, out, _ = run(["export", "--help"], capsys)
    assert code == 0 and "--portable" in out and "--start-delay" not in out
    assert "ansible-storm --help" in " ".join(out.replace("│", " ").split())
