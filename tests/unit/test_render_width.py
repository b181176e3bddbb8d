"""Output fits the terminal: render.table wraps long text columns or moves them under their
rows, render.line wraps prose; at COLUMNS=80 check, plan, storm and verify print nothing wider
than 80. Without COLUMNS and without a terminal (a pipe), lines are left whole."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from c10kplan.cli import render
from c10kplan.cli.app import main
from c10kplan.storm.result import MessageLatency, StormResult
from c10kplan.storm.stats import Percentiles
from c10kplan.verify.compare import row
from c10kplan.verify.measure import HostSample

LONG = ("run 6 workers of <= 19,936 connections each (no CAP_SYS_RESOURCE); or, with "
        "CAP_SYS_RESOURCE: LimitNOFILE=100065")
ROWS = [["fds.nofile", "WARN", "soft 20,000 / hard 20,000 (CAP_SYS_RESOURCE: no)",
         "100,065 fds in one process", LONG],
        ["backlog.syn", "PASS", "2,048 (syncookies on)", "100", "-"]]
HEADERS = ["finding", "status", "host has", "target needs", "fix"]


@pytest.fixture
def term(monkeypatch):
    """stdout is a terminal COLS wide (capsys's stdout is not a terminal by itself)."""
    def at(cols: int) -> None:
        monkeypatch.setenv("COLUMNS", str(cols))
        monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    return at


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def _words(lines: list[str]) -> list[str]:
    return " ".join(lines).split()


@pytest.mark.parametrize("cols", [60, 80, 100, 120])
def test_table_fits_and_keeps_every_word(cols, term, monkeypatch, capsys):
    term(cols)
    render.table(ROWS, HEADERS)
    lines = _lines(capsys)
    assert max(map(len, lines)) <= cols
    words = _words(lines)
    for cell in (c for r in ROWS for c in r if c != "-"):
        assert all(w in words for w in cell.split()), cell  # wrapped, never cut
    assert "CAP_SYS_RESOURCE:" in words  # whole words: a flag is never split in two


def test_narrow_moves_the_longest_text_under_its_row(term, monkeypatch, capsys):
    term(80)
    render.table(ROWS, HEADERS)
    lines = _lines(capsys)
    at = next(i for i, ln in enumerate(lines) if ln.startswith("fds.nofile"))
    under = next(ln for ln in lines[at:] if ln.startswith(render.UNDER_INDENT + "fix: "))
    assert under.startswith("    fix: run 6 workers")
    assert not any("fix:" in ln for ln in lines if ln.startswith("backlog.syn"))  # "-" is not repeated
    assert "fix" not in lines[0].split()  # no longer a column


def test_wide_terminal_or_pipe_leaves_the_table_alone(term, monkeypatch, capsys):
    term(400)
    render.table(ROWS, HEADERS)
    wide = _lines(capsys)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    render.table(ROWS, HEADERS)  # a pipe: no limit, even with COLUMNS set
    piped = _lines(capsys)
    assert wide == piped and len(wide) == 4 and wide[2].endswith(LONG)


def test_line_wraps_prose_but_document_is_verbatim(term, monkeypatch, capsys):
    term(40)
    text = "memory: idle kernel 390.6 MiB (4,096 B/socket) | in flight 390.6 MiB | app 781.2 MiB"
    render.line(text)
    lines = _lines(capsys)
    assert max(map(len, lines)) <= 40 and _words(lines) == text.split()
    assert all(ln.startswith("  ") for ln in lines[1:])
    render.document("x" * 100 + "\n" + "key = " + "y" * 60)
    assert _lines(capsys) == ["x" * 100, "key = " + "y" * 60]


def _run(capsys, *argv: str) -> list[str]:
    with pytest.raises(SystemExit):
        main(list(argv))
    return _lines(capsys)


@pytest.mark.parametrize("command", ["check", "plan"])
def test_check_and_plan_fit_80_columns(command, fixtures_dir, term, monkeypatch, capsys):
    term(80)
    lines = _run(capsys, command, "-n", "100000", "--message-rate", "1", "--role", "both",
                 "--root", str(fixtures_dir / "proc" / "live"))
    assert len(lines) > 15 and max(map(len, lines)) <= 80, max(lines, key=len)
    text = "\n".join(lines)
    if command == "check":
        for fid in ("fds.nofile", "ports.ephemeral", "cpu.messages", "memory.tcp_mem"):
            assert f"\n{fid} " in text
        assert "    fix: " in text  # the fixes moved under their rows
    else:
        assert "    formula [inputs]: " in text


def _storm() -> StormResult:
    pct = Percentiles(count=100000, min=40, mean=180.0, p50=150, p90=320, p99=2100, p999=9800,
                      max=123456)
    return StormResult(
        target="127.0.0.1:40123", protocol="echo", connections=100000, processes=6,
        source_addresses=4, established=100000, held=100000, failures={"ECONNREFUSED": 12,
                                                                       "ETIMEDOUT": 3},
        connect_seconds=41.234, connect_rate=2425.2, connect_latency_us=pct,
        message_latency_us=MessageLatency(corrected=pct, raw=pct), hold_seconds=30.0,
        messages_sent=2999000, messages_received=2998990, messages_per_second=99966.3,
        bytes_sent=191936000, bytes_received=191935360, throughput_bytes_per_second=6397866.0,
        mismatches=0, unanswered=10, missed=1000, per_process=[], problems=[], ok=True)


def test_storm_result_fits_80_columns(term, monkeypatch, capsys):
    from c10kplan.cli.storm import _print_storm

    term(80)
    _print_storm(_storm())
    lines = _lines(capsys)
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    assert "never sent (behind schedule)" in " ".join(" ".join(lines).split())


def test_verify_result_fits_80_columns(term, monkeypatch, capsys):
    from c10kplan.cli.verify import _print_verify

    term(80)
    cpu_how = ("host busy CPU time (/proc/stat, softirq included) over the hold / replies, "
               "shared between server and storm by their own utime + stime")
    sample = HostSample(mem_available_bytes=20 << 30, slab_bytes=1 << 30, tcp_inuse=200007,
                        tcp_mem_pages=51234, sockets_used=200020)
    res = SimpleNamespace(
        connections=100000, duration=30.0, message_rate=1.0, server_workers=6, storm_processes=6,
        netns=True, profile="c100k", forced=False, plan=SimpleNamespace(failing=[]),
        storm=_storm(), before=sample, during=sample, server_rss_bytes=1536 << 20,
        storm_rss_bytes=900 << 20, calibration_file=None, server_active=100000,
        server_errors={"ECONNRESET": 2}, verdict="PASS", problems=[], target=None, protocol="echo",
        comparisons=[
            row("connections held", "connections", 100000, 100000,
                "storm: connections still open at the end of the hold", tolerance=0.0),
            row("kernel memory per socket", "bytes", 4012.5, 4096,
                "Slab delta (/proc/meminfo) / sockets held (2 per connection)"),
            row("CPU per message, server", "us", 27.1, 26.5, cpu_how),
            row("host CPU busy", "cores", 1.71, 1.6, "host busy time / wall time over the hold "
                "(everything on the host); planned = messages/s x us per message, of 2 CPUs",
                tolerance=None),
        ])
    _print_verify(res)
    lines = _lines(capsys)
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    text = " ".join(" ".join(lines).split())
    assert "softirq included" in text and "verdict: PASS" in text


# A table of figures only (merge's per-host parts): no cell has a space to wrap at.
FIGURES = ["result", "share", "target", "established", "held", "answered", "msg/s", "hold s", "storm"]
FIGURE_ROWS = [[f"/tmp/results/host{i}.json", f"{i}/3", "198.18.0.1:7000", "100000/100000",
                "100000", "2999000", "99,966", "30.00", "PASS"] for i in (1, 2, 3)]


def test_a_table_of_figures_is_split_to_fit(term, capsys):
    term(80)
    render.table(FIGURE_ROWS, FIGURES)
    lines = _lines(capsys)
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    text = "\n".join(lines)
    assert all(h in text for h in FIGURES)  # every column is still shown, as a column
    assert text.split().count("result") == 2  # two tables, each keyed by the row's name
    for row in FIGURE_ROWS:
        assert sum(ln.startswith(row[0]) for ln in lines) == 2
        assert all(c in " ".join(lines).split() for c in row)


def test_figures_left_after_moving_text_go_under_their_rows(term, capsys):
    """A text column wraps, and the figures still do not fit: a figure moves under its row."""
    term(60)
    rows = [["cpu.messages", "36,297,000,000,000", "25,408,000,000,000", "12,345,678,901,234", LONG]]
    render.table(rows, ["resource", "allows (no FAIL)", "within headroom (PASS)", "third figure", "fix"])
    lines = _lines(capsys)
    assert max(map(len, lines)) <= 60, max(lines, key=len)
    assert all(w in _words(lines) for c in rows[0] for w in c.split())


def test_notes_wrap_on_a_terminal_and_stay_whole_in_a_pipe(monkeypatch, capsys):
    text = ("note: nf_conntrack is loaded but nothing is tracked: nf_conntrack_count 0"
            " (/proc/net/ip_tables_names: no tables; /proc/net/ip6_tables_names: no tables)")
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    render.note(text)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) > 1 and max(map(len, lines)) <= 80 and " ".join(lines).split() == text.split()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    render.note(text)
    assert capsys.readouterr().err == text + "\n"


def test_merge_fits_80_columns(tmp_path, term, capsys, monkeypatch):
    from tests.unit.test_storm_merge import host_result

    monkeypatch.chdir(tmp_path)  # the files as a user names them: merge results/loadgen-1.json ...
    (tmp_path / "results").mkdir()
    files = []
    for i in (1, 2):
        path = Path("results") / f"loadgen-{i}.example.net.json"
        render.emit_json(host_result(i, 2, [100 * i, 200, 300], connections=100000))
        path.write_text(capsys.readouterr().out)
        files.append(str(path))
    term(80)
    lines = _run(capsys, "merge", *files)
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    assert any("verdict: " in ln for ln in lines)


def test_bench_backends_table_fits_80_columns(term, capsys):
    from c10kplan.bench.backends import TABLE_HEADERS, table_rows
    from tests.unit.test_bench_model import _bench, _point

    rows = table_rows(_bench([_point("epoll", 10, 5.0), _point("epoll", 10000, 6123.25),
                              _point("select", 10, 10.0),
                              _point("select", 10000, 0, skipped="n/a: fd 10004 >= FD_SETSIZE (1024)")]))
    term(80)
    render.table(rows, list(TABLE_HEADERS))
    lines = _lines(capsys)
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    assert "6123.25" in " ".join(lines) and "FD_SETSIZE" in " ".join(lines)
