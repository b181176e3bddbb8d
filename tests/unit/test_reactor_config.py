"""ServeConfig validation and the worker arithmetic (pure)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from c10kplan.reactor.config import RESERVED_FDS, ServeConfig, resolve_workers


def test_defaults():
    cfg = ServeConfig()
    assert (cfg.host, cfg.port, cfg.backend, cfg.trigger, cfg.workers, cfg.protocol) == (
        "127.0.0.1", 0, "epoll", "level", 1, "echo")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"backend": "poll", "trigger": "edge"},
        {"backend": "select", "trigger": "edge"},
        {"workers": 0},
        {"workers": "many"},
        {"port": 65536},
        {"protocol": "gopher"},
        {"max_connections": 0},
        {"stats_interval": -1},
        {"bogus": 1},
    ],
)
def test_bad_config_is_rejected(kwargs):
    with pytest.raises(ValidationError):
        ServeConfig(**kwargs)


def test_workers_accepts_auto_and_numeric_strings():
    assert ServeConfig(workers="auto").workers == "auto"
    assert ServeConfig(workers="4").workers == 4


def test_auto_workers_shard_by_fd_hard_limit():
    usable = 20000 - RESERVED_FDS
    assert resolve_workers("auto", usable, 20000, cpus=2) == 1
    assert resolve_workers("auto", usable + 1, 20000, cpus=2) == 2
    assert resolve_workers("auto", 100_000, 20000, cpus=2) == 6
    assert resolve_workers("auto", None, 20000, cpus=8) == 8
    assert resolve_workers(3, 100_000, 20000, cpus=8) == 3
