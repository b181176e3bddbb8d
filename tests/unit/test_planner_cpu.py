"""The CPU budget (finding cpu.messages): messages/s x CPU per message against the host's CPUs.

Expected figures are derived from the module's constants (the cost per message at a number of
connections: us_per_message), so re-measured constants keep the tests meaningful."""

from __future__ import annotations

import json
import math
import re

import pytest

from c10kplan.host.inspect import HostFacts
from c10kplan.planner import Calibration, CheckReport, Plan, Target, plan
from c10kplan.planner.calibration import load_calibration
from c10kplan.planner.cpu import CPU_HEADROOM, ECHO_COST_POINTS, cpus_for, us_per_message
from tests.integration.test_check_cli import run

# Up to 20,000 connections echo costs the first point's figures.
SERVER_US_PER_MESSAGE, CLIENT_US_PER_MESSAGE = us_per_message("echo", 10_000)
US = {"server": SERVER_US_PER_MESSAGE, "client": CLIENT_US_PER_MESSAGE,
      "both": SERVER_US_PER_MESSAGE + CLIENT_US_PER_MESSAGE}


def us(role: str, n: int) -> float:
    """us per echo message of the sides `role` runs, at n connections."""
    server, client = us_per_message("echo", n)
    return {"server": server, "client": client, "both": server + client}[role]
CAL = dict(kernel_bytes_per_socket=4096, connections=30_000, measured_at="2026-01-01T00:00:00Z",
           method="verify")


def cpu_finding(p):
    return next(f for f in p.findings if f.id == "cpu.messages")


def cpu_plan(cores: int | None, connections: int, rate: float = 1.0, role: str = "server",
             calibration: Calibration | None = None):
    return plan(HostFacts(cpu_count=cores), Target(connections=connections, role=role,
                                                   message_rate=rate), calibration)


def connections_at(share: float, cores: int, role: str) -> float:
    """Connections at 1 msg/s each that load `share` of `cores` CPUs (n x us(n) grows with n:
    bisection to a hundredth of a connection)."""
    lo, hi = 1.0, 1e9
    while hi - lo > 0.01:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid * us(role, math.floor(mid)) <= share * cores * 1e6 else (lo, mid)
    return lo


def test_the_cost_per_message_grows_with_the_connections_between_the_measured_points():
    (c0, s0, k0), (c1, s1, k1) = ECHO_COST_POINTS[:2]
    assert us_per_message("echo", 10) == us_per_message("echo", c0) == (s0, k0)  # below: the first
    assert us_per_message("echo", c1) == (s1, k1)
    mid = round(math.sqrt(c0 * c1))  # halfway in log(connections)
    assert us_per_message("echo", mid) == pytest.approx(((s0 + s1) / 2, (k0 + k1) / 2), abs=0.01)
    # past the last point: along the last segment, still growing
    (cl, sl, kl), (cz, sz, kz) = ECHO_COST_POINTS[-2:]
    assert us_per_message("echo", 2 * cz) == pytest.approx((2 * sz - sl, 2 * kz - kl), abs=0.01) if cz == 2 * cl \
        else us_per_message("echo", 2 * cz) > (sz, kz)
    costs = [sum(us_per_message("echo", n)) for n in (1_000, 20_000, 50_000, 100_000, 200_000, 1_000_000)]
    assert costs == sorted(costs) and costs[0] < costs[-1]
    http = us_per_message("http", 50_000)
    assert http[0] > us_per_message("echo", 50_000)[0] and http[1] > us_per_message("echo", 50_000)[1]


@pytest.mark.parametrize("cores", [2, None])
def test_idle_connections_pass_without_cpu(cores):
    p = cpu_plan(cores, 1_000_000, rate=0, role="both")
    f = cpu_finding(p)
    assert f.status == "PASS" and f.fix == ""
    assert f.required == "no message load (idle connections)"
    assert f.observed == ("2 CPUs" if cores else "CPU count: unknown")
    assert p.cpu.messages_per_s == 0 and p.cpu.required_cores == 0


@pytest.mark.parametrize("role", ["server", "client", "both"])
@pytest.mark.parametrize("cores", [1, 2, 8])
def test_pass_warn_fail_around_the_headroom_and_the_cores(role, cores):
    headroom = connections_at(CPU_HEADROOM, cores, role)
    full = connections_at(1.0, cores, role)
    for n, status in [(math.floor(headroom * 0.99), "PASS"), (math.ceil(headroom * 1.01), "WARN"),
                      (math.floor(full * 0.99), "WARN"), (math.ceil(full * 1.01), "FAIL")]:
        p = cpu_plan(cores, n, role=role)
        assert cpu_finding(p).status == status, (n, p.cpu.required_cores)
        assert p.ready == (status != "FAIL")


def test_exact_boundaries_are_inclusive():
    # 10 us per message on 1 CPU: 70,000 messages/s is exactly 70 %, 100,000 exactly 100 %.
    cal = Calibration(**CAL, server_cpu_us_per_message=10)
    assert [cpu_finding(cpu_plan(1, n, calibration=cal)).status
            for n in (70_000, 70_001, 100_000, 100_001)] == ["PASS", "WARN", "WARN", "FAIL"]


def test_role_picks_the_sides_that_run_here():
    for role in ("server", "client", "both"):
        b = cpu_plan(4, 10_000, rate=3, role=role).cpu
        assert b.messages_per_s == 30_000
        assert b.us_per_message == US[role]
        assert b.required_cores == pytest.approx(30_000 * US[role] / 1e6)
        assert (b.server_us_per_message, b.client_us_per_message) == (
            SERVER_US_PER_MESSAGE, CLIENT_US_PER_MESSAGE)
        assert b.cores == 4
        assert b.max_messages_per_s == pytest.approx(CPU_HEADROOM * 4 * 1e6 / US[role])


def test_unknown_cpu_count_warns_and_says_how_to_find_out():
    p = cpu_plan(None, 100_000, role="both")
    f = cpu_finding(p)
    assert f.status == "WARN" and f.observed == "CPU count: unknown"
    assert "`nproc`" in f.fix and f"{cpus_for(p.cpu.required_cores)} keep it under" in f.fix
    assert p.cpu.max_messages_per_s is None


def test_fail_fix_gives_figures_that_fit():
    """100,000 connections x 1 msg/s, server and storm on 2 CPUs: every option the fix names
    passes when planned again."""
    p = cpu_plan(2, 100_000, role="both")
    f = cpu_finding(p)
    required = 100_000 * us("both", 100_000) / 1e6
    assert f.status == "FAIL" and f.observed == "2 CPUs"
    assert f.required == f"{required:.2f} cores for 100,000 messages/s"
    fit = math.floor(CPU_HEADROOM * 2 * 1e6 / us("both", 100_000))
    assert f.fix.startswith(f"at most {fit:,} messages/s fit in 70% of 2 CPUs: ")

    rate = float(re.search(r"--message-rate ([\d.]+) for 100,000 connections", f.fix)[1])
    assert rate == pytest.approx(fit / 100_000, rel=1e-2)
    assert cpu_finding(cpu_plan(2, 100_000, rate=rate, role="both")).status == "PASS"
    connections = int(re.search(r"--connections (\d+) at 1 msg/s", f.fix)[1])
    # fewer connections cost less each: more than `fit` fit, priced at their own count
    assert connections >= fit
    assert cpu_finding(cpu_plan(2, connections, role="both")).status == "PASS"
    assert cpu_finding(cpu_plan(2, connections + 1, role="both")).status == "WARN"

    cpus = int(re.search(r"; or (\d+) CPUs;", f.fix)[1])
    assert cpus == math.ceil(required / CPU_HEADROOM)
    assert cpu_finding(cpu_plan(cpus, 100_000, role="both")).status == "PASS"
    assert cpu_finding(cpu_plan(cpus - 1, 100_000, role="both")).status != "PASS"

    server = 100_000 * us("server", 100_000) / 1e6
    assert f"frees {us('client', 100_000):g} us per message" in f.fix
    assert f.fix.endswith(f"role server needs {server:.2f} cores, {cpus_for(server)} CPUs")
    assert cpu_finding(cpu_plan(cpus_for(server), 100_000, role="server")).status == "PASS"


def test_warn_has_a_fix_and_server_role_no_client_advice():
    n = math.ceil(connections_at((CPU_HEADROOM + 1) / 2, 2, "server"))
    f = cpu_finding(cpu_plan(2, n, role="server"))
    assert f.status == "WARN" and "--message-rate" in f.fix and "load client" not in f.fix


def test_too_fast_for_even_one_connection_omits_the_connections_option():
    f = cpu_finding(cpu_plan(1, 10, rate=100_000, role="both"))  # one connection alone: 1.5 CPUs
    assert f.status == "FAIL" and "--connections" not in f.fix and "--message-rate" in f.fix


def test_calibration_overrides_each_constant_on_its_own():
    server_only = Calibration(**CAL, server_cpu_us_per_message=50)
    b = cpu_plan(2, 10_000, role="both", calibration=server_only).cpu
    assert (b.server_us_per_message, b.client_us_per_message) == (50, CLIENT_US_PER_MESSAGE)
    assert b.required_cores == pytest.approx(10_000 * (50 + CLIENT_US_PER_MESSAGE) / 1e6)
    assert b.cost_source.startswith("server: calibration: verify") and "client: constant" in b.cost_source
    both = Calibration(**CAL, server_cpu_us_per_message=5, client_cpu_us_per_message=7)
    b = cpu_plan(2, 10_000, role="both", calibration=both).cpu
    assert b.required_cores == pytest.approx(10_000 * 12 / 1e6)
    assert b.cost_source.startswith("calibration: verify")
    assert cpu_plan(2, 10_000, calibration=Calibration(**CAL)).cpu.cost_source.startswith("constant")


def test_calibration_file_without_cpu_fields_still_loads(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({**CAL, "user_bytes_per_connection": None, "kernel_release": "6.18"}))
    cal = load_calibration(old)
    assert cal.server_cpu_us_per_message is None and cal.client_cpu_us_per_message is None
    assert cpu_plan(2, 10_000, calibration=cal).cpu.server_us_per_message == SERVER_US_PER_MESSAGE
    new = tmp_path / "new.json"
    Calibration(**CAL, server_cpu_us_per_message=21.5, client_cpu_us_per_message=30).write(new)
    assert load_calibration(new).server_cpu_us_per_message == 21.5


@pytest.mark.parametrize("bad", [0, -1, 2e6])
def test_calibration_rejects_impossible_cpu_costs(bad):
    with pytest.raises(ValueError):
        Calibration(**CAL, server_cpu_us_per_message=bad)


@pytest.mark.parametrize("role", ["server", "client", "both"])
def test_plans_with_messages_revalidate_to_themselves(fixtures_dir, role):
    from c10kplan.host.inspect import collect_facts
    from c10kplan.host.procfs import ProcFS

    cal = Calibration(**CAL, client_cpu_us_per_message=40)
    for tree in sorted((fixtures_dir / "proc").iterdir()):
        for n, c in ((10, None), (100_000, cal)):
            p = plan(collect_facts(ProcFS(tree)), Target(connections=n, role=role, message_rate=1), c)
            assert Plan.model_validate_json(p.model_dump_json()) == p, (tree.name, n)


# The CLI, in-process, with the helper of tests/integration/test_check_cli.py. The `live` tree
# has 2 CPUs.


@pytest.fixture
def live(fixtures_dir):
    return str(fixtures_dir / "proc" / "live")


def test_check_100k_messages_both_on_2_cpus_is_not_ready(capsys, live):
    code, out, err = run(capsys, "check", "-n", "100000", "--message-rate", "1", "--role", "both",
                         "--root", live, "--json")
    assert code == 1 and "FAIL cpu.messages" in err
    report = CheckReport.model_validate_json(out)
    assert report.plan.cpu.cores == 2
    assert report.plan.cpu.required_cores == pytest.approx(100_000 * us("both", 100_000) / 1e6)
    f = next(f for f in json.loads(out)["plan"]["findings"] if f["id"] == "cpu.messages")
    assert f["status"] == "FAIL" and "--message-rate" in f["fix"]
    code, out, _ = run(capsys, "check", "-n", "100000", "--message-rate", "1", "--role", "both",
                       "--root", live)
    assert code == 1
    assert re.search(r"^cpu\.messages +FAIL +2 CPUs", out, re.M)
    assert f"cpu: {100_000 * us('both', 100_000) / 1e6:.2f} of 2 cores for 100,000 messages/s" in out


def test_default_check_is_idle_and_unaffected(capsys, live):
    code, out, _ = run(capsys, "check", "--connections", "100000", "--root", live)
    assert code == 0 and "READY: 0 FAIL" in out
    assert re.search(r"^cpu\.messages +PASS +2 CPUs +no message load", out, re.M)
    assert "cpu: 0.00 of 2 cores for 0 messages/s" in out


def test_plan_shows_the_cpu_working(capsys, live):
    code, out, _ = run(capsys, "plan", "-n", "10000", "--message-rate", "1", "--role", "both",
                       "--root", live)
    assert code == 0
    assert re.search(r"^cpu +required_cores .* messages_per_s x us_per_message / 1e6", out, re.M)
    assert "CPU per message: constant" in out
    code, out, _ = run(capsys, "plan", "-n", "10000", "--message-rate", "1", "--root", live, "--json")
    doc = json.loads(out)
    assert doc["cpu"]["messages_per_s"] == 10_000 and doc["cpu"]["cores"] == 2
    assert Plan.model_validate(doc).cpu.us_per_message == SERVER_US_PER_MESSAGE


def test_messages_spread_over_enough_processes_for_the_cpu():
    """On a big host a high message rate needs more workers than the fd limit asks for: no
    process may run above CPU_HEADROOM of one CPU."""
    facts = HostFacts(cpu_count=16, nofile_hard=1_048_576, nofile_soft=1_048_576)
    target = Target(connections=10_000, role="both", message_rate=20)  # 200,000 messages/s
    p = plan(facts, target)
    server_cores = 200_000 * SERVER_US_PER_MESSAGE / 1e6
    client_cores = 200_000 * CLIENT_US_PER_MESSAGE / 1e6
    assert p.cpu.server_processes == math.ceil(server_cores / CPU_HEADROOM) > 1
    assert p.cpu.client_processes == math.ceil(client_cores / CPU_HEADROOM) > 1
    assert (p.server_processes, p.client_processes) == (p.cpu.server_processes, p.cpu.client_processes)
    assert p.fds.fds_per_process == math.ceil(10_000 / p.server_processes) + target.reserve_fds + 1
    # idle: the fd limit alone decides (one process holds 10,000 here)
    idle = plan(facts, target.model_copy(update={"message_rate": 0}))
    assert (idle.server_processes, idle.client_processes) == (1, 1)


def test_cpu_processes_never_exceed_the_cpus_and_follow_the_role():
    p = cpu_plan(2, 100_000, role="both")  # 2.7 cores of load on 2 CPUs: FAIL, 2 processes a side
    assert (p.cpu.server_processes, p.cpu.client_processes) == (2, 2)
    # the fd limit (nofile hard unknown -> 1024 assumed) needs more: that wins
    assert p.server_processes == p.fds.server_processes > 2
    server = cpu_plan(None, 1_000_000, role="server")  # CPUs unknown: uncapped
    assert server.cpu.client_processes == 0
    assert server.cpu.server_processes == math.ceil(1e6 * us("server", 1_000_000) / 1e6 / CPU_HEADROOM)
    assert cpu_plan(4, 10, role="client").cpu.server_processes == 0


def test_sides_with_different_process_counts_size_the_busiest_process_right():
    """A calibration where the server costs 4x the client: more server processes than client
    ones; the busiest process is then a client one (its share, no listener)."""
    facts = HostFacts(cpu_count=16, nofile_hard=1_048_576, nofile_soft=1_048_576)
    cal = Calibration(**CAL, server_cpu_us_per_message=40.0, client_cpu_us_per_message=10.0)
    target = Target(connections=10_000, role="both", message_rate=20)  # 200,000 messages/s
    p = plan(facts, target, cal)
    assert p.server_processes == math.ceil(200_000 * 40.0 / 1e6 / CPU_HEADROOM) == 12
    assert p.client_processes == math.ceil(200_000 * 10.0 / 1e6 / CPU_HEADROOM) == 3
    assert p.fds.fds_per_process == math.ceil(10_000 / 3) + target.reserve_fds  # a client process
    server_only = plan(facts, target.model_copy(update={"role": "server"}), cal)
    assert server_only.fds.fds_per_process == math.ceil(10_000 / 12) + target.reserve_fds + 1
