"""Pure parts of `c10kplan bench`: option parsing and validation, clamping, statistics, rows."""

from __future__ import annotations

import sys

import pytest
from pydantic import ValidationError

from c10kplan.bench.backends import (
    RESERVED_FDS,
    BackendPoint,
    BackendsBench,
    BackendsOptions,
    fit_counts,
    growth_of,
    parse_counts,
    parse_names,
    percentile,
    table_rows,
)
from c10kplan.reactor.backends import available_backends
from c10kplan.bench.plot import INSTALL_HINT, check_plot_path, require_matplotlib
from c10kplan.bench.trigger import TriggerReport, TriggerRun, run_trigger, trigger_rows
from c10kplan.errors import BadInput, EnvironmentProblem


def test_parse_counts_sorts_and_dedupes():
    assert parse_counts("1000, 10,100,10,1000") == (10, 100, 1000)
    assert parse_counts("7,,8") == (7, 8)


@pytest.mark.parametrize("text", ["", " , ", "10,x", "10,-5", "1.5", "1_000", "\u0661\u0662"])
def test_parse_counts_rejects_what_is_not_a_whole_number(text):
    with pytest.raises(BadInput, match="--fds"):
        parse_counts(text)


def test_parse_names_keeps_order_drops_blanks_and_repeats():
    assert parse_names(" poll,epoll,,poll ") == ("poll", "epoll")


def test_percentile_interpolates_and_hits_the_ends():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 10) == pytest.approx(1.4)
    assert percentile([7.0], 90) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_fit_counts_clamps_to_the_limit_and_drops_the_duplicate():
    counts, notes = fit_counts([10, 30000, 25000, 100], 19936)
    assert counts == (10, 100, 19936)
    assert len(notes) == 2
    assert "N=25000 clamped to 19936" in notes[0]
    assert f"{19936 + RESERVED_FDS} open fds" in notes[0]


def test_fit_counts_leaves_counts_that_fit_alone():
    assert fit_counts([100, 10], 1000) == ((10, 100), ())


def test_options_defaults_are_the_issue_s():
    opts = BackendsOptions()
    assert opts.fds == (10, 100, 1000, 10000)
    assert opts.active == 1
    assert set(opts.backends) == {"select", "poll", "epoll"} & set(available_backends())


@pytest.mark.parametrize(
    "kwargs, loc",
    [
        ({"fds": (0, 10)}, "fds"),
        ({"fds": ()}, "fds"),
        ({"fds": (10, 100), "active": 11}, "active"),
        ({"active": 0}, "active"),
        ({"repeat": 0}, "repeat"),
        ({"writes": 0}, "writes"),
        ({"backends": ("kqueue",)}, "backends"),
    ],
)
def test_options_reject_bad_values_naming_the_field(kwargs, loc):
    with pytest.raises(ValidationError) as info:
        BackendsOptions(**kwargs)
    assert info.value.errors()[0]["loc"][0] == loc


def test_available_backends_survive_importing_the_select_submodule():
    import c10kplan.reactor.backends.select  # noqa: F401  (the import that shadows `select`)

    assert "epoll" in available_backends() and "select" in available_backends()


def _point(backend, fds, median, skipped=None):
    if skipped:
        return BackendPoint(backend=backend, fds=fds, skipped=skipped)
    return BackendPoint(
        backend=backend,
        fds=fds,
        samples_us=(median,),
        iterations=(101,),
        reads_per_run=101,
        median_us=median,
        p10_us=median,
        p90_us=median,
        min_us=median,
        max_us=median,
    )


def _bench(points):
    return BackendsBench(
        active=1,
        writes=100,
        repeat=1,
        fds_requested=(10, 1000, 10000),
        fds_measured=(10, 1000, 10000),
        nofile_soft=20000,
        nofile_hard=20000,
        kernel="6.x",
        python="3.11",
        loadavg_before=(0.0, 0.0, 0.0),
        loadavg_after=(0.0, 0.0, 0.0),
        points=tuple(points),
    )


def test_growth_is_largest_over_smallest_measured_and_skips_na_rows():
    points = [
        _point("epoll", 10, 5.0),
        _point("epoll", 10000, 6.0),
        _point("select", 10, 10.0),
        _point("select", 1000, 150.0),
        _point("select", 10000, 0, skipped="n/a: fd 10004 >= FD_SETSIZE (1024)"),
        _point("poll", 10, 7.0),
    ]
    growth = {g.backend: g for g in growth_of(points)}
    assert set(growth) == {"epoll", "select"}  # poll has one measured point: no growth
    assert growth["epoll"].ratio == pytest.approx(1.2)
    assert growth["select"].to_fds == 1000
    assert growth["select"].ratio == pytest.approx(15.0)
    assert growth["select"].ns_per_fd == pytest.approx((150.0 - 10.0) * 1000 / 990, abs=0.01)


def test_table_rows_show_na_and_relative_cost():
    bench = _bench(
        [
            _point("select", 10, 10.0),
            _point("select", 1000, 150.0),
            _point("select", 10000, 0, skipped="n/a: fd 10004 >= FD_SETSIZE (1024)"),
        ]
    )
    rows = table_rows(bench)
    assert rows[0][0:3] == ["select", "10", "10.00"] and rows[0][-1] == "1.00x"
    assert rows[1][-1] == "15.00x"
    assert rows[2][2] == "n/a: fd 10004 >= FD_SETSIZE (1024)"
    dumped = bench.model_dump(mode="json")
    assert dumped["growth"][0]["ratio"] == 15.0


def test_trigger_rows_put_modes_side_by_side():
    report = TriggerReport(
        bytes_written=1,
        window_ms=100,
        level=TriggerRun(mode="level", window_ms=100, waits=900, wakeups=900, elapsed_ms=100.0),
        edge=TriggerRun(mode="edge", window_ms=100, waits=2, wakeups=1, elapsed_ms=100.2),
    )
    rows = trigger_rows(report)
    assert rows[1] == ["wakeups reporting the socket", "900", "1"]
    assert report.level_wakes_more


@pytest.mark.parametrize("window", [0, -1, 10_001])
def test_trigger_window_out_of_range_is_bad_input(window):
    with pytest.raises(BadInput, match="--window-ms"):
        run_trigger(window)


def test_plot_path_must_be_png_in_an_existing_folder(tmp_path):
    assert check_plot_path(tmp_path / "a.png") == tmp_path / "a.png"
    with pytest.raises(BadInput, match=r"\.png"):
        check_plot_path(tmp_path / "a.jpg")
    with pytest.raises(BadInput, match="does not exist"):
        check_plot_path(tmp_path / "nope" / "a.png")


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    with pytest.raises(EnvironmentProblem) as info:
        require_matplotlib()
    assert INSTALL_HINT in str(info.value)
    assert "pip install 'c10kplan[plot]'" in str(info.value)
