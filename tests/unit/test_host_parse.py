"""Pure parsers of /proc and /sys text: right values on real formats, None (never an
exception) on garbage."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from c10kplan.host import parse

LIMITS = """Limit                     Soft Limit           Hard Limit           Units
Max processes             96364                96364                processes
Max open files            20000                40000                files
Max locked memory         8388608              8388608              bytes
"""


def test_parse_limits_reads_soft_and_hard_of_open_files():
    assert parse.parse_limits(LIMITS) == (20000, 40000)
    assert parse.parse_limits(LIMITS, "Max processes") == (96364, 96364)


def test_parse_limits_unlimited_and_garbage():
    assert parse.parse_limits("Max open files   unlimited   1024  files") == (None, 1024)
    assert parse.parse_limits("Max open files   many   1024  files") is None
    assert parse.parse_limits("Max cpu time  unlimited unlimited seconds") is None
    assert parse.parse_limits(None) is None


def test_cap_mask_bit_24_is_cap_sys_resource():
    # This machine's mask: every capability but CAP_SYS_RESOURCE (bit 24).
    mask = parse.parse_cap_mask("Name:\tpython\nCapEff:\t000001fffeffffff\n")
    assert mask is not None and not (mask >> 24) & 1 and (mask >> 23) & 1
    full = parse.parse_cap_mask("CapEff:\t000001ffffffffff\n")
    assert full is not None and (full >> 24) & 1
    assert parse.parse_cap_mask("CapEff:\tzz\n") is None
    assert parse.parse_cap_mask("") is None


def test_parse_ranges_and_count_in_range():
    assert parse.parse_ranges("") == []
    assert parse.parse_ranges("0-1\n") == [(0, 1)]
    assert parse.parse_ranges("1000-1005,2000") == [(1000, 1005), (2000, 2000)]
    assert parse.parse_ranges("5-1") is None
    assert parse.parse_ranges("a-b") is None
    # overlap counted once, ports outside the range not at all
    assert parse.count_in_range([(32760, 32770), (32768, 32769), (61000, 61005)], 32768, 60999) == 3


def test_cpuinfo_and_page_size():
    assert parse.parse_cpuinfo_count("processor\t: 0\nmodel\t: x\n\nprocessor\t: 1\n") == 2
    assert parse.parse_cpuinfo_count("") is None
    smaps = "55bd-7ffe r--p 0 00:00 0 /usr/bin/python\nSize:  4 kB\nKernelPageSize:        4 kB\n"
    assert parse.parse_kernel_page_size(smaps) == 4096
    assert parse.parse_kernel_page_size("KernelPageSize: big kB") is None


def test_parse_ints_counts_and_garbage():
    assert parse.parse_ints("4096\t131072\t6291456\n", 3) == (4096, 131072, 6291456)
    assert parse.parse_ints("4096\tlots\t6291456", 3) is None
    assert parse.parse_ints("4096 16384", 3) is None


@given(st.text())
def test_parsers_never_raise_on_arbitrary_text(text):
    parse.parse_limits(text)
    parse.parse_cap_mask(text)
    parse.parse_ranges(text)
    parse.parse_cpuinfo_count(text)
    parse.parse_kernel_page_size(text)
    parse.parse_ints(text, 3)
    parse.parse_meminfo(text)


def test_parse_pid_stat_counts_fields_after_the_last_paren():
    # comm may hold spaces and ')' itself: "(a) b)" must not shift the fields.
    text = "4242 (a) b) S 17 4242 4242 0 -1 4194560 500 0 0 0 123 45 0 0 20 0 1 0 99 1 1"
    stat = parse.parse_pid_stat(text)
    assert stat == ("S", 17, 4242, 123, 45)
    assert parse.parse_pid_stat("") is None
    assert parse.parse_pid_stat("1 (x) Z 1") is None  # truncated: too few fields


def test_raise_nofile_soft_limit_reaches_the_hard_limit():
    import resource

    from c10kplan.processes import raise_nofile_soft_limit

    soft0, hard0 = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard0), hard0))
        assert raise_nofile_soft_limit() == (hard0, hard0)
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard0, hard0)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft0, hard0))
