"""`verify --find-limit` / `--source-ips` / rates from a hostile command line: one line on
stderr, exit 2, nothing started (no process forked: the CLI refuses before run_verify)."""

from __future__ import annotations

import pytest

from c10kplan.cli import app


@pytest.mark.parametrize("argv", [
    ["-n", "10", "--find-limit", "bogus"],
    ["-n", "10", "--find-limit", ""],
    ["-n", "10", "--find-limit", "connections; rm -rf /"],
    ["-n", "0", "--find-limit", "connections"],
    ["-n", "-7", "--find-limit", "message-rate"],
    ["-n", "10", "--find-limit", "message-rate", "--message-rate", "inf"],
    ["-n", "10", "--find-limit", "message-rate", "--message-rate", "nan"],
    ["-n", "10", "--find-limit", "message-rate", "--message-rate", "-1"],
    ["-n", "10", "--connect-rate", "Infinity"],
    ["-n", "10", "--p99-max", "nan"],
    ["-n", "10", "--duration", "inf"],
    ["-n", "10", "--source-ips", "16777215"],
    ["-n", "10", "--source-ips", "0"],
    ["-n", "10", "--source-ips", "-1"],
    ["-n", "10", "--source-ips", "auto"],
    ["-n", "10", "--source-ips", "99999999999999999999999"],
    ["-n", "10", "--find-limit", "connections", "--target", "127.0.0.1:80"],
    ["-n", "10", "--find-limit", "connections", "--netns", "--client-hosts", "2"],
], ids=lambda a: " ".join(a))
def test_refused_in_one_line_before_anything_starts(capsys, monkeypatch, argv):
    import c10kplan.verify as verify_mod

    def must_not_run(*a, **k):
        raise AssertionError("run_verify was reached")

    monkeypatch.setattr(verify_mod, "run_verify", must_not_run)
    with pytest.raises(SystemExit) as info:
        app.main(["verify", *argv])
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert err.startswith("c10kplan: error: ") and err.count("\n") == 1
