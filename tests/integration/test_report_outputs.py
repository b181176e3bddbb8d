"""The files storm and verify write for other tools, end to end through the CLI: the HdrHistogram
interval log (read back by the `hdrhistogram` package's HistogramLogReader), the Prometheus text
file (prometheus_client's parser), the HTML report with its PNGs; `--json` printing one document
whatever happens (the plan's refusal included) and `--json --progress` keeping the progress on
stderr. Bounded: small N, short holds, a timeout on every subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from c10kplan.verify.server import start_server
from tests.helpers import wait_for


def _cli(*args: str, timeout: float = 90, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "c10kplan", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


@pytest.fixture
def server():
    srv = start_server(workers=1)
    yield srv
    srv.close()
    assert not srv.alive()


def test_storm_writes_a_histogram_log_and_metrics_and_progress_goes_to_stderr(server, tmp_path):
    from hdrh.log import HistogramLogReader

    from c10kplan.storm.stats import new_histogram

    hlog, prom = tmp_path / "storm.hlog", tmp_path / "storm.prom"
    done = _cli("storm", f"{server.host}:{server.port}", "-n", "300", "--processes", "1", "--message-rate", "5",
                "--duration", "2", "--histogram", str(hlog), "--metrics", str(prom), "--json", "--progress")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)  # stdout is the one document, nothing else
    assert "connections 300/300" in done.stderr  # the progress line, asked for, on stderr
    assert f"--histogram: wrote {hlog}" in done.stderr

    reader = HistogramLogReader(str(hlog), new_histogram())
    got = {}
    while (hist := reader.get_next_interval_histogram()) is not None:
        got[hist.get_tag()] = hist
    assert sorted(got) == ["connect", "corrected", "raw"]
    lat = doc["message_latency_us"]
    assert got["connect"].get_total_count() == doc["connect_latency_us"]["count"] == 300
    for tag in ("corrected", "raw"):
        assert got[tag].get_total_count() == lat[tag]["count"] == doc["messages_received"]
        assert got[tag].get_value_at_percentile(99) == lat[tag]["p99"]
        assert got[tag].get_max_value() == lat[tag]["max"]
    assert reader.get_start_time_sec() == pytest.approx(doc["placement"]["ramp_started_at"], abs=0.001)

    m = _samples(prom.read_text())
    assert m[("c10kplan_storm_connections_held", ())] == doc["held"] == 300
    assert m[("c10kplan_storm_messages_received_total", ())] == doc["messages_received"]
    assert m[("c10kplan_storm_message_latency_seconds", (("kind", "corrected"), ("quantile", "0.99")))] \
        == lat["corrected"]["p99"] / 1e6
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_storm_counts_failures_by_errno_in_the_metrics(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        prom = tmp_path / "refused.prom"
        done = _cli("storm", f"127.0.0.1:{port}", "-n", "20", "--processes", "1", "--duration", "0",
                    "--metrics", str(prom), "--json")
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    m = _samples(prom.read_text())
    assert m[("c10kplan_storm_connect_failures_total", (("errno", "ECONNREFUSED"),))] \
        == doc["failures"]["ECONNREFUSED"] == 20
    assert m[("c10kplan_storm_ok", ())] == 0


def test_verify_writes_metrics_and_a_report_with_the_runs_numbers(tmp_path):
    prom, rep = tmp_path / "verify.prom", tmp_path / "report"
    # --p99-max 1000: this test is about the files, and other jobs on the CPUs push p99 up
    done = _cli("verify", "-n", "1500", "--duration", "2", "--message-rate", "4", "--workers", "1",
                "--storm-processes", "1", "--p99-max", "1000", "--metrics", str(prom), "--report", str(rep),
                "--json", timeout=120)
    assert done.returncode in (0, 1), done.stderr
    doc = json.loads(done.stdout)
    assert doc["ramp"] and doc["ramp"][-1]["established"] == 1500
    assert any(s["slab_bytes"] for s in doc["ramp"])  # Slab read during the ramp
    assert {f["id"] for f in doc["plan"]["findings"]} >= {"fds.nofile", "memory.expected"}

    m = _samples(prom.read_text())
    kernel = next(c for c in doc["comparisons"] if c["figure"] == "kernel memory per socket")
    assert m[("c10kplan_verify_plan_ratio", (("figure", "kernel memory per socket"),))] == kernel["ratio"]
    assert m[("c10kplan_verify_kernel_bytes_per_socket", (("source", "planned"),))] \
        == doc["plan"]["kernel_bytes_per_socket"]
    assert m[("c10kplan_verify_pass", ())] == (doc["verdict"] == "PASS")
    assert m[("c10kplan_storm_connections_held", ())] == doc["storm"]["held"]

    page = (rep / "report.html").read_text()
    for name in ("ramp.png", "memory.png", "latency.png", "cpu.png"):
        assert f'src="{name}"' in page and (rep / name).read_bytes()[:4] == b"\x89PNG"
    assert f"{doc['storm']['established']:,} established" in page
    assert f"{doc['storm']['message_latency_us']['corrected']['p99'] / 1000:,.3f}" in page
    assert f"{doc['plan']['kernel_bytes_per_socket']:,}" in page


def test_verify_json_prints_the_refusal_as_one_document(tmp_path):
    from c10kplan.cli.schemas import document_schema

    prom = tmp_path / "refused.prom"
    done = _cli("verify", "--connections", "2000000", "--duration", "1", "--json", "--metrics", str(prom),
                prefix=("prlimit", "--nofile=256:256"))
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    assert doc["verdict"] == "REFUSED" and doc["connections"] == 2_000_000
    assert doc["problems"][0].startswith("the plan fails") and "--force" in doc["problems"][0]
    failing = [f for f in doc["plan"]["findings"] if f["status"] == "FAIL"]
    assert "memory.expected" in {f["id"] for f in failing} and all(f["fix"] or f["required"] for f in failing)
    lines = done.stderr.strip().splitlines()  # and the one error line, as without --json
    assert lines == [f"--metrics: wrote {prom}", lines[-1]]
    assert lines[-1].startswith("c10kplan: error: the plan fails")
    m = _samples(prom.read_text())  # a monitor sees the refusal too
    assert m[("c10kplan_verify_refused", ())] == 1 and m[("c10kplan_verify_pass", ())] == 0
    assert m[("c10kplan_verify_plan_findings", (("status", "FAIL"),))] == len(failing)
    assert m[("c10kplan_verify_connections_target", ())] == 2_000_000
    jsonschema = pytest.importorskip("jsonschema", reason="validates the document; a test extra")
    jsonschema.validate(doc, document_schema("verify-refusal"))


@pytest.mark.parametrize(("args", "message"), [
    (("--report", "/proc/version"), "--report: /proc/version is not a folder"),
    (("--report", "/nonexistent-c10kplan/a/b"), "--report: folder /nonexistent-c10kplan/a does not exist"),
    (("--metrics", "/nonexistent-c10kplan/m.prom"), "--metrics: folder /nonexistent-c10kplan does not exist"),
    (("--metrics", "/tmp"), "--metrics: /tmp is a folder"),
])
def test_verify_output_paths_are_checked_before_anything_starts(args, message):
    done = _cli("verify", "-n", "100", "--duration", "1", *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"c10kplan: error: {message}" and done.stdout == ""


def test_storm_histogram_path_is_checked_before_anything_starts(tmp_path):
    done = _cli("storm", "127.0.0.1:9", "-n", "1", "--histogram", str(tmp_path / "no" / "h.hlog"))
    assert done.returncode == 2
    assert done.stderr.strip() == f"c10kplan: error: --histogram: folder {tmp_path / 'no'} does not exist"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_node_exporters_textfile_collector_serves_the_metrics_file(tmp_path):
    """The real consumer: Debian's prometheus-node-exporter (.ci/run installs it, never as a
    service) with only the textfile collector, on a loopback port, scraped once."""
    import shutil
    import urllib.request

    from c10kplan.report.openmetrics import verify_metrics, write_metrics
    from tests.unit.test_report_files import _verify

    exe = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if exe is None:
        pytest.skip("needs prometheus-node-exporter; .ci/run installs it")
    res = _verify(storm=None)
    folder = tmp_path / "textfile"
    folder.mkdir()
    write_metrics(folder / "c10kplan.prom", verify_metrics(res))
    port = _free_port()
    proc = subprocess.Popen([exe, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
                             "--collector.textfile", f"--collector.textfile.directory={folder}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    bodies: list[str] = []

    def scraped_or_exited() -> bool:
        if proc.poll() is not None:
            return True
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
                bodies.append(answer.read().decode())
        except OSError:
            return False  # not listening yet
        return True

    try:
        wait_for(scraped_or_exited, 20)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert bodies, err.decode()[-2000:]
    m = _samples(bodies[0])
    assert m[("node_textfile_scrape_error", ())] == 0, err.decode()[-2000:]
    assert m[("c10kplan_verify_kernel_bytes_per_socket", (("source", "measured"),))] == 4000
    assert m[("c10kplan_storm_connect_failures_total", (("errno", "ECONNREFUSED"),))] == 3
    assert m[("c10kplan_storm_message_latency_seconds", (("kind", "corrected"), ("quantile", "0.99")))] \
        == res.storm.message_latency_us.corrected.p99 / 1e6
