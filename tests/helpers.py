"""Waiting on conditions instead of sleeping through fixed windows."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    """Call `predicate` until it returns something true or `timeout` (s) passes; return its last
    value, so the caller asserts on it: `assert wait_for(lambda: srv.stats()["active"] == 4)`.
    The timeout is a bound for a loaded machine, not a measurement: a condition met early
    returns early."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
