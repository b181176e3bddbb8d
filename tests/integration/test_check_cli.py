"""`c10kplan check / plan / snapshot` end to end: exit codes, table, JSON shape, bad input.

Most cases call `c10kplan.cli.app.main` in-process (the same error mapping, no interpreter
start-up); the `subprocess` cases run `python -m c10kplan` for real, once against the live host.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys

import pytest

from c10kplan.cli.app import main
from c10kplan.host.inspect import HostFacts
from c10kplan.planner import CheckReport, Plan


def _facts(text: str) -> HostFacts:
    """A snapshot document as HostFacts (the document's schema_version is not a fact)."""
    doc = json.loads(text)
    assert doc.pop("schema_version") == 1
    return HostFacts.model_validate(doc)


def run(capsys, *argv):
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def tree(fixtures_dir):
    return lambda name: str(fixtures_dir / "proc" / name)


def test_check_ready_prints_one_table_and_exits_0(capsys, tree):
    code, out, err = run(capsys, "check", "--connections", "100000", "--root", tree("live"))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("c10kplan check: 100,000 connections, role server")
    assert lines[1].split()[:5] == ["finding", "status", "host", "has", "target"]
    row = next(line for line in lines if line.startswith("fds.nofile"))
    assert "WARN" in row and "run 6 workers" in row
    assert "READY: 0 FAIL" in out
    assert "note: link speed: unknown" in err  # notes go to stderr, stdout stays the report


def test_check_not_ready_exits_1_with_one_error_line(capsys, tree):
    code, out, err = run(capsys, "check", "-n", "10000", "--root", tree("conntrack_small"))
    assert code == 1
    assert "conntrack.max" in out and "NOT READY: 1 FAIL" in out
    assert "c10kplan: error: host not ready for 10,000 connections: FAIL conntrack.max" in err
    assert "Traceback" not in err


def test_check_json_is_one_check_report(capsys, tree):
    code, out, _ = run(capsys, "check", "-n", "10000", "--root", tree("course_notes"), "--json",
                       "--bandwidth-per-conn", "1000")  # the notes' 1 KB/s per connection
    assert code == 1  # the notes' fs.file-max = 10000 is too small for 10,000 sockets + reserve
    doc = json.loads(out)
    assert set(doc) == {"schema_version", "facts", "plan", "profile", "capacity"}  # capacity: issue 10
    assert doc["profile"] == "c10k"
    report = CheckReport.model_validate(doc)
    assert report.plan.memory.send_buffers_bytes == 163_840_000
    assert report.plan.memory.recv_buffers_bytes == 873_800_000
    assert report.plan.bandwidth.required_bits_s == 80_000_000
    f = next(f for f in doc["plan"]["findings"] if f["id"] == "fds.file_max")
    assert set(f) == {"id", "status", "observed", "required", "fix", "formula"}
    assert f["status"] == "FAIL" and f["fix"] == "sysctl -w fs.file-max=16384"


def test_plan_prints_the_working(capsys, tree):
    code, out, _ = run(capsys, "plan", "-n", "100000", "--role", "both", "--root", tree("live"))
    assert code == 0
    assert "sockets x tcp_wmem[default]" in out and "tcp_wmem_default=16,384" in out
    assert "processes: 6 server, 6 client; source addresses per destination: 15 (at least 4)" in out
    code, out, _ = run(capsys, "plan", "-n", "100000", "--root", tree("live"), "--json")
    assert Plan.model_validate_json(out).server_processes == 6


def test_snapshot_then_host_facts_plans_the_same(capsys, tree, tmp_path):
    code, out, _ = run(capsys, "snapshot", "--root", tree("hard1024"))
    assert code == 0
    snap = tmp_path / "host.json"
    snap.write_text(out)
    assert _facts(out).nofile_hard == 1024
    _, direct, _ = run(capsys, "check", "-n", "5000", "--root", tree("hard1024"), "--json")
    _, remote, _ = run(capsys, "check", "-n", "5000", "--host-facts", str(snap), "--json")
    assert json.loads(direct)["plan"] == json.loads(remote)["plan"]
    assert json.loads(remote)["plan"]["server_processes"] == 6  # 5000 / (1024 - 64)
    _, table, _ = run(capsys, "check", "-n", "5000", "--host-facts", str(snap))
    assert f"host {snap} (snapshot of {tree('hard1024')};" in table.splitlines()[0]  # the file, not "/"
    code, again, _ = run(capsys, "snapshot", "--root", tree("hard1024"), "--json")  # --json: a no-op
    assert code == 0 and _facts(again) == _facts(out)


def test_calibration_file_changes_the_kernel_cost(capsys, tree, tmp_path):
    cal = tmp_path / "cal.json"
    cal.write_text(json.dumps({"kernel_bytes_per_socket": 6000, "connections": 1000,
                               "measured_at": "2026-11-27T08:00:00Z", "method": "test"}))
    _, out, _ = run(capsys, "plan", "-n", "1000", "--root", tree("live"), "--calibration", str(cal), "--json")
    assert json.loads(out)["memory"]["kernel_idle_bytes"] == 6_000_000


@pytest.mark.parametrize("argv, message", [
    (["check", "-n", "0"], "--connections: Input should be greater than or equal to 1"),
    (["check", "-n", "-3"], "--connections: '-3' is not a whole number in ASCII digits 0-9"),
    (["check", "-n", "abc"], "--connections: 'abc' is not a whole number"),
    (["check", "-n", "100000001"], "--connections: Input should be less than or equal to 100000000"),
    (["check", "-n", "10", "--role", "proxy"], "--role: Input should be 'server', 'client' or 'both'"),
    (["check", "-n", "10", "--message-size", "big"], "--message-size: 'big' is not a whole number"),
    (["check", "-n", "10", "--root", "/no/such/root"], "--root /no/such/root: no such directory"),
    (["snapshot", "--pid", "abc"], "--pid abc: not a process id"),
    (["snapshot", "--pid", "0"], "--pid 0: no such process"),
    (["plan", "-n", "10", "--calibration", "/no/such.json"], "--calibration /no/such.json: No such file"),
    (["check", "--workload", "mine"], "--workload: Input should be 'bundled' or 'custom'"),
    (["check", "-n", "10", "--app-buffer", "-1"], "--app-buffer: '-1' is not a whole number"),
    (["plan", "--message-rate", "nan"], "--message-rate: 'nan' is not a plain decimal number"),
    (["check", "--connect-rate", "inf"], "--connect-rate: 'inf' is not a plain decimal number"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("c10kplan: error: ")
    assert message in err and len(err.strip().splitlines()) == 1
    assert out == ""


def test_malformed_host_facts_file_exit_2(capsys, tmp_path):
    bad = tmp_path / "facts.json"
    bad.write_text('{"somaxconn": "wide"}')
    code, out, err = run(capsys, "check", "-n", "10", "--host-facts", str(bad))
    assert code == 2 and "--host-facts" in err and "somaxconn" in err and out == ""


def _python_m(*argv, **kw):
    return subprocess.run([sys.executable, "-m", "c10kplan", *argv], capture_output=True, text=True,
                          timeout=60, **kw)


def test_live_host_end_to_end():
    """The real /proc of this machine, through a real interpreter start."""
    env = {k: v for k, v in os.environ.items() if k != "C10KPLAN_ROOT"}
    proc = _python_m("check", "--connections", "100000", "--json", env=env)
    assert proc.returncode in (0, 1), proc.stderr
    report = CheckReport.model_validate_json(proc.stdout)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert report.facts.nofile_hard == hard and report.facts.nofile_soft == soft
    assert report.facts.kernel_release == os.uname().release
    assert report.facts.cpu_count == os.cpu_count()
    assert report.plan.ready == (proc.returncode == 0)
    if report.facts.can_raise_hard_limit is False:
        assert report.plan.server_processes == -(-100_000 // (hard - 64))
    bad = _python_m("check", "--connections", "-1")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("c10kplan: error: ") and len(bad.stderr.splitlines()) == 1


def test_pid_reads_a_running_process_limits():
    """--pid checks another process's limits (here: a child started with nofile 512/4096)."""

    def lower():
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, 4096))

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], preexec_fn=lower)
    try:
        proc = _python_m("snapshot", "--pid", str(child.pid))
        assert proc.returncode == 0, proc.stderr
        facts = _facts(proc.stdout)
        assert (facts.pid, facts.nofile_soft, facts.nofile_hard) == (child.pid, 512, 4096)
    finally:
        child.kill()
        child.wait()


def test_root_from_environment(tree):
    env = {**os.environ, "C10KPLAN_ROOT": tree("hard1024")}
    proc = _python_m("snapshot", env=env)
    assert proc.returncode == 0 and _facts(proc.stdout).nofile_hard == 1024


def test_cli_defaults_are_the_target_defaults():
    """The command's defaults are text (validated by Target); they must not drift from it."""
    import inspect

    from c10kplan.cli.check import check
    from c10kplan.planner import Target

    params = inspect.signature(check).parameters
    # fresh_netns is verify's (a fresh namespace it made itself), not a check option.
    for name in Target.model_fields:
        if name not in ("connections", "fresh_netns"):
            given = Target.model_validate({"connections": 1, name: params[name].default})
            assert given == Target(connections=1), name


@pytest.mark.parametrize(
    ("connections", "role", "expected"),
    [("500", "server", "base"), ("10000", "both", "c10k"), ("10001", "client", "c100k"),
     ("1000000", "server", "c1m")],
)
def test_check_names_the_smallest_shipped_profile_that_fits(capsys, tree, connections, role, expected):
    _, out, _ = run(capsys, "check", "-n", connections, "--role", role, "--root", tree("live"))
    assert f"profile: {expected} is sized for this target (c10kplan apply --profile {expected}" in out


def test_check_says_when_no_shipped_profile_fits(capsys, tree):
    _, out, _ = run(capsys, "check", "-n", "2000000", "--root", tree("live"), "--json")
    assert json.loads(out)["profile"] is None
    _, out, _ = run(capsys, "check", "-n", "2000000", "--root", tree("live"))
    assert "profile: no shipped profile is sized for 2,000,000 connections" in out


def test_without_connections_check_prints_the_capacity_alone(capsys, tree):
    code, out, err = run(capsys, "check", "--role", "both", "--root", tree("conntrack_idle"))
    assert code == 0
    first = out.splitlines()[0]
    # conntrack_small's facts: fs.file-max 65536 binds; conntrack (max 4096) tracks nothing there.
    assert first.startswith("capacity: ") and "(role both, idle, bundled workload); fs.file-max binds first" in first
    assert "finding" not in out and "READY" not in out
    rows = {line.split()[0]: line for line in out.splitlines()[3:] if line.strip()}
    assert "nothing tracked" in rows["conntrack.max"] and "sysctl -w fs.file-max=" in rows["fds.file_max"]


def test_capacity_json_and_verdict_agree(capsys, tree):
    code, out, _ = run(capsys, "check", "--role", "both", "--root", tree("conntrack_idle"), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["plan"] is None
    cap = doc["capacity"]
    assert cap["binding"] == "fds.file_max" and isinstance(cap["connections"], int)
    assert all({"id", "limit", "connections"} <= set(r) for r in cap["resources"])
    n = cap["connections"]
    ok, _, _ = run(capsys, "check", "-n", str(n), "--role", "both", "--root", tree("conntrack_idle"))
    code, _, err = run(capsys, "check", "-n", str(n + 1), "--role", "both", "--root", tree("conntrack_idle"))
    assert ok == 0 and code == 1 and err.strip().endswith("FAIL fds.file_max")
    code, out, _ = run(capsys, "plan", "-n", "1000", "--role", "both", "--root", tree("conntrack_idle"), "--json")
    assert code == 0 and json.loads(out)["capacity"] == cap and "fds" in json.loads(out)
    code, out, _ = run(capsys, "plan", "--role", "both", "--root", tree("conntrack_idle"), "--json")
    doc = json.loads(out)
    assert code == 0 and doc.pop("schema_version") and doc == {"capacity": cap}


def test_check_with_connections_keeps_its_verdict_and_adds_the_capacity(capsys, tree):
    code, out, err = run(capsys, "check", "-n", "10000", "--root", tree("conntrack_rules"))
    assert code == 1 and "FAIL conntrack.max" in err  # a ct state rule: the 4096 entries bind
    assert "NOT READY" in out and "capacity: 4,096 connections before a FAIL (role server, idle, custom workload);"\
        " nf_conntrack_max binds first" in out
    code, out, err = run(capsys, "check", "-n", "10000", "--root", tree("conntrack_idle"))
    assert code == 0 and "nf_conntrack is loaded but nothing is tracked" in err


# One `unshare -n` child per case: loopback up, optionally one nft rule that uses conntrack,
# 50 live loopback connections held, then `check` run for real inside that namespace.
CONNTRACK_SCENARIO = r"""
import json, socket, subprocess, sys
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
if sys.argv[1] == "rule":
    subprocess.run(["nft", "-f", "-"], check=True, text=True, input=(
        "table inet c10kplan_test {\n chain out {\n  type filter hook output priority 0; policy accept;\n"
        "  ct state established,related accept\n }\n}\n"))
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(64)
held = [socket.create_connection(srv.getsockname(), timeout=5) for _ in range(50)]
held += [srv.accept()[0] for _ in range(50)]
done = subprocess.run([sys.executable, "-m", "c10kplan", "check", "-n", sys.argv[2], "--json"],
                      capture_output=True, text=True, timeout=60)
count = open("/proc/sys/net/netfilter/nf_conntrack_count").read().strip()
print(json.dumps({"code": done.returncode, "out": done.stdout, "err": done.stderr, "count": int(count)}))
"""
CONNTRACK_MAX = "/proc/sys/net/netfilter/nf_conntrack_max"


@pytest.mark.parametrize("rule", [False, True])
def test_conntrack_counts_only_once_a_rule_uses_it(rule):
    """The kernel fact behind conntrack.max (Linux >= 4.10): in a fresh namespace nothing is
    tracked until a rule needs conntrack; then every flow is. Real nft, real connections."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs root, unshare(1) and ip(8) to make a network namespace")
    if not os.path.exists(CONNTRACK_MAX):
        pytest.skip("nf_conntrack is not loaded on this host: conntrack.max is not planned at all")
    if rule and shutil.which("nft") is None:
        pytest.skip("needs nft(8) to add a rule (.ci/run installs nftables)")
    over = int(open(CONNTRACK_MAX).read()) + 1  # one flow more than the table holds
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.run(["unshare", "-n", sys.executable, "-c", CONNTRACK_SCENARIO,
                           "rule" if rule else "none", str(over)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    report = CheckReport.model_validate_json(result["out"])
    ct = next(f for f in report.plan.findings if f.id == "conntrack.max")
    if rule:
        assert result["count"] >= 50  # one entry per flow, both directions in one
        assert report.facts.nf_conntrack_count >= 50
        assert ct.status == "FAIL" and result["code"] == 1
        assert report.capacity.binding == "conntrack.max" and report.capacity.connections == over - 1
    else:
        assert result["count"] == 0 and report.facts.nf_conntrack_count == 0
        assert ct.status == "PASS" and result["code"] == 0
        assert any(n.startswith("nf_conntrack is loaded but nothing is tracked") for n in report.plan.notes)
        if shutil.which("nft"):
            assert report.facts.conntrack_rules is False  # nft read: an empty ruleset
