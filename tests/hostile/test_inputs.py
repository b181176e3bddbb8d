"""The inputs of issue 12 that crashed or hung c10kplan, each now one line, exit 2, under 1 s.

Files: /dev/zero, /dev/urandom and FIFOs where a file is expected, a 22 MB profile, nesting
that overflowed the stack, a 5,000-digit integer, bytes that are not UTF-8, host facts no
kernel reports, terminal escapes in a calibration file. Numbers: the exact command lines of the
issue (the property suite over every option is test_numeric_options.py), a handful of them also
as real processes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from c10kplan.host.inspect import HostFacts, collect_facts
from c10kplan.host.procfs import ProcFS

from .incli import MAX_SECONDS, MAX_WALL_SECONDS, run, run_process

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "proc"
TREE = FIXTURES / "course_notes"


@pytest.fixture(scope="module")
def facts_doc() -> dict:
    """A valid snapshot (the course-notes host) to spoil one field at a time."""
    return json.loads(collect_facts(ProcFS(TREE)).model_dump_json())


def _write(path: Path, data: str | bytes) -> str:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


def _fifo(tmp_path: Path, name: str = "fifo") -> str:
    path = tmp_path / name
    os.mkfifo(path, 0o600)
    return str(path)


# --- numbers: the command lines of the issue ---------------------------------------------

ISSUE_LINES = [
    (["check", "-n", "1000", "--message-rate", "inf"], "message_rate"),
    (["check", "-n", "1000", "--message-rate", "1e400"], "message_rate"),
    (["check", "-n", "1000", "--connect-rate", "inf"], "connect_rate"),
    (["verify", "-n", "1000", "--message-rate", "inf"], "--message-rate"),
    (["verify", "-n", "1000", "--message-rate", "1e400"], "--message-rate"),
    (["verify", "-n", "1000", "--connect-rate", "inf"], "--connect-rate"),
    (["serve", "--stats-interval", "inf"], "--stats-interval"),
    (["serve", "--stats-interval", "1e300"], "stats_interval"),
    (["storm", "127.0.0.1:9", "-n", "3", "--connect-rate", "1e-12"], "connect_rate"),
    (["verify", "-n", "10", "--connect-rate", "1e-12"], "connect_rate"),
    (["verify", "-n", "1000", "--connect-rate", "0.001"], "at most 86,400 s (1 day)"),
    (["storm", "127.0.0.1:9", "-n", "100000", "--connect-rate", "1"], "at most 86,400 s (1 day)"),
    (["storm", "127.0.0.1:9", "-n", "3", "--duration", "inf"], "--duration"),
    (["storm", "127.0.0.1:9", "-n", "3", "--duration", "86401"], "duration"),
    (["storm", "127.0.0.1:9", "-n", "3", "--message-rate", "1e12"], "message_rate"),
    (["storm", "127.0.0.1:\u0661\u0662", "-n", "3"], "target must be"),  # Arabic-Indic 12
    (["storm", "127.0.0.1:1_2", "-n", "3"], "target must be"),
    (["storm", "127.0.0.1:" + "9" * 5000, "-n", "3"], "target port must be 1..65535"),
    (["storm", "127.0.0.1:\uff11\uff12", "-n", "3"], "target must be"),  # fullwidth 12
    (["storm", "127.0.0.1:9", "-n", "1_000"], "--connections"),
    (["verify", "-n", "10", "--workers", "2000"], "verify needs 2,00"),  # the process cap
    (["verify", "-n", "10000", "--storm-processes", "2000"], "verify needs "),
    (["serve", "--workers", "2000"], "--workers"),
    (["check", "-n", "9" * 5000], "connections"),
]


@pytest.mark.parametrize(("argv", "named"), ISSUE_LINES, ids=[" ".join(a)[:60] for a, _ in ISSUE_LINES])
def test_the_issue_command_lines_are_refused(argv, named):
    run(argv).assert_refused(named)


# A handful as real processes: the exit code, stderr and stdin of a real run, nothing patched.
PROCESS_LINES = [
    (["check", "-n", "1000", "--message-rate", "inf"], "message_rate"),
    (["storm", "127.0.0.1:\u0661\u0662", "-n", "1"], "target must be"),
    (["storm", "127.0.0.1:9", "-n", "3", "--connect-rate", "1e-12"], "connect_rate"),
    (["verify", "-n", "10", "--workers", "2000"], "verify needs 2,00"),
    (["serve", "--stats-interval", "inf"], "--stats-interval"),
    (["check", "-n", "1000", "--host-facts", "/dev/zero"], "not a regular file"),
]


@pytest.mark.parametrize(("argv", "named"), PROCESS_LINES, ids=[" ".join(a)[:60] for a, _ in PROCESS_LINES])
def test_as_a_real_process(argv, named):
    run_process(argv).assert_refused(named)


# --- files that are not files -------------------------------------------------------------

@pytest.fixture
def facts_file(tmp_path, facts_doc) -> str:
    """--host-facts for cases about another file: the live host is not read (its conntrack
    probe runs nft, which the in-process runner refuses as a started process)."""
    return _write(tmp_path / "facts.json", json.dumps(facts_doc))


@pytest.mark.parametrize("option", ["--host-facts", "--calibration"])
@pytest.mark.parametrize("special", ["/dev/zero", "/dev/urandom", "fifo", "dir"])
def test_a_device_fifo_or_folder_is_not_read(tmp_path, facts_file, option, special):
    path = {"fifo": lambda: _fifo(tmp_path), "dir": lambda: str(tmp_path)}.get(special, lambda: special)()
    facts = ["--host-facts", facts_file] if option == "--calibration" else []
    line = run(["plan", "-n", "1000", *facts, option, path]).assert_refused(option)
    assert "not a regular file" in line


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_a_profile_that_is_a_device_or_fifo_is_not_read(tmp_path, special):
    path = _fifo(tmp_path, "p.toml") if special == "fifo" else special
    run(["profiles", "show", path]).assert_refused(path)


def test_a_profile_extending_a_fifo_is_not_read(tmp_path):
    _fifo(tmp_path, "parent.toml")
    child = _write(tmp_path / "child.toml", 'extends = "parent.toml"\n')
    run(["profiles", "show", child]).assert_refused("parent")


def test_a_root_tree_with_a_fifo_and_a_link_to_dev_zero_reads_those_facts_as_unknown(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(TREE, root)
    (root / "proc/meminfo").unlink()
    (root / "proc/meminfo").symlink_to("/dev/zero")  # MemoryError before
    (root / "proc/sys/net/core/somaxconn").unlink()
    os.mkfifo(root / "proc/sys/net/core/somaxconn")  # hung before
    (root / "proc/self/smaps").unlink()
    (root / "proc/self/smaps").symlink_to("/dev/urandom")
    out = run(["check", "-n", "1000", "--root", str(root)])
    assert out.code in (0, 1) and "Traceback" not in out.stderr
    assert out.cpu_seconds < MAX_SECONDS and out.seconds < MAX_WALL_SECONDS  # no hang on the FIFO
    assert "net.core.somaxconn: unknown" in out.stderr and "MemAvailable: unknown" in out.stderr
    assert "page size: unknown" in out.stderr


# --- huge and deep files --------------------------------------------------------------------

def test_a_22_mb_profile_is_refused_at_its_cap_fast_and_small(tmp_path):
    path = _write(tmp_path / "huge.toml", "[sysctl]\n" + '"net.core.somaxconn" = 4096\n' * 800_000)
    assert os.path.getsize(path) > 22_000_000
    line = run(["profiles", "show", path]).assert_refused("larger than the 1 MiB limit")
    assert path in line
    # The same as a real process, with its own peak RSS: VmHWM of its address space, read at
    # exit (ru_maxrss would count the pytest process it was forked from). 1.47 GB before the
    # cap; a bare `c10kplan` start is ~60 MB.
    root = Path(__file__).resolve().parents[2]
    code = ("import atexit, runpy, sys; atexit.register(lambda: sys.stderr.write(next("
            "l for l in open('/proc/self/status') if l.startswith('VmHWM:')))); "
            f"sys.argv = ['c10kplan', 'profiles', 'show', {path!r}]; runpy.run_module('c10kplan', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(root)})
    error, hwm = done.stderr.splitlines()
    assert done.returncode == 2 and done.stdout == "" and "larger than the 1 MiB limit" in error, done.stderr
    assert int(hwm.split()[1]) < 200 * 1024, hwm  # kB


DEEP_PROFILES = {
    "3,000 dotted segments": ("[sysctl]\n" + ".".join(["a"] * 3000) + " = 1\n", "nests at most 16 levels"),
    "5,000 nested arrays": ("[sysctl]\nx = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    "5,000 nested inline tables": ("x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n", "nested too deeply"),
    "a 5,000-digit integer": ('[sysctl]\n"net.core.somaxconn" = ' + "1" * 5000 + "\n", "4300 digits"),
    "not UTF-8": (b'name = "\xff\xfe"\n', "not UTF-8 text"),
    "Arabic-Indic digits": ('[sysctl]\n"net.core.somaxconn" = "\u0661\u0662"\n', "net.core.somaxconn"),
    "a 40-digit target": ("[target]\nconnections = " + "9" * 40 + "\n", "target.connections"),
}


@pytest.mark.parametrize("name", list(DEEP_PROFILES))
def test_a_hostile_profile_is_one_line(tmp_path, name):
    text, named = DEEP_PROFILES[name]
    path = _write(tmp_path / "p.toml", text)
    run(["profiles", "show", path]).assert_refused(named)


def test_a_huge_host_facts_file_is_refused_at_its_cap(tmp_path, facts_doc):
    doc = {**facts_doc, "notes": ["x" * 1000] * 5000}
    path = _write(tmp_path / "facts.json", json.dumps(doc))
    run(["plan", "-n", "1000", "--host-facts", path]).assert_refused("larger than the 4 MiB limit")


HOSTILE_FACTS = {
    "not UTF-8": (b'{"cpu_count": 4, "source": "\xff"}', "not UTF-8 text"),
    "a 5,000-digit integer": ('{"cpu_count": ' + "1" * 5000 + "}", "--host-facts"),
    "5,000 nested arrays": ('{"notes": ' + "[" * 5000 + "]" * 5000 + "}", "--host-facts"),
    "1e400": ('{"cpu_count": 1e400}', "cpu_count"),
    "NaN": ('{"cpu_count": NaN}', "--host-facts"),
    "a float count": ('{"cpu_count": 2.5}', "cpu_count"),
}


@pytest.mark.parametrize(("text", "named"), list(HOSTILE_FACTS.values()), ids=list(HOSTILE_FACTS))
def test_a_hostile_host_facts_file_is_one_line(tmp_path, text, named):
    path = _write(tmp_path / "facts.json", text)
    run(["plan", "-n", "1000", "--host-facts", path]).assert_refused(named)


# --- host facts no kernel reports ---------------------------------------------------------

@pytest.mark.parametrize(("field", "value"), [
    ("cpu_count", -2), ("page_size_bytes", 0), ("somaxconn", -1), ("cpu_count", 0),
    ("ip_local_port_range", [60999, 32768]), ("ip_local_port_range", [1, 70000]),
    ("tcp_rmem_bytes", [4096, -1, 6291456]), ("nofile_hard", True),
])
def test_host_facts_no_kernel_reports_are_refused(tmp_path, facts_doc, field, value):
    path = _write(tmp_path / "facts.json", json.dumps({**facts_doc, field: value}))
    run(["plan", "-n", "1000", "--host-facts", path]).assert_refused("--host-facts")


# The single-number fields of HostFacts (the numeric.Int type; not the tuples, lists, dicts).
COUNT_FIELDS = [name for name, f in HostFacts.model_fields.items()
                if "_int_input" in repr(f.annotation) and not repr(f.annotation).startswith(("tuple", "list", "dict"))]


def test_every_count_field_is_covered():
    assert {"cpu_count", "page_size_bytes", "somaxconn", "file_max", "nofile_soft", "nr_open",
            "mem_available_bytes", "nf_conntrack_max", "pid"} <= set(COUNT_FIELDS)
    assert len(COUNT_FIELDS) >= 20, COUNT_FIELDS


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(COUNT_FIELDS), value=st.integers(max_value=-1) | st.integers(min_value=2**63))
def test_no_count_in_host_facts_is_negative_or_past_long_max(facts_doc, field, value):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp) / "facts.json", json.dumps({**facts_doc, field: value}))
        run(["plan", "-n", "1000", "--host-facts", path]).assert_refused(field)


# --- text from files reaches the terminal escaped -------------------------------------------

CAL = {"kernel_bytes_per_socket": 4096, "connections": 10, "measured_at": "2026-12-01T00:00:00Z"}


def test_ansi_escapes_in_a_calibration_are_printed_escaped(tmp_path):
    path = _write(tmp_path / "cal.json", json.dumps({**CAL, "method": "\x1b[2J\x1b[31mowned\x1b[0m\u202e"}))
    out = run(["plan", "-n", "1000", "--host-facts", _write(tmp_path / "f.json", "{}"), "--calibration", path])
    assert out.code == 0, out.stderr
    assert "\x1b" not in out.stdout + out.stderr and "\u202e" not in out.stdout
    assert "\\x1b[31mowned" in out.stdout


def test_ansi_escapes_in_an_error_are_printed_escaped(tmp_path, facts_file):
    path = _write(tmp_path / "cal.json", json.dumps({**CAL, "method": "m", "\x1b]0;title\x07": 1}))
    line = run(["plan", "-n", "1000", "--host-facts", facts_file, "--calibration", path]).assert_refused(
        "--calibration")
    assert "\\x1b]0;title\\x07" in line


def test_escapes_in_host_facts_text_are_printed_escaped(tmp_path, facts_doc):
    doc = {**facts_doc, "kernel_release": "6.1\x1b[31m", "link_speeds_mbit": {"eth\x1b[0m": None}}
    out = run(["check", "-n", "1000", "--host-facts", _write(tmp_path / "f.json", json.dumps(doc))])
    assert out.code in (0, 1), out.stderr
    assert "\x1b" not in out.stdout + out.stderr and "6.1\\x1b[31m" in out.stdout
