"""`c10kplan bench backends|trigger` as a user runs them: real process, exit codes, outputs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from c10kplan.bench.trigger import run_trigger

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def c10kplan(*args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"{prelude}\nfrom c10kplan.cli.app import main\nmain({list(args)!r})"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_trigger_level_keeps_waking_edge_wakes_once():
    report = run_trigger(50)
    assert report.edge.wakeups == 1
    assert report.level.wakeups > report.edge.wakeups
    assert report.level.waits == report.level.wakeups  # every level wait returned the socket
    assert report.edge.waits >= 1
    assert report.edge.elapsed_ms >= 50 and report.level.elapsed_ms >= 50


def test_cli_trigger_json():
    res = c10kplan("bench", "trigger", "--window-ms", "30", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["edge"]["wakeups"] == 1
    assert doc["level"]["wakeups"] > 1
    assert doc["level_wakes_more"] is True


def test_cli_trigger_table_side_by_side():
    res = c10kplan("bench", "trigger", "--window-ms", "20")
    assert res.returncode == 0, res.stderr
    assert "level-triggered" in res.stdout and "edge-triggered" in res.stdout
    wakeups = next(line for line in res.stdout.splitlines() if line.startswith("wakeups"))
    level, edge = (int(x.replace(",", "")) for x in wakeups.split()[-2:])  # 30,953
    assert level > edge == 1
    assert "read until EAGAIN" in res.stdout


def test_cli_backends_json_has_raw_figures():
    res = c10kplan(
        "bench", "backends", "--fds", "10,60", "--repeat", "2", "--writes", "20", "--json"
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["fds_measured"] == [10, 60]
    assert len(doc["points"]) == 6
    assert all(len(p["samples_us"]) == 2 and p["median_us"] > 0 for p in doc["points"])
    assert {g["backend"] for g in doc["growth"]} == {"epoll", "poll", "select"}


def test_cli_backends_table_and_plot(tmp_path):
    png = tmp_path / "scaling.png"
    res = c10kplan(
        "bench", "backends", "--fds", "10,100", "--repeat", "2", "--writes", "20",
        "--backends", "poll,epoll", "--plot", str(png),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split()[:3] == ["backend", "fds", "median"]
    assert sum(1 for line in lines if line.startswith(("poll ", "epoll "))) == 4
    assert any(line.startswith("poll: N 10 -> 100") for line in lines)
    assert f"plot written to {png}" in res.stdout
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC
    import matplotlib.image

    img = matplotlib.image.imread(str(png))
    assert img.shape[:2] == (500, 800)  # 8 x 5 inches at 100 dpi


def test_cli_plot_without_matplotlib_fails_early_naming_the_extra(tmp_path):
    png = tmp_path / "x.png"
    res = c10kplan(
        "bench", "backends", "--fds", "10", "--plot", str(png),
        prelude="import sys; sys.modules['matplotlib'] = None",
    )  # fmt: skip
    assert res.returncode == 3
    assert res.stderr.strip().splitlines() == [
        "c10kplan: error: --plot needs matplotlib, which is not installed: "
        "pip install 'c10kplan[plot]'"
    ]
    assert res.stdout == ""  # failed before measuring anything
    assert not png.exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--fds", "10,abc"], "--fds: 'abc' is not a whole number"),
        (["--fds", "10", "--active", "11"], "active: 11 active descriptors need every N >= 11"),
        (["--backends", "kqueue"], "backends: kqueue is not available here"),
        (["--repeat", "0"], "repeat:"),
        (["--plot", "out.jpg"], "--plot:"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args, fragment):
    res = c10kplan("bench", "backends", *args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("c10kplan: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in res.stderr
