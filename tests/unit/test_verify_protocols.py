"""verify --protocol and --target, the parts that need no process: the planner's price of a
message by protocol, the options' rules, and how the two plans of --target become one summary."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from c10kplan.errors import BadInput
from c10kplan.host.inspect import HostFacts
from c10kplan.host.procfs import ProcFS
from c10kplan.planner import Calibration, Target, plan
from c10kplan.planner.cpu import ECHO_COST_POINTS, us_per_message
from c10kplan.verify.options import VerifyOptions
from c10kplan.storm.config import is_loopback
from c10kplan.verify.own_server import _most_fds, check_target_request, merged_summary


def _cpu(protocol: str, role: str = "both", calibration: Calibration | None = None):
    return plan(HostFacts(cpu_count=2), Target(connections=10_000, role=role, message_rate=1.0,
                                               protocol=protocol), calibration).cpu


def test_each_protocol_is_priced_by_its_own_constants():
    SERVER_US_PER_MESSAGE, CLIENT_US_PER_MESSAGE = ECHO_COST_POINTS[0][1:]  # up to 20,000 connections
    assert us_per_message("echo", 10_000) == (SERVER_US_PER_MESSAGE, CLIENT_US_PER_MESSAGE)
    for protocol in ("http", "websocket"):
        server, client = us_per_message(protocol, 10_000)
        cpu = _cpu(protocol)
        assert (cpu.server_us_per_message, cpu.client_us_per_message) == (server, client)
        assert cpu.required_cores == pytest.approx(10_000 * (server + client) / 1e6)
        assert cpu.cost_source.endswith(f", {protocol})")
        # both cost more than an echo of the same bytes: the protocol adds user-space work
        assert server > SERVER_US_PER_MESSAGE and client > CLIENT_US_PER_MESSAGE
    assert _cpu("echo").cost_source == "constant (measured, see docs/check.md, CPU per message)"


def test_a_calibration_overrides_any_protocol():
    cal = Calibration(kernel_bytes_per_socket=4000, connections=100, measured_at="2026-12-01T00:00:00+00:00",
                      method="test", server_cpu_us_per_message=77.0)
    cpu = _cpu("websocket", role="server", calibration=cal)
    assert cpu.server_us_per_message == 77.0 and cpu.cost_source.startswith("server: calibration: test")


def test_protocol_follows_the_target_scheme_when_not_given():
    assert VerifyOptions(connections=1).protocol == "echo"
    assert VerifyOptions(connections=1, target="ws://127.0.0.1:9/").protocol == "websocket"
    assert VerifyOptions(connections=1, target="http://127.0.0.1:9/x").protocol == "http"
    assert VerifyOptions(connections=1, target="127.0.0.1:9", protocol="http").protocol == "http"


@pytest.mark.parametrize("kw, message", [
    ({"pids": (5,)}, "--pid and --host-facts need --target"),
    ({"host_facts": "x.json"}, "--pid and --host-facts need --target"),
    ({"target": "127.0.0.1:9", "netns": True}, "drop --netns"),
    ({"target": "127.0.0.1:9", "profile": "c10k"}, "--profile needs the bundled server"),
    ({"target": "127.0.0.1:9", "pids": (0,)}, "--pid must be a process ID"),
    ({"protocol": "gopher"}, "protocol"),
])
def test_options_that_do_not_go_together(kw, message):
    with pytest.raises(ValidationError, match=message):
        VerifyOptions(connections=1, **kw)


def test_calibrate_a_target_needs_its_pids(tmp_path):
    with pytest.raises(BadInput, match="^--calibrate with --target needs --pid"):
        check_target_request(VerifyOptions(connections=1, target="127.0.0.1:9", calibrate=str(tmp_path / "c.json")))
    check_target_request(VerifyOptions(connections=1, target="127.0.0.1:9", pids=(4,), calibrate="c.json"))


def test_loopback_targets():
    assert is_loopback("127.0.0.5") and is_loopback("::1")
    assert not is_loopback("198.18.0.1") and not is_loopback("example.org")


def test_the_server_facts_come_from_the_process_allowed_most_fds(tmp_path):
    for pid, soft in ((10, 1024), (11, 19000), (12, 4096)):
        d = tmp_path / "proc" / str(pid)
        d.mkdir(parents=True)
        (d / "limits").write_text("Limit                     Soft Limit           Hard Limit           Units\n"
                                  f"Max open files            {soft}                20000                files\n")
    assert _most_fds(ProcFS(tmp_path), [10, 11, 12]) == 11
    assert _most_fds(ProcFS(tmp_path), [99]) == 99  # unreadable limits: the first one


def test_one_summary_of_the_two_plans():
    facts = HostFacts(cpu_count=2, mem_available_bytes=8 << 30)
    common = dict(connections=1000, message_rate=1.0, protocol="http")
    client = plan(facts, Target(role="client", workload="bundled", **common))
    server = plan(facts, Target(role="server", workload="custom", **common))
    here = merged_summary(client, server, same_host=True)
    away = merged_summary(client, server, same_host=False)
    assert here.client_processes == client.client_processes and here.server_processes == server.server_processes
    assert here.user_bytes_per_connection == server.memory.user_bytes_per_connection == 8192
    assert (here.server_us_per_message, here.client_us_per_message) == us_per_message("http", 1000)
    assert here.sockets == 2000 and away.sockets == 1000
    assert here.required_cores == pytest.approx(client.cpu.required_cores + server.cpu.required_cores, abs=1e-3)
    assert away.required_cores == pytest.approx(client.cpu.required_cores, abs=1e-3)


# -- the http wire's replay of a response h11 parsed whole before ------------------------------
def test_http_wire_replays_an_identical_response_and_parses_anything_else(monkeypatch):
    from c10kplan.storm.protocols import make_wire
    from tests.unit.test_protocols_units import _cfg, _Conn, _Storm

    wire = make_wire(_cfg(protocol="http"))
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    missing = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    storm, a, b = _Storm(), _Conn(), _Conn()
    for conn in (a, b):
        conn.state = "open"
        conn.pending.extend([(0, 0)] * 5)
    wire.received(storm, a, memoryview(ok), 1.0)  # parsed by h11, remembered
    parsed = []
    real = wire._parser
    monkeypatch.setattr(wire, "_parser", lambda: parsed.append(1) or real())
    wire.received(storm, b, memoryview(ok), 1.0)  # the same bytes: no parser
    assert parsed == [] and storm.replies == [True, True] and storm.statuses == [200, 200]
    wire.received(storm, a, memoryview(missing), 1.0)  # other bytes: parsed, and now the known one
    assert parsed == [1] and storm.replies[-1] is False and storm.statuses[-1] == 404
    wire.received(storm, b, memoryview(missing), 1.0)
    assert parsed == [1] and storm.statuses[-1] == 404
    # two responses in one read are two replies, and never remembered as one
    wire.received(storm, a, memoryview(ok + ok), 1.0)
    wire.received(storm, b, memoryview(ok + ok), 1.0)
    assert len(parsed) == 1 + 2 + 2 and storm.replies[-4:] == [True] * 4  # a parser per response
    # a response that closes is never replayed: each one drops its connection
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    wire.received(storm, a, memoryview(close), 1.0)
    wire.received(storm, b, memoryview(close), 1.0)
    assert storm.dropped == ["HTTP 200 + close", "HTTP 200 + close"] and len(parsed) == 5 + 2


def test_the_target_report_names_the_server_and_fits_80_columns(monkeypatch, capsys):
    from types import SimpleNamespace

    from c10kplan.cli.verify import _print_verify
    from c10kplan.verify.compare import row
    from c10kplan.verify.measure import HostSample
    from c10kplan.verify.result import TargetRun
    from c10kplan.verify.target import ServerMeasurement
    from tests.unit.test_render_width import _storm

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    sample = HostSample(mem_available_bytes=20 << 30, slab_bytes=1 << 30, tcp_inuse=20007, tcp_mem_pages=5123,
                        sockets_used=20020)
    m = ServerMeasurement(at=1.0, pids=[700, 701], rss_bytes=90 << 20, fds=10030, fds_max=10020, threads=2, cpu_ticks=4000)
    run = TargetRun(address="127.0.0.1:8080", pids=[700], same_host=True, host_facts="this host (PID 701's limits)",
                    before=m, during=m, end=m)
    res = SimpleNamespace(
        connections=10000, duration=20.0, message_rate=0.5, server_workers=2, storm_processes=1, netns=False,
        profile=None, forced=False, plan=SimpleNamespace(failing=[]), storm=_storm(), before=sample, during=sample,
        server_rss_bytes=90 << 20, storm_rss_bytes=40 << 20, calibration_file="/tmp/nginx.json", server_active=None,
        server_errors={}, verdict="PASS", problems=[], target=run, protocol="http",
        comparisons=[row("server fds per connection", "fds", 1.0, 1, "open fds growth of the server's processes"
                         " (/proc/PID/fd) / connections held")])
    _print_verify(res)
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    text = " ".join(" ".join(lines).split())
    assert text.startswith("verify --target 127.0.0.1:8080: 10,000 connections for 20 s at 0.5 msg/s each (http);"
                           " server PIDs 700 (2 processes with their children)")
    assert "server planned with the facts of this host (PID 701's limits)" in text
    assert "server: None active" not in text and "verdict: PASS" in text


def test_the_summary_carries_both_findings_tables_by_plan():
    facts = HostFacts(cpu_count=2, mem_available_bytes=8 << 30)
    client = plan(facts, Target(connections=1000, role="client", workload="bundled"))
    server = plan(facts, Target(connections=1000, role="server", workload="custom"))
    ids = [f.id for f in merged_summary(client, server, same_host=True).findings]
    assert ids == [f"server:{f.id}" for f in server.findings] + [f"storm:{f.id}" for f in client.findings]


def test_the_storm_binds_the_plans_addresses_or_the_pinned_ones_on_a_loopback_target_only():
    from c10kplan.verify.run import storm_sources

    facts = HostFacts(cpu_count=2, mem_available_bytes=8 << 30, ip_local_port_range=(40000, 40999))
    client = plan(facts, Target(connections=600, role="client", message_rate=0))
    server = plan(facts, Target(connections=600, role="server", message_rate=0))
    summary = merged_summary(client, server, same_host=True)
    assert summary.fast_source_addresses == 3  # 1,000 ports, each address at most a quarter full
    opts = VerifyOptions(connections=600, message_rate=0)
    assert storm_sources(opts, summary) == ("127.0.0.1", "127.0.0.2", "127.0.0.3")
    assert storm_sources(opts, summary, "127.0.0.9") == ("127.0.0.1", "127.0.0.2", "127.0.0.3")
    pinned = opts.model_copy(update={"source_ips": 1})
    assert storm_sources(pinned, summary) == ("127.0.0.1",)
    assert storm_sources(opts, summary, "198.18.0.1") == () and storm_sources(opts, summary, "::1") == ()
    with pytest.raises(BadInput, match="needs an IPv4 loopback target, not 198.18.0.1"):
        storm_sources(pinned, summary, "198.18.0.1")
