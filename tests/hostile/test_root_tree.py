"""A --root tree is anyone's files: values the kernel cannot report are bad input (exit 2, one
line naming the tree), as they are in a --host-facts file; the real root is never re-validated."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.hostile.incli import run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "proc"


@pytest.mark.parametrize(("rel", "text", "field"), [
    ("proc/sys/net/core/somaxconn", "-1\n", "somaxconn"),
    ("proc/sys/fs/file-max", "-5\n", "file_max"),
])
def test_a_planted_tree_value_the_kernel_cannot_report_is_refused(tmp_path, rel, text, field):
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES / "cap_sys_resource", tree)
    (tree / rel).write_text(text)
    line = run(["check", "-n", "1000", "--root", str(tree)]).assert_refused()
    assert f"--root {tree}" in line and field in line


def test_the_unchanged_tree_still_plans(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES / "cap_sys_resource", tree)
    out = run(["check", "-n", "1000", "--root", str(tree)])
    assert out.code in (0, 1) and "Traceback" not in out.stderr and "fds.nofile" in out.stdout
