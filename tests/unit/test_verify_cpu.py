"""verify's CPU-per-message measurement: the /proc/stat parser, process ticks from a proc tree,
the split between server and storm, and what --calibrate keeps of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from c10kplan.host.parse import CpuTimes, parse_proc_stat_cpu
from c10kplan.host.procfs import ProcFS
from c10kplan.host.process import process_ticks
from c10kplan.verify.measure import CpuSample, cpu_use, sample_cpu

STAT = """cpu  100 5 40 900 10 3 50 7 20 0
cpu0 50 2 20 450 5 1 25 3 10 0
intr 12345
"""


def test_proc_stat_busy_counts_softirq_and_leaves_guest_out():
    # busy = user + nice + system + irq + softirq; idle = idle + iowait; guest is inside user
    assert parse_proc_stat_cpu(STAT) == CpuTimes(busy_ticks=100 + 5 + 40 + 3 + 50, idle_ticks=910, steal_ticks=7)


@pytest.mark.parametrize("text", [None, "", "intr 1\n", "cpu  1 2 three 4 5 6 7\n", "cpu  1 2 3\n"])
def test_proc_stat_unreadable_is_none(text):
    assert parse_proc_stat_cpu(text) is None


def test_proc_stat_of_an_old_kernel_without_steal():
    assert parse_proc_stat_cpu("cpu  1 2 3 4 5 6 7\n") == CpuTimes(1 + 2 + 3 + 6 + 7, 9, 0)


def test_process_ticks_sum_utime_and_stime_and_skip_missing(tmp_path: Path):
    for pid, (utime, stime) in {10: (30, 12), 11: (5, 1)}.items():
        d = tmp_path / "proc" / str(pid)
        d.mkdir(parents=True)
        # comm with a space and parentheses: fields are counted after the last ')'
        (d / "stat").write_text(f"{pid} (python (x) y) S 1 1 0 0 -1 0 0 0 0 0 {utime} {stime} 0 0 20 0 1 0\n")
    (tmp_path / "proc" / "stat").write_text(STAT)
    procfs = ProcFS(tmp_path)
    assert process_ticks(procfs, [10, 11, 99]) == 48
    s = sample_cpu(procfs, [10], [11, 99], messages=7, clock=lambda: 3.5)
    assert s == CpuSample(at=3.5, host_busy_ticks=198, server_ticks=42, storm_ticks=6, messages=7)


def _s(at, busy, server, storm, messages):
    return CpuSample(at=at, host_busy_ticks=busy, server_ticks=server, storm_ticks=storm, messages=messages)


def test_host_busy_time_is_shared_by_the_processes_own_times():
    # 10 s, 100,000 replies; server 300 ticks, storm 100 ticks, host 600 ticks busy (softirq)
    use = cpu_use(_s(0, 1000, 0, 0, 0), _s(10, 1600, 300, 100, 100_000), ticks_per_s=100)
    assert use.messages == 100_000 and use.host_busy_cores == 0.6 and use.process_ticks == 400
    # 6 s of CPU over 100,000 replies = 60 us, three quarters to the server
    assert use.server_us_per_message == 45.0 and use.storm_us_per_message == 15.0


def test_without_the_host_line_process_time_is_all_there_is():
    use = cpu_use(_s(0, None, 0, 0, 0), _s(10, None, 300, 100, 100_000), ticks_per_s=100)
    assert use.host_busy_cores is None
    assert (use.server_us_per_message, use.storm_us_per_message) == (30.0, 10.0)


def test_host_busy_below_the_process_sum_does_not_shrink_it():
    # sampled a moment apart, the host line may lag the processes': never count less than they used
    use = cpu_use(_s(0, 0, 0, 0, 0), _s(1, 350, 300, 100, 1000), ticks_per_s=100)
    assert use.server_us_per_message + use.storm_us_per_message == pytest.approx(4000.0)


@pytest.mark.parametrize("start,end", [
    (None, _s(1, 10, 1, 1, 10)),
    (_s(0, 0, 0, 0, 0), None),
    (_s(0, 0, 0, 0, 5), _s(1, 10, 1, 1, 5)),  # no reply in the window (idle hold)
    (_s(0, 0, 0, 0, 0), _s(1, 10, 0, 0, 10)),  # no process time counted yet
    (_s(1, 0, 0, 0, 0), _s(1, 10, 1, 1, 10)),  # no time passed
])
def test_no_figure_without_messages_time_or_process_time(start, end):
    assert cpu_use(start, end, ticks_per_s=100) is None


def test_calibration_keeps_cpu_only_from_enough_messages(tmp_path: Path):
    from c10kplan.planner.calibration import load_calibration
    from c10kplan.verify.options import VerifyOptions
    from c10kplan.verify.run import MIN_CALIBRATION_MESSAGES, MIN_CALIBRATION_TICKS, _write_calibration

    def write(messages: int, name: str):
        opts = VerifyOptions(connections=1000, message_rate=2, calibrate=str(tmp_path / name))
        use = cpu_use(_s(0, 0, 0, 0, 0), _s(10, 600, 300, 100, messages), ticks_per_s=100)
        _write_calibration(opts, 4000.0, 900.0, 1000, use)
        return load_calibration(tmp_path / name), use

    cal, use = write(MIN_CALIBRATION_MESSAGES, "enough.json")
    assert use.process_ticks == 400 >= MIN_CALIBRATION_TICKS
    assert cal.server_cpu_us_per_message == use.server_us_per_message > 0
    assert cal.client_cpu_us_per_message == use.storm_us_per_message > 0
    assert "CPU over" in cal.method
    cal, _ = write(MIN_CALIBRATION_MESSAGES - 1, "few.json")
    assert cal.server_cpu_us_per_message is None and cal.client_cpu_us_per_message is None
    assert cal.kernel_bytes_per_socket == 4000
    # enough replies but too few clock ticks (10 ms each) to resolve the CPU: not kept either
    opts = VerifyOptions(connections=1000, message_rate=2, calibrate=str(tmp_path / "coarse.json"))
    coarse = cpu_use(_s(0, 0, 0, 0, 0), _s(1, 60, 30, 10, 50_000), ticks_per_s=100)
    assert coarse.process_ticks == 40 < MIN_CALIBRATION_TICKS
    _write_calibration(opts, 4000.0, None, 1000, coarse)
    assert load_calibration(tmp_path / "coarse.json").server_cpu_us_per_message is None


def test_a_counter_is_read_at_a_moment_between_two_reports():
    from c10kplan.storm.runner import count_at

    history = [(10.0, 1_000), (10.25, 1_500), (10.5, 2_000)]
    assert count_at(history, 10.1) == 1_200  # interpolated, not the 1,000 of the last report before
    assert count_at(history, 10.25) == 1_500
    assert count_at(history, 9.0) == 1_000 and count_at(history, 11.0) == 2_000  # nearest outside
    assert count_at([], 10.0) == 0


def test_busy_elsewhere_is_host_busy_beyond_our_processes_and_the_plan():
    from c10kplan.verify.measure import BUSY_ELSEWHERE_MAX_CORES, CpuSample, busy_elsewhere, busy_warning

    start = CpuSample(at=100.0, host_busy_ticks=10_000, server_ticks=500, storm_ticks=500, messages=0)
    # 10 s: the host busy 1,800 ticks = 1.8 CPUs; ours 300 ticks = 0.3 CPUs
    end = CpuSample(at=110.0, host_busy_ticks=11_800, server_ticks=700, storm_ticks=600, messages=0)
    assert busy_elsewhere(start, end, 0.0, ticks_per_s=100) == 1.5
    assert busy_elsewhere(start, end, 1.0, ticks_per_s=100) == 0.8  # the plan's cores count as ours
    assert busy_elsewhere(start, end, 2.0, ticks_per_s=100) == 0.0
    assert busy_elsewhere(start, end.model_copy(update={"host_busy_ticks": None})) is None
    assert busy_elsewhere(None, end) is None
    text = busy_warning(1.5)
    assert text is not None and "1.50 CPUs of other work" in text and "unreliable" in text
    assert busy_warning(BUSY_ELSEWHERE_MAX_CORES) is None and busy_warning(None) is None
