"""`merge` reads files other hosts sent: each bad one is one line on stderr and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from c10kplan.cli import app
from c10kplan.storm import merge as merge_mod


def run(capsys, *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        app.main(["merge", *argv])
    return info.value.code, capsys.readouterr().err


def good_result() -> dict:
    from tests.unit.test_storm_merge import host_result, samples

    return json.loads(host_result(1, 1, samples(1, 50)).model_dump_json())


@pytest.mark.parametrize("content", [
    b"", b"not json", b"[]", b'{"target": "x"}', b"\xff\xfe garbage",
    json.dumps({**good_result(), "connections": "many"}).encode(),
    json.dumps({**good_result(), "histograms": {"raw": "AAAA", "corrected": "", "connect": ""}}).encode(),
], ids=["empty", "text", "array", "partial", "binary", "bad-field", "bad-histogram"])
def test_not_a_storm_result(tmp_path: Path, capsys, content: bytes) -> None:
    f = tmp_path / "r.json"
    f.write_bytes(content)
    code, err = run(capsys, str(f))
    assert code == 2 and err.startswith("c10kplan: error: ") and err.count("\n") == 1 and str(f) in err


def test_missing_file_and_directory(tmp_path: Path, capsys) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(good_result()))
    for bad in (tmp_path / "missing.json", tmp_path):
        code, err = run(capsys, str(good), str(bad))
        assert code == 2 and err.count("\n") == 1 and str(bad) in err


def test_huge_file_is_refused_before_reading(tmp_path: Path, capsys) -> None:
    f = tmp_path / "big.json"
    with open(f, "wb") as fh:  # sparse: takes no disk, would take the memory if read
        fh.truncate(merge_mod.MAX_FILE_BYTES + 1)
    code, err = run(capsys, str(f))
    assert code == 2 and "more than a storm result" in err


def test_a_good_file_merges(tmp_path: Path, capsys) -> None:
    f = tmp_path / "good.json"
    f.write_text(json.dumps(good_result()))
    with pytest.raises(SystemExit) as info:
        app.main(["merge", "--json", str(f)])
    assert info.value.code in (0, None)
    assert json.loads(capsys.readouterr().out)["verdict"] == "PASS"
