"""Counts are written for people: thousands separators and the right plural, the one way
(c10kplan.counts.plural, re-exported by render)."""

from __future__ import annotations

from c10kplan.bench.trigger import TriggerReport, TriggerRun, trigger_rows
from c10kplan.cli import render
from c10kplan.planner import Target, capacity
from tests.unit.test_planner_capacity import host
from tests.unit.test_render_width import _storm


def test_plural():
    assert render.plural(1, "server worker") == "1 server worker"
    assert render.plural(2, "server worker") == "2 server workers"
    assert render.plural(10000, "process", "processes") == "10,000 processes"
    assert render.plural(1, "source address", "source addresses") == "1 source address"


def test_storm_tables_separate_thousands(capsys):
    from c10kplan.cli.storm import print_storm_tables

    print_storm_tables(_storm())
    out = capsys.readouterr().out
    assert "100,000 established, 100,000 held of 100,000" in out
    assert "2,999,000 sent, 2,998,990 answered" in out and "1,000 never sent" in out
    assert "123,456" in out  # the latency table's max
    assert "100000" not in out and "123456" not in out


def test_trigger_rows_separate_thousands():
    report = TriggerReport(
        bytes_written=1, window_ms=100,
        level=TriggerRun(mode="level", window_ms=100, waits=30953, wakeups=30953, elapsed_ms=100.0),
        edge=TriggerRun(mode="edge", window_ms=100, waits=2, wakeups=1, elapsed_ms=100.2))
    assert trigger_rows(report)[0][1:] == ["30,953", "2"]


def test_a_capacity_held_by_one_process_says_process():
    cap = capacity(host(file_max=9_000), Target(connections=1))
    nofile = next(r for r in cap.resources if r.id == "fds.nofile")
    assert nofile.note.startswith("sharded: 1 process at ")
