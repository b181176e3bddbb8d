"""What the storm protocol tests share: the CLI as a real process, and the bucket invariant."""

from __future__ import annotations

import subprocess
import sys


def cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "c10kplan", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def adds_up(doc: dict) -> None:
    """Every sent message is in exactly one bucket (a storm --json document)."""
    assert doc["messages_received"] + doc["mismatches"] + doc["unanswered"] + doc["lost_on_drop"] \
        == doc["messages_sent"], doc
    assert doc["mismatches"] <= doc["messages_sent"]
